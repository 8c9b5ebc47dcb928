package calls_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/routing"
)

// TestQueueAvailability: what queues ask of agent status. Offerable only
// when connected, Available and under maxConcurrent live calls; IdleSince
// follows becoming Available and a call's end; the system's Away is told
// and blocks offers.
func TestQueueAvailability(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	const a = "8:acs:alice"
	now := f.Clock.Now()
	if f.Offerable(a, 1, now) || !f.IdleSince(a).IsZero() {
		t.Fatal("an agent never connected is offerable or idle")
	}
	// OfferState (what other nodes are told) says what Offerable and
	// IdleSince weigh.
	offer := func(what string, want calls.OfferState) {
		t.Helper()
		if got := f.OfferState(a); got != want {
			t.Errorf("%s: OfferState = %+v, want %+v", what, got, want)
		}
		if got := slices.Contains(f.OfferAgents(), a); got != want.Connected {
			t.Errorf("%s: OfferAgents has alice: %v", what, got)
		}
		// LookAll, the look at all of a queue's members at once, answers
		// what Offerable and IdleSince answer one by one.
		agents := []string{a, "8:acs:bob", "8:acs:nobody"}
		for _, maxConc := range []int{0, 1, 2} {
			offerable, idle := make([]bool, len(agents)), make([]time.Time, len(agents))
			f.LookAll(agents, maxConc, now, offerable, idle)
			for i, x := range agents {
				if offerable[i] != f.Offerable(x, maxConc, now) || !idle[i].Equal(f.IdleSince(x)) {
					t.Errorf("%s: LookAll(%s, max %d) = %v, %v; one by one %v, %v", what, x, maxConc,
						offerable[i], idle[i], f.Offerable(x, maxConc, now), f.IdleSince(x))
				}
			}
		}
	}
	offer("never connected", calls.OfferState{})
	f.Connect(t, alice)
	f.Connect(t, bob)
	if !f.Offerable(a, 1, now) || !f.IdleSince(a).Equal(now) {
		t.Fatalf("connected: offerable %v, idle since %v, want true, %v", f.Offerable(a, 1, now), f.IdleSince(a), now)
	}
	offer("connected", calls.OfferState{Connected: true, Chosen: routing.Available, IdleSince: now})
	f.Clock.Advance(time.Minute)
	ac, _ := connect(t, f, alice, bob)
	if f.Offerable(a, 1, now) || !f.Offerable(a, 2, now) {
		t.Error("on a call: offerable at maxConcurrent 1, or not at 2")
	}
	offer("on a call", calls.OfferState{Connected: true, Chosen: routing.Available, LiveCalls: 1, IdleSince: now})
	f.Clock.Advance(time.Minute)
	mustCall(t)(f.HangUp(ctx, alice, ac.ID, false))
	ended := f.Clock.Now()
	if !f.Offerable(a, 1, now) || !f.IdleSince(a).Equal(ended) {
		t.Errorf("after the call: offerable %v, idle since %v, want true, %v", f.Offerable(a, 1, now), f.IdleSince(a), ended)
	}
	mustData := callstest.Must[calls.AgentStatusData](t)
	mustData(f.EnterWrapUp(ctx, a, ac.ID, 30))
	if f.Offerable(a, 1, now) {
		t.Error("offerable in WrapUp")
	}
	f.Clock.Advance(30 * time.Second)
	if !f.Offerable(a, 1, now) || !f.IdleSince(a).Equal(ended.Add(30*time.Second)) {
		t.Errorf("after wrap-up: offerable %v, idle since %v", f.Offerable(a, 1, now), f.IdleSince(a))
	}
	d := mustData(f.SetStatusBySystem(ctx, a, calls.SetStatusRequest{Status: routing.Away}))
	if d.Status != routing.Away || d.ChangedBy.Kind != calls.ActorSystem || f.Offerable(a, 1, now) {
		t.Errorf("SetStatusBySystem(Away) = %+v, offerable %v", d, f.Offerable(a, 1, now))
	}
	offer("away", calls.OfferState{Connected: true, Chosen: routing.Away, IdleSince: ended})
	got := statusEvents(f, a)
	if last := got[len(got)-1]; last.Status != routing.Away || last.ChangedBy.Kind != calls.ActorSystem {
		t.Errorf("last agentStatusChanged %+v, want Away by the system", last)
	}
	if _, err := f.SetStatusBySystem(ctx, "8:acs:", calls.SetStatusRequest{Status: routing.Away}); calls.ErrorCode(err) != calls.CodeInvalidIdentifier {
		t.Errorf("SetStatusBySystem of a bad rawId: %v", err)
	}
}

