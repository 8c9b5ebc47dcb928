package sip_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/sip"
)

// discard is a calls.Publisher that drops every event.
type discard struct{}

func (discard) Publish(calls.Event) {}

// TestSetupRate measures call set-ups per second (INVITE, 200, ACK, BYE)
// from sipp to a number routed to the echo bot, and sipp's own uac against
// its own uas with the same settings as the baseline, in the same run. It
// runs only with SIP_BENCH set (SIP_BENCH_CALLS calls, default 3000), and
// reports figures; it asserts only that every call succeeded.
func TestSetupRate(t *testing.T) {
	if os.Getenv("SIP_BENCH") == "" {
		t.Skip("a benchmark: set SIP_BENCH=1")
	}
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("SIP_BENCH_CALLS")); err == nil && v > 0 {
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

	// The switchboard: the number is routed to the echo bot, which answers at once.
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
	defer func() { _ = srv.Close(context.Background()) }()
	sb := run("-sf", "setup_bench.xml", "-p", strconv.Itoa(freePort(t)), srv.Addr())

	load, _ := os.ReadFile("/proc/loadavg")
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	t.Logf("%d calls, at most 64 at once: sipp uac→uas %.0f set-ups/s (%v); sipp→switchboard (echo bot) %.0f set-ups/s (%v); ratio %.2f; load average %s",
		n, rate(base), base.Round(time.Millisecond), rate(sb), sb.Round(time.Millisecond), rate(sb)/rate(base), load)
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
