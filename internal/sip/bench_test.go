package sip_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/sip"
)

// benchEnv turns the benchmarks with sipp on; CI never sets it.
const benchEnv = "SWITCHBOARD_SIP_BENCH"

// discard is a calls.Publisher that drops every event.
type discard struct{}

func (discard) Publish(calls.Event) {}

// TestSetupRate measures call set-ups per second (INVITE, 200, ACK, BYE)
// from sipp to a number routed to the echo bot, and sipp's own uac against
// its own uas with the same settings as the baseline, in the same run. It
// runs only with SWITCHBOARD_SIP_BENCH set (SWITCHBOARD_SIP_BENCH_CALLS
// calls, default 3000), and reports figures; it asserts only that every
// call succeeded.
func TestSetupRate(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("a benchmark: set " + benchEnv + "=1")
	}
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_SIP_BENCH_CALLS")); err == nil && v > 0 {
		n = v
	}
	common := []string{"-m", strconv.Itoa(n), "-r", "10000", "-l", "64", "-t", "u1", "-i", "127.0.0.1",
		"-timeout", "120s", "-timeout_error", "-nostdin", "-s", routed}
	run := func(args ...string) time.Duration {
		t.Helper()
		dir := t.TempDir()
		xml, _ := os.ReadFile(filepath.Join("testdata", "sipp", "setup_bench.xml"))
		_ = os.WriteFile(filepath.Join(dir, "setup_bench.xml"), xml, 0o644)
		cmd := exec.Command("sipp", append(append([]string{}, common...), args...)...)
		cmd.Dir = dir
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sipp %v: %v\n%s", args, err, tail(out))
		}
		return time.Since(start)
	}

	// Baseline: sipp's uac against sipp's uas.
	uasPort := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	uas := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort), "-nostdin")
	uas.Dir = t.TempDir()
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = uas.Wait() }() // ends the uas this test started, by its process
	base := run("-sn", "uac", "-p", strconv.Itoa(freePort(t)), "127.0.0.1:"+strconv.Itoa(uasPort))

	srv := echoServer(t)
	sb := run("-sf", "setup_bench.xml", "-p", strconv.Itoa(freePort(t)), srv.Addr())

	load, _ := os.ReadFile("/proc/loadavg")
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	t.Logf("%d calls, at most 64 at once: sipp uac→uas %.0f set-ups/s (%v); sipp→switchboard (echo bot) %.0f set-ups/s (%v); ratio %.2f; load average %s",
		n, rate(base), base.Round(time.Millisecond), rate(sb), sb.Round(time.Millisecond), rate(sb)/rate(base), load)
}

