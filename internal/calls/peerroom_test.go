package calls_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// roomWorld is alice, bob and carol (and dave, bob's other call) on one
// node, or on three nodes of a cluster: alice on a, bob and dave on b,
// carol on c.
type roomWorld struct {
	t       *testing.T
	nodes   map[string]*callstest.Fixture // by principal's name
	peers   *callstest.Peers
	callIDs map[string]string // the room call of each
	group   bool              // join the group call groupGUID, not the room
}

const groupGUID = "5a0c3e1e-2a51-4b6e-9d0f-6f7b1c2d3e4f"

func newRoomWorld(t *testing.T, threeNodes bool) *roomWorld {
	return newRoomWorldWith(t, threeNodes, calls.Config{})
}

// newRoomWorldWith is newRoomWorld with each node's Config starting from
// base.
func newRoomWorldWith(t *testing.T, threeNodes bool, base calls.Config) *roomWorld {
	w := &roomWorld{t: t, nodes: map[string]*callstest.Fixture{}, callIDs: map[string]string{}}
	if !threeNodes {
		f := callstest.New(t, base)
		for _, n := range []string{"alice", "bob", "carol", "dave"} {
			w.nodes[n] = f
		}
	} else {
		w.peers = callstest.NewPeers(t)
		node := func(name string, ids ...calls.Principal) *callstest.Fixture {
			next := callstest.IDs()
			cfg := base
			cfg.Peers, cfg.Rooms, cfg.NewID = w.peers.Network(name), w.peers.Rooms(name), func() string { return name + next() }
			f := callstest.New(t, cfg)
			var raw []string
			for _, p := range ids {
				raw = append(raw, p.Identifier.RawID())
			}
			w.peers.Join(name, f.Switchboard, raw...)
			return f
		}
		a, b, c := node("a", alice), node("b", bob, dave), node("c", carol)
		w.nodes["alice"], w.nodes["bob"], w.nodes["dave"], w.nodes["carol"] = a, b, b, c
	}
	for _, p := range []calls.Principal{alice, bob, carol, dave} {
		w.of(p).Connect(t, p)
	}
	return w
}

func (w *roomWorld) of(p calls.Principal) *callstest.Fixture {
	return w.nodes[strings.TrimPrefix(p.Identifier.RawID(), "8:acs:")]
}

func (w *roomWorld) flush() {
	if w.peers != nil {
		w.peers.Flush()
	}
}

// join has p join the room (or with group set, the group call by GUID).
func (w *roomWorld) join(p calls.Principal) calls.Call {
	req := calls.JoinRequest{RoomID: "standup"}
	if w.group {
		req = calls.JoinRequest{GroupID: groupGUID}
	}
	c := mustCall(w.t)(w.of(p).JoinCall(ctx, p, req))
	w.callIDs[p.Identifier.RawID()] = c.ID
	return c
}

// room describes how p's room call was last recorded, participants by
// rawId.
func (w *roomWorld) room(p calls.Principal) string {
	return recordOf(w.of(p), w.callIDs[p.Identifier.RawID()])
}

// recordOf describes a call's last record with its participants sorted.
func recordOf(f *callstest.Fixture, id string) string {
	recs := f.Store.Records(id)
	if id == "" || len(recs) == 0 {
		return "none"
	}
	c := recs[len(recs)-1].Call
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s muted=%v", c.Kind, c.State, c.IsMuted)
	if c.CallEndReason != nil {
		fmt.Fprintf(&b, " ended %d/%d", c.CallEndReason.Code, c.CallEndReason.SubCode)
	}
	parts := slices.Clone(c.RemoteParticipants)
	slices.SortStableFunc(parts, func(x, y calls.Participant) int { return strings.Compare(x.RawID, y.RawID) })
	for _, p := range parts {
		fmt.Fprintf(&b, " [%s %s muted=%v", strings.TrimPrefix(p.RawID, "8:acs:"), p.State, p.IsMuted)
		if p.CallEndReason != nil {
			fmt.Fprintf(&b, " ended %d/%d", p.CallEndReason.Code, p.CallEndReason.SubCode)
		}
		b.WriteString("]")
	}
	return b.String()
}

