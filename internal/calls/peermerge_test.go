package calls_test

import (
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
		w.a = callstest.New(t, calls.Config{Peers: w.peers.Network("a"), NewID: func() string { return "a" + nextA() }})
		w.b = callstest.New(t, calls.Config{Peers: w.peers.Network("b"), NewID: func() string { return "b" + nextB() }})
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

// TestPeerMergeGroupElsewhere: a group call another node runs with others
// than its caller in it (bob, on b, called alice and carol together) is
// still not merged: 501 not_implemented, and nothing changes.
func TestPeerMergeGroupElsewhere(t *testing.T) {
	w := newMergeWorld(t, true)
	w.call(customer, alice)
	mustCall(t)(w.b.StartCall(ctx, bob, calls.StartCallRequest{Participants: []calls.Identifier{alice.Identifier, carol.Identifier}}))
	w.flush()
	in := incoming(t, w.a, alice)
	group := mustCall(t)(w.a.Accept(ctx, alice, in.ID))
	w.flush()
	_, err := w.a.Merge(ctx, alice, w.id("8:acs:alice<8:acs:cust"), calls.MergeRequest{CallID: group.ID})
	wantCode(t, err, calls.CodeNotImplemented)
	_, err = w.a.Merge(ctx, alice, group.ID, calls.MergeRequest{CallID: w.id("8:acs:alice<8:acs:cust")})
	wantCode(t, err, calls.CodeNotImplemented)
	wantState(t, w.a, alice, group.ID, calls.StateConnected)
	wantState(t, w.a, alice, w.id("8:acs:alice<8:acs:cust"), calls.StateLocalHold)
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
