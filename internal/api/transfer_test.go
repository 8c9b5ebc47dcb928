package api_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestTransferRoutes: the transfer and merge routes' errors in the
// contract's format; a consult through the API answers the consult call
// (201, naming the customer's call); the completion is told to the
// customer and the target with the agent as actor, and the customer's and
// the agent's timelines keep every step with who did it.
func TestTransferRoutes(t *testing.T) {
	s := newServer(t, serverOptions{})
	cust := s.token("cust", calls.RoleCaller)
	alice, bob := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	sue := s.token("sue", calls.RoleSupervisor)
	custEvents, aliceEvents, bobEvents := s.connect(cust), s.connect(alice), s.connect(bob)
	for _, st := range []*stream{custEvents, aliceEvents, bobEvents} {
		st.waitFor(calls.EventSnapshot, "")
	}

	var custCall, aliceCall calls.Call
	s.do("POST", "/api/calls", cust, map[string]any{"participants": []any{identityJSON("alice")}}, http.StatusCreated, &custCall)
	in := aliceEvents.waitFor(calls.EventIncomingCall, "")
	s.do("POST", "/api/incoming-calls/"+in.CallID+"/accept", alice, nil, http.StatusOK, &aliceCall)

	path := "/api/calls/" + aliceCall.ID + "/transfer"
	consult := map[string]any{"target": identityJSON("bob"), "mode": "consult"}
	s.wantError("POST", path, bob, map[string]any{"target": identityJSON("carol"), "mode": "consult"}, http.StatusNotFound, calls.CodeCallNotFound)
	s.wantError("POST", path, sue, consult, http.StatusForbidden, calls.CodeForbidden)
	s.wantError("POST", path, alice, map[string]any{"target": identityJSON("bob"), "mode": "warm"}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError("POST", path, alice, map[string]any{"queue": "support", "mode": "blind"}, http.StatusNotFound, calls.CodeNotFound)
	s.wantError("POST", path, alice, nil, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError("POST", path+"/complete", alice, nil, http.StatusConflict, calls.CodeInvalidState)
	s.wantError("POST", path+"/cancel", alice, nil, http.StatusConflict, calls.CodeInvalidState)
	s.wantError("POST", "/api/calls/"+aliceCall.ID+"/merge", alice, map[string]any{"callId": aliceCall.ID}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError("POST", "/api/calls/"+aliceCall.ID+"/merge", alice, map[string]any{"callId": "no-such-call"}, http.StatusNotFound, calls.CodeCallNotFound)

	var cons calls.Call
	s.do("POST", path, alice, consult, http.StatusCreated, &cons)
	if cons.ConsultCallID != aliceCall.ID || cons.ID == aliceCall.ID {
		t.Fatalf("consult answered %+v, want a new call naming %s", cons, aliceCall.ID)
	}
	s.wantError("POST", path, alice, consult, http.StatusConflict, calls.CodeInvalidState)
	bobIn := bobEvents.waitFor(calls.EventIncomingCall, "")
	s.do("POST", "/api/incoming-calls/"+bobIn.CallID+"/accept", bob, nil, http.StatusOK, nil)
	var done calls.Call
	s.do("POST", path+"/complete", alice, nil, http.StatusOK, &done)
	if done.CallEndReason == nil || *done.CallEndReason != calls.ReasonTransferred {
		t.Errorf("complete answered %+v, want alice's call ended 0/7015", done.CallEndReason)
	}

	for _, c := range []struct {
		who  string
		st   *stream
		call string
	}{{"customer", custEvents, custCall.ID}, {"bob", bobEvents, bobIn.CallID}} {
		ev := c.st.waitFor(calls.EventTransferUpdated, c.call)
		d := decodeData[calls.TransferData](t, ev)
		if d.Step != calls.StepCompleted || ev.Actor == nil || ev.Actor.RawID != "8:acs:alice" || ev.Actor.Kind != calls.ActorRemote {
			t.Errorf("the %s was told %+v by %+v, want completed by alice", c.who, d, ev.Actor)
		}
	}

	timeline := func(id string) []string {
		var h calls.CallHistory
		s.do("GET", "/api/history/calls/"+id, sue, nil, http.StatusOK, &h)
		var out []string
		for _, e := range h.Timeline {
			if e.Type == calls.EventTransferUpdated {
				step, _ := e.Data.(map[string]any)["step"].(string)
				out = append(out, step+" by "+string(e.Actor.Kind)+" "+e.Actor.RawID)
			}
		}
		return out
	}
	if got := timeline(custCall.ID); len(got) != 1 || got[0] != "completed by remote 8:acs:alice" {
		t.Errorf("the customer's timeline: %v", got)
	}
	if got := timeline(aliceCall.ID); len(got) != 2 || got[0] != "consult by agent 8:acs:alice" || got[1] != "completed by agent 8:acs:alice" {
		t.Errorf("alice's timeline: %v", got)
	}
}
