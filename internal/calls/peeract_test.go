package calls_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestPeerActsAsOnOneNode: from bob's call on a node that does not anchor
// the group call (alice's does; carol is on a third), a supervisor mutes
// carol, removes alice and mutes everyone, and bob adds dave (owned by his
// node, rung from the anchor): every party's recorded call, dave's too, is
// at each step what one node records, and the answers are one node's.
func TestPeerActsAsOnOneNode(t *testing.T) {
	run := func(threeNodes bool) []string {
		w := newRoomWorld(t, threeNodes)
		w.group = true
		var marks []string
		var daves string // dave's call, once rung
		mark := func(label string, answer any) {
			w.flush()
			marks = append(marks, fmt.Sprintf("%s (answer %s): alice %s; bob %s; carol %s; dave %s", label, answerOf(answer),
				w.room(alice), w.room(bob), w.room(carol), recordOf(w.of(dave), daves)))
		}
		for _, p := range []calls.Principal{alice, carol, bob} {
			w.join(p)
			w.flush()
		}
		bobs := w.callIDs[bob.Identifier.RawID()]
		sb := w.of(bob)
		got, err := sb.MuteParticipant(ctx, sup, bobs, carol.Identifier.RawID())
		if err != nil {
			t.Fatalf("the supervisor mutes carol through bob's call: %v", err)
		}
		mark("sue mutes carol", got)
		mustCall(t)(w.of(carol).SetMuted(ctx, carol, w.callIDs[carol.Identifier.RawID()], false))
		mark("carol unmutes herself", nil)
		all := mustCall(t)(sb.MuteAll(ctx, sup, bobs))
		mark("sue mutes all", all)
		mustCall(t)(w.of(carol).SetMuted(ctx, carol, w.callIDs[carol.Identifier.RawID()], false))
		mustCall(t)(w.of(alice).SetMuted(ctx, alice, w.callIDs[alice.Identifier.RawID()], false))
		mark("alice and carol unmute", nil)
		all = mustCall(t)(sb.MuteAll(ctx, bob, bobs))
		mark("bob mutes all", all)
		added, err := sb.AddParticipant(ctx, bob, bobs, calls.AddParticipantRequest{Identifier: dave.Identifier})
		if err != nil {
			t.Fatalf("bob adds dave: %v", err)
		}
		w.flush()
		in := incoming(t, w.of(dave), dave)
		daves = in.ID
		mark("bob adds dave", added)
		if in.CallerInfo.Identifier != bob.Identifier {
			t.Errorf("dave is called by %s, want bob", in.CallerInfo.Identifier.RawID())
		}
		mustCall(t)(w.of(dave).Accept(ctx, dave, in.ID))
		mark("dave answers", nil)
		added, err = sb.AddParticipant(ctx, bob, bobs, calls.AddParticipantRequest{Identifier: calls.CommunicationUser("nobody")})
		if err != nil {
			t.Fatalf("bob adds nobody: %v", err)
		}
		mark("bob adds someone connected nowhere", added)
		if _, err := sb.AddParticipant(ctx, bob, bobs, calls.AddParticipantRequest{Identifier: dave.Identifier}); calls.ErrorCode(err) != calls.CodeInvalidState {
			t.Errorf("bob adds dave again: %v, want invalid_state", err)
		}
		got, err = sb.RemoveParticipant(ctx, sup, bobs, alice.Identifier.RawID())
		if err != nil {
			t.Fatalf("the supervisor removes alice through bob's call: %v", err)
		}
		mark("sue removes alice", got)
		got, err = sb.RemoveParticipant(ctx, bob, bobs, carol.Identifier.RawID())
		if err != nil {
			t.Fatalf("bob removes carol: %v", err)
		}
		mark("bob removes carol", got)
		if _, err := sb.MuteParticipant(ctx, sup, bobs, carol.Identifier.RawID()); calls.ErrorCode(err) != calls.CodeParticipantNotFound {
			t.Errorf("the supervisor mutes carol once removed: %v, want participant_not_found", err)
		}
		return marks
	}
	wantAsOnOneNode(t, run)
}

