package api_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestLobbyRoutes: POST /api/calls/join with "lobby": true opens a room
// with a lobby; a later joiner's call is InLobby and the organizer's
// stream shows him InLobby; POST /api/calls/{id}/lobby/admit answers the
// contract's errors, then admits him (both streams told, the admission
// in his call's timeline with who admitted).
func TestLobbyRoutes(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, bob, carol := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent), s.token("carol", calls.RoleAgent)
	aliceEvents, bobEvents := s.connect(alice), s.connect(bob)
	aliceEvents.waitFor(calls.EventSnapshot, "")
	bobEvents.waitFor(calls.EventSnapshot, "")
	s.connect(carol).next()

	var a, b, c calls.Call
	s.do("POST", "/api/calls/join", alice, map[string]any{"roomId": "standup", "lobby": true}, http.StatusCreated, &a)
	if !a.Lobby || !a.IsOrganizer || a.State != calls.StateConnected {
		t.Fatalf("organizer's call %+v", a)
	}
	s.do("POST", "/api/calls/join", bob, map[string]any{"roomId": "standup"}, http.StatusCreated, &b)
	if b.State != calls.StateInLobby || b.IsOrganizer || len(b.RemoteParticipants) != 0 {
		t.Fatalf("joiner's call %+v, want InLobby seeing nobody", b)
	}
	ev := aliceEvents.waitFor(calls.EventRemoteParticipantsUpdated, a.ID)
	if d := decodeData[calls.ParticipantsUpdatedData](t, ev); len(d.Added) != 1 || d.Added[0].State != calls.ParticipantInLobby {
		t.Fatalf("alice told %+v, want bob added InLobby", d)
	}
	if d := decodeData[calls.LobbyChangedData](t, bobEvents.waitFor(calls.EventLobbyChanged, b.ID)); d.Action != calls.LobbyEntered {
		t.Errorf("bob told %+v, want entered", d)
	}

	admit := "/api/calls/" + a.ID + "/lobby/admit"
	bobRaw := map[string]any{"rawId": "8:acs:bob"}
	s.wantError("POST", "/api/calls/"+b.ID+"/lobby/admit", bob, bobRaw, http.StatusForbidden, calls.CodeForbidden)
	s.wantError("POST", admit, bob, bobRaw, http.StatusNotFound, calls.CodeCallNotFound)
	s.wantError("POST", admit, alice, map[string]any{"rawId": "8:acs:nobody"}, http.StatusNotFound, calls.CodeParticipantNotFound)
	s.wantError("POST", admit, alice, map[string]any{"rawId": "8:acs:alice"}, http.StatusConflict, calls.CodeInvalidState)
	s.wantError("POST", admit, alice, map[string]any{}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.do("POST", "/api/calls/join", carol, map[string]any{"roomId": "open"}, http.StatusCreated, &c)
	s.wantError("POST", "/api/calls/join", alice, map[string]any{"roomId": "open", "lobby": true}, http.StatusConflict, calls.CodeInvalidState)
	s.wantError("POST", "/api/calls/"+c.ID+"/lobby/admit", carol, bobRaw, http.StatusConflict, calls.CodeInvalidState)

	var after calls.Call
	s.do("POST", admit, alice, bobRaw, http.StatusOK, &after)
	if len(after.RemoteParticipants) != 1 || after.RemoteParticipants[0].State != calls.ParticipantConnected {
		t.Errorf("after admission alice's call %+v", after.RemoteParticipants)
	}
	ev = bobEvents.waitFor(calls.EventStateChanged, b.ID)
	if d := decodeData[calls.StateChangedData](t, ev); d.OldState != calls.StateInLobby || d.State != calls.StateConnected || !d.IsActive {
		t.Errorf("bob's stateChanged %+v, want InLobby -> Connected, active", d)
	}
	if ev.Actor == nil || ev.Actor.RawID != "8:acs:alice" {
		t.Errorf("bob's admission by %+v, want alice", ev.Actor)
	}
	ev = aliceEvents.waitFor(calls.EventParticipantStateChanged, a.ID)
	if d := decodeData[calls.ParticipantStateData](t, ev); d.OldState != calls.ParticipantInLobby || d.State != calls.ParticipantConnected {
		t.Errorf("alice's participantStateChanged %+v", d)
	}
	var h calls.CallHistory
	s.do("GET", "/api/history/calls/"+b.ID, bob, nil, http.StatusOK, &h)
	var admitted, entered bool
	for _, e := range h.Timeline {
		if e.Type != calls.EventLobbyChanged {
			continue
		}
		m, _ := e.Data.(map[string]any)
		entered = entered || m["action"] == calls.LobbyEntered
		admitted = admitted || m["action"] == calls.LobbyAdmitted && m["admittedBy"] == "8:acs:alice"
	}
	if !entered || !admitted {
		t.Errorf("bob's timeline %+v lacks his lobby entry or his admission by alice", h.Timeline)
	}
}
