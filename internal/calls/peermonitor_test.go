package calls_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// monitorWorld is alice (the agent) in a call with carol, and sue, a
// supervisor, on one node, or on two: alice and carol on a, sue on b.
type monitorWorld struct {
	t                  *testing.T
	a, b               *callstest.Fixture // b is a on one node
	peers              *callstest.Peers
	aliceCall, carCall string
	sueLeg             string
}

func newMonitorWorld(t *testing.T, twoNodes bool) *monitorWorld {
	w := &monitorWorld{t: t}
	if !twoNodes {
		w.a = callstest.New(t, calls.Config{})
		w.b = w.a
	} else {
		w.peers = callstest.NewPeers(t)
		w.a = callstest.New(t, calls.Config{Peers: w.peers.Network("a")})
		w.b = callstest.New(t, calls.Config{Peers: w.peers.Network("b"), NewID: func() string { return "b" + nextID() }})
		w.peers.Join("a", w.a.Switchboard, alice.Identifier.RawID(), carol.Identifier.RawID())
		w.peers.Join("b", w.b.Switchboard, sup.Identifier.RawID())
	}
	w.a.Connect(t, alice)
	w.a.Connect(t, carol)
	w.b.Connect(t, sup)
	w.aliceCall = mustCall(t)(w.a.StartCall(ctx, alice, to(carol))).ID
	in, err := w.a.ListIncoming(ctx, carol)
	if err != nil || len(in) != 1 {
		t.Fatalf("carol's incoming calls: %v %v", in, err)
	}
	w.carCall = in[0].ID
	mustCall(t)(w.a.Accept(ctx, carol, w.carCall))
	return w
}

func (w *monitorWorld) flush() {
	if w.peers != nil {
		w.peers.Flush()
	}
}

// monitor has sue monitor alice's call in mode, as a request naming it
// reaches her node: through the call's node's MonitorVia across nodes.
func (w *monitorWorld) monitor(mode calls.MonitorMode) {
	w.t.Helper()
	var c calls.Call
	if w.peers == nil {
		c = mustCall(w.t)(w.a.Monitor(ctx, sup, w.aliceCall, calls.MonitorRequest{Mode: mode}))
	} else {
		via, err := w.a.MonitorVia(ctx, sup, w.aliceCall)
		if err != nil {
			w.t.Fatal(err)
		}
		c = mustCall(w.t)(w.b.MonitorAcross(ctx, sup, via, calls.MonitorRequest{Mode: mode}))
	}
	if c.MonitorMode != mode || c.MonitoredCallID != w.aliceCall {
		w.t.Fatalf("sue's leg %s of %s, want %s of %s", c.MonitorMode, c.MonitoredCallID, mode, w.aliceCall)
	}
	w.sueLeg = c.ID
	w.flush()
}

// mark describes how alice's, carol's and sue's calls were last recorded,
// and every monitorChanged of alice's and sue's calls with its actor.
func (w *monitorWorld) mark(label string) string {
	w.flush()
	return fmt.Sprintf("%s: alice %s %s; carol %s %s; sue %s %s", label,
		recordOf(w.a, w.aliceCall), monitorEvents(w.a, w.aliceCall),
		recordOf(w.a, w.carCall), monitorEvents(w.a, w.carCall),
		recordOf(w.b, w.sueLeg), monitorEvents(w.b, w.sueLeg))
}

// monitorEvents lists a call's monitorChanged events with their actors.
func monitorEvents(f *callstest.Fixture, id string) string {
	var out []string
	for _, r := range f.Store.Records(id) {
		for _, ev := range r.Events {
			if ev.Type != calls.EventMonitorChanged {
				continue
			}
			data, _ := json.Marshal(ev.Data)
			actor := "none"
			if ev.Actor != nil {
				actor = string(ev.Actor.Kind) + ":" + ev.Actor.RawID
			}
			out = append(out, actor+" "+string(data))
		}
	}
	return "{" + strings.Join(out, ", ") + "}"
}

// TestPeerMonitorAsOnOneNode: sue, a supervisor on node b, monitors
// alice's call on node a with carol, and every step is recorded as one
// node records it: alice's, carol's and sue's calls (states,
// participants, end reasons) and the monitorChanged timeline entries
// with sue, a supervisor, as their actor. She listens, whispers (asked
// by her leg's id, on her node), barges and leaves; in another call she
// whispers until alice hangs up.
func TestPeerMonitorAsOnOneNode(t *testing.T) {
	tests := []struct {
		name  string
		steps func(w *monitorWorld) []string
	}{
		{"listen, whisper, barge, leave", func(w *monitorWorld) []string {
			w.monitor(calls.MonitorListen)
			marks := []string{w.mark("listen")}
			mustCall(w.t)(w.b.Monitor(ctx, sup, w.sueLeg, calls.MonitorRequest{Mode: calls.MonitorWhisper}))
			marks = append(marks, w.mark("whisper by her leg"))
			w.monitor(calls.MonitorBarge)
			marks = append(marks, w.mark("barge"))
			mustCall(w.t)(w.b.StopMonitor(ctx, sup, w.sueLeg))
			return append(marks, w.mark("left"))
		}},
		{"the agent hangs up", func(w *monitorWorld) []string {
			w.monitor(calls.MonitorWhisper)
			marks := []string{w.mark("whisper")}
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
			return append(marks, w.mark("alice hung up"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAsOnOneNode(t, func(twoNodes bool) []string {
				return tt.steps(newMonitorWorld(t, twoNodes))
			})
		})
	}
}
