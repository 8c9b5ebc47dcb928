package calls_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestPeerQueueTransfer: alice, on node a, blind-transfers her customer,
// served by node b, to the queue "support". a first asks b whether it can
// queue her; once b agreed, alice leaves (0/7015) and a's conversation
// ends; b puts the customer's own call, Connected and alone in it (a
// group call now), into the queue, as the customer; the queue's offer (an
// AddParticipant as the customer, on b) reaches an agent on any node, and
// once she accepts, she and the customer are Connected to each other.
// Either side may have placed the first call. When b refuses (no queues
// there, no such queue there, its store failing, out of reach), alice's
// request answers the refusal's code and nothing changed: both calls are
// still Connected to each other, nobody was told of a transfer, b's queue
// got nothing, and alice can go on (she hangs up, the customer's call
// ends). When b's queue fails the customer only after b agreed (Enter),
// her call ends.
func TestPeerQueueTransfer(t *testing.T) {
	ann := callstest.Agent("ann")
	tests := []struct {
		name      string
		custCalls bool // the customer called alice (b anchors); else alice called her
		agent     calls.Principal
		agentNode string
		enterErr  error
		checkErr  error      // b's queues refuse "support" (Check)
		bNoQueues bool       // b runs no queues
		unreached error      // a's questions to b answer this (b out of reach)
		wantErr   calls.Code // alice's request is refused with this code
	}{
		{name: "the customer called; an agent of a third node answers", custCalls: true, agent: dave, agentNode: "c"},
		{name: "alice called; an agent of a third node answers", agent: dave, agentNode: "c"},
		{name: "the customer called; an agent of alice's node answers", custCalls: true, agent: ann, agentNode: "a"},
		{name: "alice called; an agent of alice's node answers", agent: ann, agentNode: "a"},
		{name: "alice called; b's queue fails the customer after b agreed", enterErr: errors.New("store down")},
		{name: "the customer called; b runs no queues: refused", custCalls: true, bNoQueues: true, wantErr: calls.CodeNotFound},
		{name: "alice called; b runs no queues: refused", bNoQueues: true, wantErr: calls.CodeNotFound},
		{name: "the customer called; b has no such queue: refused", custCalls: true,
			checkErr: calls.Errorf(calls.CodeNotFound, "no such queue"), wantErr: calls.CodeNotFound},
		{name: "alice called; b's queue store fails: refused, unavailable",
			checkErr: errors.New("store down"), wantErr: calls.CodeUnavailable},
		{name: "the customer called; b is out of reach: refused", custCalls: true,
			unreached: calls.Errorf(calls.CodeUnavailable, "no answer"), wantErr: calls.CodeUnavailable},
		{name: "alice called; the customer's call ended on b meanwhile: refused",
			unreached: calls.Errorf(calls.CodeCallNotFound, "call ended"), wantErr: calls.CodeInvalidState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peers := callstest.NewPeers(t)
			qa, qb := &callstest.Queues{}, &callstest.Queues{Err: tt.enterErr, CheckErr: tt.checkErr}
			a := callstest.New(t, calls.Config{Peers: peers.Network("a"), Queues: qa, NewID: func() string { return "a" + nextID() }})
			bcfg := calls.Config{Peers: peers.Network("b"), Queues: qb, NewID: func() string { return "b" + nextID() }}
			if tt.bNoQueues {
				bcfg.Queues = nil
			}
			b := callstest.New(t, bcfg)
			c := callstest.New(t, calls.Config{Peers: peers.Network("c"), NewID: func() string { return "c" + nextID() }})
			peers.Join("a", a.Switchboard, alice.Identifier.RawID(), ann.Identifier.RawID())
			peers.Join("b", b.Switchboard, customer.Identifier.RawID())
			peers.Join("c", c.Switchboard, dave.Identifier.RawID())
			a.Connect(t, alice)
			a.Connect(t, ann)
			b.Connect(t, customer)
			c.Connect(t, dave)
			nodes := map[string]*callstest.Fixture{"a": a, "b": b, "c": c}

			var aliceCall, custCall string
			if tt.custCalls {
				custCall = mustCall(t)(b.StartCall(ctx, customer, to(alice))).ID
				peers.Flush()
				aliceCall = incoming(t, a, alice).ID
				mustCall(t)(a.Accept(ctx, alice, aliceCall))
			} else {
				aliceCall = mustCall(t)(a.StartCall(ctx, alice, to(customer))).ID
				peers.Flush()
				custCall = incoming(t, b, customer).ID
				mustCall(t)(b.Accept(ctx, customer, custCall))
			}
			peers.Flush()
			wantState(t, b, customer, custCall, calls.StateConnected)

			wantCode(t, second(a.Transfer(ctx, alice, aliceCall, calls.TransferRequest{Queue: "sales", Mode: calls.TransferBlind})), calls.CodeNotFound)
			if tt.wantErr != "" {
				peers.Refuse(tt.unreached)
				_, err := a.Transfer(ctx, alice, aliceCall, calls.TransferRequest{Queue: "support", Mode: calls.TransferBlind})
				wantCode(t, err, tt.wantErr)
				peers.Refuse(nil)
				peers.Flush()
				wantUnchanged(t, a, alice, aliceCall, customer)
				wantUnchanged(t, b, customer, custCall, alice)
				if qb.Last().CallID != "" || qa.Last().CallID != "" {
					t.Errorf("a queue got a call: a %q, b %q", qa.Last().CallID, qb.Last().CallID)
				}
				// Nothing lost: the call goes on, and ends as any call.
				mustCall(t)(a.HangUp(ctx, alice, aliceCall, false))
				peers.Flush()
				wantEnded(t, b, custCall, calls.ReasonRemoteHungUp)
				return
			}
			got := mustCall(t)(a.Transfer(ctx, alice, aliceCall, calls.TransferRequest{Queue: "support", Mode: calls.TransferBlind}))
			if got.State != calls.StateDisconnected || got.CallEndReason == nil || *got.CallEndReason != calls.ReasonTransferred {
				t.Fatalf("alice's call after the transfer: %s %+v, want Disconnected 0/7015", got.State, got.CallEndReason)
			}
			peers.Flush()
			wantEnded(t, a, aliceCall, calls.ReasonTransferred)
			if s := transferSteps(a, alice, aliceCall); !slices.Equal(s, []string{"blind by agent " + alice.Identifier.RawID()}) {
				t.Errorf("alice's timeline: %v", s)
			}
			if tt.enterErr != nil {
				wantEnded(t, b, custCall, calls.ReasonHungUp)
				return
			}

			// The customer waits on b, alone in her call, entered there.
			cc := get(t, b, customer, custCall)
			if cc.State != calls.StateConnected || cc.Kind != calls.Group {
				t.Errorf("the customer's call on b: %s %s, want Connected, a group call", cc.State, cc.Kind)
			}
			for _, p := range cc.RemoteParticipants {
				if p.State != calls.ParticipantDisconnected {
					t.Errorf("the customer's call on b still has %s %s", p.RawID, p.State)
				}
			}
			if qb.Last().CallID != custCall || qb.Last().Customer.Identifier != customer.Identifier || qb.Last().Customer.Role != calls.RoleCaller {
				t.Fatalf("b's queue got %s as %+v, want the customer's call %s", qb.Last().CallID, qb.Last().Customer, custCall)
			}
			if qa.Last().CallID != "" {
				t.Errorf("a's queue got call %s: the customer is b's", qa.Last().CallID)
			}
			if s := transferSteps(b, customer, custCall); !slices.Equal(s, []string{"blind by remote " + alice.Identifier.RawID()}) {
				t.Errorf("the customer was told %v", s)
			}
			if m := routeOf(t, b, custCall); !m.Send || !m.Receive {
				t.Errorf("the waiting customer does not send and receive: %+v", m)
			}

			// The queue offers her to the agent (as the engine does, she
			// ends the call for her agent when she leaves), who accepts.
			b.EndWithCaller(qb.Last().CallID)
			if _, err := b.AddParticipant(ctx, qb.Last().Customer, qb.Last().CallID, calls.AddParticipantRequest{Identifier: tt.agent.Identifier}); err != nil {
				t.Fatal(err)
			}
			peers.Flush()
			an := nodes[tt.agentNode]
			offer := incoming(t, an, tt.agent)
			if offer.CallerInfo.Identifier != customer.Identifier {
				t.Errorf("the offer comes from %s, want the customer", offer.CallerInfo.Identifier.RawID())
			}
			mustCall(t)(an.Accept(ctx, tt.agent, offer.ID))
			peers.Flush()
			ac := get(t, an, tt.agent, offer.ID)
			if ac.State != calls.StateConnected || !slices.ContainsFunc(ac.RemoteParticipants, func(p calls.Participant) bool {
				return p.RawID == customer.Identifier.RawID() && p.State == calls.ParticipantConnected
			}) {
				t.Errorf("the agent's call %s %+v, want Connected with the customer", ac.State, ac.RemoteParticipants)
			}
			cc = get(t, b, customer, custCall)
			if cc.State != calls.StateConnected || !slices.ContainsFunc(cc.RemoteParticipants, func(p calls.Participant) bool {
				return p.RawID == tt.agent.Identifier.RawID() && p.State == calls.ParticipantConnected
			}) {
				t.Errorf("the customer's call %s %+v, want Connected with the agent", cc.State, cc.RemoteParticipants)
			}
			if m := routeOf(t, an, offer.ID); !m.Send || !m.Receive {
				t.Errorf("the agent does not send and receive: %+v", m)
			}

			// The customer hangs up: the agent's call ends.
			mustCall(t)(b.HangUp(ctx, customer, custCall, false))
			peers.Flush()
			if r := lastRecord(an, offer.ID); !strings.HasPrefix(r, string(calls.StateDisconnected)) {
				t.Errorf("the agent's call after the customer hung up: %s", r)
			}
		})
	}
}