// answerOf describes an operation's answer: a participant's state, mute
// and end, or a call's participants' mutes.
func answerOf(a any) string {
	switch v := a.(type) {
	case calls.Participant:
		s := fmt.Sprintf("%s %s muted=%v", strings.TrimPrefix(v.RawID, "8:acs:"), v.State, v.IsMuted)
		if v.CallEndReason != nil {
			s += fmt.Sprintf(" ended %d/%d", v.CallEndReason.Code, v.CallEndReason.SubCode)
		}
		return s
	case calls.Call:
		return fmt.Sprintf("%s muted=%v", v.State, v.IsMuted)
	}
	return "-"
}

// TestPeerGroupCalleesAsOnOneNode: alice, on a, starts a group call with
// bob (on b) and carol (on c): each callee sees every party, as on one
// node, from its first ring (the dial carries the roster), once
// answered, through a hold and a mute, a callee muting another callee on
// a third node, a supervisor's mute-all through a callee's call, and as
// the callees leave one by one.
func TestPeerGroupCalleesAsOnOneNode(t *testing.T) {
	run := func(threeNodes bool) []string {
		w := newRoomWorld(t, threeNodes)
		var marks []string
		ids := map[string]string{}
		mark := func(label string) {
			w.flush()
			marks = append(marks, fmt.Sprintf("%s: alice %s; bob %s; carol %s", label,
				recordOf(w.of(alice), ids["alice"]), recordOf(w.of(bob), ids["bob"]), recordOf(w.of(carol), ids["carol"])))
		}
		ids["alice"] = mustCall(t)(w.of(alice).StartCall(ctx, alice, calls.StartCallRequest{
			Participants: []calls.Identifier{bob.Identifier, carol.Identifier}})).ID
		w.flush()
		ids["bob"], ids["carol"] = incoming(t, w.of(bob), bob).ID, incoming(t, w.of(carol), carol).ID
		mark("ringing")
		mustCall(t)(w.of(bob).Accept(ctx, bob, ids["bob"]))
		mark("bob answers")
		mustCall(t)(w.of(carol).Accept(ctx, carol, ids["carol"]))
		mark("carol answers")
		mustCall(t)(w.of(carol).Hold(ctx, carol, ids["carol"]))
		mark("carol holds")
		mustCall(t)(w.of(bob).SetMuted(ctx, bob, ids["bob"], true))
		mark("bob mutes himself")
		mustCall(t)(w.of(carol).Resume(ctx, carol, ids["carol"]))
		mark("carol resumes")
		if _, err := w.of(bob).MuteParticipant(ctx, bob, ids["bob"], carol.Identifier.RawID()); err != nil {
			t.Fatalf("bob mutes carol: %v", err)
		}
		mark("bob mutes carol")
		mustCall(t)(w.of(carol).SetMuted(ctx, carol, ids["carol"], false))
		mustCall(t)(w.of(carol).MuteAll(ctx, sup, ids["carol"]))
		mark("sue mutes all through carol's call")
		mustCall(t)(w.of(bob).HangUp(ctx, bob, ids["bob"], false))
		mark("bob leaves")
		mustCall(t)(w.of(carol).HangUp(ctx, carol, ids["carol"], false))
		mark("carol leaves")
		return marks
	}
	wantAsOnOneNode(t, run)
}

// TestPeerGroupCalleeEndsForEveryone: bob, a callee on another node than
// alice's, ends her group call for everyone: every party's call ends and
// is recorded as on one node (his 0/0, the others' 0/4097).
func TestPeerGroupCalleeEndsForEveryone(t *testing.T) {
	run := func(threeNodes bool) string {
		w := newRoomWorld(t, threeNodes)
		ids := map[string]string{}
		ids["alice"] = mustCall(t)(w.of(alice).StartCall(ctx, alice, calls.StartCallRequest{
			Participants: []calls.Identifier{bob.Identifier, carol.Identifier}})).ID
		w.flush()
		ids["bob"], ids["carol"] = incoming(t, w.of(bob), bob).ID, incoming(t, w.of(carol), carol).ID
		mustCall(t)(w.of(bob).Accept(ctx, bob, ids["bob"]))
		mustCall(t)(w.of(carol).Accept(ctx, carol, ids["carol"]))
		w.flush()
		mustCall(t)(w.of(bob).HangUp(ctx, bob, ids["bob"], true))
		w.flush()
		return fmt.Sprintf("alice %s; bob %s; carol %s",
			recordOf(w.of(alice), ids["alice"]), recordOf(w.of(bob), ids["bob"]), recordOf(w.of(carol), ids["carol"]))
	}
	if one, three := run(false), run(true); one != three {
		t.Errorf("one node:    %s\nthree nodes: %s", one, three)
	}
}

