package calls_test

import (
	"context"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestDrainRefusesNewCalls: once draining, what would start a call is
// refused with draining, and nothing was made of it; what acts on the
// calls there are goes on.
func TestDrainRefusesNewCalls(t *testing.T) {
	const room = "standup"
	tests := []struct {
		name string
		// do runs after Drain, with a's and b's 1:1 call live, b's call
		// ringing from carol, and dave in the room.
		do   func(f *callstest.Fixture, ac, bIn string) error
		want calls.Code // "" succeeds
	}{
		{"start a call", func(f *callstest.Fixture, _, _ string) error {
			_, err := f.StartCall(ctx, alice, to(dave))
			return err
		}, calls.CodeDraining},
		{"start a call to a phone", func(f *callstest.Fixture, _, _ string) error {
			_, err := f.StartPhoneCall(ctx, calls.PhoneCallRequest{
				Caller: calls.CallerInfo{Identifier: calls.PhoneNumber("+14255550123")},
				Callee: alice.Identifier, Line: lineFunc(func(calls.Call) {}),
			})
			return err
		}, calls.CodeDraining},
		{"join a room nobody is in", func(f *callstest.Fixture, _, _ string) error {
			_, err := f.JoinCall(ctx, alice, calls.JoinRequest{RoomID: "empty-room"})
			return err
		}, calls.CodeDraining},
		{"join a room with someone in it", func(f *callstest.Fixture, _, _ string) error {
			_, err := f.JoinCall(ctx, carol, calls.JoinRequest{RoomID: room})
			return err
		}, ""},
		{"add a participant", func(f *callstest.Fixture, ac, _ string) error {
			_, err := f.AddParticipant(ctx, alice, ac, calls.AddParticipantRequest{Identifier: dave.Identifier})
			return err
		}, calls.CodeDraining},
		{"hold, then resume", func(f *callstest.Fixture, ac, _ string) error {
			if _, err := f.Hold(ctx, alice, ac); err != nil {
				return err
			}
			_, err := f.Resume(ctx, alice, ac)
			return err
		}, ""},
		{"mute", func(f *callstest.Fixture, ac, _ string) error {
			_, err := f.SetMuted(ctx, alice, ac, true)
			return err
		}, ""},
		{"accept a call that rang before", func(f *callstest.Fixture, _, bIn string) error {
			_, err := f.Accept(ctx, bob, bIn)
			return err
		}, ""},
		{"hang up", func(f *callstest.Fixture, ac, _ string) error {
			_, err := f.HangUp(ctx, alice, ac, false)
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := callstest.New(t, calls.Config{})
			for _, p := range []calls.Principal{alice, bob, carol, dave} {
				f.Connect(t, p)
			}
			ac, _ := connect(t, f, alice, bob)
			mustCall(t)(f.StartCall(ctx, carol, to(bob)))
			bIn := incoming(t, f, bob).ID
			mustCall(t)(f.JoinCall(ctx, dave, calls.JoinRequest{RoomID: room}))

			if n, _ := f.Drain(); n != 5 {
				t.Errorf("Drain answers %d calls, want 5 (alice's and bob's, carol's and bob's ringing one, dave's)", n)
			}
			if !f.Draining() {
				t.Error("Draining() = false after Drain")
			}
			before, _ := f.ListCalls(ctx, sup, "")
			err := tt.do(f, ac.ID, bIn)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("error %v while draining, want none", err)
				}
				return
			}
			wantCode(t, err, tt.want)
			after, _ := f.ListCalls(ctx, sup, "")
			if len(after) != len(before) {
				t.Errorf("a refused operation changed the calls: %d before, %d after", len(before), len(after))
			}
		})
	}
}

// TestDrainIdle: Drain's channel closes when the last call ends (the echo
// bot's leg with it), and at once when there is none.
func TestDrainIdle(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, bob)
	ac, _ := connect(t, f, alice, bob)
	echo := mustCall(t)(f.StartCall(ctx, alice, calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}}))

	n, idle := f.Drain()
	if n != 3 {
		t.Errorf("Drain answers %d calls, want 3 (the echo bot's leg is not one)", n)
	}
	for _, id := range []string{ac.ID, echo.ID} {
		select {
		case <-idle:
			t.Fatalf("idle before call %s ended", id)
		default:
		}
		mustCall(t)(f.HangUp(ctx, alice, id, false))
	}
	select {
	case <-idle:
	default:
		t.Fatal("idle still open once every call ended")
	}
	if n, again := f.Drain(); n != 0 || again != idle {
		t.Errorf("Drain again answers %d calls and another channel, want 0 and the same", n)
	}
	wantEnded(t, f, ac.ID, calls.ReasonHungUp)

	g := callstest.New(t, calls.Config{})
	if _, idle := g.Drain(); idle == nil {
		t.Fatal("Drain answers a nil channel")
	} else {
		select {
		case <-idle:
		default:
			t.Fatal("Drain with no call: idle is not closed")
		}
	}
}