// echoServer is the switchboard's SIP side with the number routed to the
// echo bot, which answers at once: the real internal/sip server (sipgo,
// UDP) and the real calls.Switchboard, with callstest's in-memory store
// and no media (the answer is NoMedia's inactive PCMU stream).
func echoServer(t *testing.T) *sip.Server {
	t.Helper()
	f := callstest.New(t, calls.Config{Publisher: discard{}})
	echo := calls.EchoBot
	srv, err := sip.New(t.Context(), sip.Config{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Addr: "127.0.0.1:0",
		Trunks: mustTrunks(t, "carrier=sip:127.0.0.1"), Switchboard: f.Switchboard,
		Numbers:     routes{routed: {Number: routed, Target: &echo}},
		InviteBurst: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv
}

// TestSetupLatency offers call set-ups at fixed rates (INVITE, 200, ACK,
// then BYE) for SWITCHBOARD_SIP_BENCH_SECONDS each (default 10) and logs
// the set-up time sipp measured (INVITE sent to 200 received; sipp's
// -trace_rtt, whole milliseconds) at p50, p99 and max, the rate achieved
// and the calls that failed. At each rate of SWITCHBOARD_SIP_BENCH_RATES
// (default "100,300,500,1000") the baseline, sipp's uac against sipp's
// uas, runs first, then sipp against the switchboard's echo bot. Only with
// SWITCHBOARD_SIP_BENCH set; it asserts nothing of the figures.
func TestSetupLatency(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skip("a benchmark: set " + benchEnv + "=1")
	}
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("SWITCHBOARD_SIP_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	rates := []int{100, 300, 500, 1000}
	if v := os.Getenv("SWITCHBOARD_SIP_BENCH_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				t.Fatalf("SWITCHBOARD_SIP_BENCH_RATES %q: want rates per second, as 100,300", v)
			}
			rates = append(rates, r)
		}
	}
	uasPort := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	uas := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(uasPort), "-nostdin")
	uas.Dir = t.TempDir()
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = uas.Wait() }() // ends the uas this test started, by its process
	srv := echoServer(t)

	for _, rate := range rates {
		n := rate * secs
		base := rateRun(t, rate, n, "-sn", "uac", "127.0.0.1:"+strconv.Itoa(uasPort))
		sb := rateRun(t, rate, n, "-sf", "setup_bench.xml", srv.Addr())
		load, _ := os.ReadFile("/proc/loadavg")
		t.Logf("offered %d/s, %d calls: sipp uac→uas %s | sipp→switchboard (echo bot) %s | rate ratio %.2f; load average %s",
			rate, n, base, sb, sb.rate/base.rate, strings.TrimSpace(string(load)))
	}
}

// rateResult is one sipp run at a fixed rate.
type rateResult struct {
	rate                 float64 // successful calls per second of sipp's wall time
	ok, failed           int
	p50, p99, maxSetupMs int
}

func (r rateResult) String() string {
	return fmt.Sprintf("%.0f/s, %d ok, %d failed, set-up p50 %d ms p99 %d ms max %d ms", r.rate, r.ok, r.failed, r.p50, r.p99, r.maxSetupMs)
}

// rateRun places n calls at rate per second with sipp, at most 5,000 at
// once, and reads its statistics and set-up times.
func rateRun(t *testing.T, rate, n int, args ...string) rateResult {
	t.Helper()
	dir := t.TempDir()
	xml, _ := os.ReadFile(filepath.Join("testdata", "sipp", "setup_bench.xml"))
	_ = os.WriteFile(filepath.Join(dir, "setup_bench.xml"), xml, 0o644)
	cmd := exec.Command("sipp", append([]string{"-m", strconv.Itoa(n), "-r", strconv.Itoa(rate), "-l", "5000",
		"-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(freePort(t)), "-s", routed,
		"-timeout", "300s", "-nostdin", "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1"}, args...)...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("sipp %v: %v\n%s", args, err, tail(out))
	}
	var r rateResult
	stats, _ := filepath.Glob(filepath.Join(dir, "*_.csv"))
	rtts, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	if len(stats) != 1 || len(rtts) != 1 {
		t.Fatalf("sipp %v left no statistics (%v, %v): %v\n%s", args, stats, rtts, err, tail(out))
	}
	b, _ := os.ReadFile(stats[0])
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	for i, h := range head {
		if i >= len(last) {
			break
		}
		switch h {
		case "SuccessfulCall(C)":
			r.ok, _ = strconv.Atoi(last[i])
		case "FailedCall(C)":
			r.failed, _ = strconv.Atoi(last[i])
		}
	}
	b, _ = os.ReadFile(rtts[0])
	var ms []int
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Split(line, ";")
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			ms = append(ms, int(v))
		}
	}
	if len(ms) > 0 {
		slices.Sort(ms)
		r.p50, r.p99, r.maxSetupMs = ms[len(ms)/2], ms[len(ms)*99/100], ms[len(ms)-1]
	}
	r.rate = float64(r.ok) / wall.Seconds()
	return r
}

func mustTrunks(t *testing.T, specs ...string) []sip.Trunk {
	t.Helper()
	var out []sip.Trunk
	for _, s := range specs {
		tr, err := sip.ParseTrunk(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tr)
	}
	return out
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
