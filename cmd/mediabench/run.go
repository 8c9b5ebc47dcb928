package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is the kernel's USER_HZ: /proc/<pid>/stat counts CPU time in
// it (getconf CLK_TCK says 100 on Linux).
const clockTicks = 100

// benchConfig is what run reads from its flags.
type benchConfig struct {
	switchboard, self string
	legs              []int
	ramp              time.Duration
	warmup, window    time.Duration
	setup             int
	udpPort           string // serve --udp-port: legs on shared sockets; empty is a socket per leg
	sockets           int    // loadgen --sockets
	// relay adds, at each leg count, the switchboard with its embedded
	// TURN relay and every caller relayed through it (loadgen --relay).
	relay bool
}

// result is one measured run, the baseline's or the switchboard's.
type result struct {
	Kind      string  `json:"kind"` // "udp", "switchboard" or "relayed"
	Legs      int     `json:"legs"`
	Connected int     `json:"connected"`
	Seconds   float64 `json:"seconds"`
	// ServerCPU is the server process's user+system CPU over the window.
	ServerCPU float64 `json:"serverCpuSec"`
	LoadCPU   float64 `json:"loadgenCpuSec"`
	// Packets is what the server received plus what it sent in the window.
	Packets   uint64  `json:"packets"`
	PerPacket float64 `json:"cpuPerPacketUs"`
	Late      uint64  `json:"lateTicks"`
	MaxLate   float64 `json:"maxLateMs"`
	// LostDown is packets the callers missed (sequence gaps), LostUp what
	// the server missed.
	LostDown   uint64  `json:"lostDown"`
	LostUp     uint64  `json:"lostUp"`
	RSSIdle    int64   `json:"rssIdleKiB"`
	RSSLoaded  int64   `json:"rssLoadedKiB"`
	RSSPerLeg  float64 `json:"rssPerLegKiB"`
	LoadAvg    string  `json:"loadavg"`
	SetupSec   float64 `json:"setupSec"`
	Refused    uint64  `json:"refused"`
	Dropped    uint64  `json:"dropped"` // frames the server's writers dropped
	MixerBusy  float64 `json:"mixerBusyMsPerTick"`
	ClientSent uint64  `json:"clientSent"`
	ClientRecv uint64  `json:"clientReceived"`
	// PerRead and PerWrite are the server's datagrams per system call on
	// shared sockets (zero with a socket per leg).
	PerRead  float64 `json:"datagramsPerRead,omitempty"`
	PerWrite float64 `json:"datagramsPerWrite,omitempty"`
	// TURNPerRead and TURNPerWrite are the same on the embedded TURN
	// relay's UDP listener (relayed runs).
	TURNPerRead  float64 `json:"turnDatagramsPerRead,omitempty"`
	TURNPerWrite float64 `json:"turnDatagramsPerWrite,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg benchConfig
	fs.StringVar(&cfg.switchboard, "switchboard", "switchboard", "the switchboard binary")
	legs := fs.String("legs", "250,500,1000", "leg counts, comma-separated")
	fs.DurationVar(&cfg.ramp, "ramp", 0, "loadgen --ramp (default: 20 ms a leg)")
	fs.IntVar(&cfg.setup, "setup", 8, "loadgen --setup")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "wait after the last leg connects")
	fs.DurationVar(&cfg.window, "window", 20*time.Second, "the measured window")
	fs.StringVar(&cfg.udpPort, "udp-port", "", "serve --udp-port: the UDP port, as 45000, or ports, as 45000-45031, the switchboard's legs share; empty gives each leg sockets of its own")
	fs.BoolVar(&cfg.relay, "relay", false, "also run the switchboard with its embedded TURN relay (serve --turn-addr) and every caller relayed through it (loadgen --relay), beside the same legs direct")
	fs.IntVar(&cfg.sockets, "loadgen-sockets", 0, "loadgen --sockets: UDP ports the callers share; 0 gives each caller sockets of its own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*legs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("--legs %q: want counts like 250,500", *legs)
		}
		cfg.legs = append(cfg.legs, n)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary: %w", err)
	}
	cfg.self = self
	kinds := []string{"udp", "switchboard"}
	if cfg.relay {
		kinds = append(kinds, "relayed")
	}
	var results []result
	for _, n := range cfg.legs {
		for _, kind := range kinds {
			la := loadavg()
			fmt.Fprintf(stderr, "mediabench: %s, %d legs; loadavg %s\n", kind, n, la)
			var r result
			if kind == "udp" {
				r, err = runUDP(ctx, cfg, n, stderr)
			} else {
				r, err = runSwitchboard(ctx, cfg, n, kind == "relayed", stderr)
			}
			if err != nil {
				return fmt.Errorf("%s at %d legs: %w", kind, n, err)
			}
			r.LoadAvg = la
			results = append(results, r)
			b, _ := json.Marshal(r)
			fmt.Fprintln(stdout, string(b))
		}
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "| legs | switchboard CPU/packet | UDP baseline CPU/packet | ratio | late ticks (max late) | mixer busy/tick | lost up / down (dropped) | RSS per leg | server CPU | loadgen CPU | loadavg before |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|---|---|")
	step := len(kinds)
	for i := 0; i+1 < len(results); i += step {
		u, s := results[i], results[i+1]
		fmt.Fprintf(stdout, "| %d (%d connected) | %.2f µs | %.2f µs | %.1f× | %d (%.1f ms) | %.2f ms | %d / %d (%d) | %.0f KiB | %.0f%% | %.0f%% | %s |\n",
			s.Legs, s.Connected, s.PerPacket, u.PerPacket, s.PerPacket/u.PerPacket, s.Late, s.MaxLate, s.MixerBusy, s.LostUp, s.LostDown, s.Dropped,
			s.RSSPerLeg, 100*s.ServerCPU/s.Seconds, 100*s.LoadCPU/s.Seconds, s.LoadAvg)
	}
	if cfg.relay {
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "| legs | relayed CPU/packet | direct CPU/packet | ratio | late ticks (max late) | lost up / down | relayed RSS per leg | server CPU relayed / direct | loadavg before (relayed) |")
		fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|")
		for i := 0; i+2 < len(results); i += step {
			d, r := results[i+1], results[i+2]
			fmt.Fprintf(stdout, "| %d (%d connected) | %.2f µs | %.2f µs | %.2f× | %d (%.1f ms) | %d / %d | %.0f KiB | %.0f%% / %.0f%% | %s |\n",
				r.Legs, r.Connected, r.PerPacket, d.PerPacket, r.PerPacket/d.PerPacket, r.Late, r.MaxLate, r.LostUp, r.LostDown,
				r.RSSPerLeg, 100*r.ServerCPU/r.Seconds, 100*d.ServerCPU/d.Seconds, r.LoadAvg)
		}
	}
	return nil
}

// runUDP measures the plain-UDP baseline at n legs.
func runUDP(ctx context.Context, cfg benchConfig, n int, stderr io.Writer) (result, error) {
	r := result{Kind: "udp", Legs: n, Connected: n}
	srv := exec.CommandContext(ctx, cfg.self, "udp-server", "--legs", strconv.Itoa(n))
	srv.Stderr = stderr
	in, err := srv.StdinPipe()
	if err != nil {
		return r, err
	}
	out, err := srv.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := srv.Start(); err != nil {
		return r, fmt.Errorf("starting udp-server: %w", err)
	}
	defer func() { in.Close(); _ = srv.Wait() }()
	var hello struct {
		Ports []int  `json:"ports"`
		Stats string `json:"stats"`
	}
	if err := json.NewDecoder(out).Decode(&hello); err != nil {
		return r, fmt.Errorf("udp-server's ports: %w", err)
	}
	ports := make([]string, len(hello.Ports))
	for i, p := range hello.Ports {
		ports[i] = strconv.Itoa(p)
	}
	r.RSSIdle = rssKiB(srv.Process.Pid)
	cli := exec.CommandContext(ctx, cfg.self, "udp-client", "--ports", strings.Join(ports, ","),
		"--warmup", cfg.warmup.String(), "--duration", cfg.window.String())
	counts := func() (udpCounts, error) {
		var c udpCounts
		return c, getJSON(ctx, hello.Stats, "", &c)
	}
	var a, b udpCounts
	var final udpCounts
	err = watch(ctx, cli, stderr, srv.Process.Pid, &r, func(start bool) error {
		c, err := counts()
		if start {
			a = c
		} else {
			b = c
		}
		return err
	}, func(last []byte) error { return json.Unmarshal(last, &final) })
	if err != nil {
		return r, err
	}
	r.Packets = (b.Received - a.Received) + (b.Sent - a.Sent)
	r.PerPacket = r.ServerCPU * 1e6 / float64(r.Packets)
	r.LostDown = final.Lost
	r.ClientSent, r.ClientRecv = final.Sent, final.Received
	if final.Sent > b.Received-a.Received {
		r.LostUp = final.Sent - (b.Received - a.Received) // approximate: windows differ by a request
	}
	r.RSSPerLeg = float64(r.RSSLoaded-r.RSSIdle) / float64(n)
	return r, nil
}

// mediaStats is the part of the switchboard's GET /debug/media used here.
type mediaStats struct {
	Mixer struct {
		Ticks   uint64  `json:"ticks"`
		Late    uint64  `json:"late"`
		MaxLate float64 `json:"maxLateMs"`
		Busy    float64 `json:"busyMs"`
	} `json:"mixer"`
	Legs struct {
		Open       int64  `json:"Open"`
		Received   uint64 `json:"Received"`
		Lost       uint64 `json:"Lost"`
		Sent       uint64 `json:"Sent"`
		SendErrors uint64 `json:"SendErrors"`
		Dropped    uint64 `json:"Dropped"`
		Sockets    struct {
			Read, ReadCalls, Written, WriteCalls uint64
		}
	} `json:"legs"`
	TURN *struct {
		UDP struct {
			Read, ReadCalls, Written, WriteCalls uint64
		} `json:"udp"`
	} `json:"turn"`
}

// loadgenSummary is the part of loadgen --json's summary used here.
type loadgenSummary struct {
	Connected int     `json:"connected"`
	Setup     float64 `json:"setupSec"`
	Window    struct {
		Sent     uint64 `json:"sent"`
		Received uint64 `json:"received"`
		Lost     uint64 `json:"lost"`
	} `json:"window"`
}

// runSwitchboard measures the switchboard at n legs; relayed, through its
// embedded TURN relay (whose CPU is the server process's too).
func runSwitchboard(ctx context.Context, cfg benchConfig, n int, relayed bool, stderr io.Writer) (result, error) {
	r := result{Kind: "switchboard", Legs: n}
	addr, debug := freeAddr(), freeAddr()
	const key = "mediabench-admin-key-0123456789abcdefgh"
	args := []string{"serve", "--addr", addr, "--debug-addr", debug, "--log-level", "error"}
	if cfg.udpPort != "" {
		args = append(args, "--udp-port", cfg.udpPort)
	}
	var relay []string
	if relayed {
		r.Kind = "relayed"
		args = append(args, "--turn-addr", freeAddr())
		relay = []string{"--relay"}
	}
	srv := exec.CommandContext(ctx, cfg.switchboard, args...)
	// History in memory: the figures are the media plane's, and no file is
	// left behind.
	srv.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+key, "DATABASE_URL=", "SWITCHBOARD_STORE=memory")
	srv.Stderr, srv.Stdout = stderr, io.Discard
	srv.Cancel = func() error { return srv.Process.Signal(syscall.SIGTERM) }
	srv.WaitDelay = 30 * time.Second
	if err := srv.Start(); err != nil {
		return r, fmt.Errorf("starting switchboard serve: %w", err)
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); _ = srv.Wait() }()
	if err := waitHealthy(ctx, "http://"+addr+"/healthz"); err != nil {
		return r, err
	}
	time.Sleep(time.Second)
	r.RSSIdle = rssKiB(srv.Process.Pid)
	ramp := cfg.ramp
	if ramp == 0 {
		ramp = time.Duration(n) * 20 * time.Millisecond
	}
	lg := exec.CommandContext(ctx, cfg.switchboard, "loadgen", "--url", "http://"+addr, "--legs", strconv.Itoa(n),
		"--ramp", ramp.String(), "--setup", strconv.Itoa(cfg.setup), "--warmup", cfg.warmup.String(),
		"--duration", cfg.window.String(), "--sockets", strconv.Itoa(cfg.sockets), "--json")
	lg.Args = append(lg.Args, relay...)
	lg.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+key)
	var a, b mediaStats
	var sum loadgenSummary
	err := watch(ctx, lg, stderr, srv.Process.Pid, &r, func(start bool) error {
		var s mediaStats
		err := getJSON(ctx, "http://"+debug+"/debug/media", key, &s)
		if start {
			a = s
		} else {
			b = s
		}
		return err
	}, func(last []byte) error { return json.Unmarshal(last, &sum) })
	if err != nil {
		return r, err
	}
	r.Connected, r.SetupSec = sum.Connected, sum.Setup
	r.Packets = (b.Legs.Received - a.Legs.Received) + (b.Legs.Sent - a.Legs.Sent)
	r.PerPacket = r.ServerCPU * 1e6 / float64(r.Packets)
	r.Late, r.MaxLate = b.Mixer.Late-a.Mixer.Late, b.Mixer.MaxLate
	r.LostUp, r.LostDown = b.Legs.Lost-a.Legs.Lost, sum.Window.Lost
	r.Refused = b.Legs.SendErrors - a.Legs.SendErrors
	r.Dropped = b.Legs.Dropped - a.Legs.Dropped
	if t := b.Mixer.Ticks - a.Mixer.Ticks; t > 0 {
		r.MixerBusy = (b.Mixer.Busy - a.Mixer.Busy) / float64(t)
	}
	r.ClientSent, r.ClientRecv = sum.Window.Sent, sum.Window.Received
	sa, sb := a.Legs.Sockets, b.Legs.Sockets
	if calls := sb.ReadCalls - sa.ReadCalls; calls > 0 {
		r.PerRead = float64(sb.Read-sa.Read) / float64(calls)
	}
	if calls := sb.WriteCalls - sa.WriteCalls; calls > 0 {
		r.PerWrite = float64(sb.Written-sa.Written) / float64(calls)
	}
	if a.TURN != nil && b.TURN != nil {
		ta, tb := a.TURN.UDP, b.TURN.UDP
		if calls := tb.ReadCalls - ta.ReadCalls; calls > 0 {
			r.TURNPerRead = float64(tb.Read-ta.Read) / float64(calls)
		}
		if calls := tb.WriteCalls - ta.WriteCalls; calls > 0 {
			r.TURNPerWrite = float64(tb.Written-ta.Written) / float64(calls)
		}
	}
	if r.Connected > 0 {
		r.RSSPerLeg = float64(r.RSSLoaded-r.RSSIdle) / float64(r.Connected)
	}
	return r, nil
}

// watch runs a load generator, and at its "window start" and "window end"
// lines reads the server's CPU time from /proc and calls mark; it hands
// the last line (the summary) to final.
func watch(ctx context.Context, cmd *exec.Cmd, stderr io.Writer, server int, r *result, mark func(start bool) error, final func(last []byte) error) error {
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	var cpu0, load0 float64
	var t0 time.Time
	var last []byte
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.Contains(line, []byte("window start")):
			if err := mark(true); err != nil {
				return err
			}
			t0, cpu0, load0 = time.Now(), cpuSec(server), cpuSec(cmd.Process.Pid)
		case bytes.Contains(line, []byte("window end")):
			r.ServerCPU, r.LoadCPU = cpuSec(server)-cpu0, cpuSec(cmd.Process.Pid)-load0
			r.Seconds = time.Since(t0).Seconds()
			r.RSSLoaded = rssKiB(server)
			if err := mark(false); err != nil {
				return err
			}
		default:
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		last = append(last[:0], line...)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w", cmd.Path, err)
	}
	if t0.IsZero() {
		return fmt.Errorf("%s never started its window", cmd.Path)
	}
	return final(last)
}

// cpuSec is a process's user+system CPU time from /proc/<pid>/stat.
func cpuSec(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64) // field 14
	stime, _ := strconv.ParseFloat(f[12], 64) // field 15
	return (utime + stime) / clockTicks
}

// rssKiB is a process's VmRSS.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHealthy(ctx context.Context, u string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer in 20 s", u)
}

func getJSON(ctx context.Context, u, key string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}
