package calls_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/holdpolicy"
)

var (
	ctx   = context.Background()
	alice = callstest.Agent("alice")
	bob   = callstest.Agent("bob")
	carol = callstest.Agent("carol")
	dave  = callstest.Agent("dave")
	sup   = callstest.Supervisor("sue")
)

func mustCall(t *testing.T) func(calls.Call, error) calls.Call { return callstest.Must[calls.Call](t) }

func to(p calls.Principal) calls.StartCallRequest {
	return calls.StartCallRequest{Participants: []calls.Identifier{p.Identifier}}
}

// incoming returns the one call ringing for p.
func incoming(t *testing.T, f *callstest.Fixture, p calls.Principal) calls.IncomingCall {
	t.Helper()
	in, err := f.ListIncoming(ctx, p)
	if err != nil || len(in) != 1 {
		t.Fatalf("ListIncoming(%s) = %v, %v; want one call", p.Identifier, in, err)
	}
	return in[0]
}

// connect places a call from a to b and has b accept it; it returns a's
// and b's calls.
func connect(t *testing.T, f *callstest.Fixture, a, b calls.Principal) (calls.Call, calls.Call) {
	t.Helper()
	ac := mustCall(t)(f.StartCall(ctx, a, to(b)))
	in := incoming(t, f, b)
	bc := mustCall(t)(f.Accept(ctx, b, in.ID))
	return get(t, f, a, ac.ID), bc
}

func get(t *testing.T, f *callstest.Fixture, p calls.Principal, id string) calls.Call {
	t.Helper()
	return mustCall(t)(f.GetCall(ctx, p, id))
}

func wantState(t *testing.T, f *callstest.Fixture, p calls.Principal, id string, want calls.CallState) {
	t.Helper()
	if got := get(t, f, p, id); got.State != want || got.IsActive != (want == calls.StateConnected) {
		t.Errorf("%s's call %s: state %s (active %v), want %s", p.Identifier, id, got.State, got.IsActive, want)
	}
}

func wantCode(t *testing.T, err error, want calls.Code) {
	t.Helper()
	if got := calls.ErrorCode(err); err == nil || got != want {
		t.Fatalf("error = %v (code %s), want code %s", err, got, want)
	}
}

func wantEnded(t *testing.T, f *callstest.Fixture, id string, want calls.EndReason) {
	t.Helper()
	recs := f.Store.Records(id)
	if len(recs) == 0 {
		t.Fatalf("call %s was never recorded", id)
	}
	last := recs[len(recs)-1].Call
	if last.State != calls.StateDisconnected || last.CallEndReason == nil {
		t.Fatalf("call %s: last recorded state %s, want Disconnected", id, last.State)
	}
	if got := *last.CallEndReason; got.Code != want.Code || got.SubCode != want.SubCode {
		t.Errorf("call %s ended %d/%d, want %d/%d", id, got.Code, got.SubCode, want.Code, want.SubCode)
	}
}

