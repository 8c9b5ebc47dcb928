package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/phone"
)

// xferPhones are the three softphones of a transfer's per-frame proof: the
// customer (xferCustomerHz), the agent amy (xferAgentHz) and the target bob
// (xferTargetHz). Its methods check what each hears at a step of the
// transfer and collect the frame counts they measured (figures).
type xferPhones struct {
	t              *testing.T
	cust, amy, bob *phone.Phone
	figures        []string
}

// consulting checks a consult that started at: amy and bob hear each
// other, the customer hears the hold tone and keeps hearing frames (three
// seconds of them to prove on).
func (x *xferPhones) consulting(at time.Time) {
	t := x.t
	t.Helper()
	if !phoneHears(x.amy, at, xferTargetHz, true) || !phoneHears(x.bob, at, xferAgentHz, true) {
		t.Fatal("during the consult the agent and the target do not hear each other")
	}
	if !within(10*time.Second, func() bool { return countTone(framesSince(x.cust, at), audio.HoldToneHz) > 0 }) {
		t.Error("during the consult the customer never heard the hold tone")
	}
	if !within(10*time.Second, func() bool { return len(framesSince(x.cust, at)) >= 150 }) {
		t.Fatal("the customer's phone stopped hearing frames during the consult")
	}
}

// held checks every frame the customer heard in [from, until): bob's tone
// in none, amy's in none after her hold was heard (heardGone).
func (x *xferPhones) held(what string, from, until time.Time) {
	t := x.t
	t.Helper()
	frames := framesBetween(x.cust, from, until)
	if n := countTone(frames, xferTargetHz); n > 0 {
		t.Errorf("%s: the customer heard the target in %d of %d frames", what, n, len(frames))
	}
	held := heardGone(x.cust, from, xferAgentHz)
	if held < 0 {
		t.Fatalf("%s: the customer never stopped hearing the agent", what)
	}
	x.figures = append(x.figures, what+": the agent left the customer's ear after "+strconv.Itoa(held)+" frames")
	if n := countTone(frames[min(held, len(frames)):], xferAgentHz); n > 0 {
		t.Errorf("%s: after the hold, the customer heard the agent in %d of %d frames", what, n, len(frames)-held)
	}
	if len(frames)-held < 100 {
		t.Errorf("%s: only %d frames heard by the customer during the consult", what, len(frames)-held)
	}
}

// completed checks a completion at: the customer and bob hear each other,
// amy hears neither and is heard by neither.
func (x *xferPhones) completed(at time.Time) {
	t := x.t
	t.Helper()
	if !phoneHears(x.cust, at, xferTargetHz, true) || !phoneHears(x.bob, at, xferCustomerHz, true) {
		t.Fatal("after the completion the customer and the target do not hear each other")
	}
	x.figures = append(x.figures, "completion: the customer heard the target after "+strconv.Itoa(monFramesUntil(x.cust, at, xferTargetHz, true))+" frames")
	if !phoneHears(x.amy, at, xferCustomerHz, false) || !phoneHears(x.amy, at, xferTargetHz, false) ||
		!phoneHears(x.cust, at, xferAgentHz, false) {
		t.Fatal("after the completion the agent still hears or is heard")
	}
}

// backToAmy checks the customer handed back to amy at (a cancel, or bob's
// blind transfer to her): the customer and amy hear each other, bob is
// out.
func (x *xferPhones) backToAmy(what string, at time.Time) {
	t := x.t
	t.Helper()
	if !phoneHears(x.cust, at, xferAgentHz, true) || !phoneHears(x.amy, at, xferCustomerHz, true) {
		t.Fatalf("after %s the customer and the agent do not hear each other", what)
	}
	if !phoneHears(x.bob, at, xferCustomerHz, false) || !phoneHears(x.cust, at, xferTargetHz, false) {
		t.Fatalf("after %s the target still hears or is heard", what)
	}
}

// merged checks a merge at: all three hear each other.
func (x *xferPhones) merged(at time.Time) {
	x.t.Helper()
	for _, c := range []struct {
		who string
		p   *phone.Phone
		hz  []float64
	}{
		{"the customer", x.cust, []float64{xferAgentHz, xferTargetHz}},
		{"amy", x.amy, []float64{xferCustomerHz, xferTargetHz}},
		{"bob", x.bob, []float64{xferCustomerHz, xferAgentHz}},
	} {
		for _, hz := range c.hz {
			if !phoneHears(c.p, at, hz, true) {
				x.t.Fatalf("after the merge %s does not hear %v Hz", c.who, hz)
			}
		}
	}
}

// logFigures logs the frame counts measured and the load average.
func (x *xferPhones) logFigures() {
	load, _ := os.ReadFile("/proc/loadavg")
	x.t.Logf("frames (20 ms): %s; load average %s", strings.Join(x.figures, "; "), strings.TrimSpace(string(load)))
}

// heldRun is how many frames in a row without a party's tone say that she
// is gone from the ear: one frame alone may lack it while frames sent
// before the change are still on their way (jitter buffer, a tone cut
// mid-frame).
const heldRun = 5

// heardGone answers the index, among the frames p heard since from, of
// the first of heldRun frames in a row without the tone hz; -1 when there
// are none.
func heardGone(p *phone.Phone, from time.Time, hz float64) int {
	run := 0
	for i, f := range framesSince(p, from) {
		if audio.ToneLevel(&f, hz) > toneLevel {
			run = 0
			continue
		}
		if run++; run == heldRun {
			return i - heldRun + 1
		}
	}
	return -1
}

// xferCluster is two media nodes, a and b, of one cluster with the
// transfer proofs' softphones: the customer and amy served by a, bob by
// b, each with her event stream open past its snapshot.
type xferCluster struct {
	c                          *testCluster
	a, b                       *Main
	aBase, bBase               string
	custTok, amyTok, bobTok    string
	custNext, amyNext, bobNext func() (map[string]any, error)
	ctx                        context.Context
	cust, amy, bob             *phone.Phone
}

// newXferCluster starts it, with a's RTP ports aPorts and b's bPorts.
func newXferCluster(t *testing.T, aPorts, bPorts string) *xferCluster {
	t.Helper()
	w := &xferCluster{c: newTestCluster(t)}
	node := func(id, ports string) *Main {
		return w.c.startWith(id, func(cfg *Config) {
			cfg.Media = MediaConfig{Grace: time.Minute}
			cfg.Cluster.MediaIP, cfg.Cluster.RTPPorts = "127.0.0.1", ports
		})
	}
	w.a, w.b = node("a", aPorts), node("b", bPorts)
	w.aBase, w.bBase = "http://"+w.a.Addr, "http://"+w.b.Addr
	w.custTok, w.amyTok, w.bobTok = mint(t, "cust", "caller"), mint(t, "amy", "agent"), mint(t, "bob", "agent")
	w.amyNext, _ = openEvents(t, w.a.Addr, w.amyTok)
	w.custNext, _ = openEvents(t, w.a.Addr, w.custTok)
	w.bobNext, _ = openEvents(t, w.b.Addr, w.bobTok)
	firstSnapshots(t, w.amyNext, w.bobNext, w.custNext)
	ctx, connectA := softphones(t, w.aBase)
	_, connectB := softphones(t, w.bBase)
	w.ctx = ctx
	w.cust, w.amy, w.bob = connectA(w.custTok, xferCustomerHz), connectA(w.amyTok, xferAgentHz), connectB(w.bobTok, xferTargetHz)
	return w
}
