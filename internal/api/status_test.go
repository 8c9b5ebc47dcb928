package api_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/routing"
)

type statusAnswer struct {
	RawID        string         `json:"rawId"`
	Status       routing.Status `json:"status"`
	ChosenStatus routing.Status `json:"chosenStatus"`
	ChangedBy    calls.Actor    `json:"changedBy"`
	WrapUpUntil  *string        `json:"wrapUpUntil"`
}

// waitStatus reads st until an agentStatusChanged of agent says want.
func waitStatus(t *testing.T, st *stream, agent string, want routing.Status) statusAnswer {
	t.Helper()
	for {
		ev := st.waitFor(calls.EventAgentStatusChanged, "")
		d := decodeData[statusAnswer](t, ev)
		if ev.AgentID == agent && d.Status == want {
			return d
		}
	}
}

func TestAgentStatusAPI(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice := s.token("alice", calls.RoleAgent)
	bob := s.token("bob", calls.RoleAgent)
	sue := s.token("sue", calls.RoleSupervisor)
	const a = "8:acs:alice"

	dash := s.connect(sue)
	dash.waitFor(calls.EventSnapshot, "")
	as := s.connect(alice)
	snap := as.waitFor(calls.EventSnapshot, "")
	_ = snap
	waitStatus(t, dash, a, routing.Available)

	var got statusAnswer
	s.do(http.MethodGet, "/api/me/status", alice, nil, http.StatusOK, &got)
	if got.Status != routing.Available || got.RawID != a {
		t.Fatalf("GET /api/me/status = %+v, want Available", got)
	}
	s.do(http.MethodPut, "/api/me/status", alice, map[string]any{"status": "Away"}, http.StatusOK, &got)
	if got.Status != routing.Away || got.ChangedBy.Kind != calls.ActorAgent {
		t.Fatalf("PUT Away = %+v", got)
	}
	d := waitStatus(t, dash, a, routing.Away)
	if d.ChangedBy.RawID != a {
		t.Errorf("dashboard told Away by %+v, want alice", d.ChangedBy)
	}
	waitStatus(t, as, a, routing.Away)

	// A supervisor sets her WrapUp for 60 s.
	s.do(http.MethodPut, "/api/agents/"+a+"/status", sue, map[string]any{"status": "WrapUp", "wrapUpSeconds": 60}, http.StatusOK, &got)
	if got.Status != routing.WrapUp || got.ChangedBy.Kind != calls.ActorSupervisor || got.WrapUpUntil == nil {
		t.Fatalf("supervisor's PUT WrapUp = %+v", got)
	}
	waitStatus(t, dash, a, routing.WrapUp)
	s.do(http.MethodGet, "/api/agents/"+a+"/status", sue, nil, http.StatusOK, &got)
	if got.Status != routing.WrapUp {
		t.Errorf("GET /api/agents/%s/status = %s, want WrapUp", a, got.Status)
	}

	// The admin key may set it too, as a supervisor named admin.
	s.do(http.MethodPut, "/api/agents/"+a+"/status", adminKey, map[string]any{"status": "Away"}, http.StatusOK, &got)
	if got.Status != routing.Away || got.ChangedBy.Kind != calls.ActorSupervisor || got.ChangedBy.RawID != "admin" {
		t.Fatalf("admin key's PUT Away = %+v", got)
	}
	s.do(http.MethodPut, "/api/agents/"+a+"/status", sue, map[string]any{"status": "WrapUp", "wrapUpSeconds": 60}, http.StatusOK, nil)
	s.wantError(http.MethodPut, "/api/me/status", adminKey, map[string]any{"status": "Away"}, http.StatusUnauthorized, calls.CodeUnauthorized)

	// Refusals, in the contract's format.
	s.wantError(http.MethodPut, "/api/me/status", alice, map[string]any{"status": "Lunch"}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodPut, "/api/me/status", alice, map[string]any{"status": "Busy"}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodPut, "/api/me/status", alice, map[string]any{"status": "Offline"}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodPut, "/api/me/status", alice, `{"status":`, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodPut, "/api/me/status", alice, nil, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodPut, "/api/agents/8:acs:bob/status", alice, map[string]any{"status": "Away"}, http.StatusForbidden, calls.CodeForbidden)
	s.wantError(http.MethodGet, "/api/agents/8:acs:bob/status", alice, nil, http.StatusForbidden, calls.CodeForbidden)
	s.wantError(http.MethodPut, "/api/me/status", "", map[string]any{"status": "Away"}, http.StatusUnauthorized, calls.CodeUnauthorized)
	s.wantError(http.MethodPut, "/api/me/wrap-up", alice, map[string]any{"callId": "nope", "code": "sale"}, http.StatusNotFound, calls.CodeCallNotFound)
	s.wantError(http.MethodPut, "/api/me/wrap-up", alice, map[string]any{"callId": "x", "code": ""}, http.StatusBadRequest, calls.CodeInvalidRequest)

	// A call: Busy; hung up: back to WrapUp; a wrap-up code; history.
	bs := s.connect(bob)
	bs.waitFor(calls.EventSnapshot, "")
	var call calls.Call
	s.do(http.MethodPost, "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"communicationUserId": "bob"}}}, http.StatusCreated, &call)
	in := bs.waitFor(calls.EventIncomingCall, "")
	inc := decodeData[calls.IncomingCallData](t, in)
	s.do(http.MethodPost, "/api/incoming-calls/"+inc.IncomingCall.ID+"/accept", bob, nil, http.StatusOK, nil)
	waitStatus(t, dash, "8:acs:bob", routing.Busy)
	s.do(http.MethodPost, "/api/calls/"+call.ID+"/hangup", alice, nil, http.StatusOK, nil)
	waitStatus(t, dash, "8:acs:bob", routing.Available)
	var w calls.WrapUpCode
	s.do(http.MethodPut, "/api/me/wrap-up", alice, map[string]any{"callId": call.ID, "code": "sale"}, http.StatusOK, &w)
	if w.Code != "sale" || w.CallID != call.ID || w.AgentID != a {
		t.Errorf("PUT /api/me/wrap-up = %+v", w)
	}
	var page calls.CallPage
	s.do(http.MethodGet, "/api/history/calls?wrapUpCode=sale", sue, nil, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != call.ID || page.Items[0].WrapUpCode != "sale" {
		t.Errorf("history by wrapUpCode=sale = %+v, want alice's call", page.Items)
	}
	s.do(http.MethodGet, "/api/history/calls?wrapUpCode=other", sue, nil, http.StatusOK, &page)
	if len(page.Items) != 0 {
		t.Errorf("history by wrapUpCode=other = %d calls, want none", len(page.Items))
	}
	if err := s.sb.FlushStatuses(t.Context()); err != nil {
		t.Fatal(err)
	}
	var changes struct {
		Items []struct {
			AgentID string         `json:"agentId"`
			Status  routing.Status `json:"status"`
		} `json:"items"`
	}
	s.do(http.MethodGet, "/api/history/agent-status?agent="+a, sue, nil, http.StatusOK, &changes)
	if len(changes.Items) < 4 || changes.Items[len(changes.Items)-1].Status != routing.Available {
		t.Errorf("alice's status history = %+v", changes.Items)
	}
	s.wantError(http.MethodGet, "/api/history/agent-status?agent=8:acs:bob", alice, nil, http.StatusForbidden, calls.CodeForbidden)
}
