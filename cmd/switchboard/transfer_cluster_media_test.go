package main

import (
	"testing"
	"time"
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
	w := newXferCluster(t, "45500-45599", "45600-45699")
	a, aBase, bBase := w.a, w.aBase, w.bBase
	custTok, amyTok, bobTok, custNext, amyNext, bobNext := w.custTok, w.amyTok, w.bobTok, w.custNext, w.amyNext, w.bobNext
	ctx, cust, amy, bob := w.ctx, w.cust, w.amy, w.bob
	amyCall := answered(t, ctx, aBase, cust, amy, xferCustomerHz, xferAgentHz, amyTok, amyNext)

	// Amy, on a, consults bob, on b.
	x := &xferPhones{t: t, cust: cust, amy: amy, bob: bob}
	post(t, aBase+"/api/calls/"+amyCall+"/transfer", amyTok, `{"target":{"communicationUserId":"bob"},"mode":"consult"}`)
	consultAt := time.Now()
	bobCall := waitIncoming(t, bobNext)
	post(t, bBase+"/api/incoming-calls/"+bobCall+"/accept", bobTok, "")
	x.consulting(consultAt)
	post(t, aBase+"/api/calls/"+amyCall+"/transfer/complete", amyTok, "")
	completeAt := time.Now()
	x.held("consult across nodes", consultAt, completeAt)
	x.completed(completeAt)

	// Bob, on b, hands the customer back to amy, on a, blind.
	res := post(t, bBase+"/api/calls/"+bobCall+"/transfer", bobTok, `{"target":{"communicationUserId":"amy"},"mode":"blind"}`)
	if res["state"] != "Disconnected" {
		t.Fatalf("blind transfer across nodes answered %v", res)
	}
	amyBack := waitIncoming(t, amyNext)
	post(t, aBase+"/api/incoming-calls/"+amyBack+"/accept", amyTok, "")
	x.backToAmy("the blind transfer across nodes", time.Now())

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
	x.merged(time.Now())
	x.logFigures()
}
