package calls_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// world is alice's and bob's switchboards: one node, or two nodes of a
// cluster (alice and sue on a, bob and carol on b) joined by peers.
type world struct {
	t     *testing.T
	a, b  *callstest.Fixture
	peers *callstest.Peers // nil on one node

	aliceCall, bobCall string
	marks              []string // how alice's and bob's calls stood at each mark
}

func newWorld(t *testing.T, twoNodes bool) *world {
	w := &world{t: t}
	if !twoNodes {
		w.a = callstest.New(t, calls.Config{})
		w.b = w.a
	} else {
		w.peers = callstest.NewPeers(t)
		w.a = callstest.New(t, calls.Config{Peers: w.peers.Network("a")})
		w.b = callstest.New(t, calls.Config{Peers: w.peers.Network("b"), NewID: func() string { return "b" + nextID() }})
		w.peers.Join("a", w.a.Switchboard, alice.Identifier.RawID(), sup.Identifier.RawID())
		w.peers.Join("b", w.b.Switchboard, bob.Identifier.RawID(), carol.Identifier.RawID())
	}
	w.a.Connect(t, alice)
	w.a.Connect(t, sup)
	return w
}

var nextID = callstest.IDs()

// flush delivers what the nodes say to each other.
func (w *world) flush() {
	if w.peers != nil {
		w.peers.Flush()
	}
}

// call has alice call bob.
func (w *world) call() {
	w.aliceCall = mustCall(w.t)(w.a.StartCall(ctx, alice, to(bob))).ID
	w.flush()
	if in, err := w.b.ListIncoming(ctx, bob); err == nil && len(in) == 1 {
		w.bobCall = in[0].ID
	}
}

// answer has bob accept.
func (w *world) answer() {
	mustCall(w.t)(w.b.Accept(ctx, bob, w.bobCall))
	w.flush()
}

// mark records how alice's and bob's calls stand (from history: the last
// record of each).
func (w *world) mark(label string) {
	w.t.Helper()
	w.flush()
	w.marks = append(w.marks, fmt.Sprintf("%s: alice %s; bob %s", label, lastRecord(w.a, w.aliceCall), lastRecord(w.b, w.bobCall)))
}

// lastRecord describes a call as last recorded: its state, end reason,
// mute and its participants'.
func lastRecord(f *callstest.Fixture, id string) string {
	recs := f.Store.Records(id)
	if id == "" || len(recs) == 0 {
		return "none"
	}
	c := recs[len(recs)-1].Call
	var b strings.Builder
	fmt.Fprintf(&b, "%s muted=%v", c.State, c.IsMuted)
	if c.CallEndReason != nil {
		fmt.Fprintf(&b, " ended %d/%d", c.CallEndReason.Code, c.CallEndReason.SubCode)
	}
	for _, p := range c.RemoteParticipants {
		fmt.Fprintf(&b, " [%s %s muted=%v", p.RawID, p.State, p.IsMuted)
		if p.CallEndReason != nil {
			fmt.Fprintf(&b, " ended %d/%d", p.CallEndReason.Code, p.CallEndReason.SubCode)
		}
		b.WriteString("]")
	}
	return b.String()
}

// eventTypes is the types of the events p had about call id.
func eventTypes(f *callstest.Fixture, p calls.Principal, id string) []calls.EventType {
	return f.Publisher.Types(p.Identifier.RawID(), id)
}

