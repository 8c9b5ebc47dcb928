package calls_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// mergeWorld is alice's, the customer's, bob's and carol's switchboards:
// one node, or two nodes of a cluster (alice and the customer on a, bob
// and carol on b).
type mergeWorld struct {
	t     *testing.T
	a, b  *callstest.Fixture
	peers *callstest.Peers // nil on one node
	calls map[string]string
	marks []string
}

func newMergeWorld(t *testing.T, twoNodes bool) *mergeWorld {
	w := &mergeWorld{t: t, calls: map[string]string{}}
	if !twoNodes {
		w.a = callstest.New(t, calls.Config{})
		w.b = w.a
	} else {
		w.peers = callstest.NewPeers(t)
		nextA, nextB := callstest.IDs(), callstest.IDs()
		w.a = callstest.New(t, calls.Config{Peers: w.peers.Network("a"), Rooms: w.peers.Rooms("a"), NewID: func() string { return "a" + nextA() }})
		w.b = callstest.New(t, calls.Config{Peers: w.peers.Network("b"), Rooms: w.peers.Rooms("b"), NewID: func() string { return "b" + nextB() }})
		w.peers.Join("a", w.a.Switchboard, alice.Identifier.RawID(), customer.Identifier.RawID())
		w.peers.Join("b", w.b.Switchboard, bob.Identifier.RawID(), carol.Identifier.RawID())
	}
	for _, p := range []calls.Principal{alice, customer, bob, carol} {
		w.of(p).Connect(t, p)
	}
	return w
}

func (w *mergeWorld) of(p calls.Principal) *callstest.Fixture {
	if p == bob || p == carol {
		return w.b
	}
	return w.a
}

func (w *mergeWorld) flush() {
	if w.peers != nil {
		w.peers.Flush()
	}
}

// call has from call to, who answers: the calls are named "from>to" (the
// caller's) and "to<from" (the callee's).
func (w *mergeWorld) call(from, to calls.Principal) {
	w.t.Helper()
	f, t := from.Identifier.RawID(), to.Identifier.RawID()
	w.calls[f+">"+t] = mustCall(w.t)(w.of(from).StartCall(ctx, from, calls.StartCallRequest{Participants: []calls.Identifier{to.Identifier}})).ID
	w.flush()
	in := incoming(w.t, w.of(to), to)
	w.calls[t+"<"+f] = mustCall(w.t)(w.of(to).Accept(ctx, to, in.ID)).ID
	w.flush()
}

func (w *mergeWorld) id(name string) string {
	w.t.Helper()
	id, ok := w.calls[name]
	if !ok {
		w.t.Fatalf("no call %s", name)
	}
	return id
}