// lineFunc is a calls.PhoneLine that hands each update to a function.
type lineFunc func(calls.Call)

func (f lineFunc) Update(c calls.Call) { f(c) }

// recoveredStore answers the calls in ended as ended with 503/0 in the
// shared history, as when other nodes recovered this one.
type recoveredStore struct {
	*callstest.Store
	ended map[string]bool
}

func (s recoveredStore) FindCallByID(ctx context.Context, id string) (calls.CallHistory, error) {
	if !s.ended[id] {
		return s.Store.FindCallByID(ctx, id)
	}
	r := calls.ReasonSwitchboardDied
	return calls.CallHistory{Call: calls.Call{ID: id, State: calls.StateDisconnected, CallEndReason: &r}}, nil
}

// TestDrainUnfence: a fence is left (Unfence) and new calls are taken
// again, unless a drain to stop came too; the calls the history shows
// ended by other nodes end here with the recorded reason, the others stay.
func TestDrainUnfence(t *testing.T) {
	tests := []struct {
		name        string
		drain       func(f *callstest.Fixture)
		recovered   bool // the history shows alice's and bob's call ended
		want        calls.Code
		wantEnded   int
		wantDrained bool
	}{
		{"after a fence", func(f *callstest.Fixture) { f.Fence() }, false, "", 0, false},
		{"after a fence, its calls recovered", func(f *callstest.Fixture) { f.Fence() }, true, "", 1, false},
		{"after a drain to stop", func(f *callstest.Fixture) { f.Drain() }, true, calls.CodeDraining, 0, true},
		{"after a fence then a drain to stop", func(f *callstest.Fixture) { f.Fence(); f.Drain() }, true, calls.CodeDraining, 0, true},
		{"after a drain to stop then a fence", func(f *callstest.Fixture) { f.Drain(); f.Fence() }, false, calls.CodeDraining, 0, true},
		{"without a fence", func(*callstest.Fixture) {}, false, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := recoveredStore{Store: &callstest.Store{}, ended: map[string]bool{}}
			f := callstest.New(t, calls.Config{Store: st})
			f.Store = st.Store // the records wantEnded reads
			for _, p := range []calls.Principal{alice, bob, carol, dave} {
				f.Connect(t, p)
			}
			ab, ba := connect(t, f, alice, bob)
			cd, _ := connect(t, f, carol, dave)
			if tt.recovered {
				st.ended[ab.ID], st.ended[ba.ID] = true, true
			}
			tt.drain(f)
			recordsBefore := len(f.Store.Records(ab.ID)) + len(f.Store.Records(ba.ID))

			ended, err := f.Unfence(ctx)
			if tt.want == "" && err != nil {
				t.Fatalf("Unfence: %v, want no error", err)
			}
			if tt.want != "" {
				wantCode(t, err, tt.want)
			}
			if ended != tt.wantEnded {
				t.Errorf("Unfence ended %d calls, want %d", ended, tt.wantEnded)
			}
			if got := f.Draining(); got != tt.wantDrained {
				t.Errorf("Draining() = %v after Unfence, want %v", got, tt.wantDrained)
			}
			_, err = f.StartCall(ctx, alice, to(carol))
			if tt.wantDrained {
				wantCode(t, err, calls.CodeDraining)
			} else if err != nil {
				t.Errorf("a new call after Unfence: %v, want none", err)
			}
			if tt.wantEnded > 0 {
				// Ended here as the history says, and not recorded again:
				// the node that recovered them wrote their end.
				for _, c := range []struct {
					p  calls.Principal
					id string
				}{{alice, ab.ID}, {bob, ba.ID}} {
					if live, err := f.GetCall(ctx, c.p, c.id); err == nil && live.State != calls.StateDisconnected {
						t.Errorf("recovered call %s is still %s here after Unfence", c.id, live.State)
					}
				}
				if n := len(f.Store.Records(ab.ID)) + len(f.Store.Records(ba.ID)); n != recordsBefore {
					t.Errorf("Unfence recorded %d changes of the recovered calls, want none (the history has their end)", n-recordsBefore)
				}
			}
			if live, err := f.GetCall(ctx, carol, cd.ID); err != nil || live.State != calls.StateConnected {
				t.Errorf("carol's call, not recovered: %v %v, want Connected", live.State, err)
			}
			if tt.recovered && tt.wantEnded == 0 {
				if live, err := f.GetCall(ctx, alice, ab.ID); err != nil || live.State != calls.StateConnected {
					t.Errorf("alice's call while still drained: %v %v, want Connected (not reconciled)", live.State, err)
				}
			}
		})
	}
}