// activeCalls counts p's Connected calls.
func activeCalls(t *testing.T, f *callstest.Fixture, p calls.Principal) int {
	t.Helper()
	list, err := f.ListCalls(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range list {
		if c.State == calls.StateConnected {
			n++
		}
	}
	return n
}

func TestAgentToAgent(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, bob)

	ac := mustCall(t)(f.StartCall(ctx, alice, to(bob)))
	if ac.State != calls.StateRinging || ac.Direction != calls.Outgoing || ac.Kind != calls.OneToOne {
		t.Fatalf("alice's new call: %s %s %s, want Ringing Outgoing oneToOne", ac.State, ac.Direction, ac.Kind)
	}
	in := incoming(t, f, bob)
	if in.CallerInfo.Identifier != alice.Identifier {
		t.Errorf("incoming caller = %v, want alice", in.CallerInfo.Identifier)
	}
	if !slices.Contains(f.Publisher.Types("8:acs:bob", in.ID), calls.EventIncomingCall) {
		t.Errorf("bob got no incomingCall event")
	}
	bc := mustCall(t)(f.Accept(ctx, bob, in.ID))
	if bc.ID != in.ID {
		t.Errorf("accepted call id %s, want the incoming call's %s", bc.ID, in.ID)
	}
	wantState(t, f, alice, ac.ID, calls.StateConnected)
	wantState(t, f, bob, bc.ID, calls.StateConnected)
	if ac2 := get(t, f, alice, ac.ID); ac2.ServerCallID != bc.ServerCallID {
		t.Errorf("serverCallId differs: %s vs %s", ac2.ServerCallID, bc.ServerCallID)
	}

	mustCall(t)(f.Hold(ctx, alice, ac.ID))
	wantState(t, f, alice, ac.ID, calls.StateLocalHold)
	wantState(t, f, bob, bc.ID, calls.StateRemoteHold)
	if p := get(t, f, bob, bc.ID).RemoteParticipants; len(p) != 1 || p[0].State != calls.ParticipantHold {
		t.Errorf("bob sees alice as %v, want one participant on Hold", p)
	}
	mustCall(t)(f.Resume(ctx, alice, ac.ID))
	wantState(t, f, alice, ac.ID, calls.StateConnected)
	wantState(t, f, bob, bc.ID, calls.StateConnected)

	mustCall(t)(f.HangUp(ctx, bob, bc.ID, false))
	wantEnded(t, f, bc.ID, calls.ReasonHungUp)
	wantEnded(t, f, ac.ID, calls.ReasonRemoteHungUp)
	if _, err := f.GetCall(ctx, alice, ac.ID); calls.ErrorCode(err) != calls.CodeCallNotFound {
		t.Errorf("GetCall after the end: %v, want call_not_found", err)
	}
}

// TestWalkthrough is the README's five minutes: alice calls bob, carol calls
// bob, bob swaps back to alice.
func TestWalkthrough(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{alice, bob, carol} {
		f.Connect(t, p)
	}
	ac, b1 := connect(t, f, alice, bob)
	cc, b2 := connect(t, f, carol, bob)
	wantState(t, f, bob, b1.ID, calls.StateLocalHold)
	wantState(t, f, alice, ac.ID, calls.StateRemoteHold)
	wantState(t, f, bob, b2.ID, calls.StateConnected)
	wantState(t, f, carol, cc.ID, calls.StateConnected)

	mustCall(t)(f.Resume(ctx, bob, b1.ID))
	wantState(t, f, bob, b1.ID, calls.StateConnected)
	wantState(t, f, bob, b2.ID, calls.StateLocalHold)
	wantState(t, f, carol, cc.ID, calls.StateRemoteHold)
	wantState(t, f, alice, ac.ID, calls.StateConnected)

	// No observer ever saw two Connected calls of one identity.
	checkEventsOneActive(t, f)
}