// mark records how every call stands (its last record, participants in
// rawId order: the two nodes list them in the order each learnt of them).
func (w *mergeWorld) mark(label string) {
	w.t.Helper()
	w.flush()
	names := make([]string, 0, len(w.calls))
	for n := range w.calls {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(label + ":")
	for _, n := range names {
		f := w.a
		if strings.HasPrefix(n, bob.Identifier.RawID()) || strings.HasPrefix(n, carol.Identifier.RawID()) {
			f = w.b
		}
		rec := lastRecord(f, w.calls[n])
		parts := strings.Split(rec, " [")
		slices.Sort(parts[1:])
		b.WriteString("\n    " + n + ": " + strings.Join(parts, " ["))
	}
	w.marks = append(w.marks, b.String())
}

// TestPeerMergeAsOnOneNode: alice, on node a, merges her calls when node
// b runs one or both of them (bob and carol, on b, called her, or bob
// added her to his group call, as a queue adds its agent): every
// call goes through every step as on one node (states, participants, end
// reasons), and alice's and the customer's events are the same. Alice
// leaving the merged call while the others stay is left out: b's parties
// then keep seeing her Connected (her stand-in there carries the call's
// audio), as when a runs both calls.
func TestPeerMergeAsOnOneNode(t *testing.T) {
	const (
		custAlice = "8:acs:cust>8:acs:alice"
		aliceCust = "8:acs:alice<8:acs:cust"
		bobAlice  = "8:acs:bob>8:acs:alice"
		aliceBob  = "8:acs:alice<8:acs:bob"
		aliceCar  = "8:acs:alice<8:acs:carol"
		carAlice  = "8:acs:carol>8:acs:alice"
		bobCar    = "8:acs:bob>8:acs:carol"
		carBob    = "8:acs:carol<8:acs:bob"
	)
	tests := []struct {
		name  string
		steps func(w *mergeWorld)
		// farHistory is what b's history of bob's call keeps on two
		// nodes only: his call stays b's conversation, where one node
		// moved him into alice's.
		farHistory string
	}{
		{"b's call merged into a's", func(w *mergeWorld) {
			w.call(customer, alice)
			w.call(bob, alice)
			w.mark("before")
			mustCall(w.t)(w.a.Merge(ctx, alice, w.id(aliceCust), calls.MergeRequest{CallID: w.id(aliceBob)}))
			w.mark("merged")
			mustCall(w.t)(w.b.Hold(ctx, bob, w.id(bobAlice)))
			w.mark("bob holds")
			mustCall(w.t)(w.b.Resume(ctx, bob, w.id(bobAlice)))
			w.mark("bob resumes")
			mustCall(w.t)(w.b.HangUp(ctx, bob, w.id(bobAlice), false))
			w.mark("bob hung up")
			mustCall(w.t)(w.a.HangUp(ctx, customer, w.id(custAlice), false))
			w.mark("the customer hung up")
		}, ""},
		{"a's call merged into b's", func(w *mergeWorld) {
			w.call(customer, alice)
			w.call(bob, alice)
			mustCall(w.t)(w.a.Merge(ctx, alice, w.id(aliceBob), calls.MergeRequest{CallID: w.id(aliceCust)}))
			w.mark("merged")
			mustCall(w.t)(w.a.Hold(ctx, alice, w.id(aliceBob)))
			w.mark("alice holds")
			mustCall(w.t)(w.a.Resume(ctx, alice, w.id(aliceBob)))
			w.mark("alice resumes")
			mustCall(w.t)(w.a.HangUp(ctx, customer, w.id(custAlice), false))
			w.mark("the customer hung up")
			mustCall(w.t)(w.b.HangUp(ctx, bob, w.id(bobAlice), false))
			w.mark("bob hung up")
		}, ""},
		{"a group call b runs, only bob left with alice, merged into a's", func(w *mergeWorld) {
			// As a queue's call is: the customer's group call, to which
			// an agent was added.
			w.call(customer, alice)
			w.call(bob, carol)
			callstest.Must[calls.Participant](w.t)(w.b.AddParticipant(ctx, bob, w.id(bobCar), calls.AddParticipantRequest{Identifier: alice.Identifier}))
			w.flush()
			w.calls[aliceBob] = mustCall(w.t)(w.a.Accept(ctx, alice, incoming(w.t, w.a, alice).ID)).ID
			w.flush()
			mustCall(w.t)(w.b.HangUp(ctx, carol, w.id(carBob), false))
			w.mark("carol left bob's group call")
			mustCall(w.t)(w.a.Merge(ctx, alice, w.id(aliceCust), calls.MergeRequest{CallID: w.id(aliceBob)}))
			w.mark("merged")
			mustCall(w.t)(w.b.Hold(ctx, bob, w.id(bobCar)))
			w.mark("bob holds")
			mustCall(w.t)(w.b.Resume(ctx, bob, w.id(bobCar)))
			w.mark("bob resumes")
			mustCall(w.t)(w.a.HangUp(ctx, customer, w.id(custAlice), false))
			w.mark("the customer hung up")
			mustCall(w.t)(w.b.HangUp(ctx, bob, w.id(bobCar), false))
			w.mark("bob hung up")
		}, " [8:acs:carol Disconnected muted=false ended 0/0] [8:acs:cust"},
		{"a queue's call b runs merged into a's", func(w *mergeWorld) {
			// As a queue's call is: the caller's group call by GUID, to
			// which the queue adds its agent.
			w.call(customer, alice)
			w.calls[bobCar] = mustCall(w.t)(w.b.JoinCall(ctx, bob, calls.JoinRequest{GroupID: "6f1d3f0e-8a8e-4c1b-9d57-0d6b2a1c1e01"})).ID
			callstest.Must[calls.Participant](w.t)(w.b.AddParticipant(ctx, bob, w.id(bobCar), calls.AddParticipantRequest{Identifier: alice.Identifier}))
			w.flush()
			w.calls[aliceBob] = mustCall(w.t)(w.a.Accept(ctx, alice, incoming(w.t, w.a, alice).ID)).ID
			w.mark("alice took the queue's call")
			mustCall(w.t)(w.a.Merge(ctx, alice, w.id(aliceCust), calls.MergeRequest{CallID: w.id(aliceBob)}))
			w.mark("merged")
			mustCall(w.t)(w.a.HangUp(ctx, customer, w.id(custAlice), false))
			w.mark("the customer hung up")
			mustCall(w.t)(w.b.HangUp(ctx, bob, w.id(bobCar), false))
			w.mark("bob hung up")
		}, ""},
		{"both calls run by b", func(w *mergeWorld) {
			w.call(bob, alice)
			w.call(carol, alice)
			mustCall(w.t)(w.a.Merge(ctx, alice, w.id(aliceCar), calls.MergeRequest{CallID: w.id(aliceBob)}))
			w.mark("merged")
			mustCall(w.t)(w.b.SetMuted(ctx, carol, w.id(carAlice), true))
			w.mark("carol muted")
			mustCall(w.t)(w.b.HangUp(ctx, carol, w.id(carAlice), false))
			w.mark("carol hung up")
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.id(aliceCar), true))
			w.mark("alice ended it for everyone")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, two := newMergeWorld(t, false), newMergeWorld(t, true)
			tt.steps(one)
			tt.steps(two)
			if tt.farHistory != "" {
				for i, m := range two.marks {
					two.marks[i] = strings.ReplaceAll(m, tt.farHistory, " [8:acs:cust")
				}
			}
			for i := range max(len(one.marks), len(two.marks)) {
				if i >= len(one.marks) || i >= len(two.marks) || one.marks[i] != two.marks[i] {
					t.Errorf("on two nodes:\n%s\nwant, as on one node:\n%s", strings.Join(two.marks, "\n"), strings.Join(one.marks, "\n"))
					break
				}
			}
			for _, c := range []struct {
				who  calls.Principal
				name string
			}{{alice, aliceCust}, {alice, aliceBob}, {alice, aliceCar}, {customer, custAlice}} {
				id1, id2 := one.calls[c.name], two.calls[c.name]
				if id1 == "" {
					continue
				}
				if got, want := eventTypes(two.a, c.who, id2), eventTypes(one.a, c.who, id1); !slices.Equal(got, want) {
					t.Errorf("%s's events of %s on two nodes: %v, want %v", c.who.Identifier.RawID(), c.name, got, want)
				}
			}
		})
	}
}

