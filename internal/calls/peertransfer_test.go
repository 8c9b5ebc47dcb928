package calls_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestPeerChangeOfTransferred: in a caller's stand-in's view of a 1:1
// call (its history: the ended parties too), the party of the pair is the
// one the call was transferred to, not the agent who transferred it and
// left, so the new party's hold and mute reach the far node; in a group
// call the first party stays the pair's, as before.
func TestPeerChangeOfTransferred(t *testing.T) {
	transferred := calls.ReasonTransferred
	agent := calls.Participant{Identifier: alice.Identifier, RawID: alice.Identifier.RawID(), State: calls.ParticipantDisconnected, CallEndReason: &transferred}
	target := func(st calls.ParticipantState, muted bool) calls.Participant {
		return calls.Participant{Identifier: carol.Identifier, RawID: carol.Identifier.RawID(), State: st, IsMuted: muted}
	}
	view := func(kind calls.Kind, ps ...calls.Participant) calls.Call {
		return calls.Call{ID: "s1", Direction: calls.Outgoing, Kind: kind, State: calls.StateConnected,
			AgentID: bob.Identifier.RawID(), CallerInfo: calls.CallerInfo{Identifier: bob.Identifier}, RemoteParticipants: ps}
	}
	for _, c := range []struct {
		name            string
		prev, now       calls.Call
		wantHeld, wantM *bool
	}{
		{"1:1, the target holds", view(calls.OneToOne, agent, target(calls.ParticipantConnected, false)),
			view(calls.OneToOne, agent, target(calls.ParticipantHold, false)), new(true), nil},
		{"1:1, the target mutes", view(calls.OneToOne, agent, target(calls.ParticipantConnected, false)),
			view(calls.OneToOne, agent, target(calls.ParticipantConnected, true)), nil, new(true)},
		{"group: the first party is the pair's", view(calls.Group, agent, target(calls.ParticipantConnected, false)),
			view(calls.Group, agent, target(calls.ParticipantHold, false)), nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := calls.PeerChangeOf(&c.prev, c.now)
			if (ch.Held == nil) != (c.wantHeld == nil) || ch.Held != nil && *ch.Held != *c.wantHeld {
				t.Errorf("held %v, want %v", ch.Held, c.wantHeld)
			}
			if (ch.Muted == nil) != (c.wantM == nil) || ch.Muted != nil && *ch.Muted != *c.wantM {
				t.Errorf("muted %v, want %v", ch.Muted, c.wantM)
			}
		})
	}
}

// transferLog is every transferUpdated step recorded in call id's
// history, with its actor and target (not the call ids, which each world
// draws its own way).
func transferLog(f *callstest.Fixture, id string) []string {
	var out []string
	for _, r := range f.Store.Records(id) {
		for _, ev := range r.Events {
			d, ok := ev.Data.(calls.TransferData)
			if ev.Type != calls.EventTransferUpdated || !ok || ev.Actor == nil {
				continue
			}
			out = append(out, fmt.Sprintf("%s by %s:%s target=%s", d.Step, ev.Actor.Kind, ev.Actor.RawID, d.Target))
		}
	}
	return out
}

// TestPeerTransferEventsAsOnOneNode: alice, on node a, transfers or
// merges calls whose other parties (bob, carol) are on node b; each
// party's history on its own node records the same transferUpdated steps,
// by alice, as one node records (blind, a consult completed or canceled,
// a merge), the far parties' included; none of them names a
// serverCallId on b (b's calls do not move), and far never goes empty.
func TestPeerTransferEventsAsOnOneNode(t *testing.T) {
	const (
		bobAlice  = "8:acs:bob>8:acs:alice"
		aliceBob  = "8:acs:alice<8:acs:bob"
		aliceCust = "8:acs:alice>8:acs:cust"
		aliceCar  = "8:acs:alice>8:acs:carol"
		carAlice  = "8:acs:carol<8:acs:alice"
	)
	// accept has p answer the call ringing her, named name.
	accept := func(w *mergeWorld, p calls.Principal, name string) {
		w.flush()
		w.calls[name] = mustCall(w.t)(w.of(p).Accept(ctx, p, incoming(w.t, w.of(p), p).ID)).ID
		w.flush()
	}
	tests := []struct {
		name  string
		steps func(w *mergeWorld)
		far   []string // calls on b whose history must have a step
	}{
		{"blind: bob, on b, to the customer", func(w *mergeWorld) {
			w.call(bob, alice)
			mustCall(w.t)(w.a.Transfer(ctx, alice, w.id(aliceBob), calls.TransferRequest{Target: target(customer), Mode: calls.TransferBlind}))
			accept(w, customer, "8:acs:cust<8:acs:bob")
		}, []string{bobAlice}},
		{"blind: the customer to carol, on b", func(w *mergeWorld) {
			w.call(customer, alice)
			mustCall(w.t)(w.a.Transfer(ctx, alice, w.id("8:acs:alice<8:acs:cust"), calls.TransferRequest{Target: target(carol), Mode: calls.TransferBlind}))
			accept(w, carol, "8:acs:carol<8:acs:cust")
		}, nil},
		{"consult completed: bob, on b, to carol, on b", func(w *mergeWorld) {
			w.call(bob, alice)
			mustCall(w.t)(w.a.Transfer(ctx, alice, w.id(aliceBob), calls.TransferRequest{Target: target(carol), Mode: calls.TransferConsult}))
			accept(w, carol, carAlice)
			mustCall(w.t)(w.a.CompleteTransfer(ctx, alice, w.id(aliceBob)))
		}, []string{bobAlice, carAlice}},
		{"consult canceled: the customer's, to carol, on b", func(w *mergeWorld) {
			w.call(alice, customer)
			mustCall(w.t)(w.a.Transfer(ctx, alice, w.id(aliceCust), calls.TransferRequest{Target: target(carol), Mode: calls.TransferConsult}))
			accept(w, carol, carAlice)
			mustCall(w.t)(w.a.CancelTransfer(ctx, alice, w.id(aliceCust)))
		}, []string{carAlice}},
		{"merge: alice's calls to bob and carol, on b", func(w *mergeWorld) {
			w.call(alice, bob)
			w.call(alice, carol)
			mustCall(w.t)(w.a.Merge(ctx, alice, w.id("8:acs:alice>8:acs:bob"), calls.MergeRequest{CallID: w.id(aliceCar)}))
		}, []string{"8:acs:bob<8:acs:alice", carAlice}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, two := newMergeWorld(t, false), newMergeWorld(t, true)
			tt.steps(one)
			tt.steps(two)
			two.flush()
			logs := func(w *mergeWorld) map[string][]string {
				out := map[string][]string{}
				for name, id := range w.calls {
					f := w.a
					if strings.HasPrefix(name, bob.Identifier.RawID()) || strings.HasPrefix(name, carol.Identifier.RawID()) {
						f = w.b
					}
					out[name] = transferLog(f, id)
				}
				return out
			}
			got, want := logs(two), logs(one)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("transfer steps on two nodes:\n  %v\nwant, as on one node:\n  %v", got, want)
			}
			for _, name := range tt.far {
				if len(got[name]) == 0 {
					t.Errorf("b's history of %s has no transferUpdated", name)
				}
			}
			for _, ev := range two.b.Publisher.Events("") {
				if d, ok := ev.Data.(calls.TransferData); ok && (d.ServerCallID != "" || d.CallID != "") {
					t.Errorf("b told %s of call %s %+v: its call did not move", ev.AgentID, ev.CallID, d)
				}
			}
		})
	}
}