// wantAsOnOneNode runs a scenario on one node and on three (run's
// threeNodes) and reports every mark that differs: the cluster must
// record each step as one node does.
func wantAsOnOneNode(t *testing.T, run func(threeNodes bool) []string) {
	t.Helper()
	one, three := run(false), run(true)
	if len(one) != len(three) {
		t.Errorf("%d marks on one node, %d on three", len(one), len(three))
	}
	for i := range min(len(one), len(three)) {
		if one[i] != three[i] {
			t.Errorf("one node:    %s\nthree nodes: %s", one[i], three[i])
		}
	}
	if t.Failed() {
		t.Logf("three nodes:\n%s", strings.Join(three, "\n"))
	}
}

// TestPeerRoomAsOnOneNode: a room joined by alice, bob and carol, each
// owned by a node of its own, is one conversation: at every step each of
// them sees the others with the states, mutes and end reasons that one
// node shows (joins, holds, mutes by oneself and by another, a removal,
// leaving; dave joins from bob's node too); bob's join holds his active
// call in the same step, on his node; the first joiner's node claims the room and gives the claim up
// once the last party left.
func TestPeerRoomAsOnOneNode(t *testing.T) {
	run := func(threeNodes bool) []string {
		w := newRoomWorld(t, threeNodes)
		var marks []string
		mark := func(label string) {
			w.flush()
			marks = append(marks, fmt.Sprintf("%s: alice %s; bob %s; carol %s; dave %s", label, w.room(alice), w.room(bob), w.room(carol), w.room(dave)))
		}
		// bob on a call with dave.
		bd := mustCall(t)(w.of(bob).StartCall(ctx, bob, to(dave)))
		mustCall(t)(w.of(dave).Accept(ctx, dave, incoming(t, w.of(dave), dave).ID))

		w.join(alice)
		w.flush()
		w.join(carol)
		w.flush()
		joined := w.join(bob)
		// In the same step, before any message between nodes. On another
		// node than the anchor the room is Connecting until the anchor
		// answers: it may hold him in its lobby (peerlobby.go).
		wantRoom := calls.StateConnected
		if threeNodes {
			wantRoom = calls.StateConnecting
		}
		if got := mustCall(t)(w.of(bob).GetCall(ctx, bob, bd.ID)); got.State != calls.StateLocalHold || joined.State != wantRoom {
			t.Errorf("bob joined: his call with dave is %s, the room %s; want LocalHold and %s", got.State, joined.State, wantRoom)
		}
		mark("all joined")
		mustCall(t)(w.of(bob).Hold(ctx, bob, w.callIDs[bob.Identifier.RawID()]))
		mark("bob holds")
		mustCall(t)(w.of(carol).SetMuted(ctx, carol, w.callIDs[carol.Identifier.RawID()], true))
		mark("carol mutes herself")
		mustCall(t)(w.of(bob).Resume(ctx, bob, w.callIDs[bob.Identifier.RawID()]))
		mark("bob resumes")
		if _, err := w.of(alice).MuteParticipant(ctx, alice, w.callIDs[alice.Identifier.RawID()], bob.Identifier.RawID()); err != nil {
			t.Fatal(err)
		}
		mark("alice mutes bob")
		mustCall(t)(w.of(bob).SetMuted(ctx, bob, w.callIDs[bob.Identifier.RawID()], false))
		mark("bob unmutes himself")
		w.join(dave) // his call with bob held
		mark("dave joins")
		if _, err := w.of(alice).RemoveParticipant(ctx, alice, w.callIDs[alice.Identifier.RawID()], dave.Identifier.RawID()); err != nil {
			t.Fatal(err)
		}
		mark("alice removes dave")
		mustCall(t)(w.of(carol).HangUp(ctx, carol, w.callIDs[carol.Identifier.RawID()], false))
		mark("carol leaves")
		mustCall(t)(w.of(alice).HangUp(ctx, alice, w.callIDs[alice.Identifier.RawID()], false))
		mark("alice leaves")
		mustCall(t)(w.of(bob).HangUp(ctx, bob, w.callIDs[bob.Identifier.RawID()], false))
		mark("bob leaves")
		if w.peers != nil {
			if node, _ := w.peers.Claimed("r:standup"); node != "" {
				t.Errorf("the room is still claimed by %s once everyone left", node)
			}
			// A new conversation: carol's node claims it.
			w.join(carol)
			if node, id := w.peers.Claimed("r:standup"); node != "c" || id == "" {
				t.Errorf("carol joins the room again: claimed by %q (%q), want c", node, id)
			}
		}
		return marks
	}
	wantAsOnOneNode(t, run)
}