func TestSingleActiveCallRule(t *testing.T) {
	t.Run("start holds the active call", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, alice)
		first := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
		wantState(t, f, alice, first.ID, calls.StateConnected)
		second := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
		wantState(t, f, alice, first.ID, calls.StateLocalHold)
		wantState(t, f, alice, second.ID, calls.StateConnected)
	})
	t.Run("join holds the active call", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		first := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
		g := mustCall(t)(f.JoinCall(ctx, alice, calls.JoinRequest{GroupID: "6f0b0e3c-8d43-4e2a-9a43-7c1c64b1c0de"}))
		wantState(t, f, alice, first.ID, calls.StateLocalHold)
		if g.State != calls.StateConnected || g.Kind != calls.Group {
			t.Errorf("joined call %s %s, want Connected group", g.State, g.Kind)
		}
	})
	t.Run("remote resume while another call is active goes to LocalHold", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		for _, p := range []calls.Principal{alice, bob, carol} {
			f.Connect(t, p)
		}
		ac, b1 := connect(t, f, alice, bob)
		mustCall(t)(f.Hold(ctx, alice, ac.ID))
		wantState(t, f, bob, b1.ID, calls.StateRemoteHold)
		_, b2 := connect(t, f, carol, bob) // bob's active call is now carol's
		wantState(t, f, bob, b2.ID, calls.StateConnected)
		mustCall(t)(f.Resume(ctx, alice, ac.ID))
		wantState(t, f, bob, b1.ID, calls.StateLocalHold)
		wantState(t, f, alice, ac.ID, calls.StateRemoteHold)
		wantState(t, f, bob, b2.ID, calls.StateConnected)
	})
	t.Run("a call is Connected only when every holder resumed", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, alice)
		f.Connect(t, bob)
		ac, bc := connect(t, f, alice, bob)
		mustCall(t)(f.Hold(ctx, alice, ac.ID))
		mustCall(t)(f.Hold(ctx, bob, bc.ID))
		mustCall(t)(f.Resume(ctx, alice, ac.ID))
		wantState(t, f, alice, ac.ID, calls.StateRemoteHold)
		wantState(t, f, bob, bc.ID, calls.StateLocalHold)
		mustCall(t)(f.Resume(ctx, bob, bc.ID))
		wantState(t, f, alice, ac.ID, calls.StateConnected)
		wantState(t, f, bob, bc.ID, calls.StateConnected)
	})
	t.Run("an answer while another call is active goes to LocalHold", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, alice)
		f.Connect(t, bob)
		ac := mustCall(t)(f.StartCall(ctx, alice, to(bob)))
		echo := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
		bc := mustCall(t)(f.Accept(ctx, bob, incoming(t, f, bob).ID))
		wantState(t, f, alice, echo.ID, calls.StateConnected)
		wantState(t, f, alice, ac.ID, calls.StateLocalHold)
		wantState(t, f, bob, bc.ID, calls.StateRemoteHold)
	})
	t.Run("nothing resumes by itself when the active call ends", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		echo := calls.Principal{Identifier: calls.EchoBot}
		first := mustCall(t)(f.StartCall(ctx, alice, to(echo)))
		second := mustCall(t)(f.StartCall(ctx, alice, to(echo)))
		mustCall(t)(f.HangUp(ctx, alice, second.ID, false))
		wantState(t, f, alice, first.ID, calls.StateLocalHold)
	})
	t.Run("resume-last-held resumes the call held last", func(t *testing.T) {
		f := callstest.New(t, calls.Config{Policy: holdpolicy.Options{ResumeLastHeld: true}})
		echo := calls.Principal{Identifier: calls.EchoBot}
		first := mustCall(t)(f.StartCall(ctx, alice, to(echo)))
		second := mustCall(t)(f.StartCall(ctx, alice, to(echo)))
		third := mustCall(t)(f.StartCall(ctx, alice, to(echo)))
		mustCall(t)(f.HangUp(ctx, alice, third.ID, false))
		wantState(t, f, alice, second.ID, calls.StateConnected)
		wantState(t, f, alice, first.ID, calls.StateLocalHold)
	})
	t.Run("hold is local in a group call", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		gid := calls.JoinRequest{GroupID: "6f0b0e3c-8d43-4e2a-9a43-7c1c64b1c0de"}
		a := mustCall(t)(f.JoinCall(ctx, alice, gid))
		b := mustCall(t)(f.JoinCall(ctx, bob, gid))
		mustCall(t)(f.Hold(ctx, alice, a.ID))
		wantState(t, f, bob, b.ID, calls.StateConnected)
		if p := get(t, f, bob, b.ID).RemoteParticipants; len(p) != 1 || p[0].State != calls.ParticipantHold {
			t.Errorf("bob sees %v, want alice on Hold", p)
		}
	})
}

