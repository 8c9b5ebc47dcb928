package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
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
	x := &xferPhones{t: t, cust: cust, amy: amy, bob: bob}

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
		x.consulting(at)
		return at
	}

	// Consult, then cancel: back to the customer.
	consultAt := consult()
	post(t, base+"/api/calls/"+amyCall+"/transfer/cancel", amyTok, "")
	cancelAt := time.Now()
	x.held("consult 1", consultAt, cancelAt)
	x.backToAmy("the cancel", cancelAt)
	if !phoneHears(amy, cancelAt, xferTargetHz, false) {
		t.Fatal("after the cancel the agent still hears the target")
	}

	// Consult again, then complete: the customer and bob.
	consultAt = consult()
	post(t, base+"/api/calls/"+amyCall+"/transfer/complete", amyTok, "")
	completeAt := time.Now()
	x.held("consult 2", consultAt, completeAt)
	x.completed(completeAt)

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
	x.backToAmy("the blind transfer", time.Now())

	// Amy calls bob (the customer is held), then merges the customer's
	// call into it: all three hear each other.
	withBob := post(t, base+"/api/calls", amyTok, `{"participants":[{"communicationUserId":"bob"}]}`)
	post(t, base+"/api/incoming-calls/"+waitIncoming(t, bobNext)+"/accept", bobTok, "")
	withBobID, _ := withBob["id"].(string)
	merged := post(t, base+"/api/calls/"+withBobID+"/merge", amyTok, `{"callId":"`+amyBack+`"}`)
	if merged["kind"] != "group" || merged["state"] != "Connected" {
		t.Fatalf("merge answered %v", merged)
	}
	x.merged(time.Now())
	x.logFigures()
}