// TestPeerRoomInviteeAsOnOneNode: alice, on the room's anchor a, adds bob
// (owned by b) to the room she and carol (on c) are in: he rings on his
// node, and every party's record is one node's as he answers, holds, and
// leaves.
func TestPeerRoomInviteeAsOnOneNode(t *testing.T) {
	run := func(threeNodes bool) []string {
		w := newRoomWorld(t, threeNodes)
		var marks []string
		var bobs string
		mark := func(label string) {
			w.flush()
			marks = append(marks, fmt.Sprintf("%s: alice %s; bob %s; carol %s", label, w.room(alice), recordOf(w.of(bob), bobs), w.room(carol)))
		}
		w.join(alice)
		w.flush()
		w.join(carol)
		w.flush()
		if _, err := w.of(alice).AddParticipant(ctx, alice, w.callIDs[alice.Identifier.RawID()], calls.AddParticipantRequest{Identifier: bob.Identifier}); err != nil {
			t.Fatal(err)
		}
		w.flush()
		bobs = incoming(t, w.of(bob), bob).ID
		mark("alice adds bob")
		mustCall(t)(w.of(bob).Accept(ctx, bob, bobs))
		mark("bob answers")
		mustCall(t)(w.of(bob).Hold(ctx, bob, bobs))
		mark("bob holds")
		mustCall(t)(w.of(bob).HangUp(ctx, bob, bobs, false))
		mark("bob leaves")
		return marks
	}
	wantAsOnOneNode(t, run)
}

// TestPeerOneToOneBecomesGroupAsOnOneNode: alice, on a, calls bob, on b,
// and adds carol, on c: bob's call becomes a group call showing carol, as
// on one node, through her answer, a hold and the leaving.
func TestPeerOneToOneBecomesGroupAsOnOneNode(t *testing.T) {
	run := func(threeNodes bool) []string {
		w := newRoomWorld(t, threeNodes)
		var marks []string
		ids := map[string]string{}
		mark := func(label string) {
			w.flush()
			marks = append(marks, fmt.Sprintf("%s: alice %s; bob %s; carol %s", label,
				recordOf(w.of(alice), ids["alice"]), recordOf(w.of(bob), ids["bob"]), recordOf(w.of(carol), ids["carol"])))
		}
		ids["alice"] = mustCall(t)(w.of(alice).StartCall(ctx, alice, to(bob))).ID
		w.flush()
		ids["bob"] = incoming(t, w.of(bob), bob).ID
		mustCall(t)(w.of(bob).Accept(ctx, bob, ids["bob"]))
		mark("bob answers")
		if _, err := w.of(alice).AddParticipant(ctx, alice, ids["alice"], calls.AddParticipantRequest{Identifier: carol.Identifier}); err != nil {
			t.Fatal(err)
		}
		w.flush()
		ids["carol"] = incoming(t, w.of(carol), carol).ID
		mark("alice adds carol")
		mustCall(t)(w.of(carol).Accept(ctx, carol, ids["carol"]))
		mark("carol answers")
		mustCall(t)(w.of(carol).Hold(ctx, carol, ids["carol"]))
		mark("carol holds")
		mustCall(t)(w.of(bob).HangUp(ctx, bob, ids["bob"], false))
		mark("bob leaves")
		mustCall(t)(w.of(carol).HangUp(ctx, carol, ids["carol"], false))
		mark("carol leaves")
		return marks
	}
	wantAsOnOneNode(t, run)
}
