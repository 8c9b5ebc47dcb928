package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// testTransferTimeline: a consult transfer's steps come back from history
// in order with the agent as actor and their data; a live consult call
// keeps the call it consults for (consultCallId); the agent's call ended
// 0/7015 (transferred) is found by that end reason.
func testTransferTimeline(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	custLeg := newCall("call-020", agentA, calls.Incoming, at(3, 0), p1)
	consLeg := newCall("call-021", agentA, calls.Outgoing, at(3, 5), agentB)
	custLeg.State, custLeg.IsActive = calls.StateLocalHold, false
	custLeg.ConsultCallID, consLeg.ConsultCallID = consLeg.ID, custLeg.ID
	by := actor(calls.ActorAgent, agentA)
	started := event(custLeg, calls.EventTransferUpdated, at(3, 5), by,
		calls.TransferData{Step: calls.StepConsult, Agent: agentA, Target: agentB, CallID: consLeg.ID})
	record(t, s,
		calls.Record{Call: custLeg, Events: []calls.Event{started}},
		calls.Record{Call: consLeg, Events: []calls.Event{event(consLeg, calls.EventTransferUpdated, at(3, 5), by,
			calls.TransferData{Step: calls.StepConsult, Agent: agentA, Target: agentB, CallID: custLeg.ID})}},
	)
	h, err := s.FindCallByID(t.Context(), consLeg.ID)
	if err != nil {
		t.Fatalf("FindCallByID(%q): %v", consLeg.ID, err)
	}
	checkCall(t, h.Call, consLeg)

	done := custLeg
	done.ConsultCallID = ""
	done.State = calls.StateDisconnected
	reason := calls.ReasonTransferred
	done.CallEndReason = &reason
	end := at(4, 0)
	done.EndTime = &end
	done.RemoteParticipants = []calls.Participant{}
	completed := event(done, calls.EventTransferUpdated, at(4, 0), by,
		calls.TransferData{Step: calls.StepCompleted, Agent: agentA, Target: agentB, CallID: consLeg.ID})
	record(t, s, calls.Record{Call: done, Events: []calls.Event{completed}})

	h, err = s.FindCallByID(t.Context(), done.ID)
	if err != nil {
		t.Fatalf("FindCallByID(%q): %v", done.ID, err)
	}
	checkCall(t, h.Call, done)
	checkTimeline(t, h.Timeline, []calls.Event{started, completed})

	code, sub := 0, 7015
	page := findCalls(t, s, calls.CallFilter{EndCode: &code, EndSubCode: &sub, From: at(3, 0).Add(-time.Second)})
	if got, want := idsOf(page.Items), []string{done.ID}; !slices.Equal(got, want) {
		t.Errorf("FindCalls(end 0/7015) = %v, want %v", got, want)
	}
}
