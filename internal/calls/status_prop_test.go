package calls_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/routing"
)

// TestAgentStatusInvariant: whatever alice does (calls placed and ended,
// holds, statuses chosen, wrap-ups that run out, connections opened and
// closed, a supervisor's changes), in random order: the status she is
// shown is Offline exactly when she has no connection, else Busy exactly
// when she has a call in progress, else her chosen one; and the last
// agentStatusChanged told of her says the same.
func TestAgentStatusInvariant(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 15))
		f := callstest.New(t, calls.Config{})
		sup := callstest.Supervisor("sue")
		const a = "8:acs:alice"
		var detaches []func(string)
		var live []string
		chosen := routing.Available
		for step := range 60 {
			switch r.IntN(8) {
			case 0:
				d, err := f.Attach(ctx, alice, func(calls.Snapshot) {})
				if err != nil {
					t.Fatal(err)
				}
				detaches = append(detaches, d)
			case 1:
				if len(detaches) > 0 {
					i := r.IntN(len(detaches))
					detaches[i]("")
					detaches = append(detaches[:i], detaches[i+1:]...)
				}
			case 2:
				c, err := f.StartCall(ctx, alice, calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}})
				if err == nil {
					live = append(live, c.ID)
				}
			case 3:
				if len(live) > 0 {
					i := r.IntN(len(live))
					_, _ = f.HangUp(ctx, alice, live[i], false)
					live = append(live[:i], live[i+1:]...)
				}
			case 4:
				if len(live) > 0 {
					_, _ = f.Hold(ctx, alice, live[r.IntN(len(live))])
				}
			case 5, 6:
				to := []routing.Status{routing.Available, routing.Away, routing.WrapUp}[r.IntN(3)]
				p := alice
				if r.IntN(2) == 0 {
					p = sup
				}
				req := calls.SetStatusRequest{Status: to}
				if to == routing.WrapUp {
					req.WrapUpSeconds = 1 + r.IntN(5)
				}
				if _, err := f.SetStatus(ctx, p, a, req); err != nil {
					t.Fatalf("seed %d step %d: SetStatus(%s): %v", seed, step, to, err)
				}
				chosen = to
			case 7:
				f.Clock.Advance(time.Duration(r.IntN(3)) * time.Second)
				if chosen == routing.WrapUp {
					if st, _ := f.AgentStatusOf(ctx, sup, a); st.ChosenStatus == routing.Available {
						chosen = routing.Available
					}
				}
			}
			st, err := f.AgentStatusOf(ctx, sup, a)
			if err != nil {
				t.Fatal(err)
			}
			var want routing.Status
			switch {
			case len(detaches) == 0:
				want = routing.Offline
			case len(live) > 0:
				want = routing.Busy
			default:
				want = chosen
			}
			if st.Status != want || st.ChosenStatus != chosen {
				t.Fatalf("seed %d step %d: status %s (chosen %s), want %s (chosen %s); %d connections, %d calls",
					seed, step, st.Status, st.ChosenStatus, want, chosen, len(detaches), len(live))
			}
			if evs := statusEvents(f, a); len(evs) > 0 {
				if last := evs[len(evs)-1]; last.Status != st.Status || last.ChosenStatus != st.ChosenStatus {
					t.Fatalf("seed %d step %d: last agentStatusChanged %s (chosen %s), status %s (chosen %s)",
						seed, step, last.Status, last.ChosenStatus, st.Status, st.ChosenStatus)
				}
			}
		}
		for _, d := range detaches {
			d("")
		}
	}
}
