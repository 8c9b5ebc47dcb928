package rtp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// benchEnv turns the heavy benchmarks on; CI never sets it.
const benchEnv = "SWITCHBOARD_SIP_BENCH"

// peerEnv makes the test binary the phones' side of TestRealTimeCalls.
const peerEnv = "SWITCHBOARD_RTP_BENCH_PEER"

// peerSockets is how many sockets the phones' process spreads its calls
// over (a leg latches to whichever one sends it RTP).
const peerSockets = 8

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestRealTimeCalls runs SWITCHBOARD_SIP_BENCH_LEGS phone calls (default
// 1,000) in real time, each a leg of a real engine in a 1:1 call with the
// echo bot on a real mixer's clock: the phones, in another process, send
// each leg 50 RTP packets a second and the mixer sends each phone its
// echo. The baseline, in the same run, moves the same packets through
// plain UDP sockets: as many sockets, each with a goroutine that reads a
// packet and writes it back. For each it logs the CPU this process used
// per packet in and out (getrusage: the phones' process is not counted),
// and for the legs the mixer's late ticks and its time per tick. It
// asserts nothing of the figures: it runs only with SWITCHBOARD_SIP_BENCH
// set, for BENCHMARKS.md.
func TestRealTimeCalls(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("a benchmark: set " + benchEnv + "=1")
	}
	n := envInt("SWITCHBOARD_SIP_BENCH_LEGS", 1000)
	window := time.Duration(envInt("SWITCHBOARD_SIP_BENCH_SECONDS", 10)) * time.Second
	load := func() string { b, _ := os.ReadFile("/proc/loadavg"); return strings.TrimSpace(string(b)) }

	t.Logf("%d calls, a %v window; load average %s", n, window, load())
	raw := rawEchoRun(t, n, window)
	t.Logf("raw udp: %s; load average %s", raw, load())
	legs, mixer := legsRun(t, n, window)
	t.Logf("legs: %s; mixer: %s; load average %s", legs, mixer, load())
	t.Logf("CPU per packet, legs / raw udp: %.2f", legs.perPacket()/raw.perPacket())
}

// phase is what one run measured over its window.
type phase struct {
	window               time.Duration
	cpu                  time.Duration // this process's user and system time
	in, out              uint64        // packets the server side took and sent
	peerSent, peerHeard  uint64        // the phones' counts
	dropped              uint64
	expectedPerDirection uint64
}

func (p phase) perPacket() float64 { return float64(p.cpu) / float64(p.in+p.out) }

func (p phase) String() string {
	return fmt.Sprintf("%d packets in, %d out in %v (%.0f/s each way, %d expected); CPU %v (%.0f%% of a core), %.2f µs per packet; phones sent %d, heard %d; dropped %d",
		p.in, p.out, p.window.Round(time.Millisecond), float64(p.in)/p.window.Seconds(), p.expectedPerDirection,
		p.cpu.Round(time.Millisecond), 100*p.cpu.Seconds()/p.window.Seconds(), p.perPacket()/1e3,
		p.peerSent, p.peerHeard, p.dropped)
}

func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure starts the phones on targets, waits out the warm-up, and
// measures a window: counts returns the server side's packets in and out.
func measure(t *testing.T, p *phones, targets []int, window time.Duration, counts func() (in, out uint64)) phase {
	t.Helper()
	p.start(targets)
	time.Sleep(2 * time.Second) // latching, and the echo bot's delay of a second
	in0, out0 := counts()
	s0, h0 := p.counts()
	cpu0, t0 := cpuTime(t), time.Now()
	time.Sleep(window)
	in1, out1 := counts()
	cpu1, t1 := cpuTime(t), time.Now()
	s1, h1 := p.counts()
	p.stop()
	return phase{window: t1.Sub(t0), cpu: cpu1 - cpu0, in: in1 - in0, out: out1 - out0,
		peerSent: s1 - s0, peerHeard: h1 - h0,
		expectedPerDirection: uint64(float64(len(targets)) * window.Seconds() * float64(audio.FramesPerSec))}
}

// rawEchoRun is the baseline: n plain sockets that echo every packet.
func rawEchoRun(t *testing.T, n int, window time.Duration) phase {
	p := startPhones(t)
	var in, out atomic.Uint64
	var wg sync.WaitGroup
	conns := make([]*net.UDPConn, n)
	targets := make([]int, n)
	for i := range conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns[i], targets[i] = c, port(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				k, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				in.Add(1)
				if _, err := c.WriteToUDPAddrPort(buf[:k], from); err == nil {
					out.Add(1)
				}
			}
		}()
	}
	ph := measure(t, p, targets, window, func() (uint64, uint64) { return in.Load(), out.Load() })
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
	return ph
}