func TestEndReasons(t *testing.T) {
	t.Run("callee not connected: 480", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		c := mustCall(t)(f.StartCall(ctx, alice, to(bob)))
		if c.State != calls.StateDisconnected || c.CallEndReason == nil || c.CallEndReason.Code != 480 {
			t.Fatalf("call to a disconnected agent: %s %v, want Disconnected 480", c.State, c.CallEndReason)
		}
	})
	t.Run("ring timeout: 480 both sides", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, bob)
		c := mustCall(t)(f.StartCall(ctx, alice, to(bob)))
		in := incoming(t, f, bob)
		f.Clock.Advance(calls.DefaultRingTimeout)
		wantEnded(t, f, c.ID, calls.ReasonNoAnswer)
		wantEnded(t, f, in.ID, calls.ReasonNoAnswer)
		if !slices.Contains(f.Publisher.Types("8:acs:bob", in.ID), calls.EventCallEnded) {
			t.Error("bob's incoming call ended without callEnded")
		}
	})
	t.Run("reject: 603", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, bob)
		c := mustCall(t)(f.StartCall(ctx, alice, to(bob)))
		in := incoming(t, f, bob)
		mustCall(t)(f.Reject(ctx, bob, in.ID))
		wantEnded(t, f, c.ID, calls.ReasonDeclined)
		wantEnded(t, f, in.ID, calls.ReasonDeclined)
	})
	t.Run("caller gives up: callee 487", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, bob)
		c := mustCall(t)(f.StartCall(ctx, alice, to(bob)))
		in := incoming(t, f, bob)
		mustCall(t)(f.HangUp(ctx, alice, c.ID, false))
		wantEnded(t, f, c.ID, calls.ReasonHungUp)
		wantEnded(t, f, in.ID, calls.ReasonCanceled)
	})
	t.Run("end for everyone: 4097", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		gid := calls.JoinRequest{GroupID: "0b1f4a9e-1111-4e2a-9a43-7c1c64b1c0de"}
		a := mustCall(t)(f.JoinCall(ctx, alice, gid))
		b := mustCall(t)(f.JoinCall(ctx, bob, gid))
		c := mustCall(t)(f.JoinCall(ctx, carol, gid))
		mustCall(t)(f.HangUp(ctx, alice, a.ID, true))
		wantEnded(t, f, a.ID, calls.ReasonHungUp)
		wantEnded(t, f, b.ID, calls.ReasonEndedForAll)
		wantEnded(t, f, c.ID, calls.ReasonEndedForAll)
	})
	t.Run("end for everyone in a 1:1 call", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, bob)
		ac, bc := connect(t, f, alice, bob)
		mustCall(t)(f.HangUp(ctx, alice, ac.ID, true))
		wantEnded(t, f, ac.ID, calls.ReasonHungUp)
		wantEnded(t, f, bc.ID, calls.ReasonEndedForAll)
	})
	t.Run("removed: 5300", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		gid := calls.JoinRequest{GroupID: "0b1f4a9e-2222-4e2a-9a43-7c1c64b1c0de"}
		a := mustCall(t)(f.JoinCall(ctx, alice, gid))
		b := mustCall(t)(f.JoinCall(ctx, bob, gid))
		p, err := f.RemoveParticipant(ctx, alice, a.ID, "8:acs:bob")
		if err != nil || p.State != calls.ParticipantDisconnected {
			t.Fatalf("RemoveParticipant = %+v, %v", p, err)
		}
		wantEnded(t, f, b.ID, calls.ReasonRemoved)
		wantState(t, f, alice, a.ID, calls.StateConnected)
	})
	t.Run("shutdown: 503/1", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, bob)
		ac, bc := connect(t, f, alice, bob)
		if err := f.Close(ctx); err != nil {
			t.Fatal(err)
		}
		wantEnded(t, f, ac.ID, calls.ReasonShutdown)
		wantEnded(t, f, bc.ID, calls.ReasonShutdown)
		_, err := f.StartCall(ctx, alice, to(bob))
		wantCode(t, err, calls.CodeUnavailable)
	})
}

