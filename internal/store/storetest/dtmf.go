package storetest

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// testDTMFTimeline: DTMF tones keyed in a call come back from history in
// order with who keyed them (the agent herself, a phone) and how many.
func testDTMFTimeline(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	c := newCall("call-030", agentA, calls.Incoming, at(4, 0), p1)
	evs := []calls.Event{
		event(c, calls.EventDTMF, at(4, 10), actor(calls.ActorAgent, agentA),
			calls.DTMFData{Participant: agentA, Count: 3}),
		event(c, calls.EventDTMF, at(4, 20), actor(calls.ActorRemote, p1),
			calls.DTMFData{Participant: p1, Count: 17}),
	}
	record(t, s, calls.Record{Call: c, Events: evs[:1]})
	record(t, s, calls.Record{Call: c, Events: evs[1:]})

	h, err := s.FindCallByID(t.Context(), c.ID)
	if err != nil {
		t.Fatalf("FindCallByID(%q): %v", c.ID, err)
	}
	checkCall(t, h.Call, c)
	checkTimeline(t, h.Timeline, evs)
}