// TestPeerMergeMedia: right after alice merges (b's calls' first mark),
// a's route of the merged call carries every party, b's through their
// stand-ins, each sending and receiving; b's route of each of its calls
// carries its party and alice's stand-in, both ways.
func TestPeerMergeMedia(t *testing.T) {
	w := newMergeWorld(t, true)
	w.call(customer, alice)
	w.call(bob, alice)
	w.call(carol, alice)
	mustCall(t)(w.a.Merge(ctx, alice, w.id("8:acs:alice<8:acs:cust"), calls.MergeRequest{CallID: w.id("8:acs:alice<8:acs:bob")}))
	merged := mustCall(t)(w.a.Merge(ctx, alice, w.id("8:acs:alice<8:acs:cust"), calls.MergeRequest{CallID: w.id("8:acs:alice<8:acs:carol")}))
	w.flush()
	routeOf := func(f *callstest.Fixture, serverCallID string) calls.Route {
		t.Helper()
		for _, r := range f.Media.Routes() {
			if r.ServerCallID == serverCallID {
				return r
			}
		}
		t.Fatalf("no route of %s", serverCallID)
		return calls.Route{}
	}
	both := func(r calls.Route) []string {
		var out []string
		for _, m := range r.Members {
			if m.Send && m.Receive && !m.Held {
				own := ""
				if m.OwnEndpoint {
					own = " (stand-in)"
				}
				out = append(out, m.RawID+own)
			}
		}
		slices.Sort(out)
		return out
	}
	if got, want := both(routeOf(w.a, merged.ServerCallID)), []string{"8:acs:alice", "8:acs:bob (stand-in)", "8:acs:carol (stand-in)", "8:acs:cust"}; !slices.Equal(got, want) {
		t.Errorf("a's route of the merged call: %v sending and receiving, want %v", got, want)
	}
	for _, p := range []calls.Principal{bob, carol} {
		c := get(t, w.b, p, w.id(p.Identifier.RawID()+">8:acs:alice"))
		if c.Kind != calls.Group || c.State != calls.StateConnected || len(c.RemoteParticipants) != 3 {
			t.Errorf("%s's call on b: %s %s with %v, want a Connected group call with alice, the customer and the other", p.Identifier.RawID(), c.Kind, c.State, rawIDs(c))
		}
		if got, want := both(routeOf(w.b, c.ServerCallID)), []string{"8:acs:alice (stand-in)", p.Identifier.RawID()}; !slices.Equal(got, want) {
			t.Errorf("b's route of %s's call: %v sending and receiving, want %v", p.Identifier.RawID(), got, want)
		}
	}
	if n := activeCalls(t, w.a, alice); n != 1 {
		t.Errorf("alice has %d active calls after the merges", n)
	}
}