// TestPeerQueueConsult: alice, on node a, consults the queue "support"
// about her customer, served by node b: her consult call waits in a's
// queue, the customer's call is held (b shows alice holding), the queue's
// agent (on a or on a third node) accepts, and completing joins the
// customer and the agent, each seeing the other Connected where she
// lives, while alice's calls end 0/7015.
func TestPeerQueueConsult(t *testing.T) {
	ann := callstest.Agent("ann")
	tests := []struct {
		name      string
		custCalls bool
		agent     calls.Principal
		agentNode string
	}{
		{name: "the customer called; an agent of a third node answers", custCalls: true, agent: dave, agentNode: "c"},
		{name: "alice called; an agent of a third node answers", agent: dave, agentNode: "c"},
		{name: "the customer called; an agent of alice's node answers", custCalls: true, agent: ann, agentNode: "a"},
		{name: "alice called; an agent of alice's node answers", agent: ann, agentNode: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peers := callstest.NewPeers(t)
			qa := &callstest.Queues{}
			a := callstest.New(t, calls.Config{Peers: peers.Network("a"), Queues: qa, NewID: func() string { return "a" + nextID() }})
			b := callstest.New(t, calls.Config{Peers: peers.Network("b"), Queues: &callstest.Queues{}, NewID: func() string { return "b" + nextID() }})
			c := callstest.New(t, calls.Config{Peers: peers.Network("c"), NewID: func() string { return "c" + nextID() }})
			peers.Join("a", a.Switchboard, alice.Identifier.RawID(), ann.Identifier.RawID())
			peers.Join("b", b.Switchboard, customer.Identifier.RawID())
			peers.Join("c", c.Switchboard, dave.Identifier.RawID())
			a.Connect(t, alice)
			a.Connect(t, ann)
			b.Connect(t, customer)
			c.Connect(t, dave)
			nodes := map[string]*callstest.Fixture{"a": a, "b": b, "c": c}

			var aliceCall, custCall string
			if tt.custCalls {
				custCall = mustCall(t)(b.StartCall(ctx, customer, to(alice))).ID
				peers.Flush()
				aliceCall = incoming(t, a, alice).ID
				mustCall(t)(a.Accept(ctx, alice, aliceCall))
			} else {
				aliceCall = mustCall(t)(a.StartCall(ctx, alice, to(customer))).ID
				peers.Flush()
				custCall = incoming(t, b, customer).ID
				mustCall(t)(b.Accept(ctx, customer, custCall))
			}
			peers.Flush()

			cons := mustCall(t)(a.Transfer(ctx, alice, aliceCall, calls.TransferRequest{Queue: "support", Mode: calls.TransferConsult}))
			peers.Flush()
			if qa.Last().CallID != cons.ID {
				t.Fatalf("a's queue got %q, want alice's consult call %s", qa.Last().CallID, cons.ID)
			}
			if r := lastRecord(b, custCall); !strings.HasPrefix(r, "RemoteHold") {
				t.Errorf("the customer's call during the consult: %s, want RemoteHold", r)
			}
			a.EndWithCaller(cons.ID)
			if _, err := a.AddParticipant(ctx, qa.Last().Customer, cons.ID, calls.AddParticipantRequest{Identifier: tt.agent.Identifier}); err != nil {
				t.Fatal(err)
			}
			peers.Flush()
			an := nodes[tt.agentNode]
			offer := incoming(t, an, tt.agent)
			mustCall(t)(an.Accept(ctx, tt.agent, offer.ID))
			peers.Flush()
			done := mustCall(t)(a.CompleteTransfer(ctx, alice, cons.ID))
			if done.CallEndReason == nil || *done.CallEndReason != calls.ReasonTransferred {
				t.Errorf("alice's call after the completion: %+v, want 0/7015", done.CallEndReason)
			}
			peers.Flush()
			want := func(f *callstest.Fixture, p calls.Principal, id string, other calls.Principal) {
				t.Helper()
				got := get(t, f, p, id)
				if got.State != calls.StateConnected || !slices.ContainsFunc(got.RemoteParticipants, func(q calls.Participant) bool {
					return q.RawID == other.Identifier.RawID() && q.State == calls.ParticipantConnected
				}) {
					t.Errorf("%s's call: %s", p.Identifier.RawID(), lastRecord(f, id))
				}
				if m := routeOf(t, f, id); !m.Send || !m.Receive {
					t.Errorf("%s does not send and receive: %+v", p.Identifier.RawID(), m)
				}
			}
			want(b, customer, custCall, tt.agent)
			want(an, tt.agent, offer.ID, customer)
			mustCall(t)(b.HangUp(ctx, customer, custCall, false))
			peers.Flush()
			if r := lastRecord(an, offer.ID); !strings.HasPrefix(r, string(calls.StateDisconnected)) {
				t.Errorf("the agent's call after the customer hung up: %s", r)
			}
		})
	}
}

