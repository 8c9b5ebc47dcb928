package store

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// recoveringStore is what testRecoverCrashed needs of a store.
type recoveringStore interface {
	calls.Store
	Flush(ctx context.Context) error
	RecoverCrashed(ctx context.Context) (int, error)
}

// crashedStore is one store's part in testRecoverCrashed.
type crashedStore struct {
	// open opens the store, on the same database each time.
	open func(t *testing.T) recoveringStore
	// setHeartbeat dates the closed store's database heartbeat at beat.
	setHeartbeat func(t *testing.T, beat time.Time)
	// alivePath is where the store keeps its alive mark.
	alivePath string
	// check, when set, checks what only this store shows after the
	// recovery.
	check func(t *testing.T)
}

// testRecoverCrashed is the recovery test of both stores: a run records
// a live call, a ringing call and an ended one, and dies with the alive
// mark tc leaves; the next run records a call of its own, and
// RecoverCrashed ends the two calls the dead run left live, at the time
// tc says, with 503, once.
func testRecoverCrashed(t *testing.T, tc aliveCase, s crashedStore) {
	t.Helper()
	before := s.open(t)

	// live: a group call; one participant left with its own reason, the
	// other is still in it; its last event is before the heartbeat.
	live := calls.Call{
		ID: "call-live", ServerCallID: "srv-1", AgentID: "8:acs:agent", Direction: calls.Outgoing,
		Kind: calls.Group, State: calls.StateConnected, IsActive: true,
		CallerInfo: calls.CallerInfo{Identifier: calls.CommunicationUser("agent")},
		RemoteParticipants: []calls.Participant{
			{Identifier: calls.PhoneNumber("+15550100001"), RawID: "4:+15550100001", State: calls.ParticipantConnected, IsSpeaking: true},
			{Identifier: calls.PhoneNumber("+15550100002"), RawID: "4:+15550100002", State: calls.ParticipantDisconnected, CallEndReason: &calls.EndReason{Code: 0, SubCode: 5000, Message: "left"}},
		},
		StartTime: tBase,
	}
	// late: still ringing, its last event after the heartbeat.
	late := calls.Call{ID: "call-late", AgentID: "8:acs:agent", Direction: calls.Incoming, Kind: calls.OneToOne,
		State: calls.StateRinging, CallerInfo: calls.CallerInfo{Identifier: calls.PhoneNumber("+15550100003")},
		RemoteParticipants: []calls.Participant{{Identifier: calls.PhoneNumber("+15550100003"), RawID: "4:+15550100003", State: calls.ParticipantConnected}},
		StartTime:          tBase.Add(time.Minute)}
	done := late
	done.ID, done.State = "call-done", calls.StateDisconnected
	reason, end := calls.ReasonDeclined, tBase.Add(2*time.Minute)
	done.CallEndReason, done.EndTime = &reason, &end
	ev := func(c calls.Call, at time.Time) calls.Event {
		return calls.Event{Type: calls.EventStateChanged, At: at, AgentID: c.AgentID, CallID: c.ID,
			Actor: &calls.Actor{Kind: calls.ActorAgent, RawID: c.AgentID}, Data: calls.StateChangedData{State: c.State}}
	}
	heartbeat := tBase.Add(time.Hour)
	before.Record(
		calls.Record{Call: live, Events: []calls.Event{ev(live, tBase.Add(10*time.Minute))}},
		calls.Record{Call: late, Events: []calls.Event{ev(late, tBase.Add(2*time.Hour))}},
		calls.Record{Call: done, Events: []calls.Event{ev(done, end)}},
	)
	mustFlush(t, before)
	if err := before.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The crash: the switchboard was last seen alive at heartbeat.
	s.setHeartbeat(t, heartbeat)
	tc.mark(t, s.alivePath, heartbeat)

	after := s.open(t)
	mine := calls.Call{ID: "call-mine", AgentID: "8:acs:agent", Direction: calls.Outgoing, Kind: calls.OneToOne,
		State: calls.StateConnected, CallerInfo: calls.CallerInfo{Identifier: calls.CommunicationUser("agent")},
		RemoteParticipants: []calls.Participant{}, StartTime: tBase.Add(3 * time.Hour)}
	after.Record(calls.Record{Call: mine})
	mustFlush(t, after)

	n, err := after.RecoverCrashed(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("RecoverCrashed = %d, %v; want 2, nil", n, err)
	}
	crash := calls.ReasonSwitchboardDied
	for _, tt := range []struct {
		id  string
		end time.Time
	}{
		{"call-live", tc.liveEnd(heartbeat)},
		{"call-late", tBase.Add(2 * time.Hour)},
	} {
		h, err := after.FindCallByID(t.Context(), tt.id)
		if err != nil {
			t.Fatal(err)
		}
		c := h.Call
		if c.State != calls.StateDisconnected || c.IsActive || c.CallEndReason == nil || *c.CallEndReason != crash ||
			c.EndTime == nil || !c.EndTime.Equal(tt.end) {
			t.Errorf("%s = %s, active %v, reason %+v, end %v; want Disconnected, ended with %+v at %v",
				tt.id, c.State, c.IsActive, c.CallEndReason, c.EndTime, crash, tt.end)
		}
		last := h.Timeline[len(h.Timeline)-1]
		if last.Type != calls.EventCallEnded || !last.At.Equal(tt.end) || last.Actor == nil || last.Actor.Kind != calls.ActorSystem {
			t.Errorf("%s's last event = %s at %v by %+v, want callEnded at %v by the system", tt.id, last.Type, last.At, last.Actor, tt.end)
		}
	}
	h, err := after.FindCallByID(t.Context(), "call-live")
	if err != nil {
		t.Fatal(err)
	}
	if p := h.Call.RemoteParticipants[0]; p.State != calls.ParticipantDisconnected || p.CallEndReason == nil || *p.CallEndReason != crash {
		t.Errorf("live participant = %s, %+v; want Disconnected with %+v", p.State, p.CallEndReason, crash)
	}
	if p := h.Call.RemoteParticipants[1]; p.CallEndReason == nil || p.CallEndReason.SubCode != 5000 {
		t.Errorf("participant who had left = %+v, want its own reason kept", p.CallEndReason)
	}
	if s.check != nil {
		s.check(t)
	}
	for _, id := range []string{"call-done", "call-mine"} {
		h, err := after.FindCallByID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r := h.Call.CallEndReason; r != nil && r.Code == 503 {
			t.Errorf("%s was ended by RecoverCrashed; only calls an earlier run left live should be", id)
		}
	}
	code := 503
	page, err := after.FindCalls(t.Context(), calls.CallFilter{EndCode: &code})
	if err != nil || len(page.Items) != 2 {
		t.Errorf("FindCalls(endCode 503) = %d calls, %v; want 2", len(page.Items), err)
	}
	if n, err := after.RecoverCrashed(t.Context()); n != 0 || err != nil {
		t.Errorf("RecoverCrashed again = %d, %v; want 0, nil", n, err)
	}
}
