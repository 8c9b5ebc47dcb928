package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/benchenv"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/store"
)

// clusterMediaBenchEnv turns TestClusterMediaCost on; CI never sets it.
const clusterMediaBenchEnv = "SWITCHBOARD_CLUSTER_MEDIA_BENCH"

// TestClusterMediaCost measures what the audio of a call across nodes
// costs against the same call on one node (issue 14), in one process and
// one run: two Main nodes, A and B, on an in-process NATS, and
// SWITCHBOARD_CLUSTER_MEDIA_CALLS (default 200) answered 1:1 calls, each
// party's device a tone source attached to its own node's mixer, as a
// PortAudio device or a browser's leg would be.
//
//   - same-node (the baseline): both parties on A. A's mixer takes each
//     party's frame and hands the other its mix; no packet is made.
//   - cross-node: the agent on A, the callee on B. Each call has a plain
//     RTP leg (PCMU) on each node, attached to that node's mixer as the
//     stand-in's endpoint: every 20 ms each node's mixer encodes and
//     sends one packet per call to the other node's leg, which receives,
//     jitter-buffers and decodes it for its own mixer (docs/cluster.md,
//     "Media across nodes").
//
// Rounds alternate the modes (SWITCHBOARD_CLUSTER_MEDIA_ROUNDS, default
// 2 of each). A round sets its calls up over HTTP, waits 2 s, then
// measures a window (SWITCHBOARD_CLUSTER_MEDIA_SECONDS, default 10): the
// process's CPU (getrusage, user + system: both nodes, the NATS server and
// the devices), the RTP packets both nodes' legs sent and took, the frames
// the devices heard with the far party's audio, and both mixers' ticks,
// late ticks (started over 5 ms late) and time inside ticks. The logs end
// with the relay's extra CPU per packet: (cross-node CPU − same-node CPU)
// over the packets sent between the nodes. It asserts nothing of the
// figures: it is a benchmark for BENCHMARKS.md.
//
//	cat /proc/loadavg; SWITCHBOARD_CLUSTER_MEDIA_BENCH=1 go test -count=1 -v -run TestClusterMediaCost ./cmd/switchboard/
func TestClusterMediaCost(t *testing.T) {
	if os.Getenv(clusterMediaBenchEnv) == "" {
		t.Skip("a benchmark: set " + clusterMediaBenchEnv + "=1")
	}
	n := benchenv.Count(t, "SWITCHBOARD_CLUSTER_MEDIA_CALLS", 200)
	rounds := benchenv.Count(t, "SWITCHBOARD_CLUSTER_MEDIA_ROUNDS", 2)
	window := time.Duration(benchenv.Count(t, "SWITCHBOARD_CLUSTER_MEDIA_SECONDS", 10)) * time.Second

	nats := natstest.Start(t)
	cfg := ClusterConfig{URL: nats.URL(), LeaseBucket: "mediabench_leases", LeaseTTL: 3 * time.Second,
		SubjectPrefix: "mediabench", ForwardTimeout: 5 * time.Second, MediaIP: "127.0.0.1"}
	start := func(id, ports string) *Main {
		c := cfg
		c.NodeID, c.RTPPorts = id, ports
		m := &Main{Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, Cluster: c},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard, Store: store.NewMemory()}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		return m
	}
	// Two ports a leg, a leg per call on each node.
	a, b := start("media-a", fmt.Sprintf("43000-%d", 43000+4*n)), start("media-b", fmt.Sprintf("48000-%d", 48000+4*n))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	t.Cleanup(client.CloseIdleConnections)

	t.Logf("%d calls, %d rounds of each mode, a %v window; GOMAXPROCS %d; load average %s",
		n, rounds, window, runtime.GOMAXPROCS(0), loadAverage())
	var same, cross []mediaRound
	for r := range rounds {
		for _, mode := range []struct {
			name   string
			callee *Main
			out    *[]mediaRound
		}{{"same-node", a, &same}, {"cross-node", b, &cross}} {
			got := runMediaRound(t, client, fmt.Sprintf("m%d-%s", r, mode.name), a, mode.callee, []*Main{a, b}, n, window)
			t.Logf("round %d, %s: %s; load average %s", r+1, mode.name, got, loadAverage())
			*mode.out = append(*mode.out, got)
		}
	}
	for r := range rounds {
		s, c := same[r], cross[r]
		// The same-node round's CPU, scaled to the cross-node window.
		extra := c.cpu - time.Duration(float64(s.cpu)*c.window.Seconds()/s.window.Seconds())
		t.Logf("round %d: CPU per call and second, cross-node / same-node %.2f (%.1f / %.1f µs); the relay's extra CPU %v over %d packets sent between the nodes (%d taken): %.2f µs per packet",
			r+1, c.perCallSecond()/s.perCallSecond(), c.perCallSecond(), s.perCallSecond(),
			extra.Round(time.Millisecond), c.sent, c.received, float64(extra)/float64(max(c.sent, 1))/1e3)
	}
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mediaRound is what one round measured over its window.
type mediaRound struct {
	calls          int
	window         time.Duration
	cpu            time.Duration
	sent, received uint64 // RTP packets, both nodes' legs
	dropped        uint64
	heard, frames  uint64 // device frames with the far party's audio, and all
	ticks, late    uint64 // both mixers
	busy           time.Duration
	maxLate        time.Duration // the latest tick start on either mixer since it started
}