// legsRun runs n legs, each in a call with the echo bot on a real mixer.
func legsRun(t *testing.T, n int, window time.Duration) (phase, string) {
	p := startPhones(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := NewEngine(Config{Ports: "46000-49999", ListenIP: "127.0.0.1", PublicIP: "127.0.0.1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const echo = "8:echo"
	m := audio.NewMixer(audio.MixerConfig{EchoBot: echo, Logger: quiet})
	targets := make([]int, n)
	for i := range n {
		l, err := e.NewLeg(LegOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Answer([]byte(phoneOffer(p.ports[i%len(p.ports)]))); err != nil {
			t.Fatal(err)
		}
		targets[i] = l.Port()
		id := "8:phone-" + strconv.Itoa(i)
		m.Attach(id, l)
		m.SetRoute(calls.Route{ServerCallID: "call-" + strconv.Itoa(i), Kind: calls.OneToOne, Members: []calls.MediaMember{
			{RawID: id, CallID: "phone-" + strconv.Itoa(i), Send: true, Receive: true},
			{RawID: echo, CallID: "echo-" + strconv.Itoa(i), Send: true, Receive: true},
		}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var ms []audio.MixerStats
	var dropped []uint64
	ph := measure(t, p, targets, window, func() (uint64, uint64) {
		s := e.Stats()
		ms, dropped = append(ms, m.Stats()), append(dropped, s.Dropped)
		return s.Received, s.Sent
	})
	m0, m1 := ms[0], ms[1]
	ph.dropped = dropped[1] - dropped[0]
	ticks := m1.Ticks - m0.Ticks
	mixer := fmt.Sprintf("%d ticks, %d late (over 5 ms), latest start %v late (whole run), busy %v per tick",
		ticks, m1.Late-m0.Late, m1.MaxLate.Round(10*time.Microsecond), ((m1.Busy - m0.Busy) / time.Duration(max(ticks, 1))).Round(time.Microsecond))
	return ph, mixer
}

// phones is the phones' process: it sends RTP to targets and counts what
// comes back.
type phones struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	ports []int
}

func startPhones(t *testing.T) *phones {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRTPPhones$")
	cmd.Env = append(os.Environ(), peerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &phones{t: t, cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() }) // it exits when its input ends
	for _, f := range p.fields("ports") {
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		p.ports = append(p.ports, v)
	}
	return p
}

// fields reads the phones' next line, which must start with word.
func (p *phones) fields(word string) []string {
	p.t.Helper()
	for {
		line, err := p.out.ReadString('\n')
		if err != nil {
			p.t.Fatalf("the phones' process: %v", err)
		}
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == word {
			return f[1:]
		}
	}
}

func (p *phones) say(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

func (p *phones) start(targets []int) {
	s := make([]string, len(targets))
	for i, v := range targets {
		s[i] = strconv.Itoa(v)
	}
	p.say("start " + strings.Join(s, " "))
	p.fields("started")
}

func (p *phones) counts() (sent, heard uint64) {
	p.say("counts")
	f := p.fields("counts")
	sent, _ = strconv.ParseUint(f[0], 10, 64)
	heard, _ = strconv.ParseUint(f[1], 10, 64)
	return sent, heard
}

func (p *phones) stop() { _ = p.in.Close() }

// TestRTPPhones is the phones' process of TestRealTimeCalls, not a test:
// it runs only as that test's child. Call i goes from socket i%8; each
// socket sends its calls' packets every 20 ms with sendmmsg and reads what
// comes back with recvmmsg.
func TestRTPPhones(t *testing.T) {
	if os.Getenv(peerEnv) == "" {
		t.Skip("the phones' process of TestRealTimeCalls")
	}
	var conns []*net.UDPConn
	var ports []string
	for range peerSockets {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadBuffer(4 << 20)
		conns = append(conns, c)
		ports = append(ports, strconv.Itoa(port(c)))
	}
	fmt.Printf("ports %s\n", strings.Join(ports, " "))
	var sent, heard atomic.Uint64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := ipv4.NewPacketConn(c)
			ms := make([]ipv4.Message, 64)
			for i := range ms {
				ms[i].Buffers = [][]byte{make([]byte, 1500)}
			}
			for {
				k, err := pc.ReadBatch(ms, 0)
				if err != nil {
					return
				}
				heard.Add(uint64(k))
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 0:
		case f[0] == "start":
			var targets []netip.AddrPort
			for _, s := range f[1:] {
				v, _ := strconv.Atoi(s)
				targets = append(targets, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(v)))
			}
			for i, c := range conns {
				var mine []netip.AddrPort
				for j := i; j < len(targets); j += len(conns) {
					mine = append(mine, targets[j])
				}
				wg.Add(1)
				go func() { defer wg.Done(); sendCalls(ctx, c, mine, &sent) }()
			}
			fmt.Println("started")
		case f[0] == "counts":
			fmt.Printf("counts %d %d\n", sent.Load(), heard.Load())
		}
	}
	cancel()
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
}

// sendCalls sends each target a PCMU packet every 20 ms until ctx ends.
func sendCalls(ctx context.Context, c *net.UDPConn, targets []netip.AddrPort, sent *atomic.Uint64) {
	pc := ipv4.NewPacketConn(c)
	ms := make([]ipv4.Message, len(targets))
	for i, to := range targets {
		b := make([]byte, 12+audio.FrameSamples)
		b[0], b[1] = 0x80, 0 // RTP version 2, PCMU
		binary.BigEndian.PutUint32(b[8:], uint32(i+1))
		for k := 12; k < len(b); k++ {
			b[k] = 0xff // µ-law silence
		}
		ms[i].Buffers = [][]byte{b}
		ms[i].Addr = net.UDPAddrFromAddrPort(to)
	}
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	for n := uint32(0); ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i := range ms {
			b := ms[i].Buffers[0]
			binary.BigEndian.PutUint16(b[2:], uint16(n))
			binary.BigEndian.PutUint32(b[4:], n*audio.FrameSamples)
		}
		for rest := ms; len(rest) > 0; {
			k, err := pc.WriteBatch(rest[:min(len(rest), 64)], 0)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				k = 1 // the kernel refused one: skip it
			} else {
				sent.Add(uint64(k))
			}
			rest = rest[k:]
		}
	}
}
