package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// TestQueueConsultMedia is the per-frame proof of a consult transfer to a
// queue, with three pion WebRTC softphones (Goertzel per 20 ms frame): the
// customer (400 Hz) is on a call with amy (800 Hz), who consults the queue
// "support"; its agent bob (600 Hz) is offered amy's consult call and
// accepts. Amy and bob hear each other; once amy's hold is heard, not one
// frame the customer hears carries amy's tone, none in the whole consult
// carries bob's, and she hears the hold tone. Amy completes: the customer
// and bob hear each other, amy hears neither.
func TestQueueConsultMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 10 s")
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	custTok := mint(t, "cust", calls.RoleCaller)
	amyTok := mint(t, "amy", calls.RoleAgent)
	bobTok := mint(t, "bob", calls.RoleAgent)
	amyNext, _ := openEvents(t, m.Addr, amyTok)
	bobNext, _ := openEvents(t, m.Addr, bobTok)
	firstSnapshots(t, amyNext, bobNext)
	post(t, base+"/api/queues", testAdminKey, `{"name":"support","members":[{"agent":"8:acs:bob"}],"ringTimeoutSeconds":120}`)

	ctx, connect := softphones(t, base)
	cust, amy, bob := connect(custTok, xferCustomerHz), connect(amyTok, xferAgentHz), connect(bobTok, xferTargetHz)
	amyCall := answered(t, ctx, base, cust, amy, xferCustomerHz, xferAgentHz, amyTok, amyNext)

	res := post(t, base+"/api/calls/"+amyCall+"/transfer", amyTok, `{"queue":"support","mode":"consult"}`)
	consultAt := time.Now()
	if res["id"] == amyCall || res["kind"] != "group" || res["state"] != "Connected" {
		t.Fatalf("consult to a queue answered %v", res)
	}
	post(t, base+"/api/incoming-calls/"+waitIncoming(t, bobNext)+"/accept", bobTok, "")
	if !phoneHears(amy, consultAt, xferTargetHz, true) || !phoneHears(bob, consultAt, xferAgentHz, true) {
		t.Fatal("during the consult the agent and the queue's agent do not hear each other")
	}
	if !within(10*time.Second, func() bool { return countTone(framesSince(cust, consultAt), audio.HoldToneHz) > 0 }) {
		t.Error("during the consult the customer never heard the hold tone")
	}
	if !within(10*time.Second, func() bool { return len(framesSince(cust, consultAt)) >= 150 }) {
		t.Fatal("the customer's phone stopped hearing frames during the consult")
	}
	post(t, base+"/api/calls/"+amyCall+"/transfer/complete", amyTok, "")
	completeAt := time.Now()

	frames := framesBetween(cust, consultAt, completeAt)
	if n := countTone(frames, xferTargetHz); n > 0 {
		t.Errorf("consult: the customer heard the queue's agent in %d of %d frames", n, len(frames))
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
		t.Fatal("after the completion the customer and the queue's agent do not hear each other")
	}
	figures = append(figures, "the customer heard the queue's agent after "+strconv.Itoa(monFramesUntil(cust, completeAt, xferTargetHz, true))+" frames")
	if !phoneHears(amy, completeAt, xferCustomerHz, false) || !phoneHears(amy, completeAt, xferTargetHz, false) ||
		!phoneHears(cust, completeAt, xferAgentHz, false) {
		t.Fatal("after the completion the agent still hears or is heard")
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("frames (20 ms): %s; load average %s", strings.Join(figures, "; "), strings.TrimSpace(string(load)))
}
