package calls_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// lobbyMarks is, for each of ps, its room call's lobbyChanged events
// (action, participant, who admitted) and its state changes, in order.
func (w *roomWorld) lobbyMarks(ps ...calls.Principal) string {
	var b strings.Builder
	for _, p := range ps {
		raw := p.Identifier.RawID()
		fmt.Fprintf(&b, "%s:", strings.TrimPrefix(raw, "8:acs:"))
		for _, ev := range w.of(p).Publisher.Events(raw) {
			if ev.CallID != w.callIDs[raw] {
				continue
			}
			switch d := ev.Data.(type) {
			case calls.LobbyChangedData:
				fmt.Fprintf(&b, " lobby(%s %s by=%s)", d.Action, strings.TrimPrefix(d.Participant, "8:acs:"), strings.TrimPrefix(d.AdmittedBy, "8:acs:"))
			case calls.StateChangedData:
				if d.State == calls.StateInLobby && d.OldState == calls.StateConnecting {
					// Across nodes the joiner's node learns of the lobby
					// from the anchor's answer: his call is Connecting
					// (no audio) until then.
					b.WriteString(" (Connecting until the anchor answers)")
					continue
				}
				actor := ""
				if ev.Actor != nil {
					actor = string(ev.Actor.Kind) + ":" + strings.TrimPrefix(ev.Actor.RawID, "8:acs:")
				}
				fmt.Fprintf(&b, " %s(%s)", d.State, actor)
			}
		}
		b.WriteString("; ")
	}
	return b.String()
}

// stateSeq is the states p's room call went through as his stream saw
// them: as it was listed, then each stateChanged.
func (w *roomWorld) stateSeq(p calls.Principal) string {
	raw := p.Identifier.RawID()
	var out []string
	for _, ev := range w.of(p).Publisher.Events(raw) {
		if ev.CallID != w.callIDs[raw] {
			continue
		}
		switch d := ev.Data.(type) {
		case calls.CallsUpdatedData:
			for _, c := range d.Added {
				out = append(out, string(c.State))
			}
		case calls.StateChangedData:
			out = append(out, string(d.State))
		}
	}
	return strings.Join(out, " → ")
}

