package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSIPSetupsWithMedia offers call set-ups at fixed rates (INVITE, 200,
// ACK, then BYE) to the whole switchboard, `serve` as Main runs it, with
// the number routed to the echo bot through the API: every call has its
// RTP leg (two ports, its goroutines) and its place in the mixer, as a
// phone's call does. The baseline, at each rate first, is sipp's uac
// against sipp's uas. It logs sipp's set-up times (INVITE sent to 200
// received, -trace_rtt) at p50, p99 and max, the rate achieved and the
// failed calls. Only with SWITCHBOARD_SIP_BENCH set, at the rates of
// SWITCHBOARD_SIP_BENCH_RATES (default "100,300,500,1000") for
// SWITCHBOARD_SIP_BENCH_SECONDS each (default 10); it asserts nothing of
// the figures.
func TestSIPSetupsWithMedia(t *testing.T) {
	if os.Getenv("SWITCHBOARD_SIP_BENCH") == "" {
		t.Skip("a benchmark: set SWITCHBOARD_SIP_BENCH=1")
	}
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
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
	const number = "+14255550100"
	m, _ := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "42000-45999")
	routeNumber(t, m, number, "8:echo123")

	uasPort := sippPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	uas := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-t", "u1", "-i", "127.0.0.1", "-p", uasPort, "-nostdin")
	uas.Dir = t.TempDir()
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = uas.Wait() }() // ends the uas this test started, by its process

	for _, rate := range rates {
		n := rate * secs
		base := sippRate(t, rate, n, number, "-sn", "uac", "127.0.0.1:"+uasPort)
		sb := sippRate(t, rate, n, number, "-sf", "setup_bench.xml", m.SIPAddr)
		load, _ := os.ReadFile("/proc/loadavg")
		t.Logf("offered %d/s, %d calls: sipp uac→uas %s | sipp→switchboard (echo bot, RTP legs) %s | rate ratio %.2f; load average %s",
			rate, n, base, sb, sb.rate/base.rate, strings.TrimSpace(string(load)))
	}
}

// sippRateResult is one sipp run at a fixed rate.
type sippRateResult struct {
	rate          float64 // successful calls per second of sipp's wall time
	ok, failed    int
	p50, p99, max int // set-up, ms
}

func (r sippRateResult) String() string {
	return fmt.Sprintf("%.0f/s, %d ok, %d failed, set-up p50 %d ms p99 %d ms max %d ms", r.rate, r.ok, r.failed, r.p50, r.p99, r.max)
}

// sippRate places n calls to number at rate per second with sipp, at most
// 5,000 at once, and reads its statistics and set-up times.
func sippRate(t *testing.T, rate, n int, number string, args ...string) sippRateResult {
	t.Helper()
	dir := t.TempDir()
	xml, err := os.ReadFile(filepath.Join("..", "..", "internal", "sip", "testdata", "sipp", "setup_bench.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// Each call from a caller number of its own, +1555 and its number: the
	// mixer knows a phone by its number, and a phone's second call at
	// once would take its audio endpoint from the first (which the
	// switchboard then hangs up with a BYE of its own).
	xml = []byte(strings.ReplaceAll(string(xml), "+14255550123", "+1555[call_number]"))
	if err := os.WriteFile(filepath.Join(dir, "setup_bench.xml"), xml, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sipp", append([]string{"-m", strconv.Itoa(n), "-r", strconv.Itoa(rate), "-l", "5000",
		"-t", "u1", "-i", "127.0.0.1", "-p", sippPort(t), "-s", number,
		"-timeout", "300s", "-nostdin", "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1", "-trace_err"}, args...)...)
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("sipp %v: %v\n%s", args, err, out)
	}
	stats, _ := filepath.Glob(filepath.Join(dir, "*_.csv"))
	rtts, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	if len(stats) != 1 || len(rtts) != 1 {
		t.Fatalf("sipp %v left no statistics (%v, %v): %v\n%s", args, stats, rtts, err, out)
	}
	var r sippRateResult
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
		if f := strings.Split(line, ";"); len(f) >= 2 {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				ms = append(ms, int(v))
			}
		}
	}
	if len(ms) > 0 {
		slices.Sort(ms)
		r.p50, r.p99, r.max = ms[len(ms)/2], ms[len(ms)*99/100], ms[len(ms)-1]
	}
	r.rate = float64(r.ok) / wall.Seconds()
	if errs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log")); r.failed > 0 && len(errs) == 1 {
		b, _ := os.ReadFile(errs[0])
		t.Logf("sipp %v: the first of its errors:\n%s", args, b[:min(len(b), 1500)])
	}
	return r
}