// TestPeerQueueTransferPhone: a phone, whose call the phone network
// brought to node b, called alice on node a; alice transfers it to the
// queue "support": b queues the phone's call (the phone as the customer),
// the phone stays Connected, and the queue's agent who accepts talks to
// it; when b's queue refuses it, the phone's call ends.
func TestPeerQueueTransferPhone(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "queued", true: "refused"}[refuse], func(t *testing.T) {
			peers := callstest.NewPeers(t)
			qb := &callstest.Queues{}
			if refuse {
				qb.Err = errors.New("store down")
			}
			a := callstest.New(t, calls.Config{Peers: peers.Network("a"), Queues: &callstest.Queues{}, NewID: func() string { return "a" + nextID() }})
			b := callstest.New(t, calls.Config{Peers: peers.Network("b"), Queues: qb, NewID: func() string { return "b" + nextID() }})
			peers.Join("a", a.Switchboard, alice.Identifier.RawID(), dave.Identifier.RawID())
			peers.Join("b", b.Switchboard)
			a.Connect(t, alice)
			a.Connect(t, dave)
			ln := &line{}
			pc := mustCall(t)(b.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: ln}))
			peers.Flush()
			aliceCall := incoming(t, a, alice).ID
			mustCall(t)(a.Accept(ctx, alice, aliceCall))
			peers.Flush()
			mustCall(t)(a.Transfer(ctx, alice, aliceCall, calls.TransferRequest{Queue: "support", Mode: calls.TransferBlind}))
			peers.Flush()
			if refuse {
				if last := ln.last(); last.State != calls.StateDisconnected {
					t.Errorf("the phone's call after b's queue refused it: %s, want ended", last.State)
				}
				return
			}
			if last := ln.last(); last.State != calls.StateConnected {
				t.Fatalf("the phone's call after the transfer: %s, want Connected", last.State)
			}
			if qb.Last().CallID != pc.ID || qb.Last().Customer.Identifier != phone.Identifier {
				t.Fatalf("b's queue got %s as %+v, want the phone's call %s", qb.Last().CallID, qb.Last().Customer, pc.ID)
			}
			b.EndWithCaller(qb.Last().CallID)
			if _, err := b.AddParticipant(ctx, qb.Last().Customer, qb.Last().CallID, calls.AddParticipantRequest{Identifier: dave.Identifier}); err != nil {
				t.Fatal(err)
			}
			peers.Flush()
			offer := incoming(t, a, dave)
			mustCall(t)(a.Accept(ctx, dave, offer.ID))
			peers.Flush()
			if last := ln.last(); last.State != calls.StateConnected || !slices.ContainsFunc(last.RemoteParticipants, func(p calls.Participant) bool {
				return p.RawID == dave.Identifier.RawID() && p.State == calls.ParticipantConnected
			}) {
				t.Errorf("the phone's call %s %+v, want Connected with dave", last.State, last.RemoteParticipants)
			}
			if err := b.EndPhoneCall(ctx, pc.ID, calls.ReasonHungUp); err != nil {
				t.Fatal(err)
			}
			peers.Flush()
			if r := lastRecord(a, offer.ID); !strings.HasPrefix(r, string(calls.StateDisconnected)) {
				t.Errorf("dave's call after the phone hung up: %s", r)
			}
		})
	}
}

// wantUnchanged fails unless p's call id is Connected (and active) with
// other Connected in it, as a 1:1 call, and p was told of no transfer.
func wantUnchanged(t *testing.T, f *callstest.Fixture, p calls.Principal, id string, other calls.Principal) {
	t.Helper()
	got := get(t, f, p, id)
	if got.State != calls.StateConnected || !got.IsActive || got.Kind != calls.OneToOne || len(got.RemoteParticipants) != 1 ||
		got.RemoteParticipants[0].RawID != other.Identifier.RawID() || got.RemoteParticipants[0].State != calls.ParticipantConnected {
		t.Errorf("%s's call after the refusal: %s, want it unchanged (Connected with %s)", p.Identifier.RawID(), lastRecord(f, id), other.Identifier.RawID())
	}
	if s := transferSteps(f, p, id); len(s) != 0 {
		t.Errorf("%s was told of a transfer: %v", p.Identifier.RawID(), s)
	}
	if m := routeOf(t, f, id); !m.Send || !m.Receive {
		t.Errorf("%s does not send and receive after the refusal: %+v", p.Identifier.RawID(), m)
	}
}
