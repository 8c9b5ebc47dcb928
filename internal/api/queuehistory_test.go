package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestQueueHistoryFilter: a call that waited in a queue and the agent's
// call that answered it are found in history by that queue, neither by
// another; a bad queue name is invalid_request.
func TestQueueHistoryFilter(t *testing.T) {
	s := newQueueServer(t)
	sue, ann, carl := s.token("sue", calls.RoleSupervisor), s.token("ann", calls.RoleAgent), s.token("carl", calls.RoleCaller)
	sa := s.connect(ann)
	sa.waitFor(calls.EventSnapshot, "")
	members := []map[string]any{{"agent": "8:acs:ann"}}
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support", "members": members}, http.StatusCreated, nil)
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "other", "members": members}, http.StatusCreated, nil)
	// A call of no queue: never listed by one.
	var direct calls.Call
	s.do(http.MethodPost, "/api/calls", carl, map[string]any{"participants": []any{identityJSON("ann")}}, http.StatusCreated, &direct)
	sa.waitFor(calls.EventIncomingCall, "")
	s.do(http.MethodPost, "/api/calls/"+direct.ID+"/hangup", carl, nil, http.StatusOK, nil)

	var waiting, annCall calls.Call
	s.do(http.MethodPost, "/api/calls", carl, map[string]any{"queue": "support"}, http.StatusCreated, &waiting)
	s.step()
	offer := decodeData[calls.IncomingCallData](t, sa.waitFor(calls.EventIncomingCall, "")).IncomingCall
	s.do(http.MethodPost, "/api/incoming-calls/"+offer.ID+"/accept", ann, nil, http.StatusOK, &annCall)
	s.step() // the answer: the agent's call went through the queue
	if annCall.ID == waiting.ID {
		t.Fatalf("ann's call is the caller's (%s)", annCall.ID)
	}
	s.do(http.MethodPost, "/api/calls/"+annCall.ID+"/hangup", ann, nil, http.StatusOK, nil)
	s.step()

	ids := func(path string) []string {
		var page calls.CallPage
		s.do(http.MethodGet, path, sue, nil, http.StatusOK, &page)
		out := []string{}
		for _, c := range page.Items {
			out = append(out, c.ID)
		}
		slices.Sort(out)
		return out
	}
	want := []string{waiting.ID, annCall.ID}
	slices.Sort(want)
	if got := ids("/api/history/calls?queue=support"); !slices.Equal(got, want) {
		t.Errorf("history?queue=support = %v, want the caller's and ann's calls %v", got, want)
	}
	var page calls.CallPage
	s.do(http.MethodGet, "/api/history/calls?queue=support", sue, nil, http.StatusOK, &page)
	for _, c := range page.Items {
		if !slices.Equal(c.Queues, []string{"support"}) {
			t.Errorf("call %s in history shows queues %v, want [support]", c.ID, c.Queues)
		}
	}
	if got := ids("/api/history/calls?queue=other"); len(got) != 0 {
		t.Errorf("history?queue=other = %v, want none", got)
	}
	if got := ids("/api/history/calls"); !slices.Contains(got, direct.ID) || len(got) <= len(want) {
		t.Errorf("history = %v, want the direct call %s and more than the queue's", got, direct.ID)
	}
	s.wantError(http.MethodGet, "/api/history/calls?queue=a%20b", sue, nil, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodGet, "/api/history/calls?queue=", sue, nil, http.StatusBadRequest, calls.CodeInvalidRequest)
}