// TestPeerRoomLobbyAsOnOneNode: alice (node a) opens a room with a lobby;
// bob (b), carol (c) and dave (b) join it and wait InLobby, each seeing
// nobody and seen by alice InLobby, each one's own node telling it
// (lobbyChanged entered in his timeline); alice admits bob (Connected,
// told who admitted him), carol leaves the lobby, alice turns dave away
// (0/5300); dave's call to carol meanwhile holds his lobby call and he
// resumes it waiting: every step is recorded as one node records it, the lobby
// events and state changes in each timeline too, and a waiting joiner's
// audio is neither sent nor taken on any node. One difference is marked:
// a remote joiner's call is Connecting until the anchor's answer puts it
// InLobby; it is never Connected before he is admitted, on any node (the
// exact states each joiner's stream saw are checked).
func TestPeerRoomLobbyAsOnOneNode(t *testing.T) {
	run := func(threeNodes bool) []string {
		w := newRoomWorld(t, threeNodes)
		var marks []string
		mark := func(label string) {
			w.flush()
			marks = append(marks, fmt.Sprintf("%s: alice %s; bob %s; carol %s; dave %s", label, w.room(alice), w.room(bob), w.room(carol), w.room(dave)))
		}
		org := mustCall(t)(w.of(alice).JoinCall(ctx, alice, calls.JoinRequest{RoomID: "standup", Lobby: true}))
		w.callIDs[alice.Identifier.RawID()] = org.ID
		w.flush()
		for _, p := range []calls.Principal{bob, carol, dave} {
			w.join(p)
			w.flush()
		}
		mark("three wait")
		for _, p := range []calls.Principal{bob, carol, dave} {
			c := get(t, w.of(p), p, w.callIDs[p.Identifier.RawID()])
			if c.State != calls.StateInLobby || !c.Lobby || c.IsOrganizer || len(c.RemoteParticipants) != 0 {
				t.Errorf("%s waiting: %s lobby=%v organizer=%v %v", p.Identifier.RawID(), c.State, c.Lobby, c.IsOrganizer, c.RemoteParticipants)
			}
			if m := routeOf(t, w.of(p), c.ID); m.Send || m.Receive {
				t.Errorf("%s waiting: media %+v on his node, want neither sent nor taken", p.Identifier.RawID(), m)
			}
		}
		if threeNodes {
			// The anchor's stand-ins of the waiting joiners take no part
			// in its mix.
			for _, r := range w.of(alice).Media.Routes() {
				for _, m := range r.Members {
					if m.RawID != alice.Identifier.RawID() && (m.Send || m.Receive) {
						t.Errorf("the anchor's mix has %s sending or receiving while he waits: %+v", m.RawID, m)
					}
				}
			}
		}
		// dave calls carol: the rule holds his lobby call, still waiting;
		// resumed, it waits again.
		other := mustCall(t)(w.of(dave).StartCall(ctx, dave, to(carol)))
		mark("dave calls carol")
		mustCall(t)(w.of(dave).HangUp(ctx, dave, other.ID, false))
		mustCall(t)(w.of(dave).Resume(ctx, dave, w.callIDs[dave.Identifier.RawID()]))
		mark("dave resumes his lobby call")
		mustCall(t)(w.of(alice).AdmitFromLobby(ctx, alice, org.ID, calls.LobbyAdmitRequest{RawID: bob.Identifier.RawID()}))
		mark("alice admits bob")
		if m := routeOf(t, w.of(bob), w.callIDs[bob.Identifier.RawID()]); !m.Send || !m.Receive {
			t.Errorf("bob admitted: media %+v on his node, want sending and receiving", m)
		}
		mustCall(t)(w.of(carol).HangUp(ctx, carol, w.callIDs[carol.Identifier.RawID()], false))
		mark("carol leaves the lobby")
		if _, err := w.of(alice).RemoveParticipant(ctx, alice, org.ID, dave.Identifier.RawID()); err != nil {
			t.Fatal(err)
		}
		mark("alice turns dave away")
		// As on one node, but a remote joiner's call is listed
		// Connecting: his node does not know of the lobby before the
		// anchor answers.
		first := "InLobby"
		if threeNodes {
			first = "Connecting → InLobby"
		}
		for _, tt := range []struct {
			p    calls.Principal
			want string
		}{
			{bob, first + " → Connected"},
			{carol, first}, // then callEnded
			{dave, first + " → LocalHold → InLobby"},
		} {
			if got := w.stateSeq(tt.p); got != tt.want {
				t.Errorf("%s's call went %s, want %s", tt.p.Identifier.RawID(), got, tt.want)
			}
		}
		tl := w.lobbyMarks(alice, bob, carol, dave)
		if threeNodes {
			if n := strings.Count(tl, " (Connecting until the anchor answers) lobby(entered"); n != 3 {
				t.Errorf("three nodes: %d joiners' calls went Connecting -> InLobby with their entry, want 3: %s", n, tl)
			}
			tl = strings.ReplaceAll(tl, " (Connecting until the anchor answers)", "")
		}
		marks = append(marks, "timelines: "+tl)
		return marks
	}
	wantAsOnOneNode(t, run)
}

