package storetest

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// testMonitorTimeline: a supervisor's listen, whisper, barge and leave on
// an agent's call come back from history in order with who did them (the
// supervisor's kind and rawId) and their data; the agent's call keeps the
// supervisor as a participant with her mode, her own monitor leg keeps its
// mode and the call it monitors, and filtering by participant finds the
// agent's call by the supervisor.
func testMonitorTimeline(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	agentCall := newCall("call-010", agentA, calls.Incoming, at(2, 0), p1, super)
	agentCall.Kind, agentCall.GroupID = calls.OneToOne, ""
	agentCall.RemoteParticipants[1].MonitorMode = calls.MonitorWhisper
	monLeg := newCall("call-011", super, calls.Outgoing, at(2, 5), agentA, p1)
	monLeg.Kind, monLeg.GroupID = calls.OneToOne, ""
	monLeg.MonitorMode, monLeg.MonitoredCallID = calls.MonitorWhisper, agentCall.ID

	by := actor(calls.ActorSupervisor, super)
	change := func(old, mode calls.MonitorMode, micros int) calls.Event {
		return event(agentCall, calls.EventMonitorChanged, at(2, micros), by,
			calls.MonitorChangedData{Supervisor: super, Agent: agentA, Mode: mode, OldMode: old})
	}
	evs := []calls.Event{
		change("", calls.MonitorListen, 10),
		change(calls.MonitorListen, calls.MonitorWhisper, 20),
		change(calls.MonitorWhisper, calls.MonitorBarge, 30),
		change(calls.MonitorBarge, calls.MonitorWhisper, 40),
	}
	left := change(calls.MonitorWhisper, "", 50)
	record(t, s,
		calls.Record{Call: agentCall, Events: evs[:1]},
		calls.Record{Call: monLeg, Events: []calls.Event{event(monLeg, calls.EventMonitorChanged, at(2, 10), actor(calls.ActorAgent, super),
			calls.MonitorChangedData{Supervisor: super, Agent: agentA, Mode: calls.MonitorListen})}},
	)
	record(t, s, calls.Record{Call: agentCall, Events: evs[1:]})
	record(t, s, calls.Record{Call: agentCall, Events: []calls.Event{left}})

	h, err := s.FindCallByID(t.Context(), agentCall.ID)
	if err != nil {
		t.Fatalf("FindCallByID(%q): %v", agentCall.ID, err)
	}
	checkCall(t, h.Call, agentCall)
	checkTimeline(t, h.Timeline, append(evs, left))

	h, err = s.FindCallByID(t.Context(), monLeg.ID)
	if err != nil {
		t.Fatalf("FindCallByID(%q): %v", monLeg.ID, err)
	}
	checkCall(t, h.Call, monLeg)
	if h.Call.MonitorMode != calls.MonitorWhisper || h.Call.MonitoredCallID != agentCall.ID {
		t.Errorf("her monitor leg came back %q of %q, want whisper of %s", h.Call.MonitorMode, h.Call.MonitoredCallID, agentCall.ID)
	}

	page := findCalls(t, s, calls.CallFilter{Participant: super})
	if got, want := idsOf(page.Items), []string{agentCall.ID}; !slices.Equal(got, want) {
		t.Errorf("FindCalls(participant %s) = %v, want %v", super, got, want)
	}
}