// TestPeerGroupEndedForEveryone: a group call by GUID joined by alice on
// a, bob and dave on b (a mirror each) and carol on c; bob, on a node
// that does not anchor it, ends it for everyone: every call ends as on one
// node (his 0/0, the others' 0/4097), each history showing every other
// party's end as one node's does, and the claim goes.
func TestPeerGroupEndedForEveryone(t *testing.T) {
	run := func(threeNodes bool) string {
		w := newRoomWorld(t, threeNodes)
		w.group = true
		for _, p := range []calls.Principal{alice, bob, dave, carol} {
			w.join(p)
			w.flush()
		}
		before := fmt.Sprintf("alice %s; bob %s; dave %s; carol %s", w.room(alice), w.room(bob), w.room(dave), w.room(carol))
		mustCall(t)(w.of(bob).HangUp(ctx, bob, w.callIDs[bob.Identifier.RawID()], true))
		w.flush()
		// Each call's end with its participants' ends.
		after := fmt.Sprintf("alice %s; bob %s; dave %s; carol %s", w.room(alice), w.room(bob), w.room(dave), w.room(carol))
		if w.peers != nil {
			if node, _ := w.peers.Claimed("g:" + groupGUID); node != "" {
				t.Errorf("the group call is still claimed by %s once it ended", node)
			}
		}
		return before + "\n" + after
	}
	if one, three := run(false), run(true); one != three {
		t.Errorf("one node:\n%s\nthree nodes:\n%s", one, three)
	}
}

// TestPeerRoomAnchorCloses: the anchor's own joiner left, so only bob's
// stand-in keeps the room there; the anchor stops (Close): bob's call
// ends 503/1, as a call across nodes does when a node stops, and the
// claim goes.
func TestPeerRoomAnchorCloses(t *testing.T) {
	w := newRoomWorld(t, true)
	w.join(alice)
	w.flush()
	w.join(bob)
	w.flush()
	mustCall(t)(w.of(alice).HangUp(ctx, alice, w.callIDs[alice.Identifier.RawID()], false))
	w.flush()
	if got, want := w.room(bob), "room/Connected muted=false [alice Disconnected muted=false ended 0/0]"; got != want {
		t.Fatalf("bob's call once alice left: %s, want %s", got, want)
	}
	if err := w.of(alice).Close(ctx); err != nil {
		t.Fatal(err)
	}
	w.flush()
	if got, want := w.room(bob), "room/Disconnected muted=false ended 503/1 [alice Disconnected muted=false ended 0/0]"; got != want {
		t.Errorf("bob's call once the anchor stopped: %s, want %s", got, want)
	}
	if node, _ := w.peers.Claimed("r:standup"); node != "" {
		t.Errorf("the room is still claimed by %s", node)
	}
}

// TestPeerChangeOfInvitee: the stand-in of a callee invited into a room
// (not a joiner) tells its far node the inviter's hold, as a 1:1 call's
// does, and the roster (the callee sees the others too); a joiner's
// stand-in tells the roster and no hold.
func TestPeerChangeOfInvitee(t *testing.T) {
	base := calls.Call{ID: "s1", Direction: calls.Incoming, Kind: calls.Room, RoomID: "standup", State: calls.StateConnected,
		AgentID: bob.Identifier.RawID(), CallerInfo: calls.CallerInfo{Identifier: alice.Identifier}}
	held := base
	held.RemoteParticipants = []calls.Participant{{Identifier: alice.Identifier, RawID: alice.Identifier.RawID(), State: calls.ParticipantHold}}
	if ch := calls.PeerChangeOf(&base, held); ch.Held == nil || !*ch.Held || ch.Roster == nil || len(*ch.Roster) != 1 {
		t.Errorf("invitee's stand-in, the inviter holds: %+v; want held and the roster", ch)
	}
	joiner := held
	joiner.CallerInfo = calls.CallerInfo{Identifier: bob.Identifier}
	if ch := calls.PeerChangeOf(nil, joiner); ch.Held != nil || ch.Roster == nil || len(*ch.Roster) != 1 {
		t.Errorf("joiner's stand-in: %+v; want the roster and no hold", ch)
	}
}
