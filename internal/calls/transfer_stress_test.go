package calls_test

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestTransferStress: customers call agents while the agents transfer
// (blind and consult), complete, cancel, merge, hold, resume and hang up,
// all at once. Throughout, nobody has two Connected calls (by the state
// and by the events), every microphone reaches one conversation at most,
// no conversation has one identity twice, and nobody is left with a
// consult in progress whose other call ended.
func TestTransferStress(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	agents := []calls.Principal{alice, bob, carol, dave}
	var customers []calls.Principal
	for i := range 6 {
		customers = append(customers, calls.Principal{Identifier: calls.CommunicationUser("cust" + strconv.Itoa(i)), Role: calls.RoleCaller})
	}
	for _, p := range append(append([]calls.Principal{}, agents...), customers...) {
		f.Connect(t, p)
	}
	ops := 300
	if testing.Short() {
		ops = 80
	}
	// Each worker runs ops operations, then goes on until every kind of
	// transfer and merge succeeded a few times (at most 20 times as many).
	want := []string{"blind", "consult", "complete", "cancel", "merge"}
	var mu sync.Mutex
	succeeded := map[string]int{}
	enough := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, op := range want {
			if succeeded[op] < 3 {
				return false
			}
		}
		return true
	}
	var wg sync.WaitGroup
	for w, p := range append(append([]calls.Principal{}, agents...), customers...) {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 17))
			for i := 0; i < ops || !enough() && i < 20*ops; i++ {
				list, err := f.ListCalls(ctx, p, "")
				if err != nil {
					t.Errorf("list: %v", err)
					return
				}
				checkViews(t, list)
				if in, _ := f.ListIncoming(ctx, p); len(in) > 0 && r.IntN(3) > 0 {
					_, _ = f.Accept(ctx, p, in[r.IntN(len(in))].ID)
					continue
				}
				if len(list) == 0 || p.Role == calls.RoleCaller && r.IntN(4) == 0 {
					if p.Role == calls.RoleCaller {
						_, _ = f.StartCall(ctx, p, to(agents[r.IntN(len(agents))]))
					}
					continue
				}
				c := list[r.IntN(len(list))]
				if p.Role == calls.RoleCaller {
					if r.IntN(8) == 0 {
						_, _ = f.HangUp(ctx, p, c.ID, false)
					}
					continue
				}
				pick := func(ok func(calls.Call) bool) calls.Call {
					for _, x := range list {
						if ok(x) {
							return x
						}
					}
					return c
				}
				active := pick(func(x calls.Call) bool { return x.State == calls.StateConnected })
				consulting := pick(func(x calls.Call) bool { return x.ConsultCallID != "" })
				other := agents[r.IntN(len(agents))]
				var err2 error
				var op string
				// A consult call its target answered.
				isAnswered := func(x calls.Call) bool {
					return x.ConsultCallID != "" && x.Direction == calls.Outgoing && slices.ContainsFunc(x.RemoteParticipants, func(p calls.Participant) bool {
						return p.State == calls.ParticipantConnected || p.State == calls.ParticipantHold
					})
				}
				answered := pick(isAnswered)
				k := r.IntN(12)
				if isAnswered(answered) && r.IntN(2) == 0 {
					consulting = answered
					k = []int{3, 3, 4}[r.IntN(3)] // finish what was started, mostly by completing
				}
				switch k {
				case 0:
					op = "blind"
					_, err2 = f.Transfer(ctx, p, active.ID, calls.TransferRequest{Target: target(other), Mode: calls.TransferBlind})
				case 1, 2:
					op = "consult"
					_, err2 = f.Transfer(ctx, p, active.ID, calls.TransferRequest{Target: target(other), Mode: calls.TransferConsult})
				case 3:
					op = "complete"
					_, err2 = f.CompleteTransfer(ctx, p, consulting.ID)
				case 4:
					op = "cancel"
					_, err2 = f.CancelTransfer(ctx, p, consulting.ID)
				case 5:
					op = "merge"
					if len(list) > 1 && r.IntN(3) == 0 {
						d := list[r.IntN(len(list))]
						_, err2 = f.Merge(ctx, p, active.ID, calls.MergeRequest{CallID: d.ID})
					}
				case 6, 10:
					op = "hangup"
					_, err2 = f.HangUp(ctx, p, c.ID, false)
				case 7:
					op = "hold"
					_, err2 = f.Hold(ctx, p, c.ID)
				default:
					op = "resume"
					_, err2 = f.Resume(ctx, p, c.ID)
				}
				if err2 == nil {
					mu.Lock()
					succeeded[op]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	checkEventsOneActive(t, f)
	checkMonitorRoutes(t, f, func(string) (calls.MonitorMode, string) { return "", "" })
	for _, r := range f.Media.Routes() {
		seen := map[string]bool{}
		for _, m := range r.Members {
			if seen[m.RawID] {
				t.Errorf("conversation %s has %s twice", r.ServerCallID, m.RawID)
			}
			seen[m.RawID] = true
		}
	}
	for _, p := range agents {
		list, err := f.ListCalls(ctx, p, "")
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, c := range list {
			ids[c.ID] = true
		}
		for _, c := range list {
			if c.ConsultCallID != "" && !ids[c.ConsultCallID] {
				t.Errorf("%s's call %s names consult %s, which she no longer has", p.Identifier.RawID(), c.ID, c.ConsultCallID)
			}
		}
	}
	if !enough() {
		t.Errorf("successes %v after %d operations of each worker at most: want 3 of each of %v", succeeded, 20*ops, want)
	}
	t.Logf("successes: %v", succeeded)
}
