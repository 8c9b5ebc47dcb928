package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestMonitorRoutes: POST /api/calls/{id}/monitor by a supervisor joins
// her to an agent's live call, a second POST switches the mode on the
// same leg, DELETE leaves; the customer's stream never names her until
// she barges; the agent's stream and the call's timeline carry every
// action with her as its actor; bad requests answer the contract's errors.
func TestMonitorRoutes(t *testing.T) {
	s := newServer(t, serverOptions{})
	cust := s.token("cust", calls.RoleCaller)
	alice, bob := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	sue := s.token("sue", calls.RoleSupervisor)
	custEvents, aliceEvents, sueEvents := s.connect(cust), s.connect(alice), s.connect(sue)
	for _, st := range []*stream{custEvents, aliceEvents, sueEvents} {
		st.waitFor(calls.EventSnapshot, "")
	}
	s.connect(bob).next()

	var custCall, aliceCall calls.Call
	s.do("POST", "/api/calls", cust, map[string]any{"participants": []any{identityJSON("alice")}}, http.StatusCreated, &custCall)
	in := aliceEvents.waitFor(calls.EventIncomingCall, "")
	s.do("POST", "/api/incoming-calls/"+in.CallID+"/accept", alice, nil, http.StatusOK, &aliceCall)
	var ringing calls.Call
	s.do("POST", "/api/calls", bob, map[string]any{"participants": []any{identityJSON("sue")}}, http.StatusCreated, &ringing)

	path := "/api/calls/" + aliceCall.ID + "/monitor"
	listen := map[string]any{"mode": "listen"}
	s.wantError("POST", path, bob, listen, http.StatusForbidden, calls.CodeForbidden)
	s.wantError("POST", "/api/calls/no-such-call/monitor", sue, listen, http.StatusNotFound, calls.CodeCallNotFound)
	s.wantError("POST", path, sue, map[string]any{"mode": "shout"}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError("POST", path, sue, nil, http.StatusBadRequest, calls.CodeInvalidRequest)
	// A via (the call's node's word to the supervisor's, monitor.go) from a
	// client is refused.
	var refused map[string]map[string]string
	s.do("POST", path, sue, map[string]any{"mode": "listen", "via": map[string]any{"node": "b", "callId": aliceCall.ID,
		"serverCallId": aliceCall.ServerCallID, "agent": map[string]any{"identifier": identityJSON("alice")}}},
		http.StatusBadRequest, &refused)
	if msg := refused["error"]["message"]; !strings.Contains(msg, "nodes of a cluster alone") {
		t.Errorf("a client's via: %q, want it refused as the nodes' alone", msg)
	}
	s.wantError("POST", "/api/calls/"+ringing.ID+"/monitor", sue, listen, http.StatusConflict, calls.CodeInvalidState)
	s.wantError("DELETE", path, sue, nil, http.StatusConflict, calls.CodeInvalidState)

	// custSaw reads the customer's stream up to alice's next mute change,
	// a marker the customer is told of, and reports whether anything
	// before it named sue.
	custSaw := func() bool {
		t.Helper()
		var c calls.Call
		s.do("POST", "/api/calls/"+aliceCall.ID+"/mute", alice, nil, http.StatusOK, &c)
		s.do("POST", "/api/calls/"+aliceCall.ID+"/unmute", alice, nil, http.StatusOK, &c)
		saw := false
		for {
			ev := custEvents.next()
			if ev.Type == calls.EventIsMutedChanged && !decodeData[calls.MutedData](t, ev).IsMuted {
				return saw
			}
			saw = saw || strings.Contains(string(ev.Data), "8:acs:sue")
		}
	}

	var mon calls.Call
	for i, step := range []struct {
		mode     calls.MonitorMode
		custSees bool
	}{
		{calls.MonitorListen, false},
		{calls.MonitorWhisper, false},
		{calls.MonitorBarge, true},
		{calls.MonitorWhisper, true}, // she left the customer's participants
	} {
		var c calls.Call
		s.do("POST", path, sue, map[string]any{"mode": step.mode}, http.StatusOK, &c)
		if c.MonitorMode != step.mode || c.State != calls.StateConnected || c.MonitoredCallID != aliceCall.ID {
			t.Fatalf("step %d: her leg %s %s of %s, want %s Connected of %s", i, c.MonitorMode, c.State, c.MonitoredCallID, step.mode, aliceCall.ID)
		}
		if i > 0 && c.ID != mon.ID {
			t.Fatalf("step %d: a new leg %s, want the same leg %s (a live switch)", i, c.ID, mon.ID)
		}
		mon = c
		if got := custSaw(); got != step.custSees {
			t.Errorf("step %d (%s): the customer's stream names sue: %v, want %v", i, step.mode, got, step.custSees)
		}
	}
	sueEvents.waitFor(calls.EventCallsUpdated, mon.ID)
	var left calls.Call
	s.do("DELETE", path, sue, nil, http.StatusOK, &left)
	if left.ID != mon.ID || left.State != calls.StateDisconnected {
		t.Errorf("DELETE answered %s %s, want %s Disconnected", left.ID, left.State, mon.ID)
	}
	sueEvents.waitFor(calls.EventCallEnded, mon.ID)
	var still calls.Call
	s.do("GET", "/api/calls/"+aliceCall.ID, alice, nil, http.StatusOK, &still)
	if still.State != calls.StateConnected {
		t.Errorf("alice's call is %s after sue left, want Connected", still.State)
	}

	// The agent was told of each action, and the timeline keeps them.
	var told []string
	for range 5 {
		ev := aliceEvents.waitFor(calls.EventMonitorChanged, aliceCall.ID)
		d := decodeData[calls.MonitorChangedData](t, ev)
		if ev.Actor == nil || ev.Actor.Kind != calls.ActorSupervisor || ev.Actor.RawID != "8:acs:sue" {
			t.Errorf("monitorChanged by %+v, want supervisor sue", ev.Actor)
		}
		told = append(told, string(d.Mode))
	}
	if got, want := strings.Join(told, ","), "listen,whisper,barge,whisper,"; got != want {
		t.Errorf("alice was told of modes %s, want %s", got, want)
	}
	var h calls.CallHistory
	s.do("GET", "/api/history/calls/"+aliceCall.ID, sue, nil, http.StatusOK, &h)
	n := 0
	for _, e := range h.Timeline {
		if e.Type == calls.EventMonitorChanged {
			n++
			if e.Actor == nil || e.Actor.Kind != calls.ActorSupervisor || e.Actor.RawID != "8:acs:sue" {
				t.Errorf("timeline entry %+v, want by supervisor sue", e)
			}
		}
	}
	if n != 5 {
		t.Errorf("alice's timeline has %d monitorChanged entries, want 5", n)
	}
}

// TestMonitorSupervisorActionsInTimeline: while she monitors, the
// supervisor's mute of the customer, mute of the agent and end for
// everyone are in the agent's call's timeline as hers, beside her monitor
// start.
func TestMonitorSupervisorActionsInTimeline(t *testing.T) {
	s := newServer(t, serverOptions{})
	cust := s.token("cust", calls.RoleCaller)
	alice, sue := s.token("alice", calls.RoleAgent), s.token("sue", calls.RoleSupervisor)
	aliceEvents := s.connect(alice)
	aliceEvents.waitFor(calls.EventSnapshot, "")
	s.connect(sue).next()
	var custCall, aliceCall calls.Call
	s.do("POST", "/api/calls", cust, map[string]any{"participants": []any{identityJSON("alice")}}, http.StatusCreated, &custCall)
	in := aliceEvents.waitFor(calls.EventIncomingCall, "")
	s.do("POST", "/api/incoming-calls/"+in.CallID+"/accept", alice, nil, http.StatusOK, &aliceCall)

	s.do("POST", "/api/calls/"+aliceCall.ID+"/monitor", sue, map[string]any{"mode": "listen"}, http.StatusOK, nil)
	s.do("POST", "/api/calls/"+aliceCall.ID+"/participants/8%3Aacs%3Acust/mute", sue, nil, http.StatusOK, nil)
	s.do("POST", "/api/calls/"+aliceCall.ID+"/participants/8%3Aacs%3Aalice/mute", sue, nil, http.StatusOK, nil)
	s.do("POST", "/api/calls/"+aliceCall.ID+"/hangup", sue, map[string]any{"forEveryone": true}, http.StatusOK, nil)

	var h calls.CallHistory
	s.do("GET", "/api/history/calls/"+aliceCall.ID, sue, nil, http.StatusOK, &h)
	bySue := map[calls.EventType]bool{}
	for _, e := range h.Timeline {
		if e.Actor != nil && e.Actor.Kind == calls.ActorSupervisor && e.Actor.RawID == "8:acs:sue" {
			bySue[e.Type] = true
		}
	}
	for _, want := range []calls.EventType{calls.EventMonitorChanged, calls.EventIsMutedChanged, calls.EventMutedByOthers, calls.EventCallEnded} {
		if !bySue[want] {
			t.Errorf("alice's timeline has no %s by supervisor sue: %+v", want, h.Timeline)
		}
	}
}