func TestRules(t *testing.T) {
	teams := calls.Principal{Identifier: calls.TeamsUser("t1"), Role: calls.RoleAgent}
	phone := calls.PhoneNumber("+14255550123")
	alt := calls.PhoneNumber("+14255550100")
	tests := []struct {
		name string
		do   func(t *testing.T, f *callstest.Fixture) error
		want calls.Code
	}{
		{"teams user calls an ACS user", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.StartCall(ctx, teams, to(bob))
			return err
		}, calls.CodeOperationNotSupportedForIdentity},
		{"teams user joins a group", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.JoinCall(ctx, teams, calls.JoinRequest{GroupID: "6f0b0e3c-8d43-4e2a-9a43-7c1c64b1c0de"})
			return err
		}, calls.CodeOperationNotSupportedForIdentity},
		{"teams user joins a room", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.JoinCall(ctx, teams, calls.JoinRequest{RoomID: "room1"})
			return err
		}, calls.CodeOperationNotSupportedForIdentity},
		{"teams user adds an ACS user", func(t *testing.T, f *callstest.Fixture) error {
			c := mustCall(t)(f.StartCall(ctx, teams, to(calls.Principal{Identifier: calls.EchoBot})))
			_, err := f.AddParticipant(ctx, teams, c.ID, calls.AddParticipantRequest{Identifier: bob.Identifier})
			return err
		}, calls.CodeOperationNotSupportedForIdentity},
		{"phone number without alternateCallerId", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.StartCall(ctx, alice, calls.StartCallRequest{Participants: []calls.Identifier{phone}})
			return err
		}, calls.CodeAlternateCallerIDRequired},
		{"malformed phone number", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.StartCall(ctx, alice, calls.StartCallRequest{Participants: []calls.Identifier{calls.PhoneNumber("+0123")}, AlternateCallerID: &alt})
			return err
		}, calls.CodeInvalidPhoneNumber},
		{"malformed group id", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.JoinCall(ctx, alice, calls.JoinRequest{GroupID: "not-a-guid"})
			return err
		}, calls.CodeInvalidGroupID},
		{"empty group id", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.JoinCall(ctx, alice, joinJSON(t, `{"groupId": ""}`))
			return err
		}, calls.CodeInvalidGroupID},
		{"empty room id", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.JoinCall(ctx, alice, joinJSON(t, `{"roomId": ""}`))
			return err
		}, calls.CodeInvalidIdentifier},
		{"group id and room id", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.JoinCall(ctx, alice, joinJSON(t, `{"groupId": "", "roomId": "room1"}`))
			return err
		}, calls.CodeInvalidRequest},
		{"neither group id nor room id", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.JoinCall(ctx, alice, joinJSON(t, `{}`))
			return err
		}, calls.CodeInvalidRequest},
		{"list the calls of a malformed identity", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.ListCalls(ctx, sup, "8:acs:")
			return err
		}, calls.CodeInvalidIdentifier},
		{"an agent reads the history of a malformed identity", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.History(ctx, alice, calls.CallFilter{AgentID: "8:acs:"})
			return err
		}, calls.CodeInvalidIdentifier},
		{"mute a participant in a 1:1 call", func(t *testing.T, f *callstest.Fixture) error {
			c := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
			_, err := f.MuteParticipant(ctx, alice, c.ID, calls.EchoBot.RawID())
			return err
		}, calls.CodeNotSupportedInOneToOne},
		{"mute all in a 1:1 call", func(t *testing.T, f *callstest.Fixture) error {
			c := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
			_, err := f.MuteAll(ctx, alice, c.ID)
			return err
		}, calls.CodeNotSupportedInOneToOne},
		{"end a room for everyone", func(t *testing.T, f *callstest.Fixture) error {
			c := mustCall(t)(f.JoinCall(ctx, alice, calls.JoinRequest{RoomID: "room1"}))
			_, err := f.HangUp(ctx, alice, c.ID, true)
			return err
		}, calls.CodeNotSupportedInRooms},
		{"another agent's call", func(t *testing.T, f *callstest.Fixture) error {
			// Bob is a known agent with a call of his own, and alice's call
			// is live: only its owner decides who may touch it.
			mustCall(t)(f.StartCall(ctx, bob, to(calls.Principal{Identifier: calls.EchoBot})))
			c := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
			wantState(t, f, alice, c.ID, calls.StateConnected)
			_, err := f.Hold(ctx, bob, c.ID)
			// The answer does not reveal the call: the same as an unknown id.
			_, unknown := f.Hold(ctx, bob, "no-such-call")
			if calls.ErrorCode(err) != calls.ErrorCode(unknown) {
				t.Errorf("another agent's call: code %s; an unknown call: code %s", calls.ErrorCode(err), calls.ErrorCode(unknown))
			}
			wantState(t, f, alice, c.ID, calls.StateConnected)
			return err
		}, calls.CodeCallNotFound},
		{"resume a Connected call", func(t *testing.T, f *callstest.Fixture) error {
			c := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
			_, err := f.Resume(ctx, alice, c.ID)
			return err
		}, calls.CodeInvalidState},
		{"accept twice", func(t *testing.T, f *callstest.Fixture) error {
			f.Connect(t, bob)
			mustCall(t)(f.StartCall(ctx, alice, to(bob)))
			in := incoming(t, f, bob)
			mustCall(t)(f.Accept(ctx, bob, in.ID))
			_, err := f.Accept(ctx, bob, in.ID)
			return err
		}, calls.CodeInvalidState},
		{"supervisor holds another agent's call", func(t *testing.T, f *callstest.Fixture) error {
			c := mustCall(t)(f.StartCall(ctx, alice, to(calls.Principal{Identifier: calls.EchoBot})))
			_, err := f.Hold(ctx, sup, c.ID)
			return err
		}, calls.CodeForbidden},
		{"caller reads history", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.History(ctx, calls.Principal{Identifier: calls.CommunicationUser("x"), Role: calls.RoleCaller}, calls.CallFilter{})
			return err
		}, calls.CodeForbidden},
		{"agent reads another's history", func(t *testing.T, f *callstest.Fixture) error {
			_, err := f.History(ctx, alice, calls.CallFilter{AgentID: "8:acs:bob"})
			return err
		}, calls.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := callstest.New(t, calls.Config{})
			wantCode(t, tt.do(t, f), tt.want)
		})
	}
}

