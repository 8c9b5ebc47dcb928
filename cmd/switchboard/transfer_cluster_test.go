package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestClusterTransfer: transfer and merge requests may reach any node.
// The customer, alice, carol and dave are served by node a (bob by b):
// the customer calls alice; alice, through node c, consults carol, and
// completes through b; the customer and carol are then Connected on a.
// Carol blind-transfers the customer to bob, on b; bob consults dave, on
// a, and cancels (back to the customer), consults again and completes: the customer and dave are Connected on a, each seeing
// the other, through b's conversation. Alice merges her calls with carol
// and with bob through c; bob merges the customer's call into the group
// call a runs (a bridge, internal/calls/peermerge.go): the customer sees
// everyone.
func TestClusterTransfer(t *testing.T) {
	x := newAcrossNodes(t)
	cust, _ := online(t, x.a, "cust", calls.RoleCaller)
	carol, carolNext := online(t, x.a, "carol", calls.RoleAgent)
	dave, daveNext := online(t, x.a, "dave", calls.RoleAgent)
	decode := func(what string, status, want int, body string) calls.Call {
		t.Helper()
		var c calls.Call
		if status != want || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("%s: %d %s, want %d", what, status, body, want)
		}
		return c
	}
	status, body, _ := send(t, x.b, "POST", "/api/calls", cust, `{"participants":[{"communicationUserId":"alice"}]}`)
	custCall := decode("the customer calls alice via b", status, http.StatusCreated, body)
	aliceCall := ringing(t, x.aliceNext)
	status, body, _ = send(t, x.c, "POST", "/api/incoming-calls/"+aliceCall+"/accept", x.alice, "")
	decode("alice accepts via c", status, http.StatusOK, body)

	status, body, _ = send(t, x.c, "POST", "/api/calls/"+aliceCall+"/transfer", x.alice, `{"target":{"communicationUserId":"carol"},"mode":"consult"}`)
	cons := decode("alice consults carol via c", status, http.StatusCreated, body)
	carolCall := ringing(t, carolNext)
	status, body, _ = send(t, x.b, "POST", "/api/incoming-calls/"+carolCall+"/accept", carol, "")
	decode("carol accepts via b", status, http.StatusOK, body)
	waitCall(t, x.a, x.alice, cons.ID, "Connected muted=false [8:acs:carol Connected muted=false]")
	waitCall(t, x.a, cust, custCall.ID, "RemoteHold muted=false [8:acs:alice Hold muted=false]")
	status, body, _ = send(t, x.b, "POST", "/api/calls/"+aliceCall+"/transfer/complete", x.alice, "")
	done := decode("alice completes via b", status, http.StatusOK, body)
	if done.CallEndReason == nil || *done.CallEndReason != calls.ReasonTransferred {
		t.Errorf("alice's call after the completion: %+v, want 0/7015", done.CallEndReason)
	}
	waitCall(t, x.c, cust, custCall.ID, "Connected muted=false [8:acs:carol Connected muted=false]")
	waitCall(t, x.b, carol, carolCall, "Connected muted=false [8:acs:cust Connected muted=false]")

	// Carol, on a, hands the customer to bob, on b, blind: a's
	// conversation dials bob's node.
	status, body, _ = send(t, x.c, "POST", "/api/calls/"+carolCall+"/transfer", carol, `{"target":{"communicationUserId":"bob"},"mode":"blind"}`)
	gone := decode("carol transfers to bob via c", status, http.StatusOK, body)
	if gone.State != calls.StateDisconnected || gone.CallEndReason == nil || *gone.CallEndReason != calls.ReasonTransferred {
		t.Errorf("carol's call after the blind transfer: %s %+v, want Disconnected 0/7015", gone.State, gone.CallEndReason)
	}
	bobCall := ringing(t, x.bobNext)
	status, body, _ = send(t, x.c, "POST", "/api/incoming-calls/"+bobCall+"/accept", x.bob, "")
	decode("bob accepts via c", status, http.StatusOK, body)
	waitCall(t, x.a, cust, custCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	waitCall(t, x.b, x.bob, bobCall, "Connected muted=false [8:acs:cust Connected muted=false]")

	// Bob, on b, consults dave, on a, and cancels: dave's call ends, the
	// customer is back with bob.
	status, body, _ = send(t, x.a, "POST", "/api/calls/"+bobCall+"/transfer", x.bob, `{"target":{"communicationUserId":"dave"},"mode":"consult"}`)
	try1 := decode("bob consults dave via a", status, http.StatusCreated, body)
	daveFirst := ringing(t, daveNext)
	status, body, _ = send(t, x.c, "POST", "/api/incoming-calls/"+daveFirst+"/accept", dave, "")
	decode("dave accepts via c", status, http.StatusOK, body)
	waitCall(t, x.b, x.bob, try1.ID, "Connected muted=false [8:acs:dave Connected muted=false]")
	waitCall(t, x.a, cust, custCall.ID, "RemoteHold muted=false [8:acs:bob Hold muted=false]")
	status, body, _ = send(t, x.c, "POST", "/api/calls/"+try1.ID+"/transfer/cancel", x.bob, "")
	decode("bob cancels via c", status, http.StatusOK, body)
	waitCallEnded(t, daveNext, daveFirst)
	waitCall(t, x.a, cust, custCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	waitCall(t, x.b, x.bob, bobCall, "Connected muted=false [8:acs:cust Connected muted=false]")

	// Bob consults dave again and completes: b's mirror of the
	// customer's call joins her to dave's stand-in; each far node is told
	// who its party faces now.
	status, body, _ = send(t, x.a, "POST", "/api/calls/"+bobCall+"/transfer", x.bob, `{"target":{"communicationUserId":"dave"},"mode":"consult"}`)
	cons = decode("bob consults dave via a", status, http.StatusCreated, body)
	daveCall := ringing(t, daveNext)
	waitCall(t, x.a, cust, custCall.ID, "RemoteHold muted=false [8:acs:bob Hold muted=false]")
	status, body, _ = send(t, x.c, "POST", "/api/incoming-calls/"+daveCall+"/accept", dave, "")
	decode("dave accepts via c", status, http.StatusOK, body)
	waitCall(t, x.b, x.bob, cons.ID, "Connected muted=false [8:acs:dave Connected muted=false]")
	status, body, _ = send(t, x.c, "POST", "/api/calls/"+cons.ID+"/transfer/complete", x.bob, "")
	done = decode("bob completes via c", status, http.StatusOK, body)
	if done.CallEndReason == nil || *done.CallEndReason != calls.ReasonTransferred {
		t.Errorf("bob's call after the completion: %+v, want 0/7015", done.CallEndReason)
	}
	waitCall(t, x.a, cust, custCall.ID, "Connected muted=false [8:acs:dave Connected muted=false]")
	waitCall(t, x.a, dave, daveCall, "Connected muted=false [8:acs:cust Connected muted=false]")

	// Alice, on a, calls carol (on a) and bob (on b), and merges through c:
	// a runs both calls; bob's node shows him the group call.
	start := func(to string, next func() (map[string]any, error), tok string) (string, string) {
		t.Helper()
		status, body, _ := send(t, x.b, "POST", "/api/calls", x.alice, `{"participants":[{"communicationUserId":"`+to+`"}]}`)
		c := decode("alice calls "+to, status, http.StatusCreated, body)
		in := ringing(t, next)
		status, body, _ = send(t, x.a, "POST", "/api/incoming-calls/"+in+"/accept", tok, "")
		decode(to+" accepts", status, http.StatusOK, body)
		return c.ID, in
	}
	first, carolIn := start("carol", carolNext, carol)
	second, bobIn := start("bob", x.bobNext, x.bob)
	waitCall(t, x.b, x.bob, bobIn, "Connected muted=false [8:acs:alice Connected muted=false]")
	status, body, _ = send(t, x.c, "POST", "/api/calls/"+first+"/merge", x.alice, `{"callId":"`+second+`"}`)
	merged := decode("alice merges via c", status, http.StatusOK, body)
	if merged.Kind != calls.Group || merged.State != calls.StateConnected || len(merged.RemoteParticipants) != 2 {
		t.Errorf("merged call: %s %s with %d participants", merged.Kind, merged.State, len(merged.RemoteParticipants))
	}
	waitCall(t, x.b, x.bob, bobIn, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:carol Connected muted=false]")
	waitCall(t, x.a, carol, carolIn, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:bob Connected muted=false]")

	// Each party's history records the steps of the transfers and the
	// merge done on another node, as one node's does.
	sue := mint(t, "sue", calls.RoleSupervisor)
	for _, h := range []struct {
		who, id string
		want    []string
	}{
		{"the customer", custCall.ID, []string{"completed by remote:8:acs:alice", "blind by remote:8:acs:carol", "completed by remote:8:acs:bob"}},
		{"dave's first call", daveFirst, []string{"canceled by remote:8:acs:bob"}},
		{"dave's call", daveCall, []string{"completed by remote:8:acs:bob"}},
		{"bob's merged call", bobIn, []string{"merged by remote:8:acs:alice"}},
	} {
		waitHistoryEvents(t, x.c, sue, h.id, h.who, calls.EventTransferUpdated, "step", h.want)
	}

	// The customer, on a, calls bob, on b, and bob merges that call into
	// the group call a runs: b takes the customer's call's anchor over and
	// joins it to a's group call by a bridge (peermerge.go). The customer
	// sees everyone; a's group call keeps showing bob alone of b's.
	status, body, _ = send(t, x.a, "POST", "/api/calls", cust, `{"participants":[{"communicationUserId":"bob"}]}`)
	custCall2 := decode("the customer calls bob", status, http.StatusCreated, body)
	mirrored := ringing(t, x.bobNext)
	status, body, _ = send(t, x.b, "POST", "/api/incoming-calls/"+mirrored+"/accept", x.bob, "")
	decode("bob accepts", status, http.StatusOK, body)
	status, body, _ = send(t, x.b, "POST", "/api/calls/"+bobIn+"/merge", x.bob, `{"callId":"`+mirrored+`"}`)
	bobMerged := decode("bob merges the customer's call into the group call a runs", status, http.StatusOK, body)
	if bobMerged.ID != bobIn || bobMerged.Kind != calls.Group || bobMerged.State != calls.StateConnected || len(bobMerged.RemoteParticipants) != 3 {
		t.Errorf("bob's merged call: %s %s %s with %d participants, want %s a Connected group call with 3", bobMerged.ID, bobMerged.Kind, bobMerged.State, len(bobMerged.RemoteParticipants), bobIn)
	}
	waitCall(t, x.a, cust, custCall2.ID, "Connected muted=false [8:acs:bob Connected muted=false] [8:acs:alice Connected muted=false] [8:acs:carol Connected muted=false]")
	waitCall(t, x.a, carol, carolIn, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:bob Connected muted=false]")
	waitHistoryEvents(t, x.c, sue, custCall2.ID, "the customer's second call", calls.EventTransferUpdated, "step", []string{"merged by remote:8:acs:bob"})
	waitHistoryEvents(t, x.c, sue, bobIn, "bob's merged call", calls.EventTransferUpdated, "step", []string{"merged by remote:8:acs:alice", "merged by agent:8:acs:bob"})
}

// waitHistoryEvents polls the history of call id through m until its events
// of type typ, each as "<its data's field> by <actor kind>:<actor rawId>",
// are want.
func waitHistoryEvents(t *testing.T, m *Main, token, id, who string, typ calls.EventType, field string, want []string) {
	t.Helper()
	var got []string
	status := 0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got = nil
		var body []byte
		status, body = get(t, "http://"+m.Addr+"/api/history/calls/"+id, token)
		var h struct {
			Timeline []struct {
				Type  calls.EventType `json:"type"`
				Actor *calls.Actor    `json:"actor"`
				Data  map[string]any  `json:"data"`
			} `json:"timeline"`
		}
		if status == http.StatusOK && json.Unmarshal(body, &h) == nil {
			for _, e := range h.Timeline {
				if e.Type == typ && e.Actor != nil {
					got = append(got, fmt.Sprint(e.Data[field])+" by "+string(e.Actor.Kind)+":"+e.Actor.RawID)
				}
			}
		}
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's history (%s: %d) has %s %v, want %v", who, id, status, typ, got, want)
		}
	}
}