// TestPeerRoomLobbyAdmitOnJoinersNode: a supervisor on a waiting room's
// admitted member's node admits everyone left through that member's call
// (bob's, on b, a mirror of the room alice's node anchors): the act goes
// to the anchor, and carol, on a third node, is admitted as on one node.
func TestPeerRoomLobbyAdmitOnJoinersNode(t *testing.T) {
	run := func(threeNodes bool) []string {
		w := newRoomWorld(t, threeNodes)
		w.nodes["sue"] = w.of(bob)
		w.of(sup).Connect(t, sup)
		var marks []string
		mark := func(label string) {
			w.flush()
			marks = append(marks, fmt.Sprintf("%s: alice %s; bob %s; carol %s", label, w.room(alice), w.room(bob), w.room(carol)))
		}
		org := mustCall(t)(w.of(alice).JoinCall(ctx, alice, calls.JoinRequest{RoomID: "standup", Lobby: true}))
		w.callIDs[alice.Identifier.RawID()] = org.ID
		w.flush()
		w.join(bob)
		w.flush()
		w.join(carol)
		mark("two wait")
		mustCall(t)(w.of(alice).AdmitFromLobby(ctx, alice, org.ID, calls.LobbyAdmitRequest{RawID: bob.Identifier.RawID()}))
		mark("alice admits bob")
		if _, err := w.of(bob).AdmitFromLobby(ctx, bob, w.callIDs[bob.Identifier.RawID()], calls.LobbyAdmitRequest{All: true}); calls.ErrorCode(err) != calls.CodeForbidden {
			t.Errorf("bob, no organizer, admits: %v, want forbidden", err)
		}
		mustCall(t)(w.of(sup).AdmitFromLobby(ctx, sup, w.callIDs[bob.Identifier.RawID()], calls.LobbyAdmitRequest{All: true}))
		mark("sue admits everyone through bob's call")
		marks = append(marks, "timelines: "+strings.ReplaceAll(w.lobbyMarks(alice, bob, carol), " (Connecting until the anchor answers)", ""))
		return marks
	}
	wantAsOnOneNode(t, run)
}

// TestPeerRoomLobbyOrganizerOnAnotherNode: the organizer served by another
// node than the room's anchor. alice opens a room with a lobby on a and
// admits bob (b); she leaves, her identity moves to node c and she joins
// again there: she passes the lobby (the organizer still), her call on c
// is the organizer's and shows carol (also on c) waiting InLobby; she
// admits carol from c, through her call's line to the anchor, and carol
// becomes Connected.
func TestPeerRoomLobbyOrganizerOnAnotherNode(t *testing.T) {
	w := newRoomWorld(t, true)
	aliceRaw, carolRaw := alice.Identifier.RawID(), carol.Identifier.RawID()
	org := mustCall(t)(w.of(alice).JoinCall(ctx, alice, calls.JoinRequest{RoomID: "standup", Lobby: true}))
	w.flush()
	w.join(bob)
	w.flush()
	mustCall(t)(w.of(alice).AdmitFromLobby(ctx, alice, org.ID, calls.LobbyAdmitRequest{RawID: bob.Identifier.RawID()}))
	mustCall(t)(w.of(alice).HangUp(ctx, alice, org.ID, false))
	w.flush()

	w.peers.Join("c", w.of(carol).Switchboard, aliceRaw)
	w.nodes["alice"] = w.of(carol)
	w.of(alice).Connect(t, alice)
	again := w.join(alice)
	w.flush()
	got := get(t, w.of(alice), alice, again.ID)
	if got.State != calls.StateConnected || !got.Lobby || !got.IsOrganizer {
		t.Fatalf("alice again, on c: %s lobby=%v organizer=%v; want Connected, the organizer", got.State, got.Lobby, got.IsOrganizer)
	}
	w.join(carol)
	w.flush()
	wantParticipants(t, w.of(alice), alice, again.ID, bob.Identifier.RawID()+":Connected", carolRaw+":InLobby")
	wantState(t, w.of(carol), carol, w.callIDs[carolRaw], calls.StateInLobby)
	if _, err := w.of(bob).AdmitFromLobby(ctx, bob, w.callIDs[bob.Identifier.RawID()], calls.LobbyAdmitRequest{RawID: carolRaw}); calls.ErrorCode(err) != calls.CodeForbidden {
		t.Errorf("bob admits carol: %v, want forbidden", err)
	}
	if _, err := w.of(alice).AdmitFromLobby(ctx, alice, again.ID, calls.LobbyAdmitRequest{RawID: bob.Identifier.RawID()}); calls.ErrorCode(err) != calls.CodeInvalidState {
		t.Errorf("alice admits bob, not waiting: %v, want invalid_state", err)
	}

	mustCall(t)(w.of(alice).AdmitFromLobby(ctx, alice, again.ID, calls.LobbyAdmitRequest{RawID: carolRaw}))
	wantParticipants(t, w.of(alice), alice, again.ID, bob.Identifier.RawID()+":Connected", carolRaw+":Connected") // at once
	w.flush()
	wantState(t, w.of(carol), carol, w.callIDs[carolRaw], calls.StateConnected)
	wantParticipants(t, w.of(carol), carol, w.callIDs[carolRaw], aliceRaw+":Connected", bob.Identifier.RawID()+":Connected")
	wantParticipants(t, w.of(alice), alice, again.ID, bob.Identifier.RawID()+":Connected", carolRaw+":Connected")
	if adm := lobbyEvents(w.of(carol), carolRaw, w.callIDs[carolRaw]); len(adm) != 2 || adm[1].AdmittedBy != aliceRaw {
		t.Errorf("carol's lobby events %+v, want entered, then admitted by alice", adm)
	}
}