// joinJSON decodes a join request as the API does.
func joinJSON(t *testing.T, body string) calls.JoinRequest {
	t.Helper()
	var req calls.JoinRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestMuting(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, bob)
	ac, bc := connect(t, f, alice, bob)

	c := mustCall(t)(f.SetMuted(ctx, alice, ac.ID, true))
	if !c.IsMuted {
		t.Error("alice's call is not muted")
	}
	if p := get(t, f, bob, bc.ID).RemoteParticipants[0]; !p.IsMuted {
		t.Error("bob does not see alice muted")
	}
	c = mustCall(t)(f.SetIncomingAudioMuted(ctx, alice, ac.ID, true))
	if !c.IsIncomingAudioMuted {
		t.Error("alice's incoming audio is not muted")
	}

	// A supervisor may mute anyone, in a 1:1 call too; bob is told.
	p, err := f.MuteParticipant(ctx, sup, ac.ID, "8:acs:bob")
	if err != nil || !p.IsMuted {
		t.Fatalf("supervisor mute = %+v, %v", p, err)
	}
	if !get(t, f, bob, bc.ID).IsMuted {
		t.Error("bob is not muted")
	}
	var by string
	for _, ev := range f.Publisher.Events("8:acs:bob") {
		if ev.Type == calls.EventMutedByOthers {
			by = ev.Data.(calls.MutedByOthersData).By
			if ev.Actor == nil || ev.Actor.Kind != calls.ActorSupervisor || ev.Actor.DisplayName != sup.DisplayName {
				t.Errorf("mutedByOthers actor = %+v, want the supervisor with her name %q", ev.Actor, sup.DisplayName)
			}
		}
	}
	if by != "8:acs:sue" {
		t.Errorf("mutedByOthers by %q, want 8:acs:sue", by)
	}
}