// TestQueueCallerEndsWithAgent: a queue caller's call (EndWithCaller)
// ends when the agent who answered leaves her alone in it, in the same
// step and with the reason a 1:1 call's other side would get;
// supervisors monitoring are no company, a colleague the agent brought
// in is. A withdraw takes back only an offer still ringing. Nothing of
// the call is kept once the queue forgot it.
func TestQueueCallerEndsWithAgent(t *testing.T) {
	sue := callstest.Supervisor("sue")
	tests := []struct {
		name string
		// act runs with the caller's call cc answered by alice (ac); it
		// answers the reason the caller's call should end with, or nil
		// when it should go on, Connected.
		act func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason
	}{
		{"agent hangs up", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			mustCall(t)(f.HangUp(ctx, alice, ac.ID, false))
			return &calls.ReasonRemoteHungUp
		}},
		{"agent ends it for everyone", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			mustCall(t)(f.HangUp(ctx, alice, ac.ID, true))
			return &calls.ReasonEndedForAll
		}},
		{"agent's media lost", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			f.MediaLost(alice.Identifier.RawID())
			return &calls.ReasonMediaLost
		}},
		{"supervisor removes the agent", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			f.Connect(t, sue)
			mustCall(t)(f.HangUp(ctx, sue, ac.ID, false))
			wantEnded(t, f, ac.ID, calls.ReasonRemoved)
			return &calls.ReasonRemoteHungUp
		}},
		{"a supervisor listening is no company", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			f.Connect(t, sue)
			mon := mustCall(t)(f.Monitor(ctx, sue, ac.ID, calls.MonitorRequest{Mode: calls.MonitorListen}))
			mustCall(t)(f.HangUp(ctx, alice, ac.ID, false))
			wantEnded(t, f, mon.ID, calls.ReasonRemoteHungUp)
			return &calls.ReasonRemoteHungUp
		}},
		{"switchboard shut down", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			if err := f.Close(ctx); err != nil {
				t.Fatal(err)
			}
			return &calls.ReasonShutdown
		}},
		{"a colleague she brought in stays", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			f.Connect(t, bob)
			if _, err := f.AddParticipant(ctx, alice, ac.ID, calls.AddParticipantRequest{Identifier: bob.Identifier}); err != nil {
				t.Fatal(err)
			}
			mustCall(t)(f.Accept(ctx, bob, incoming(t, f, bob).ID))
			mustCall(t)(f.HangUp(ctx, alice, ac.ID, false))
			return nil
		}},
		{"a withdraw after she answered", func(t *testing.T, f *callstest.Fixture, cc, ac calls.Call) *calls.EndReason {
			wantCode(t, f.WithdrawOffer(ctx, customer, cc.ID, alice.Identifier.RawID()), calls.CodeInvalidState)
			wantState(t, f, alice, ac.ID, calls.StateConnected)
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, cc := offeredQueueCall(t)
			ac := mustCall(t)(f.Accept(ctx, alice, incoming(t, f, alice).ID))
			want := tt.act(t, f, cc, ac)
			if want == nil {
				wantState(t, f, customer, cc.ID, calls.StateConnected)
				return
			}
			wantEnded(t, f, cc.ID, *want)
			if !f.AnsweredIn(cc.ID, alice.Identifier.RawID()) {
				t.Error("AnsweredIn: alice's answer forgotten before the queue forgot the call")
			}
			f.ForgetQueueCall(cc.ID)
			if f.AnsweredIn(cc.ID, alice.Identifier.RawID()) {
				t.Error("AnsweredIn: alice's answer kept after the queue forgot the call")
			}
			if n := calls.QueueAnswersKept(f.Switchboard); n != 0 {
				t.Errorf("%d ended queue calls kept after the queue forgot them", n)
			}
		})
	}

	// A withdraw while she rings cancels her offer; the caller waits on.
	// A voicemail forgets the call while it is live: nothing is kept.
	f, cc := offeredQueueCall(t)
	in := incoming(t, f, alice)
	if err := f.WithdrawOffer(ctx, customer, cc.ID, alice.Identifier.RawID()); err != nil {
		t.Fatalf("withdraw a ringing offer: %v", err)
	}
	wantEnded(t, f, in.ID, calls.ReasonCanceled)
	wantState(t, f, customer, cc.ID, calls.StateConnected)
	f.ForgetQueueCall(cc.ID)
	f.EndWith(ctx, cc.ID, calls.ReasonVoicemail)
	wantEnded(t, f, cc.ID, calls.ReasonVoicemail)
	if n := calls.QueueAnswersKept(f.Switchboard); n != 0 {
		t.Errorf("%d ended queue calls kept after a voicemail", n)
	}
}

// offeredQueueCall is the customer's call waiting in a queue
// (EndWithCaller) and offered to alice, ringing.
func offeredQueueCall(t *testing.T) (*callstest.Fixture, calls.Call) {
	t.Helper()
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, customer)
	cc := mustCall(t)(f.JoinCall(ctx, customer, calls.JoinRequest{GroupID: "4a1c7a52-2f55-4f6b-9d0e-0c0f3c1e9a11"}))
	f.EndWithCaller(cc.ID)
	if _, err := f.AddParticipant(ctx, customer, cc.ID, calls.AddParticipantRequest{Identifier: alice.Identifier}); err != nil {
		t.Fatal(err)
	}
	return f, cc
}
