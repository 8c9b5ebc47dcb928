package calls_test

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// checkMonitorRoutes checks the media invariants of monitoring in every
// conversation's last route: every identity's microphone reaches at most
// one conversation; a supervisor who listens sends nothing; one who
// whispers is heard by the agent's call alone; nobody else has an
// audience.
func checkMonitorRoutes(t *testing.T, f *callstest.Fixture, modes func(callID string) (calls.MonitorMode, string)) {
	t.Helper()
	sends := map[string]string{}
	for _, r := range f.Media.Routes() {
		for _, m := range r.Members {
			if m.Send {
				if other, ok := sends[m.RawID]; ok {
					t.Fatalf("%s sends into %s and %s", m.RawID, other, r.ServerCallID)
				}
				sends[m.RawID] = r.ServerCallID
			}
			mode, target := modes(m.CallID)
			switch {
			case mode == calls.MonitorListen && m.Send:
				t.Fatalf("listening %s sends into %s", m.RawID, r.ServerCallID)
			case mode == calls.MonitorWhisper && m.Send && (len(m.Audience) != 1 || m.Audience[0] != target):
				t.Fatalf("whispering %s is heard by %v, want only %s", m.RawID, m.Audience, target)
			case mode != calls.MonitorWhisper && m.Audience != nil:
				t.Fatalf("%s (%q) has an audience %v", m.RawID, mode, m.Audience)
			}
		}
	}
}

// TestMonitorStress: agents in calls with customers hold, resume, hang up
// and place calls while two supervisors start, switch and stop monitoring
// and place and resume calls of their own, all at once. Throughout,
// nobody has two Connected calls (by the state and by the events), every
// microphone reaches one conversation at most, a listening or whispering
// supervisor is never in a customer's participants, and the audio routes
// keep listen silent and whisper to the agent.
func TestMonitorStress(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	agents := []calls.Principal{alice, bob, carol, dave}
	sups := []calls.Principal{sup, callstest.Supervisor("sam")}
	var customers []calls.Principal
	for i := range agents {
		c := calls.Principal{Identifier: calls.CommunicationUser("cust" + strconv.Itoa(i)), Role: calls.RoleCaller}
		customers = append(customers, c)
	}
	for _, p := range append(append(append([]calls.Principal{}, agents...), sups...), customers...) {
		f.Connect(t, p)
	}
	var agentCalls []calls.Call
	for i, a := range agents {
		_, ac := connect(t, f, customers[i], a)
		agentCalls = append(agentCalls, ac)
	}
	ops := 400
	if testing.Short() {
		ops = 100
	}
	// Every monitor leg's mode and target, as its supervisor last saw it.
	var mu sync.Mutex
	monitors := map[string][2]string{}
	modes := func(callID string) (calls.MonitorMode, string) {
		mu.Lock()
		defer mu.Unlock()
		m := monitors[callID]
		return calls.MonitorMode(m[0]), m[1]
	}
	// Each supervisor monitors from the start.
	for i, s := range sups {
		mon := mustCall(t)(f.Monitor(ctx, s, agentCalls[i].ID, calls.MonitorRequest{Mode: calls.MonitorWhisper}))
		monitors[mon.ID] = [2]string{string(mon.MonitorMode), mon.MonitoredCallID}
	}
	var wg sync.WaitGroup
	for w, p := range append(append([]calls.Principal{}, agents...), customers...) {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for range ops {
				list, err := f.ListCalls(ctx, p, "")
				if err != nil {
					t.Errorf("list: %v", err)
					return
				}
				checkViews(t, list)
				if in, _ := f.ListIncoming(ctx, p); len(in) > 0 {
					_, _ = f.Accept(ctx, p, in[r.IntN(len(in))].ID)
					continue
				}
				if len(list) == 0 {
					if p.Role == calls.RoleCaller {
						_, _ = f.StartCall(ctx, p, to(agents[r.IntN(len(agents))]))
					}
					continue
				}
				c := list[r.IntN(len(list))]
				switch r.IntN(12) {
				case 0:
					_, _ = f.HangUp(ctx, p, c.ID, false)
				case 1, 2, 3:
					_, _ = f.Hold(ctx, p, c.ID)
				default:
					_, _ = f.Resume(ctx, p, c.ID)
				}
			}
		})
	}
	for w, s := range sups {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 13))
			all := []calls.MonitorMode{calls.MonitorListen, calls.MonitorWhisper, calls.MonitorBarge}
			for range ops {
				list, err := f.ListCalls(ctx, s, "")
				if err != nil {
					t.Errorf("supervisor list: %v", err)
					return
				}
				checkViews(t, list)
				var targets, own []calls.Call
				for _, c := range list {
					switch {
					case c.AgentID == s.Identifier.RawID():
						own = append(own, c)
					case c.State == calls.StateConnected && c.MonitorMode == "":
						targets = append(targets, c)
					}
				}
				switch k := r.IntN(10); {
				case k < 5 && len(targets) > 0:
					c := targets[r.IntN(len(targets))]
					if mon, err := f.Monitor(ctx, s, c.ID, calls.MonitorRequest{Mode: all[r.IntN(3)]}); err == nil {
						mu.Lock()
						monitors[mon.ID] = [2]string{string(mon.MonitorMode), mon.MonitoredCallID}
						mu.Unlock()
					}
				case k < 7 && len(own) > 0:
					_, _ = f.StopMonitor(ctx, s, own[r.IntN(len(own))].ID)
				case k < 8:
					_, _ = f.StartCall(ctx, s, to(agents[r.IntN(len(agents))]))
				case len(own) > 0:
					_, _ = f.Resume(ctx, s, own[r.IntN(len(own))].ID)
				}
			}
		})
	}
	wg.Wait()

	checkEventsOneActive(t, f)
	checkMonitorRoutes(t, f, modes)
	t.Logf("%d monitor legs started", len(monitors))
	// No customer's call shows a supervisor who does not barge.
	for _, c := range customers {
		list, err := f.ListCalls(ctx, c, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range list {
			for _, p := range call.RemoteParticipants {
				if p.MonitorMode != "" && p.MonitorMode != calls.MonitorBarge {
					t.Errorf("customer %s's call %s shows %s in %s", c.Identifier.RawID(), call.ID, p.RawID, p.MonitorMode)
				}
			}
		}
	}
	// Nobody but an agent was ever told of a listening or whispering
	// supervisor: the customers' events never name one who was not barging.
	for _, c := range customers {
		for _, ev := range f.Publisher.Events(c.Identifier.RawID()) {
			if ev.Type == calls.EventMonitorChanged {
				t.Errorf("customer %s was sent %+v", c.Identifier.RawID(), ev)
			}
		}
	}
}
