package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
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

// runSlack is how much longer than its phases a run may take (starting
// processes, reading counters, closing legs) before it is stopped.
const runSlack = 90 * time.Second

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
	setupTimeout      time.Duration // loadgen --setup-timeout
	setupLimit        time.Duration // loadgen --setup-limit; 0: twice the ramp plus a minute
	udpPort           string        // serve --udp-port: legs on shared sockets; empty is a socket per leg
	sockets           int           // loadgen --sockets
	// relay adds, at each leg count, the switchboard with its embedded
	// TURN relay and every caller relayed through it (loadgen --relay).
	relay bool
}

// result is one measured run, the baseline's or the switchboard's.
type result struct {
	Kind      string `json:"kind"` // "udp", "switchboard" or "relayed"
	Legs      int    `json:"legs"`
	Connected int    `json:"connected"`
	Failed    int    `json:"failed"` // callers that did not set up
	// Failures counts the failed callers by reason.
	Failures map[string]int `json:"failures,omitempty"`
	// Sockets is the load generator's --sockets.
	Sockets int `json:"loadgenSockets,omitempty"`
	// Error is why the run measured nothing, or less than it should.
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
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
	LostDown  uint64  `json:"lostDown"`
	LostUp    uint64  `json:"lostUp"`
	RSSIdle   int64   `json:"rssIdleKiB"`
	RSSLoaded int64   `json:"rssLoadedKiB"`
	RSSPerLeg float64 `json:"rssPerLegKiB"`
	// HeapPerLeg and StackPerLeg are the switchboard's live heap (after a
	// collection) and goroutine stacks at the window's end, less the idle
	// server's, over the legs connected: steadier than RSS, which moves
	// with where the collector stands. Goroutines is its goroutine count.
	HeapPerLeg  float64 `json:"liveHeapPerLegKiB,omitempty"`
	StackPerLeg float64 `json:"stackPerLegKiB,omitempty"`
	Goroutines  int     `json:"goroutines,omitempty"`
	LoadAvg     string  `json:"loadavg"`
	SetupSec    float64 `json:"setupSec"`
	Refused     uint64  `json:"refused"`
	Dropped     uint64  `json:"dropped"` // frames the server's writers dropped
	MixerBusy   float64 `json:"mixerBusyMsPerTick"`
	ClientSent  uint64  `json:"clientSent"`
	ClientRecv  uint64  `json:"clientReceived"`
	// PerRead and PerWrite are the server's datagrams per system call on
	// shared sockets (zero with a socket per leg).
	PerRead  float64 `json:"datagramsPerRead,omitempty"`
	PerWrite float64 `json:"datagramsPerWrite,omitempty"`
	// TURNPerRead and TURNPerWrite are the same on the embedded TURN
	// relay's UDP listener (relayed runs).
	TURNPerRead  float64 `json:"turnDatagramsPerRead,omitempty"`
	TURNPerWrite float64 `json:"turnDatagramsPerWrite,omitempty"`
	// TURNInMemory is the relayed packets that went between the relay
	// and the media port in memory, not through the kernel, each way;
	// TURNThroughKernel those a receiver sent back to the kernel.
	TURNInMemory      uint64 `json:"turnInMemory,omitempty"`
	TURNThroughKernel uint64 `json:"turnThroughKernel,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg benchConfig
	fs.StringVar(&cfg.switchboard, "switchboard", "switchboard", "the switchboard binary")
	legs := fs.String("legs", "250,500,1000", "leg counts, comma-separated")
	fs.DurationVar(&cfg.ramp, "ramp", 0, "loadgen --ramp (default: 20 ms a leg)")
	fs.IntVar(&cfg.setup, "setup", 32, "loadgen --setup")
	fs.DurationVar(&cfg.setupTimeout, "setup-timeout", 20*time.Second, "loadgen --setup-timeout: one caller's set-up")
	fs.DurationVar(&cfg.setupLimit, "setup-limit", 0, "loadgen --setup-limit: the whole set-up phase (default: twice the ramp plus a minute)")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "wait after the last leg connects")
	fs.DurationVar(&cfg.window, "window", 20*time.Second, "the measured window")
	fs.StringVar(&cfg.udpPort, "udp-port", "", "serve --udp-port: the UDP port, as 45000, or ports, as 45000-45031, the switchboard's legs share; empty gives each leg sockets of its own")
	fs.BoolVar(&cfg.relay, "relay", false, "also run the switchboard with its embedded TURN relay (serve --turn-addr) and every caller relayed through it (loadgen --relay), beside the same legs direct")
	fs.IntVar(&cfg.sockets, "loadgen-sockets", 0, "loadgen --sockets: UDP ports the callers share; 0 gives each caller sockets of its own. With --udp-port over P ports, N legs need at least N/P (raised to that)")
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
	serverPorts := 0
	if cfg.udpPort != "" {
		if serverPorts, err = portCount(cfg.udpPort); err != nil {
			return err
		}
	}
	var results []result
	failed := 0
	for _, n := range cfg.legs {
		for _, kind := range kinds {
			la := loadavg()
			fmt.Fprintf(stderr, "mediabench: %s, %d legs; loadavg %s\n", kind, n, la)
			var r result
			if kind == "udp" {
				r, err = runUDP(ctx, cfg, n, stderr)
			} else {
				c := cfg
				// A shared port's mux tells legs apart by peer address: one
				// loadgen socket reaches each server port with one leg.
				if need := (n + serverPorts - 1) / max(serverPorts, 1); serverPorts > 0 && c.sockets > 0 && c.sockets < need {
					fmt.Fprintf(stderr, "mediabench: %d loadgen sockets reach %d server ports with at most %d legs; using %d sockets\n",
						c.sockets, serverPorts, c.sockets*serverPorts, need)
					c.sockets = need
				}
				r, err = runSwitchboard(ctx, c, n, kind == "relayed", stderr)
				r.Sockets = c.sockets
			}
			r.LoadAvg = la
			if err != nil {
				r.Error = err.Error()
				failed++
				fmt.Fprintf(stderr, "mediabench: %s at %d legs: %v\n", kind, n, err)
			}
			results = append(results, r)
			b, _ := json.Marshal(r)
			fmt.Fprintln(stdout, string(b))
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "| legs | switchboard CPU/packet | UDP baseline CPU/packet | ratio | late ticks (max late) | mixer busy/tick | lost up / down (dropped) | RSS per leg (live heap + stacks) | server CPU | loadgen CPU | loadavg before |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|---|---|---|")
	step := len(kinds)
	for i := 0; i+1 < len(results); i += step {
		u, s := results[i], results[i+1]
		legs := fmt.Sprintf("%d (%d connected, %d failed)", s.Legs, s.Connected, s.Failed)
		if s.Packets == 0 || u.Packets == 0 {
			fmt.Fprintf(stdout, "| %s | not measured: %s | | | | | | | | | %s |\n", legs, cmp.Or(s.Error, u.Error), s.LoadAvg)
			continue
		}
		fmt.Fprintf(stdout, "| %s | %.2f µs | %.2f µs | %.1f× | %d (%.1f ms) | %.2f ms | %d / %d (%d) | %.0f KiB (%.0f + %.0f) | %.0f%% | %.0f%% | %s |\n",
			legs, s.PerPacket, u.PerPacket, s.PerPacket/u.PerPacket, s.Late, s.MaxLate, s.MixerBusy, s.LostUp, s.LostDown, s.Dropped,
			s.RSSPerLeg, s.HeapPerLeg, s.StackPerLeg, 100*s.ServerCPU/s.Seconds, 100*s.LoadCPU/s.Seconds, s.LoadAvg)
	}
	if ctx.Err() != nil {
		return ctx.Err()
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
	if failed > 0 {
		return fmt.Errorf("%d of %d runs failed (see their error)", failed, len(results))
	}
	return nil
}

// portCount is how many ports serve --udp-port names: 45000 is one,
// 45000-45031 thirty-two.
func portCount(spec string) (int, error) {
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		last = first
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(first))
	b, err2 := strconv.Atoi(strings.TrimSpace(last))
	if err1 != nil || err2 != nil || a <= 0 || b < a {
		return 0, fmt.Errorf("--udp-port %q: want a port, as 45000, or a range, as 45000-45031", spec)
	}
	return b - a + 1, nil
}

// runUDP measures the plain-UDP baseline at n legs.
func runUDP(ctx context.Context, cfg benchConfig, n int, stderr io.Writer) (result, error) {
	r := result{Kind: "udp", Legs: n, Connected: n}
	ctx, cancel := context.WithTimeout(ctx, cfg.warmup+cfg.window+runSlack)
	defer cancel()
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
		Local struct {
			Carried uint64 `json:"carried"`
			Refused uint64 `json:"refused"`
		} `json:"local"`
	} `json:"turn"`
}

// loadgenSummary is the part of loadgen --json's summary used here.
type loadgenSummary struct {
	Connected int            `json:"connected"`
	Failed    int            `json:"failed"`
	Failures  map[string]int `json:"failures"`
	Setup     float64        `json:"setupSec"`
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
	ramp := cfg.ramp
	if ramp == 0 {
		ramp = time.Duration(n) * 20 * time.Millisecond
	}
	// The load generator ends its set-up phase at --setup-limit and the
	// run after the window; past that and some slack it is stopped.
	limit := cfg.setupLimit
	if limit == 0 {
		limit = 2*ramp + time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit+cfg.warmup+cfg.window+runSlack)
	defer cancel()
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
	idle, idleErr := heapStats(ctx, "http://"+debug, key)
	lg := exec.CommandContext(ctx, cfg.switchboard, "loadgen", "--url", "http://"+addr, "--legs", strconv.Itoa(n),
		"--ramp", ramp.String(), "--setup", strconv.Itoa(cfg.setup), "--setup-timeout", cfg.setupTimeout.String(), "--setup-limit", limit.String(),
		"--warmup", cfg.warmup.String(),
		"--duration", cfg.window.String(), "--sockets", strconv.Itoa(cfg.sockets), "--json")
	lg.Args = append(lg.Args, relay...)
	lg.Env = append(os.Environ(), "SWITCHBOARD_ADMIN_KEY="+key)
	lg.WaitDelay = 10 * time.Second
	var a, b mediaStats
	var sum loadgenSummary
	var loaded goStats
	loadedErr := errors.New("no window")
	err := watch(ctx, lg, stderr, srv.Process.Pid, &r, func(start bool) error {
		var s mediaStats
		err := getJSON(ctx, "http://"+debug+"/debug/media", key, &s)
		if start {
			a = s
		} else {
			b = s
			// At the window's end, with every leg still carrying media.
			loaded, loadedErr = heapStats(ctx, "http://"+debug, key)
		}
		return err
	}, func(last []byte) error { return json.Unmarshal(last, &sum) })
	r.Connected, r.Failed, r.Failures, r.SetupSec = sum.Connected, sum.Failed, sum.Failures, sum.Setup
	if err != nil {
		return r, err
	}
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
		r.TURNInMemory = b.TURN.Local.Carried - a.TURN.Local.Carried
		r.TURNThroughKernel = b.TURN.Local.Refused - a.TURN.Local.Refused
	}
	if r.Connected > 0 {
		r.RSSPerLeg = float64(r.RSSLoaded-r.RSSIdle) / float64(r.Connected)
		if loadedErr == nil && idleErr == nil {
			r.HeapPerLeg = float64(loaded.heap-idle.heap) / 1024 / float64(r.Connected)
			r.StackPerLeg = float64(loaded.stack-idle.stack) / 1024 / float64(r.Connected)
			r.Goroutines = loaded.goroutines
		}
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
	var markErr error
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.Contains(line, []byte("window start")):
			markErr = cmp.Or(markErr, mark(true))
			t0, cpu0, load0 = time.Now(), cpuSec(server), cpuSec(cmd.Process.Pid)
		case bytes.Contains(line, []byte("window end")):
			r.ServerCPU, r.LoadCPU = cpuSec(server)-cpu0, cpuSec(cmd.Process.Pid)-load0
			r.Seconds = time.Since(t0).Seconds()
			r.RSSLoaded = rssKiB(server)
			markErr = cmp.Or(markErr, mark(false))
		default:
			fmt.Fprintf(stderr, "  %s\n", line)
		}
		last = append(last[:0], line...)
	}
	// The load generator's summary is its last line even when it failed.
	waitErr := cmd.Wait()
	finalErr := final(last)
	switch {
	case waitErr != nil:
		return fmt.Errorf("%s: %w", cmd.Path, waitErr)
	case t0.IsZero():
		return fmt.Errorf("%s never started its window", cmd.Path)
	case markErr != nil:
		return markErr
	}
	return finalErr
}

// goStats is a Go process's memory, from its pprof endpoints.
type goStats struct {
	heap, stack int64 // bytes: live heap after a collection, and stacks
	goroutines  int
}

// heapStats collects the switchboard's garbage (/debug/pprof/heap?gc=1)
// and reads its HeapAlloc, its stacks and its goroutine count.
func heapStats(ctx context.Context, base, adminKey string) (goStats, error) {
	var g goStats
	get := func(path string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return "", err
		}
		// The debug listener's pprof wants the admin key.
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return string(b), err
	}
	heap, err := get("/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		return g, fmt.Errorf("heap stats: %w", err)
	}
	for _, line := range strings.Split(heap, "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			g.heap, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			inuse, _, _ := strings.Cut(v, " ")
			g.stack, _ = strconv.ParseInt(inuse, 10, 64)
		}
	}
	gor, err := get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		return g, fmt.Errorf("goroutines: %w", err)
	}
	first, _, _ := strings.Cut(gor, "\n")
	if v, ok := strings.CutPrefix(first, "goroutine profile: total "); ok {
		g.goroutines, _ = strconv.Atoi(strings.TrimSpace(v))
	}
	if g.heap == 0 {
		return g, errors.New("heap stats: no HeapAlloc in the heap profile")
	}
	return g, nil
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
