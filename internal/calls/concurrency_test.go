package calls_test

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// checkEventsOneActive replays every identity's events in the order they
// were published and fails if any identity ever had two Connected calls.
// It answers, per identity, whether each call it still knows of is
// Connected by the events.
func checkEventsOneActive(t *testing.T, f *callstest.Fixture) map[string]map[string]bool {
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
	return active
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

// policyState is how package holdpolicy sees a call from its view: live,
// held by its own identity (HeldTime), held by the other side of a 1:1
// call (that participant is on Hold).
func policyState(c calls.Call) holdpolicy.State {
	live := c.State == calls.StateConnected || c.State == calls.StateLocalHold || c.State == calls.StateRemoteHold
	pc := holdpolicy.Call{ID: c.ID, Live: live, HeldByAgent: c.HeldTime != nil}
	if c.Kind == calls.OneToOne && c.MonitorMode == "" {
		// The other side, not a monitoring supervisor (whose hold is her own).
		for _, p := range c.RemoteParticipants {
			if p.MonitorMode == "" && p.State == calls.ParticipantHold {
				pc.HeldByRemote = true
			}
		}
	}
	return pc.State()
}

// checkViews checks calls, one consistent view of several identities'
// calls, against the hold policy: each call's state is the one the policy
// gives its holds, and no identity has more than one Connected call.
func checkViews(t *testing.T, list []calls.Call) {
	t.Helper()
	active := map[string]string{}
	for _, c := range list {
		want := map[holdpolicy.State]calls.CallState{
			holdpolicy.Connected: calls.StateConnected, holdpolicy.LocalHold: calls.StateLocalHold,
			holdpolicy.RemoteHold: calls.StateRemoteHold,
		}
		st := policyState(c)
		if w, ok := want[st]; ok && c.State != w {
			t.Errorf("%s's call %s is %s; by its holds the policy says %s", c.AgentID, c.ID, c.State, st)
		}
		if c.IsActive != (c.State == calls.StateConnected) {
			t.Errorf("%s's call %s is %s with isActive %v", c.AgentID, c.ID, c.State, c.IsActive)
		}
		if st != holdpolicy.Connected {
			continue
		}
		if other, ok := active[c.AgentID]; ok {
			t.Errorf("%s has two Connected calls at once: %s and %s", c.AgentID, other, c.ID)
		}
		active[c.AgentID] = c.ID
	}
}

// TestCrossAgentStress: agents who share calls place, accept, reject,
// hold, resume, mute and hang up at once, two goroutines per agent, while
// supervisors list everyone's calls and attach. Nothing deadlocks (the
// test ends); every view a supervisor gets, which shows everyone at one
// moment, agrees with the hold policy and has at most one Connected call
// per agent; so does the end; and the events, replayed, never show two
// and end where the state ends. With ResumeLastHeld, ends also start
// follow-up operations (resuming the call held last) that race the rest.
func TestCrossAgentStress(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy holdpolicy.Options
	}{
		{"default policy", holdpolicy.Options{}},
		{"resume last held", holdpolicy.Options{ResumeLastHeld: true}},
	} {
		t.Run(tc.name, func(t *testing.T) { crossAgentStress(t, tc.policy) })
	}
}

func crossAgentStress(t *testing.T, policy holdpolicy.Options) {
	f := callstest.New(t, calls.Config{Policy: policy})
	agents := []calls.Principal{alice, bob, carol, dave, callstest.Agent("erin"), callstest.Agent("frank")}
	for _, p := range agents {
		f.Connect(t, p)
	}
	// Every pair shares a call, answered.
	for i, a := range agents {
		for _, b := range agents[i+1:] {
			connect(t, f, a, b)
		}
	}
	ops := 600
	if testing.Short() {
		ops = 150
	}
	var (
		wg      sync.WaitGroup
		working sync.WaitGroup
		stop    = make(chan struct{})
	)
	for w := range 2 * len(agents) {
		p := agents[w%len(agents)]
		working.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range ops {
				list, err := f.ListCalls(ctx, p, "")
				if err != nil {
					t.Errorf("list: %v", err)
					return
				}
				checkViews(t, list)
				if in, _ := f.ListIncoming(ctx, p); len(in) > 0 && r.IntN(3) > 0 {
					c := in[r.IntN(len(in))]
					if r.IntN(5) == 0 {
						_, _ = f.Reject(ctx, p, c.ID)
					} else {
						_, _ = f.Accept(ctx, p, c.ID)
					}
					continue
				}
				if len(list) == 0 || r.IntN(10) == 0 {
					if peer := agents[r.IntN(len(agents))]; peer.Identifier != p.Identifier {
						_, _ = f.StartCall(ctx, p, to(peer))
					}
					continue
				}
				c := list[r.IntN(len(list))]
				switch r.IntN(10) {
				case 0:
					_, _ = f.HangUp(ctx, p, c.ID, false)
				case 1:
					_, _ = f.SetMuted(ctx, p, c.ID, r.IntN(2) == 0)
				case 2, 3, 4:
					_, _ = f.Hold(ctx, p, c.ID)
				default:
					_, _ = f.Resume(ctx, p, c.ID)
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			list, err := f.ListCalls(ctx, sup, "")
			if err != nil {
				t.Errorf("supervisor list: %v", err)
				return
			}
			checkViews(t, list)
			detach, err := f.Attach(ctx, sup, func(snap calls.Snapshot) { checkViews(t, snap.Calls) })
			if err != nil {
				t.Errorf("supervisor attach: %v", err)
				return
			}
			detach("")
		}
	})
	working.Wait()
	close(stop)
	wg.Wait()

	final, err := f.ListCalls(ctx, sup, "")
	if err != nil {
		t.Fatal(err)
	}
	checkViews(t, final)
	replayed := checkEventsOneActive(t, f)
	for _, c := range final {
		if (c.State == calls.StateConnected) != replayed[c.AgentID][c.ID] {
			t.Errorf("%s's call %s is %s, but its events say Connected=%v", c.AgentID, c.ID, c.State, replayed[c.AgentID][c.ID])
		}
		delete(replayed[c.AgentID], c.ID)
	}
	for agent, a := range replayed {
		for id, on := range a {
			if on {
				t.Errorf("%s's call %s is Connected by its events but not live", agent, id)
			}
		}
	}
}
