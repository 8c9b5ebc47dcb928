package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestClusterTransfer: transfer and merge requests may reach any node.
// The customer, alice, carol and dave are served by node a (bob by b):
// the customer calls alice; alice, through node c, consults carol, and
// completes through b; the customer and carol are then Connected on a.
// Carol's blind transfer of the customer to bob, on b, is 501
// not_implemented (transfer across nodes is not built). Alice merges two
// calls through c.
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

	status, body, _ = send(t, x.c, "POST", "/api/calls/"+carolCall+"/transfer", carol, `{"target":{"communicationUserId":"bob"},"mode":"blind"}`)
	if status != http.StatusNotImplemented || !strings.Contains(body, `"not_implemented"`) {
		t.Errorf("carol, on a, transfers to bob, on b: %d %s, want 501 not_implemented", status, body)
	}
	waitCall(t, x.a, carol, carolCall, "Connected muted=false [8:acs:cust Connected muted=false]")

	// Alice calls carol and dave (all on a), and merges through c.
	start := func(to string, next func() (map[string]any, error), tok string) string {
		t.Helper()
		status, body, _ := send(t, x.b, "POST", "/api/calls", x.alice, `{"participants":[{"communicationUserId":"`+to+`"}]}`)
		c := decode("alice calls "+to, status, http.StatusCreated, body)
		status, body, _ = send(t, x.a, "POST", "/api/incoming-calls/"+ringing(t, next)+"/accept", tok, "")
		decode(to+" accepts", status, http.StatusOK, body)
		return c.ID
	}
	first, second := start("carol", carolNext, carol), start("dave", daveNext, dave)
	status, body, _ = send(t, x.c, "POST", "/api/calls/"+first+"/merge", x.alice, `{"callId":"`+second+`"}`)
	merged := decode("alice merges via c", status, http.StatusOK, body)
	if merged.Kind != calls.Group || merged.State != calls.StateConnected || len(merged.RemoteParticipants) != 2 {
		t.Errorf("merged call: %s %s with %d participants", merged.Kind, merged.State, len(merged.RemoteParticipants))
	}
}
