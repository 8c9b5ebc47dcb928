package calls_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

func TestMediaLost(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, bob)
	f.Connect(t, carol)
	ab, ba := connect(t, f, alice, bob) // held below, when alice joins the group
	gid := calls.JoinRequest{GroupID: "0b1f4a9e-2222-4e2a-9a43-7c1c64b1c0de"}
	ag := mustCall(t)(f.JoinCall(ctx, alice, gid))
	cg := mustCall(t)(f.JoinCall(ctx, carol, gid))
	cb, bc := connect(t, f, carol, bob) // not alice's: untouched

	f.MediaLost(alice.Identifier.RawID())

	wantEnded(t, f, ab.ID, calls.ReasonMediaLost)
	wantEnded(t, f, ba.ID, calls.ReasonMediaLost) // a 1:1 call ends for both
	wantEnded(t, f, ag.ID, calls.ReasonMediaLost)
	if got := get(t, f, carol, cg.ID); got.State == calls.StateDisconnected {
		t.Errorf("carol's group call ended with alice's media: %s", got.State)
	}
	wantState(t, f, carol, cb.ID, calls.StateConnected)
	wantState(t, f, bob, bc.ID, calls.StateConnected)

	// Unknown identities, bots and identities without calls are no-ops.
	f.MediaLost("8:acs:nobody")
	f.MediaLost(calls.EchoBot.RawID())
	f.MediaLost(alice.Identifier.RawID())
}

// TestCloseWhileTheOtherSideActs: shutdown ends a 1:1 call on both sides
// with 503/1 while the other side keeps holding and resuming it.
func TestCloseWhileTheOtherSideActs(t *testing.T) {
	for range 20 {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, alice)
		f.Connect(t, bob)
		ac, bc := connect(t, f, alice, bob)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for hold := true; ; hold = !hold {
				select {
				case <-stop:
					return
				default:
				}
				op := f.Resume
				if hold {
					op = f.Hold // reads bob's list of calls, which the end changes
				}
				if _, err := op(ctx, bob, bc.ID); err != nil && calls.ErrorCode(err) != calls.CodeInvalidState {
					return // the call ended, or the switchboard closed
				}
			}
		}()
		if err := f.Close(ctx); err != nil {
			t.Fatal(err)
		}
		close(stop)
		<-done
		wantEnded(t, f, ac.ID, calls.ReasonShutdown)
		wantEnded(t, f, bc.ID, calls.ReasonShutdown)
	}
}
