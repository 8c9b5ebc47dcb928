package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/phone"
)

// TestClusterTransferMedia is the per-frame proof of transfers across
// nodes, with pion WebRTC softphones on two media nodes of one cluster
// (Goertzel per 20 ms frame): the customer (400 Hz) and the agent amy
// (800 Hz) are served by node a, the target bob (600 Hz) by node b.
//
//   - amy consults bob: amy and bob hear each other; once amy's hold is
//     heard, not one frame the customer hears carries amy's tone, none in
//     the whole consult carries bob's, and she hears the hold tone;
//   - amy completes: the customer and bob hear each other (a's
//     conversation and bob's stand-in there), amy hears neither;
//   - bob, on b, blind-transfers the customer to amy: once amy answers,
//     the customer and amy hear each other through b's conversation, bob
//     hears neither;
//   - amy calls the customer and bob and merges the two calls (node a
//     runs both): all three hear each other.
func TestClusterTransferMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media across nodes end to end: about 15 s")
	}
	c := newTestCluster(t)
	node := func(id, ports string) *Main {
		return c.startWith(id, func(cfg *Config) {
			cfg.Media = MediaConfig{Grace: time.Minute}
			cfg.Cluster.MediaIP, cfg.Cluster.RTPPorts = "127.0.0.1", ports
		})
	}
	a, b := node("a", "45500-45599"), node("b", "45600-45699")
	aBase, bBase := "http://"+a.Addr, "http://"+b.Addr
	custTok := mint(t, "cust", "caller")
	amyTok := mint(t, "amy", "agent")
	bobTok := mint(t, "bob", "agent")
	amyNext, _ := openEvents(t, a.Addr, amyTok)
	custNext, _ := openEvents(t, a.Addr, custTok)
	bobNext, _ := openEvents(t, b.Addr, bobTok)
	firstSnapshots(t, amyNext, bobNext, custNext)

	ctx, connectA := softphones(t, aBase)
	_, connectB := softphones(t, bBase)
	cust, amy, bob := connectA(custTok, xferCustomerHz), connectA(amyTok, xferAgentHz), connectB(bobTok, xferTargetHz)
	amyCall := answered(t, ctx, aBase, cust, amy, xferCustomerHz, xferAgentHz, amyTok, amyNext)

	// Amy, on a, consults bob, on b.
	post(t, aBase+"/api/calls/"+amyCall+"/transfer", amyTok, `{"target":{"communicationUserId":"bob"},"mode":"consult"}`)
	consultAt := time.Now()
	bobCall := waitIncoming(t, bobNext)
	post(t, bBase+"/api/incoming-calls/"+bobCall+"/accept", bobTok, "")
	if !phoneHears(amy, consultAt, xferTargetHz, true) || !phoneHears(bob, consultAt, xferAgentHz, true) {
		t.Fatal("during the consult across nodes the agent and the target do not hear each other")
	}
	if !within(10*time.Second, func() bool { return countTone(framesSince(cust, consultAt), audio.HoldToneHz) > 0 }) {
		t.Error("during the consult the customer never heard the hold tone")
	}
	if !within(10*time.Second, func() bool { return len(framesSince(cust, consultAt)) >= 150 }) {
		t.Fatal("the customer's phone stopped hearing frames during the consult")
	}
	post(t, aBase+"/api/calls/"+amyCall+"/transfer/complete", amyTok, "")
	completeAt := time.Now()

	frames := framesBetween(cust, consultAt, completeAt)
	if n := countTone(frames, xferTargetHz); n > 0 {
		t.Errorf("consult: the customer heard the target in %d of %d frames", n, len(frames))
	}
	held := monFramesUntil(cust, consultAt, xferAgentHz, false)
	if held < 0 {
		t.Fatal("consult: the customer never stopped hearing the agent")
	}
	if n := countTone(frames[min(held, len(frames)):], xferAgentHz); n > 0 {
		t.Errorf("consult: after the hold, the customer heard the agent in %d of %d frames", n, len(frames)-held)
	}
	if len(frames)-held < 100 {
		t.Errorf("consult: only %d frames heard by the customer while held", len(frames)-held)
	}
	figures := []string{"the agent left the customer's ear after " + strconv.Itoa(held) + " frames"}

	if !phoneHears(cust, completeAt, xferTargetHz, true) || !phoneHears(bob, completeAt, xferCustomerHz, true) {
		t.Fatal("after the completion across nodes the customer and the target do not hear each other")
	}
	figures = append(figures, "the customer heard the target after "+strconv.Itoa(monFramesUntil(cust, completeAt, xferTargetHz, true))+" frames")
	if !phoneHears(amy, completeAt, xferCustomerHz, false) || !phoneHears(amy, completeAt, xferTargetHz, false) ||
		!phoneHears(cust, completeAt, xferAgentHz, false) {
		t.Fatal("after the completion the agent still hears or is heard")
	}

	// Bob, on b, hands the customer back to amy, on a, blind.
	res := post(t, bBase+"/api/calls/"+bobCall+"/transfer", bobTok, `{"target":{"communicationUserId":"amy"},"mode":"blind"}`)
	if res["state"] != "Disconnected" {
		t.Fatalf("blind transfer across nodes answered %v", res)
	}
	amyBack := waitIncoming(t, amyNext)
	post(t, aBase+"/api/incoming-calls/"+amyBack+"/accept", amyTok, "")
	blindAt := time.Now()
	if !phoneHears(cust, blindAt, xferAgentHz, true) || !phoneHears(amy, blindAt, xferCustomerHz, true) {
		t.Fatal("after the blind transfer across nodes the customer and the agent do not hear each other")
	}
	if !phoneHears(bob, blindAt, xferCustomerHz, false) || !phoneHears(cust, blindAt, xferTargetHz, false) {
		t.Fatal("after the blind transfer bob still hears or is heard")
	}

	// Amy hangs up; she calls the customer, then bob, on b (a runs both
	// calls), and merges them: all three hear each other.
	post(t, aBase+"/api/calls/"+amyBack+"/hangup", amyTok, `{"forEveryone":false}`)
	withCust, _ := post(t, aBase+"/api/calls", amyTok, `{"participants":[{"communicationUserId":"cust"}]}`)["id"].(string)
	post(t, aBase+"/api/incoming-calls/"+waitIncoming(t, custNext)+"/accept", custTok, "")
	withBob, _ := post(t, aBase+"/api/calls", amyTok, `{"participants":[{"communicationUserId":"bob"}]}`)["id"].(string)
	post(t, bBase+"/api/incoming-calls/"+waitIncoming(t, bobNext)+"/accept", bobTok, "")
	waitCall(t, a, amyTok, withBob, "Connected muted=false [8:acs:bob Connected muted=false]") // b's answer reached a
	merged := post(t, aBase+"/api/calls/"+withCust+"/merge", amyTok, `{"callId":"`+withBob+`"}`)
	if merged["kind"] != "group" || merged["state"] != "Connected" {
		t.Fatalf("merge across nodes answered %v", merged)
	}
	mergeAt := time.Now()
	for _, c := range []struct {
		who string
		p   *phone.Phone
		hz  []float64
	}{
		{"the customer", cust, []float64{xferAgentHz, xferTargetHz}},
		{"amy", amy, []float64{xferCustomerHz, xferTargetHz}},
		{"bob", bob, []float64{xferCustomerHz, xferAgentHz}},
	} {
		for _, hz := range c.hz {
			if !phoneHears(c.p, mergeAt, hz, true) {
				t.Fatalf("after the merge across nodes %s does not hear %v Hz", c.who, hz)
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("frames (20 ms): %s; load average %s", strings.Join(figures, "; "), strings.TrimSpace(string(load)))
}