// TestPeerMergeBothGroupsElsewhere: two group calls other nodes run, with
// others than their callers in them, are not merged: 501 not_implemented,
// and nothing changes.
func TestPeerMergeBothGroupsElsewhere(t *testing.T) {
	w := newMergeWorld(t, true)
	first := w.groupFromBob()
	w.calls["8:acs:alice<8:acs:carol"] = first // parked under another name
	second := w.groupFromBob()
	_, err := w.a.Merge(ctx, alice, first, calls.MergeRequest{CallID: second})
	wantCode(t, err, calls.CodeNotImplemented)
	wantState(t, w.a, alice, first, calls.StateLocalHold)
	wantState(t, w.a, alice, second, calls.StateConnected)
}

// groupFromBob has bob, on b, call alice (on a) and carol together, both
// answering; it answers alice's call's id and names bob's and carol's
// calls "8:acs:bob>group" and "8:acs:carol<group".
func (w *mergeWorld) groupFromBob() string {
	w.t.Helper()
	w.calls["8:acs:bob>group"] = mustCall(w.t)(w.b.StartCall(ctx, bob, calls.StartCallRequest{Participants: []calls.Identifier{alice.Identifier, carol.Identifier}})).ID
	w.flush()
	id := mustCall(w.t)(w.a.Accept(ctx, alice, incoming(w.t, w.a, alice).ID)).ID
	w.flush()
	w.calls["8:acs:carol<group"] = mustCall(w.t)(w.b.Accept(ctx, carol, incoming(w.t, w.b, carol).ID)).ID
	w.flush()
	return id
}

// joinGroupOnB has bob and carol join a group call by GUID on b and alice
// join it from a (b anchors it); it answers alice's call's id and names
// bob's and carol's calls as groupFromBob does.
func (w *mergeWorld) joinGroupOnB() string {
	w.t.Helper()
	const g = "2b7c9a5e-1f4d-4e8a-9c3b-7d6e5f4a3b21"
	w.calls["8:acs:bob>group"] = mustCall(w.t)(w.b.JoinCall(ctx, bob, calls.JoinRequest{GroupID: g})).ID
	w.calls["8:acs:carol<group"] = mustCall(w.t)(w.b.JoinCall(ctx, carol, calls.JoinRequest{GroupID: g})).ID
	w.flush()
	id := mustCall(w.t)(w.a.JoinCall(ctx, alice, calls.JoinRequest{GroupID: g})).ID
	w.flush()
	return id
}

