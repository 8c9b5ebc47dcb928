package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
)

// The tones of the transfer test: the customer's, the agent's and the
// target's (the hold tone is audio.HoldToneHz, 1,200 Hz beeps).
const (
	xferCustomerHz = 400
	xferAgentHz    = 800
	xferTargetHz   = 600
)

// TestTransferMedia is the per-frame proof of a consult transfer, its
// cancel and its completion, and of a blind transfer, with three pion
// WebRTC softphones (Goertzel per 20 ms frame): the customer speaks 400
// Hz, the agent amy 800 Hz, the target bob 600 Hz.
//
//   - consult: amy and bob hear each other; once amy's hold is heard, not
//     one frame the customer hears carries amy's tone, none in the whole
//     consult carries bob's, and the customer hears the hold tone;
//   - cancel: amy and the customer hear each other again, bob is gone;
//   - consult again and complete: the customer and bob hear each other,
//     amy hears neither;
//   - bob blind-transfers the customer back to amy: once amy answers,
//     the customer and amy hear each other, bob hears neither;
//   - amy calls bob and merges the customer's call into it: all three
//     hear each other.
func TestTransferMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 15 s")
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	custTok := mint(t, "cust", calls.RoleCaller)
	amyTok := mint(t, "amy", calls.RoleAgent)
	bobTok := mint(t, "bob", calls.RoleAgent)
	amyNext, _ := openEvents(t, m.Addr, amyTok)
	bobNext, _ := openEvents(t, m.Addr, bobTok)
	firstSnapshots(t, amyNext, bobNext)

	ctx, connect := softphones(t, base)
	cust, amy, bob := connect(custTok, xferCustomerHz), connect(amyTok, xferAgentHz), connect(bobTok, xferTargetHz)

	amyCall := answered(t, ctx, base, cust, amy, xferCustomerHz, xferAgentHz, amyTok, amyNext)
	var figures []string

	// consult starts a consult call to bob; bob answers; it checks the
	// consult's audio and answers when it started.
	consult := func() time.Time {
		t.Helper()
		res := post(t, base+"/api/calls/"+amyCall+"/transfer", amyTok, `{"target":{"communicationUserId":"bob"},"mode":"consult"}`)
		at := time.Now()
		if res["id"] == amyCall || res["direction"] != "Outgoing" {
			t.Fatalf("consult answered %v", res)
		}
		post(t, base+"/api/incoming-calls/"+waitIncoming(t, bobNext)+"/accept", bobTok, "")
		if !phoneHears(amy, at, xferTargetHz, true) || !phoneHears(bob, at, xferAgentHz, true) {
			t.Fatal("during the consult the agent and the target do not hear each other")
		}
		if !within(10*time.Second, func() bool { return countTone(framesSince(cust, at), audio.HoldToneHz) > 0 }) {
			t.Error("during the consult the customer never heard the hold tone")
		}
		// Three seconds of the customer's frames to prove on.
		if !within(10*time.Second, func() bool { return len(framesSince(cust, at)) >= 150 }) {
			t.Fatal("the customer's phone stopped hearing frames during the consult")
		}
		return at
	}
	// proveHeld checks every frame the customer heard in [from, until):
	// bob's tone in none, amy's in none after the hold was first heard.
	proveHeld := func(what string, from, until time.Time) {
		t.Helper()
		frames := framesBetween(cust, from, until)
		if n := countTone(frames, xferTargetHz); n > 0 {
			t.Errorf("%s: the customer heard the target in %d of %d frames", what, n, len(frames))
		}
		held := monFramesUntil(cust, from, xferAgentHz, false)
		if held < 0 {
			t.Fatalf("%s: the customer never stopped hearing the agent", what)
		}
		figures = append(figures, what+": the agent left the customer's ear after "+strconv.Itoa(held)+" frames")
		if n := countTone(frames[min(held, len(frames)):], xferAgentHz); n > 0 {
			t.Errorf("%s: after the hold, the customer heard the agent in %d of %d frames", what, n, len(frames)-held)
		}
		if len(frames)-held < 100 {
			t.Errorf("%s: only %d frames heard by the customer during the consult", what, len(frames)-held)
		}
	}

	// Consult, then cancel: back to the customer.
	consultAt := consult()
	post(t, base+"/api/calls/"+amyCall+"/transfer/cancel", amyTok, "")
	cancelAt := time.Now()
	proveHeld("consult 1", consultAt, cancelAt)
	if !phoneHears(cust, cancelAt, xferAgentHz, true) || !phoneHears(amy, cancelAt, xferCustomerHz, true) {
		t.Fatal("after the cancel the customer and the agent do not hear each other")
	}
	if !phoneHears(amy, cancelAt, xferTargetHz, false) || !phoneHears(cust, cancelAt, xferTargetHz, false) {
		t.Fatal("after the cancel someone still hears the target")
	}

	// Consult again, then complete: the customer and bob.
	consultAt = consult()
	post(t, base+"/api/calls/"+amyCall+"/transfer/complete", amyTok, "")
	completeAt := time.Now()
	proveHeld("consult 2", consultAt, completeAt)
	if !phoneHears(cust, completeAt, xferTargetHz, true) || !phoneHears(bob, completeAt, xferCustomerHz, true) {
		t.Fatal("after the completion the customer and the target do not hear each other")
	}
	figures = append(figures, "completion: the customer heard the target after "+strconv.Itoa(monFramesUntil(cust, completeAt, xferTargetHz, true))+" frames")
	if !phoneHears(amy, completeAt, xferCustomerHz, false) || !phoneHears(amy, completeAt, xferTargetHz, false) ||
		!phoneHears(cust, completeAt, xferAgentHz, false) {
		t.Fatal("after the completion the agent still hears or is heard")
	}

	// Bob hands the customer back to amy, blind.
	bobCall := ""
	status, body := get(t, base+"/api/calls", bobTok)
	var list []map[string]any
	if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil {
		t.Fatalf("bob's calls: %d %s (%v)", status, body, err)
	}
	for _, c := range list {
		if c["state"] == "Connected" {
			bobCall, _ = c["id"].(string)
		}
	}
	if bobCall == "" {
		t.Fatal("bob has no Connected call after the completion")
	}
	res := post(t, base+"/api/calls/"+bobCall+"/transfer", bobTok, `{"target":{"communicationUserId":"amy"},"mode":"blind"}`)
	if res["state"] != "Disconnected" {
		t.Fatalf("blind transfer answered %v", res)
	}
	amyBack := waitIncoming(t, amyNext)
	post(t, base+"/api/incoming-calls/"+amyBack+"/accept", amyTok, "")
	blindAt := time.Now()
	if !phoneHears(cust, blindAt, xferAgentHz, true) || !phoneHears(amy, blindAt, xferCustomerHz, true) {
		t.Fatal("after the blind transfer the customer and the agent do not hear each other")
	}
	if !phoneHears(bob, blindAt, xferCustomerHz, false) || !phoneHears(cust, blindAt, xferTargetHz, false) {
		t.Fatal("after the blind transfer bob still hears or is heard")
	}
	// Amy calls bob (the customer is held), then merges the customer's
	// call into it: all three hear each other.
	withBob := post(t, base+"/api/calls", amyTok, `{"participants":[{"communicationUserId":"bob"}]}`)
	post(t, base+"/api/incoming-calls/"+waitIncoming(t, bobNext)+"/accept", bobTok, "")
	withBobID, _ := withBob["id"].(string)
	merged := post(t, base+"/api/calls/"+withBobID+"/merge", amyTok, `{"callId":"`+amyBack+`"}`)
	if merged["kind"] != "group" || merged["state"] != "Connected" {
		t.Fatalf("merge answered %v", merged)
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
				t.Fatalf("after the merge %s does not hear %v Hz", c.who, hz)
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("frames (20 ms): %s; load average %s", strings.Join(figures, "; "), strings.TrimSpace(string(load)))
}