// perCallSecond is µs of CPU per call and second.
func (r mediaRound) perCallSecond() float64 {
	return float64(r.cpu) / 1e3 / float64(r.calls) / r.window.Seconds()
}

func (r mediaRound) String() string {
	return fmt.Sprintf("CPU %v in %v (%.0f%% of a core, %.1f µs per call and second); RTP packets sent %d, taken %d (%.0f/s each way per call), dropped %d; devices heard the far party in %d of %d frames; mixers: %d ticks, %d late, busy %v per tick, latest start %v late",
		r.cpu.Round(time.Millisecond), r.window.Round(time.Millisecond), 100*r.cpu.Seconds()/r.window.Seconds(), r.perCallSecond(),
		r.sent, r.received, float64(r.sent)/r.window.Seconds()/float64(2*r.calls), r.dropped,
		r.heard, r.frames, r.ticks, r.late, (r.busy / time.Duration(max(r.ticks, 1))).Round(time.Microsecond),
		r.maxLate.Round(10*time.Microsecond))
}

// runMediaRound sets up n answered calls from agents on a to callees on
// calleeNode, each party with a tone device on its node's mixer, measures
// a window over every node of nodes and hangs the calls up.
func runMediaRound(t *testing.T, client *http.Client, prefix string, a, calleeNode *Main, nodes []*Main, n int, window time.Duration) mediaRound {
	t.Helper()
	type device struct {
		m     *Main
		rawID string
		ep    *benchDevice
	}
	agents, err := setUpSwitchAgents(t, client, testAdminKey, prefix, a.Addr, calleeNode.Addr, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	var devices []device
	for i := range n {
		agent := fmt.Sprintf("%s-agent%03d", prefix, i) // as setUpSwitchAgents named them
		for j, d := range []device{{a, agent, nil}, {calleeNode, agent + "-callee00", nil}} {
			d.rawID = calls.CommunicationUser(d.rawID).RawID()
			d.ep = &benchDevice{tone: audio.NewTone(float64(500+500*j), -20)}
			d.m.mixer.Attach(d.rawID, d.ep)
			devices = append(devices, d)
		}
	}
	snap := func() mediaRound {
		var s mediaRound
		for _, m := range nodes {
			e := m.peerCalls.media.engine.Stats()
			s.sent, s.received, s.dropped = s.sent+e.Sent, s.received+e.Received, s.dropped+e.Dropped
			ms := m.mixer.Stats()
			s.ticks, s.late, s.busy, s.maxLate = s.ticks+ms.Ticks, s.late+ms.Late, s.busy+ms.Busy, max(s.maxLate, ms.MaxLate)
		}
		for _, d := range devices {
			s.heard, s.frames = s.heard+d.ep.heard.Load(), s.frames+d.ep.frames.Load()
		}
		return s
	}
	time.Sleep(2 * time.Second) // the legs latch and their jitter buffers fill
	s0, cpu0, t0 := snap(), processCPU(t), time.Now()
	time.Sleep(window)
	s1, cpu1, t1 := snap(), processCPU(t), time.Now()
	out := mediaRound{calls: n, window: t1.Sub(t0), cpu: cpu1 - cpu0,
		sent: s1.sent - s0.sent, received: s1.received - s0.received, dropped: s1.dropped - s0.dropped,
		heard: s1.heard - s0.heard, frames: s1.frames - s0.frames,
		ticks: s1.ticks - s0.ticks, late: s1.late - s0.late, busy: s1.busy - s0.busy, maxLate: s1.maxLate}

	for _, ag := range agents {
		if _, err := benchPost(client, "http://"+a.Addr+"/api/calls/"+ag.calls[0]+"/hangup", ag.auth, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range devices {
		d.m.mixer.Detach(d.rawID, d.ep)
	}
	for _, m := range nodes {
		waitUntil(context.Background(), t, "the audio legs to close", func() (bool, error) {
			return m.peerCalls.media.engine.Open() == 0, nil
		})
	}
	return out
}

// benchDevice is a party's device in TestClusterMediaCost: it speaks a
// tone and counts the frames it is handed, and those that carry a call's
// audio (not silence), without keeping them.
type benchDevice struct {
	tone          *audio.Tone // the mixer's clock only
	frames, heard atomic.Uint64
}

func (d *benchDevice) Capture(f *audio.Frame) bool { d.tone.Next(f); return true }

func (d *benchDevice) Play(out audio.Output) {
	d.frames.Add(1)
	if out.Source == audio.SourceCall && out.PCM.RMS() > 100 {
		d.heard.Add(1)
	}
}

func (d *benchDevice) Close() error { return nil }
