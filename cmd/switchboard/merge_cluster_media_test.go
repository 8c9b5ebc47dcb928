package main

import (
	"fmt"
	"testing"
	"time"
)

// TestClusterMergeMedia is the per-frame proof of a merge across nodes
// when the agent's node only mirrors a call, with pion WebRTC softphones
// on two media nodes of one cluster (Goertzel per 20 ms frame): the
// customer (400 Hz) and the agent amy (800 Hz) are served by node a, bob
// (600 Hz) by node b, and bob calls amy, so b runs that call and a only
// mirrors it.
//
//   - the customer calls amy (a runs it), bob calls amy, and amy merges
//     bob's call into the customer's: before the merge the customer and
//     bob never hear each other in one frame; after it all three hear
//     each other (amy's microphone reaches both), and bob's call on b is
//     the group call;
//   - amy ends it for everyone; bob calls amy, then the customer does,
//     and amy merges the customer's call into bob's (the call kept is
//     the one a mirrored): the same proof again;
//   - bob calls the queue "support", on b, which adds amy to his call (a
//     group call b runs); the customer calls amy, and amy merges the
//     queue's call into the customer's: the same proof again, but for
//     what bob hears while amy holds his call (the queue's hold audio,
//     whose voice has energy at the customer's tone);
//   - amy ends it for everyone; the customer calls amy, bob joins a group
//     call by GUID on b and amy joins it from a (b anchors it, a mirrors
//     it), and amy merges it into the customer's call, whose conversation
//     on a is joined to b's by amy's stand-in there (a bridge): the same
//     proof again. Bob's call keeps showing amy alone of a's parties.
func TestClusterMergeMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media across nodes end to end: about 12 s")
	}
	w := newXferCluster(t, "46100-46199", "46200-46299")
	a, b, aBase, bBase := w.a, w.b, w.aBase, w.bBase
	amyTok, bobTok, amyNext, bobNext := w.amyTok, w.bobTok, w.amyNext, w.bobNext
	ctx, cust, amy, bob := w.ctx, w.cust, w.amy, w.bob
	x := &xferPhones{t: t, cust: cust, amy: amy, bob: bob}
	const group = "Connected muted=false [8:acs:amy Connected muted=false] [8:acs:cust Connected muted=false]"

	// bobCalls has bob call amy, who accepts; it answers bob's call and
	// amy's.
	bobCalls := func() (string, string) {
		t.Helper()
		bobCall, err := bob.Call(ctx, "8:acs:amy")
		if err != nil {
			t.Fatal(err)
		}
		amyCall := waitIncoming(t, amyNext)
		post(t, aBase+"/api/incoming-calls/"+amyCall+"/accept", amyTok, "")
		waitCall(t, a, amyTok, amyCall, "Connected muted=false [8:acs:bob Connected muted=false]")
		return bobCall, amyCall
	}

	// The customer's call, run by a, and bob's, run by b: bob's merged
	// into the customer's.
	withCust := answered(t, ctx, aBase, cust, amy, xferCustomerHz, xferAgentHz, amyTok, amyNext)
	apart := time.Now()
	bobCall, withBob := bobCalls()
	if !phoneHears(bob, apart, xferAgentHz, true) || !phoneHears(amy, apart, xferTargetHz, true) {
		t.Fatal("bob and amy do not hear each other")
	}
	at := time.Now()
	merged := post(t, aBase+"/api/calls/"+withCust+"/merge", amyTok, `{"callId":"`+withBob+`"}`)
	if merged["kind"] != "group" || merged["state"] != "Connected" {
		t.Fatalf("merge of a call b runs answered %v", merged)
	}
	x.mergedAcross("bob's call merged", apart, at)
	waitCall(t, b, bobTok, bobCall, group)
	post(t, aBase+"/api/calls/"+withCust+"/hangup", amyTok, `{"forEveryone":true}`)
	waitCallEnded(t, bobNext, bobCall)
	ended := time.Now()
	if !phoneHears(x.cust, ended, xferTargetHz, false) || !phoneHears(bob, ended, xferCustomerHz, false) {
		t.Fatal("the customer and bob still hear each other after the merged call ended")
	}

	// Bob's call, run by b, kept: the customer's merged into it.
	apart = time.Now()
	bobCall, withBob = bobCalls()
	if _, err := cust.Call(ctx, "8:acs:amy"); err != nil {
		t.Fatal(err)
	}
	withCust = waitIncoming(t, amyNext)
	post(t, aBase+"/api/incoming-calls/"+withCust+"/accept", amyTok, "")
	waitCall(t, a, amyTok, withBob, "LocalHold muted=false [8:acs:bob Connected muted=false]")
	if !phoneHears(cust, apart, xferAgentHz, true) || !phoneHears(amy, apart, xferCustomerHz, true) {
		t.Fatal("the customer and amy do not hear each other")
	}
	at = time.Now()
	merged = post(t, aBase+"/api/calls/"+withBob+"/merge", amyTok, `{"callId":"`+withCust+`"}`)
	if merged["kind"] != "group" || merged["state"] != "Connected" {
		t.Fatalf("merge into a call b runs answered %v", merged)
	}
	x.mergedAcross("the customer's call merged", apart, at)
	waitCall(t, b, bobTok, bobCall, group)
	waitCall(t, a, amyTok, withBob, "Connected muted=false [8:acs:bob Connected muted=false] [8:acs:cust Connected muted=false]")
	post(t, aBase+"/api/calls/"+withBob+"/hangup", amyTok, `{"forEveryone":true}`)
	waitCallEnded(t, bobNext, bobCall)
	ended = time.Now()
	if !phoneHears(x.cust, ended, xferTargetHz, false) || !phoneHears(bob, ended, xferCustomerHz, false) {
		t.Fatal("the customer and bob still hear each other after the second merged call ended")
	}

	// Bob's call to the queue, run by b, which adds amy to it; the
	// customer calls amy, and amy merges the queue's call into hers.
	post(t, aBase+"/api/queues", testAdminKey, `{"name":"support","members":[{"agent":"8:acs:amy"}],"ringTimeoutSeconds":120}`)
	queued, _ := post(t, bBase+"/api/calls", bobTok, `{"queue":"support"}`)["id"].(string)
	fromQueue := waitIncoming(t, amyNext)
	post(t, aBase+"/api/incoming-calls/"+fromQueue+"/accept", amyTok, "")
	waitCall(t, b, bobTok, queued, "Connected muted=false [8:acs:amy Connected muted=false]")
	apart = time.Now() // bob heard the queue's prompt until now, whose voice has the customer's tone in it
	if !phoneHears(bob, apart, xferAgentHz, true) || !phoneHears(amy, apart, xferTargetHz, true) {
		t.Fatal("bob and amy do not hear each other in the queue's call")
	}
	if _, err := cust.Call(ctx, "8:acs:amy"); err != nil {
		t.Fatal(err)
	}
	withCust = waitIncoming(t, amyNext)
	post(t, aBase+"/api/incoming-calls/"+withCust+"/accept", amyTok, "")
	if !phoneHears(cust, apart, xferAgentHz, true) || !phoneHears(amy, apart, xferCustomerHz, true) {
		t.Fatal("the customer and amy do not hear each other")
	}
	at = time.Now()
	merged = post(t, aBase+"/api/calls/"+withCust+"/merge", amyTok, `{"callId":"`+fromQueue+`"}`)
	if merged["kind"] != "group" || merged["state"] != "Connected" {
		t.Fatalf("merge of a queue's call b runs answered %v", merged)
	}
	x.mergedAcrossHeld("the queue's call merged", apart, at, true)
	waitCall(t, b, bobTok, queued, group)
	post(t, aBase+"/api/calls/"+withCust+"/hangup", amyTok, `{"forEveryone":true}`)
	waitCallEnded(t, bobNext, queued)

	// A group call by GUID that bob joined on b, which anchors it, and amy
	// joined from a: merged into the customer's call, joined to b's group
	// call by its stand-in (a bridge).
	withCust = answered(t, ctx, aBase, cust, amy, xferCustomerHz, xferAgentHz, amyTok, amyNext)
	const guid = `{"groupId":"5d1c0b4e-3f2a-4e6b-8c9d-1a2b3c4d5e6f"}`
	bobJoined, _ := post(t, bBase+"/api/calls/join", bobTok, guid)["id"].(string)
	apart = time.Now()
	amyJoined, _ := post(t, aBase+"/api/calls/join", amyTok, guid)["id"].(string)
	waitCall(t, b, bobTok, bobJoined, "Connected muted=false [8:acs:amy Connected muted=false]")
	if !phoneHears(bob, apart, xferAgentHz, true) || !phoneHears(amy, apart, xferTargetHz, true) {
		t.Fatal("bob and amy do not hear each other in the group call by GUID")
	}
	at = time.Now()
	merged = post(t, aBase+"/api/calls/"+withCust+"/merge", amyTok, `{"callId":"`+amyJoined+`"}`)
	if merged["kind"] != "group" || merged["state"] != "Connected" {
		t.Fatalf("merge of a group call by GUID b anchors answered %v", merged)
	}
	x.mergedAcross("a group call by GUID b anchors merged", apart, at)
	waitCall(t, a, amyTok, withCust, "Connected muted=false [8:acs:cust Connected muted=false] [8:acs:bob Connected muted=false]")
	x.logFigures()
}