// liveCall describes p's call as it stands: state, kind and its
// participants in rawId order, each with its state.
func liveCall(t *testing.T, f *callstest.Fixture, p calls.Principal, id string) string {
	t.Helper()
	c := get(t, f, p, id)
	parts := make([]string, 0, len(c.RemoteParticipants))
	for _, r := range c.RemoteParticipants {
		parts = append(parts, r.RawID+" "+string(r.State))
	}
	slices.Sort(parts)
	return string(c.State) + " " + string(c.Kind) + " [" + strings.Join(parts, ", ") + "]"
}

// TestPeerMergeFarGroup: alice, on a, merges her call with the customer
// and a group call b runs with bob and carol in it (bob called them both,
// or they joined it by its GUID and alice joined it from a), either way
// round. The merged call is a's conversation of her call with the
// customer, joined to b's group call by the stand-in that faced it (a
// bridge): alice and the customer see bob and carol, the call merged away
// ends 0/7016, alice has one active call, and a's route carries alice,
// the customer and the bridge both ways. B's parties keep seeing alice
// alone of a's (the customer is heard through her stand-in). Alice's hold
// of the merged call does not hold the bridge; the customer's mute of
// carol reaches b. Then carol and the customer leave, and alice: her
// leaving ends the bridge, so b shows alice gone while bob's call goes on
// there.
func TestPeerMergeFarGroup(t *testing.T) {
	const (
		custAlice  = "8:acs:cust>8:acs:alice"
		aliceCust  = "8:acs:alice<8:acs:cust"
		aliceGroup = "8:acs:alice group"
		bobGroup   = "8:acs:bob>group"
		carolGroup = "8:acs:carol<group"
	)
	tests := []struct {
		name  string
		group func(w *mergeWorld) string
		// into: alice merges her call with the customer into the group
		// call (its id the merge's), not the group call into hers.
		into bool
	}{
		{"bob's group call merged into alice's", (*mergeWorld).groupFromBob, false},
		{"alice's call merged into bob's group call", (*mergeWorld).groupFromBob, true},
		{"a GUID group call b anchors merged into alice's", (*mergeWorld).joinGroupOnB, false},
		{"alice's call merged into a GUID group call b anchors", (*mergeWorld).joinGroupOnB, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newMergeWorld(t, true)
			w.call(customer, alice)
			w.calls[aliceGroup] = tt.group(w)
			keep, gone := w.id(aliceCust), w.id(aliceGroup)
			if tt.into {
				keep, gone = gone, keep
			}
			merged := mustCall(t)(w.a.Merge(ctx, alice, keep, calls.MergeRequest{CallID: gone}))
			w.flush()
			if merged.ID != keep {
				t.Errorf("the merge answered call %s, want %s", merged.ID, keep)
			}
			wantEnded(t, w.a, gone, calls.ReasonMerged)
			wantState(t, w.a, alice, keep, calls.StateConnected)
			if got := get(t, w.a, customer, w.id(custAlice)).ServerCallID; got != merged.ServerCallID {
				t.Errorf("the customer's call's serverCallId %s, want the merged call's %s", got, merged.ServerCallID)
			}
			if !slices.Contains(eventTypes(w.a, alice, keep), calls.EventTransferUpdated) {
				t.Errorf("alice had no %s event of the merged call", calls.EventTransferUpdated)
			}
			for _, c := range []struct {
				f          *callstest.Fixture
				p          calls.Principal
				name, want string
			}{
				{w.a, alice, "alice's merged call", "Connected group [8:acs:bob Connected, 8:acs:carol Connected, 8:acs:cust Connected]"},
				{w.a, customer, custAlice, "Connected group [8:acs:alice Connected, 8:acs:bob Connected, 8:acs:carol Connected]"},
				{w.b, bob, bobGroup, "Connected group [8:acs:alice Connected, 8:acs:carol Connected]"},
				{w.b, carol, carolGroup, "Connected group [8:acs:alice Connected, 8:acs:bob Connected]"},
			} {
				id := keep
				if c.name != "alice's merged call" {
					id = w.id(c.name)
				}
				if got := liveCall(t, c.f, c.p, id); got != c.want {
					t.Errorf("%s after the merge: %s, want %s", c.name, got, c.want)
				}
			}
			for _, p := range []calls.Principal{alice, customer} {
				if n := activeCalls(t, w.a, p); n != 1 {
					t.Errorf("%s has %d active calls after the merge, want 1", p.Identifier.RawID(), n)
				}
			}
			got := sendingBoth(w.a.Media.Routes(), merged.ServerCallID)
			if want := []string{"8:acs:alice", "8:acs:cust", "stand-in"}; !slices.Equal(got, want) {
				t.Errorf("a's route of the merged call: %v sending and receiving, want %v", got, want)
			}

			// Her hold is no hold of the bridge: the others still hear
			// each other through it, as on one node.
			mustCall(t)(w.a.Hold(ctx, alice, keep))
			w.flush()
			if got := liveCall(t, w.b, bob, w.id(bobGroup)); got != "Connected group [8:acs:alice Connected, 8:acs:carol Connected]" {
				t.Errorf("bob's call while alice holds the merged call: %s, want alice's stand-in not held", got)
			}
			if got := sendingBoth(w.a.Media.Routes(), merged.ServerCallID); !slices.Equal(got, []string{"8:acs:cust", "stand-in"}) {
				t.Errorf("a's route while alice holds the merged call: %v sending and receiving, want the customer and the bridge", got)
			}
			mustCall(t)(w.a.Resume(ctx, alice, keep))
			// The customer mutes carol: b does, as for a joiner's act.
			callstest.Must[calls.Participant](t)(w.a.MuteParticipant(ctx, customer, w.id(custAlice), carol.Identifier.RawID()))
			w.flush()
			if c := get(t, w.b, carol, w.id(carolGroup)); !c.IsMuted {
				t.Error("carol's call is not muted after the customer muted her in the merged call")
			}
			mustCall(t)(w.b.HangUp(ctx, carol, w.id(carolGroup), false))
			w.flush()
			if got, want := liveCall(t, w.a, alice, keep), "Connected group [8:acs:bob Connected, 8:acs:cust Connected]"; got != want {
				t.Errorf("alice's merged call after carol left: %s, want %s", got, want)
			}
			mustCall(t)(w.a.HangUp(ctx, customer, w.id(custAlice), false))
			w.flush()
			if got, want := liveCall(t, w.a, alice, keep), "Connected group [8:acs:bob Connected]"; got != want {
				t.Errorf("alice's merged call after the customer left: %s, want %s", got, want)
			}
			mustCall(t)(w.a.HangUp(ctx, alice, keep, false))
			w.flush()
			if got := get(t, w.b, bob, w.id(bobGroup)); slices.Contains(rawIDs(got), alice.Identifier.RawID()) {
				t.Errorf("bob's call after alice left the merged call: %s with %v, want alice gone", got.State, rawIDs(got))
			}
			for _, r := range w.a.Media.Routes() {
				if len(r.Members) > 0 {
					t.Errorf("a still routes %+v after everyone there left", r)
				}
			}
		})
	}
}