// TestPeerRoomLobbySupervisorAsOnOneNode: sue, a supervisor, joins a room
// with a lobby that alice's node anchors, from another node (bob's, or
// carol's). The anchor knows her role from her join, so, as on one node,
// she passes the lobby (Connected at once), sees who waits (InLobby in
// her call), and admits them through her own call; bob, an agent joining
// from her node, still waits. Every call and lobby timeline is recorded
// as one node records it.
func TestPeerRoomLobbySupervisorAsOnOneNode(t *testing.T) {
	tests := []struct {
		name     string
		node     string // whose node serves sue
		supFirst bool   // sue joins before the others wait
	}{
		{name: "on bob's node, after the others", node: "bob"},
		{name: "on bob's node, before the others", node: "bob", supFirst: true},
		{name: "on carol's node, before the others", node: "carol", supFirst: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantAsOnOneNode(t, func(threeNodes bool) []string {
				w := newRoomWorld(t, threeNodes)
				w.nodes["sue"] = w.nodes[tt.node]
				if threeNodes {
					node := map[string]string{"bob": "b", "carol": "c"}[tt.node]
					w.peers.Join(node, w.of(sup).Switchboard, sup.Identifier.RawID())
				}
				w.of(sup).Connect(t, sup)
				var marks []string
				mark := func(label string) {
					w.flush()
					marks = append(marks, fmt.Sprintf("%s: alice %s; bob %s; carol %s; sue %s", label, w.room(alice), w.room(bob), w.room(carol), w.room(sup)))
				}
				org := mustCall(t)(w.of(alice).JoinCall(ctx, alice, calls.JoinRequest{RoomID: "standup", Lobby: true}))
				w.callIDs[alice.Identifier.RawID()] = org.ID
				w.flush()
				order := []calls.Principal{bob, carol, sup}
				if tt.supFirst {
					order = []calls.Principal{sup, bob, carol}
				}
				for _, p := range order {
					w.join(p)
					w.flush()
				}
				mark("joined")
				if got := get(t, w.of(sup), sup, w.callIDs[sup.Identifier.RawID()]); got.State != calls.StateConnected {
					t.Errorf("sue's room call: %s, want Connected (a supervisor passes the lobby)", got.State)
				}
				mustCall(t)(w.of(sup).AdmitFromLobby(ctx, sup, w.callIDs[sup.Identifier.RawID()], calls.LobbyAdmitRequest{RawID: bob.Identifier.RawID()}))
				mark("sue admits bob through her call")
				mustCall(t)(w.of(sup).AdmitFromLobby(ctx, sup, w.callIDs[sup.Identifier.RawID()], calls.LobbyAdmitRequest{All: true}))
				mark("sue admits everyone left")
				tl := w.lobbyMarks(alice, bob, carol, sup)
				if threeNodes {
					// Known: a room's remote joiner is Connecting until the
					// anchor's first answer, then Connected.
					if got, want := w.stateSeq(sup), "Connecting → Connected"; got != want {
						t.Errorf("sue's call went %s, want %s", got, want)
					}
					tl = strings.Replace(tl, "sue: Connected(agent:sue);", "sue:;", 1)
				}
				return append(marks, "timelines: "+strings.ReplaceAll(tl, " (Connecting until the anchor answers)", ""))
			})
		})
	}
}