// mergedAcross checks a merge requested at: before it, from apart on,
// not one frame the customer heard carries bob's tone, nor one bob heard
// the customer's; after it all three hear each other. It notes how many
// frames the customer and bob, on two nodes, took to hear each other.
func (x *xferPhones) mergedAcross(what string, apart, at time.Time) {
	x.t.Helper()
	x.mergedAcrossHeld(what, apart, at, false)
}

// mergedAcrossHeld is mergedAcross; queued: bob's call is a queue's, whose
// hold audio (the queue's position prompt, a voice with energy at the
// customer's tone) he hears while amy holds it, so only the customer's
// frames are checked before the merge.
func (x *xferPhones) mergedAcrossHeld(what string, apart, at time.Time, queued bool) {
	t := x.t
	t.Helper()
	if n := countTone(framesBetween(x.cust, apart, at), xferTargetHz); n > 0 {
		t.Errorf("%s: before the merge the customer heard bob in %d frames", what, n)
	}
	if n := countTone(framesBetween(x.bob, apart, at), xferCustomerHz); n > 0 && !queued {
		t.Errorf("%s: before the merge bob heard the customer in %d frames", what, n)
	}
	x.merged(at)
	x.figures = append(x.figures, fmt.Sprintf("%s: the customer heard bob after %d frames, bob the customer after %d", what,
		monFramesUntil(x.cust, at, xferTargetHz, true), monFramesUntil(x.bob, at, xferCustomerHz, true)))
}
