package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestDTMFTimeline: POST /api/calls/{id}/dtmf tells both parties' streams
// (dtmf, the sender as its actor, the count of tones) and puts it in both
// calls' history timelines, which a supervisor and the agent read; no
// answer carries the digits.
func TestDTMFTimeline(t *testing.T) {
	const card = "4111111111111111#"
	s := newServer(t, serverOptions{media: &callstest.Media{}})
	alice, bob, sue := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent), s.token("sue", calls.RoleSupervisor)
	aliceEvents, bobEvents := s.connect(alice), s.connect(bob)
	aliceEvents.waitFor(calls.EventSnapshot, "")
	bobEvents.waitFor(calls.EventSnapshot, "")

	var aliceCall, bobCall calls.Call
	s.do("POST", "/api/calls", alice, map[string]any{"participants": []any{identityJSON("bob")}}, http.StatusCreated, &aliceCall)
	in := bobEvents.waitFor(calls.EventIncomingCall, "")
	s.do("POST", "/api/incoming-calls/"+in.CallID+"/accept", bob, nil, http.StatusOK, &bobCall)
	var after calls.Call
	s.do("POST", "/api/calls/"+aliceCall.ID+"/dtmf", alice, map[string]any{"tones": card}, http.StatusOK, &after)

	want := calls.DTMFData{Participant: "8:acs:alice", Count: len(card)}
	for _, tt := range []struct {
		name   string
		events *stream
		call   string
		reader string
		kind   calls.ActorKind
	}{
		{"alice's (she sent them)", aliceEvents, aliceCall.ID, alice, calls.ActorAgent},
		{"bob's", bobEvents, bobCall.ID, sue, calls.ActorRemote},
	} {
		ev := tt.events.waitFor(calls.EventDTMF, tt.call)
		if d := decodeData[calls.DTMFData](t, ev); d != want || ev.Actor == nil || ev.Actor.Kind != tt.kind || ev.Actor.RawID != "8:acs:alice" {
			t.Errorf("%s stream: dtmf %+v by %+v, want %+v by %s alice", tt.name, d, ev.Actor, want, tt.kind)
		}
		var h struct {
			Timeline []struct {
				Type  calls.EventType `json:"type"`
				Actor *calls.Actor    `json:"actor"`
				Data  calls.DTMFData  `json:"data"`
			} `json:"timeline"`
		}
		body := s.do("GET", "/api/history/calls/"+tt.call, tt.reader, nil, http.StatusOK, &h)
		var got []calls.DTMFData
		for _, e := range h.Timeline {
			if e.Type == calls.EventDTMF {
				got = append(got, e.Data)
				if e.Actor == nil || e.Actor.Kind != tt.kind || e.Actor.RawID != "8:acs:alice" {
					t.Errorf("%s timeline: dtmf by %+v, want %s alice", tt.name, e.Actor, tt.kind)
				}
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s timeline: dtmf %+v, want [%+v]", tt.name, got, want)
		}
		if strings.Contains(string(body), card[:8]) {
			t.Errorf("%s history carries the digits: %s", tt.name, body)
		}
	}
}
