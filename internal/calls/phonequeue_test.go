package calls_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestPhoneQueueCall: a call from the phone network to a queue is
// Connected at once (its line is told, which answers the INVITE), alone
// in a group call, and entered into the queue with the phone as the
// customer; the queue offers it as the customer (AddParticipant); each
// way it can end reaches the line.
func TestPhoneQueueCall(t *testing.T) {
	tests := []struct {
		name      string
		queue     string
		enterErr  error
		wantErr   calls.Code
		act       func(t *testing.T, f *callstest.Fixture, q *callstest.Queues)
		wantPhone *calls.EndReason // nil: still Connected
	}{
		{name: "waits", queue: "support"},
		{
			name: "the phone hangs up while an agent rings: her offer is canceled", queue: "support",
			act: func(t *testing.T, f *callstest.Fixture, q *callstest.Queues) {
				if _, err := f.AddParticipant(ctx, q.Last().Customer, q.Last().CallID, calls.AddParticipantRequest{Identifier: alice.Identifier}); err != nil {
					t.Fatal(err)
				}
				in := incoming(t, f, alice)
				if err := f.EndPhoneCall(ctx, q.Last().CallID, calls.ReasonHungUp); err != nil {
					t.Fatal(err)
				}
				if _, err := f.Accept(ctx, alice, in.ID); calls.ErrorCode(err) != calls.CodeCallNotFound {
					t.Errorf("accepting the offer after the phone hung up: %v, want call_not_found", err)
				}
				cs, err := f.ListCalls(ctx, alice, "")
				if err != nil || len(cs) != 0 {
					t.Errorf("alice's calls after the phone hung up: %+v (%v), want none", cs, err)
				}
			},
			wantPhone: &calls.ReasonHungUp,
		},
		{
			name: "answered by the agent the queue offers it to", queue: "support",
			act: func(t *testing.T, f *callstest.Fixture, q *callstest.Queues) {
				if _, err := f.AddParticipant(ctx, q.Last().Customer, q.Last().CallID, calls.AddParticipantRequest{Identifier: alice.Identifier}); err != nil {
					t.Fatal(err)
				}
				c := mustCall(t)(f.Accept(ctx, alice, incoming(t, f, alice).ID))
				if !slices.ContainsFunc(c.RemoteParticipants, func(p calls.Participant) bool {
					return p.Identifier == phone.Identifier && p.State == calls.ParticipantConnected
				}) {
					t.Errorf("alice's call %+v, want the phone Connected in it", c.RemoteParticipants)
				}
			},
		},
		{
			name: "the queue ends it (max wait)", queue: "support",
			act: func(t *testing.T, f *callstest.Fixture, q *callstest.Queues) {
				mustCall(t)(f.HangUp(ctx, q.Last().Customer, q.Last().CallID, false))
			},
			wantPhone: &calls.ReasonHungUp,
		},
		{name: "no such queue", queue: "sales", wantErr: calls.CodeNotFound},
		{name: "the queue refuses it: the phone's call ends 503", queue: "support", enterErr: errors.New("store down"),
			wantPhone: &calls.ReasonQueueUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &callstest.Queues{Err: tt.enterErr}
			f := callstest.New(t, calls.Config{Queues: q})
			f.Connect(t, alice)
			ln := &line{}
			pc, err := f.StartPhoneQueueCall(ctx, calls.PhoneQueueRequest{Caller: phone, Queue: tt.queue, Line: ln})
			switch {
			case tt.wantErr != "":
				if calls.ErrorCode(err) != tt.wantErr {
					t.Fatalf("StartPhoneQueueCall: %v, want %s", err, tt.wantErr)
				}
				if len(ln.states()) != 0 {
					t.Errorf("the line of a refused call heard %v", ln.states())
				}
				return
			case tt.enterErr != nil:
				if err == nil {
					t.Fatal("StartPhoneQueueCall succeeded though the queue refused the call")
				}
			case err != nil:
				t.Fatal(err)
			default:
				if pc.State != calls.StateConnected || len(pc.RemoteParticipants) != 0 {
					t.Errorf("the phone's call %+v, want Connected, alone", pc)
				}
				if q.Last().CallID != pc.ID || q.Last().Customer.Identifier != phone.Identifier || q.Last().Customer.Role != calls.RoleCaller {
					t.Errorf("entered %s as %+v, want %s as the phone", q.Last().CallID, q.Last().Customer, pc.ID)
				}
			}
			if tt.act != nil {
				tt.act(t, f, q)
			}
			states := ln.states()
			if len(states) == 0 || states[0] != calls.StateConnected {
				t.Fatalf("the line heard %v, want Connected first", states)
			}
			last := ln.last()
			switch {
			case tt.wantPhone == nil && last.State != calls.StateConnected:
				t.Errorf("the phone's call is %s, want Connected", last.State)
			case tt.wantPhone != nil && (last.CallEndReason == nil || *last.CallEndReason != *tt.wantPhone):
				t.Errorf("the phone's call ended %+v, want %+v", last.CallEndReason, tt.wantPhone)
			}
		})
	}
}
