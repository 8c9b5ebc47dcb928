package storetest

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// testLobbyTimeline: a joiner's wait in a room's lobby comes back from
// history: his call's lobby field, the InLobby state change, and the
// lobbyChanged entries of his entry and of his admission with who
// admitted him (as data and as the actor) and how long he waited; the
// organizer's call keeps isOrganizer.
func testLobbyTimeline(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	joiner := newCall("call-020", agentA, calls.Outgoing, at(3, 0), super)
	joiner.Kind, joiner.GroupID, joiner.RoomID, joiner.Lobby = calls.Room, "", "standup", true
	organizer := newCall("call-021", super, calls.Outgoing, at(3, 0), agentA)
	organizer.Kind, organizer.GroupID, organizer.RoomID = calls.Room, "", "standup"
	organizer.Lobby, organizer.IsOrganizer = true, true

	by := actor(calls.ActorRemote, super)
	evs := []calls.Event{
		event(joiner, calls.EventLobbyChanged, at(3, 1), actor(calls.ActorAgent, agentA),
			calls.LobbyChangedData{Participant: agentA, Action: calls.LobbyEntered}),
		event(joiner, calls.EventStateChanged, at(3, 2), by,
			calls.StateChangedData{OldState: calls.StateInLobby, State: calls.StateConnected, IsActive: true}),
		event(joiner, calls.EventLobbyChanged, at(3, 2), by,
			calls.LobbyChangedData{Participant: agentA, Action: calls.LobbyAdmitted, AdmittedBy: super, WaitedMs: 4200}),
	}
	record(t, s, calls.Record{Call: joiner, Events: evs[:1]}, calls.Record{Call: organizer})
	record(t, s, calls.Record{Call: joiner, Events: evs[1:]})

	h, err := s.FindCallByID(t.Context(), joiner.ID)
	if err != nil {
		t.Fatalf("FindCallByID(%q): %v", joiner.ID, err)
	}
	checkCall(t, h.Call, joiner)
	checkTimeline(t, h.Timeline, evs)
	if !h.Call.Lobby {
		t.Errorf("the joiner's call came back without its lobby")
	}
	h, err = s.FindCallByID(t.Context(), organizer.ID)
	if err != nil {
		t.Fatalf("FindCallByID(%q): %v", organizer.ID, err)
	}
	checkCall(t, h.Call, organizer)
	if !h.Call.IsOrganizer {
		t.Errorf("the organizer's call came back without isOrganizer")
	}
}
