package calls_test

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// checkEventsOneActive replays every identity's events in the order they
// were published and fails if any identity ever had two Connected calls.
func checkEventsOneActive(t *testing.T, f *callstest.Fixture) {
	t.Helper()
	active := map[string]map[string]bool{}
	for _, ev := range f.Publisher.Events("") {
		a := active[ev.AgentID]
		if a == nil {
			a = map[string]bool{}
			active[ev.AgentID] = a
		}
		switch d := ev.Data.(type) {
		case calls.StateChangedData:
			a[ev.CallID] = d.State == calls.StateConnected
		case calls.CallsUpdatedData:
			for _, c := range d.Added {
				a[c.ID] = c.State == calls.StateConnected
			}
			for _, c := range d.Removed {
				delete(a, c.ID)
			}
		case calls.CallEndedData:
			delete(a, ev.CallID)
		}
		n := 0
		for _, on := range a {
			if on {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("after %s on %s, %s had %d Connected calls", ev.Type, ev.CallID, ev.AgentID, n)
		}
	}
}

// TestRacingResumes: two requests racing to resume two held calls of one
// agent leave exactly one active.
func TestRacingResumes(t *testing.T) {
	echo := calls.Principal{Identifier: calls.EchoBot}
	for range 200 {
		f := callstest.New(t, calls.Config{})
		c1 := mustCall(t)(f.StartCall(ctx, alice, to(echo)))
		c2 := mustCall(t)(f.StartCall(ctx, alice, to(echo)))
		mustCall(t)(f.StartCall(ctx, alice, to(echo))) // holds c2; c1 is held too
		var wg sync.WaitGroup
		for _, id := range []string{c1.ID, c2.ID} {
			wg.Go(func() {
				if _, err := f.Resume(ctx, alice, id); err != nil {
					t.Errorf("resume %s: %v", id, err)
				}
			})
		}
		wg.Wait()
		if n := activeCalls(t, f, alice); n != 1 {
			t.Fatalf("after racing resumes alice has %d active calls, want 1", n)
		}
		checkEventsOneActive(t, f)
		_ = f.Close(ctx)
	}
}

// TestCrossAgentStress: agents who share calls hold, resume, mute, call
// and hang up at once. Nothing deadlocks (the test ends), and no agent
// ever has two Connected calls, neither in the end nor in its events.
func TestCrossAgentStress(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	agents := []calls.Principal{alice, bob, carol, dave}
	for _, p := range agents {
		f.Connect(t, p)
	}
	// Every pair shares a call, answered.
	for i, a := range agents {
		for _, b := range agents[i+1:] {
			connect(t, f, a, b)
		}
	}
	ops := 1500
	if testing.Short() {
		ops = 300
	}
	var wg sync.WaitGroup
	for w, p := range agents {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range ops {
				list, err := f.ListCalls(ctx, p, "")
				if err != nil {
					t.Errorf("list: %v", err)
					return
				}
				if len(list) == 0 || r.IntN(20) == 0 {
					peer := agents[r.IntN(len(agents))]
					if peer.Identifier != p.Identifier {
						_, _ = f.StartCall(ctx, p, to(peer))
					}
					if in, _ := f.ListIncoming(ctx, p); len(in) > 0 {
						_, _ = f.Accept(ctx, p, in[r.IntN(len(in))].ID)
					}
					continue
				}
				c := list[r.IntN(len(list))]
				switch r.IntN(10) {
				case 0:
					_, _ = f.HangUp(ctx, p, c.ID, false)
				case 1, 2:
					_, _ = f.SetMuted(ctx, p, c.ID, r.IntN(2) == 0)
				case 3, 4, 5:
					_, _ = f.Hold(ctx, p, c.ID)
				default:
					_, _ = f.Resume(ctx, p, c.ID)
				}
			}
		})
	}
	wg.Wait()
	for _, p := range agents {
		if n := activeCalls(t, f, p); n > 1 {
			t.Errorf("%s has %d active calls", p.Identifier, n)
		}
	}
	checkEventsOneActive(t, f)
}