func TestParticipants(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{alice, bob, carol} {
		f.Connect(t, p)
	}
	ac, _ := connect(t, f, alice, bob)
	p, err := f.AddParticipant(ctx, alice, ac.ID, calls.AddParticipantRequest{Identifier: carol.Identifier})
	if err != nil || p.State != calls.ParticipantRinging {
		t.Fatalf("AddParticipant = %+v, %v; want carol Ringing", p, err)
	}
	if got := get(t, f, alice, ac.ID).Kind; got != calls.Group {
		t.Errorf("kind after adding = %s, want group", got)
	}
	cc := mustCall(t)(f.Accept(ctx, carol, incoming(t, f, carol).ID))
	if n := len(cc.RemoteParticipants); n != 2 {
		t.Errorf("carol sees %d participants, want 2", n)
	}
	// Now a group call: alice may mute carol.
	if _, err := f.MuteParticipant(ctx, alice, ac.ID, "8:acs:carol"); err != nil {
		t.Errorf("mute carol in a group call: %v", err)
	}
	if _, err := f.AddParticipant(ctx, alice, ac.ID, calls.AddParticipantRequest{Identifier: carol.Identifier}); calls.ErrorCode(err) != calls.CodeInvalidState {
		t.Errorf("adding carol twice: %v, want invalid_state", err)
	}
	if _, err := f.RemoveParticipant(ctx, alice, ac.ID, "8:acs:nobody"); calls.ErrorCode(err) != calls.CodeParticipantNotFound {
		t.Errorf("removing a stranger: %v, want participant_not_found", err)
	}
	// Someone not connected: the participant ends at once with 480.
	p, err = f.AddParticipant(ctx, alice, ac.ID, calls.AddParticipantRequest{Identifier: dave.Identifier})
	if err != nil || p.State != calls.ParticipantDisconnected || p.CallEndReason == nil || p.CallEndReason.Code != 480 {
		t.Errorf("adding a disconnected agent = %+v, %v; want Disconnected 480", p, err)
	}
}

// TestMediaRoutes checks that, whatever the calls, each identity sends and
// receives audio in at most one conversation: its active call.
func TestMediaRoutes(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{alice, bob, carol} {
		f.Connect(t, p)
	}
	a1, _ := connect(t, f, alice, bob)
	_, _ = connect(t, f, carol, alice)
	mustCall(t)(f.Resume(ctx, alice, a1.ID))
	sending := map[string]int{}
	for _, r := range f.Media.Routes() {
		for _, m := range r.Members {
			if m.Send || m.Receive {
				sending[m.RawID]++
				if c := get(t, f, callstest.Agent(m.RawID[len("8:acs:"):]), m.CallID); !c.IsActive {
					t.Errorf("%s has media in call %s, which is %s", m.RawID, m.CallID, c.State)
				}
			}
		}
	}
	for id, n := range sending {
		if n > 1 {
			t.Errorf("%s has media in %d calls", id, n)
		}
	}
	if sending["8:acs:alice"] != 1 {
		t.Errorf("alice has media in %d calls, want 1", sending["8:acs:alice"])
	}
}

func TestSnapshot(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, bob)
	ac, _ := connect(t, f, alice, bob)
	_ = mustCall(t)(f.StartCall(ctx, carol, to(bob)))
	snap := f.Connect(t, bob)
	if len(snap.Calls) != 1 || len(snap.IncomingCalls) != 1 {
		t.Errorf("bob's snapshot: %d calls, %d incoming; want 1 and 1", len(snap.Calls), len(snap.IncomingCalls))
	}
	all := f.Connect(t, sup)
	ids := map[string]bool{}
	for _, c := range all.Calls {
		ids[c.ID] = true
	}
	if !ids[ac.ID] || len(all.Agents) < 2 {
		t.Errorf("supervisor snapshot: calls %v, agents %d; want alice's call and bob and sue", ids, len(all.Agents))
	}
}
