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