// TestPeerMergeFarGroupAndMirror: both of alice's calls are run by b: carol
// called her (a 1:1 call a mirrors), and she joined bob's group call by
// GUID there, then took carol's call (holding the group call). Merged
// either way round, a takes the 1:1 call's anchor over and bridges the
// group call: alice sees bob and carol, carol's call on b (a mirror of
// a's now) shows alice and bob, bob's shows alice, off hold; the call
// merged away ends 0/7016 and alice has one active call. When carol
// leaves, alice and bob stay.
func TestPeerMergeFarGroupAndMirror(t *testing.T) {
	const g = "2b7c9a5e-1f4d-4e8a-9c3b-7d6e5f4a3b21"
	for _, into := range []bool{false, true} {
		t.Run(fmt.Sprintf("into the group call %v", into), func(t *testing.T) {
			w := newMergeWorld(t, true)
			bobG := mustCall(t)(w.b.JoinCall(ctx, bob, calls.JoinRequest{GroupID: g})).ID
			w.flush()
			aliceG := mustCall(t)(w.a.JoinCall(ctx, alice, calls.JoinRequest{GroupID: g})).ID
			w.flush()
			w.call(carol, alice) // alice holds the group call
			if got, want := liveCall(t, w.b, bob, bobG), "Connected group [8:acs:alice Hold]"; got != want {
				t.Fatalf("bob's call before the merge: %s, want %s", got, want)
			}
			keep, gone := w.id("8:acs:alice<8:acs:carol"), aliceG
			if into {
				keep, gone = gone, keep
			}
			mustCall(t)(w.a.Merge(ctx, alice, keep, calls.MergeRequest{CallID: gone}))
			w.flush()
			wantEnded(t, w.a, gone, calls.ReasonMerged)
			wantState(t, w.a, alice, keep, calls.StateConnected)
			if n := activeCalls(t, w.a, alice); n != 1 {
				t.Errorf("alice has %d active calls after the merge, want 1", n)
			}
			for _, c := range []struct {
				f        *callstest.Fixture
				p        calls.Principal
				id, name string
				want     string
			}{
				{w.a, alice, keep, "alice's merged call", "Connected group [8:acs:bob Connected, 8:acs:carol Connected]"},
				{w.b, carol, w.id("8:acs:carol>8:acs:alice"), "carol's call", "Connected group [8:acs:alice Connected, 8:acs:bob Connected]"},
				{w.b, bob, bobG, "bob's call", "Connected group [8:acs:alice Connected]"},
			} {
				if got := liveCall(t, c.f, c.p, c.id); got != c.want {
					t.Errorf("%s after the merge: %s, want %s", c.name, got, c.want)
				}
			}
			mustCall(t)(w.b.HangUp(ctx, carol, w.id("8:acs:carol>8:acs:alice"), false))
			w.flush()
			if got, want := liveCall(t, w.a, alice, keep), "Connected group [8:acs:bob Connected]"; got != want {
				t.Errorf("alice's merged call after carol left: %s, want %s", got, want)
			}
			if got, want := liveCall(t, w.b, bob, bobG), "Connected group [8:acs:alice Connected]"; got != want {
				t.Errorf("bob's call after carol left: %s, want %s", got, want)
			}
		})
	}
}