// TestPeerCallsAsOnOneNode: a call between identities on two nodes goes
// through every step as it does on one node: the same states, participant
// states, mutes and end reasons at every step, the same events, and no
// stand-in in anyone's calls, history or events.
func TestPeerCallsAsOnOneNode(t *testing.T) {
	tests := []struct {
		name  string
		steps func(w *world)
	}{
		{"bob answers, both hold and resume, bob hangs up", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.mark("ringing")
			w.answer()
			w.mark("answered")
			mustCall(w.t)(w.b.Hold(ctx, bob, w.bobCall))
			w.mark("bob holds")
			mustCall(w.t)(w.a.Hold(ctx, alice, w.aliceCall))
			w.mark("alice holds too")
			mustCall(w.t)(w.b.Resume(ctx, bob, w.bobCall))
			w.mark("bob resumes")
			mustCall(w.t)(w.a.Resume(ctx, alice, w.aliceCall))
			w.mark("alice resumes")
			mustCall(w.t)(w.b.HangUp(ctx, bob, w.bobCall, false))
			w.mark("bob hung up")
		}},
		{"alice hangs up", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.answer()
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
			w.mark("alice hung up")
		}},
		{"alice ends it for everyone", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.answer()
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, true))
			w.mark("ended for everyone")
		}},
		{"bob declines", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			mustCall(w.t)(w.b.Reject(ctx, bob, w.bobCall))
			w.mark("declined")
		}},
		{"alice gives up while it rings", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
			w.mark("canceled")
		}},
		{"nobody answers", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.b.Clock.Advance(calls.DefaultRingTimeout)
			w.flush()
			if w.a != w.b {
				w.a.Clock.Advance(calls.DefaultRingTimeout)
			}
			w.mark("no answer")
		}},
		{"bob is not connected", func(w *world) {
			w.call()
			w.mark("not connected")
		}},
		{"sue removes bob", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.answer()
			callstest.Must[calls.Participant](w.t)(w.a.RemoveParticipant(ctx, sup, w.aliceCall, bob.Identifier.RawID()))
			w.mark("removed")
		}},
		{"sue mutes bob, bob unmutes, alice mutes herself", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.answer()
			callstest.Must[calls.Participant](w.t)(w.a.MuteParticipant(ctx, sup, w.aliceCall, bob.Identifier.RawID()))
			w.mark("sue muted bob")
			mustCall(w.t)(w.b.SetMuted(ctx, bob, w.bobCall, false))
			w.mark("bob unmuted")
			mustCall(w.t)(w.a.SetMuted(ctx, alice, w.aliceCall, true))
			w.mark("alice muted")
		}},
		{"bob answers while on a call with carol", func(w *world) {
			w.b.Connect(w.t, bob)
			w.b.Connect(w.t, carol)
			cc := mustCall(w.t)(w.b.StartCall(ctx, carol, to(bob)))
			mustCall(w.t)(w.b.Accept(ctx, bob, incoming(w.t, w.b, bob).ID))
			w.call()
			w.answer()
			w.mark("bob took alice's call")
			if got := lastRecord(w.b, cc.ID); !strings.HasPrefix(got, string(calls.StateRemoteHold)) {
				w.t.Errorf("carol's call: %s, want RemoteHold (bob holds it to take alice's)", got)
			}
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
			w.mark("alice hung up")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, two := newWorld(t, false), newWorld(t, true)
			tt.steps(one)
			tt.steps(two)
			if !slices.Equal(one.marks, two.marks) {
				t.Errorf("on two nodes:\n  %s\nwant, as on one node:\n  %s", strings.Join(two.marks, "\n  "), strings.Join(one.marks, "\n  "))
			}
			for _, c := range []struct {
				who          calls.Principal
				f1, f2       *callstest.Fixture
				call1, call2 string
			}{
				{alice, one.a, two.a, one.aliceCall, two.aliceCall},
				{bob, one.b, two.b, one.bobCall, two.bobCall},
			} {
				if got, want := eventTypes(c.f2, c.who, c.call2), eventTypes(c.f1, c.who, c.call1); !slices.Equal(got, want) {
					t.Errorf("%s's events on two nodes: %v, want %v", c.who.Identifier.RawID(), got, want)
				}
			}
			// No stand-in anywhere: each node keeps only its own
			// identities' calls.
			for _, n := range []struct {
				f    *callstest.Fixture
				away calls.Principal
			}{{two.a, bob}, {two.b, alice}} {
				for _, r := range n.f.Store.Records("") {
					if r.Call.AgentID == n.away.Identifier.RawID() {
						t.Errorf("a node keeps a call of %s, who lives on the other: %+v", r.Call.AgentID, r.Call)
					}
				}
				if evs := n.f.Publisher.Events(n.away.Identifier.RawID()); len(evs) > 0 {
					t.Errorf("a node published %d events for %s, who lives on the other", len(evs), n.away.Identifier.RawID())
				}
			}
			if list := mustList(t)(two.b.ListCalls(ctx, sup, "")); slices.ContainsFunc(list, func(c calls.Call) bool { return c.AgentID == alice.Identifier.RawID() }) {
				t.Errorf("bob's node lists a call of alice's to its supervisors: %+v", list)
			}
		})
	}
}

func mustList(t *testing.T) func([]calls.Call, error) []calls.Call {
	return callstest.Must[[]calls.Call](t)
}

// TestPeerChangeApplyTwice: a change applied twice (a retried message)
// changes nothing the second time.
func TestPeerChangeApplyTwice(t *testing.T) {
	w := newWorld(t, true)
	w.b.Connect(t, bob)
	w.call()
	w.answer()
	var standIn string
	for _, r := range w.a.Media.Routes() {
		for _, m := range r.Members {
			if m.RawID == bob.Identifier.RawID() {
				standIn = m.CallID
			}
		}
	}
	if standIn == "" {
		t.Fatal("alice's node has no stand-in for bob in its media routes")
	}
	held := true
	for range 2 {
		if err := w.a.ApplyPeerChange(ctx, standIn, calls.PeerChange{Answered: true, Held: &held}); err != nil {
			t.Fatal(err)
		}
	}
	w.mark("held twice")
	want := "held twice: alice RemoteHold muted=false [8:acs:bob Hold muted=false]; bob Connected muted=false [8:acs:alice Connected muted=false]"
	if w.marks[0] != want {
		t.Errorf("%s\nwant %s", w.marks[0], want)
	}
	if n := strings.Count(fmt.Sprint(eventTypes(w.a, alice, w.aliceCall)), string(calls.EventStateChanged)); n != 2 {
		t.Errorf("alice had %d stateChanged events (Connected, RemoteHold), want 2: %v", n, eventTypes(w.a, alice, w.aliceCall))
	}
	// A stand-in is nobody's call: not even a supervisor reaches it.
	_, err := w.a.GetCall(ctx, sup, standIn)
	wantCode(t, err, calls.CodeCallNotFound)
	_, err = w.a.HangUp(ctx, sup, standIn, true)
	wantCode(t, err, calls.CodeCallNotFound)
}