// sendingBoth is who sends and receives, not held, in the route of serverCallID
// (a stand-in as "stand-in"), in rawId order.
func sendingBoth(routes []calls.Route, serverCallID string) []string {
	var out []string
	for _, r := range routes {
		if r.ServerCallID != serverCallID {
			continue
		}
		for _, m := range r.Members {
			if m.Send && m.Receive && !m.Held {
				name := m.RawID
				if m.OwnEndpoint {
					name = "stand-in"
				}
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestPeerMergeFarGroupEndedForAll: bob ends for everyone the group call
// alice merged with her call with the customer: her merged call and the
// customer's end 0/4097 too, as on one node.
func TestPeerMergeFarGroupEndedForAll(t *testing.T) {
	for _, group := range []func(w *mergeWorld) string{(*mergeWorld).groupFromBob, (*mergeWorld).joinGroupOnB} {
		w := newMergeWorld(t, true)
		w.call(customer, alice)
		g := group(w)
		mustCall(t)(w.a.Merge(ctx, alice, w.id("8:acs:alice<8:acs:cust"), calls.MergeRequest{CallID: g}))
		w.flush()
		mustCall(t)(w.b.HangUp(ctx, bob, w.id("8:acs:bob>group"), true))
		w.flush()
		wantEnded(t, w.a, w.id("8:acs:alice<8:acs:cust"), calls.ReasonEndedForAll)
		wantEnded(t, w.a, w.id("8:acs:cust>8:acs:alice"), calls.ReasonEndedForAll)
		wantEnded(t, w.b, w.id("8:acs:carol<group"), calls.ReasonEndedForAll)
	}
}

// TestPeerMergeRelayed: alice merges a call that b relays (bob, on b,
// took the customer's call from a and handed it to alice blind, so b's
// conversation joins two stand-ins). B keeps that conversation as it is
// (it relays the customer's and alice's audio), and the merge still joins
// the customer to alice and carol: a's merged call carries the customer
// through b, and her hanging up ends her stand-ins there and in the
// merged call while alice and carol go on.
func TestPeerMergeRelayed(t *testing.T) {
	w := newMergeWorld(t, true)
	w.call(customer, bob)
	mustCall(t)(w.b.Transfer(ctx, bob, w.id("8:acs:bob<8:acs:cust"), calls.TransferRequest{Target: target(alice), Mode: calls.TransferBlind}))
	w.flush()
	fromCust := mustCall(t)(w.a.Accept(ctx, alice, incoming(t, w.a, alice).ID)).ID
	w.flush()
	custCall := w.id("8:acs:cust>8:acs:bob")
	// now describes a live call as lastRecord does a record.
	now := func(f *callstest.Fixture, p calls.Principal, id string) string {
		t.Helper()
		c := get(t, f, p, id)
		var b strings.Builder
		b.WriteString(string(c.State))
		for _, p := range c.RemoteParticipants {
			b.WriteString(" [" + p.RawID + " " + string(p.State) + "]")
		}
		return b.String()
	}
	if got, want := now(w.a, customer, custCall), "Connected [8:acs:alice Connected]"; got != want {
		t.Fatalf("the customer's call before the merge: %s, want %s", got, want)
	}
	w.call(alice, carol)
	mustCall(t)(w.a.Merge(ctx, alice, w.id("8:acs:alice>8:acs:carol"), calls.MergeRequest{CallID: fromCust}))
	w.flush()
	for _, c := range []struct {
		f        *callstest.Fixture
		p        calls.Principal
		name     string
		id, want string
	}{
		{w.a, alice, "alice's merged call", w.id("8:acs:alice>8:acs:carol"), "Connected [8:acs:carol Connected] [8:acs:cust Connected]"},
		{w.b, carol, "carol's call", w.id("8:acs:carol<8:acs:alice"), "Connected [8:acs:alice Connected] [8:acs:cust Connected]"},
		{w.a, customer, "the customer's call", custCall, "Connected [8:acs:alice Connected]"},
	} {
		if got := now(c.f, c.p, c.id); got != c.want {
			t.Errorf("%s after the merge: %s, want %s", c.name, got, c.want)
		}
	}
	wantEnded(t, w.a, fromCust, calls.ReasonMerged)
	relays := slices.ContainsFunc(w.b.Media.Routes(), func(r calls.Route) bool {
		return len(r.Members) == 2 && !slices.ContainsFunc(r.Members, func(m calls.MediaMember) bool { return !m.OwnEndpoint || !m.Send || !m.Receive })
	})
	if !relays {
		t.Errorf("b does not relay the customer and alice after the merge: %+v", w.b.Media.Routes())
	}
	mustCall(t)(w.a.HangUp(ctx, customer, custCall, false))
	w.flush()
	for _, c := range []struct {
		f        *callstest.Fixture
		p        calls.Principal
		name     string
		id, want string
	}{
		{w.a, alice, "alice's merged call", w.id("8:acs:alice>8:acs:carol"), "Connected [8:acs:carol Connected]"},
		{w.b, carol, "carol's call", w.id("8:acs:carol<8:acs:alice"), "Connected [8:acs:alice Connected]"},
	} {
		if got := now(c.f, c.p, c.id); got != c.want {
			t.Errorf("%s after the customer hung up: %s, want %s", c.name, got, c.want)
		}
	}
	if n := len(w.b.Media.Routes()); n == 0 {
		t.Error("b has no routes")
	}
	for _, r := range w.b.Media.Routes() {
		for _, m := range r.Members {
			if m.RawID == customer.Identifier.RawID() {
				t.Errorf("b still routes the customer's audio after she hung up: %+v", r)
			}
		}
	}
}
