package calls_test

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// participantStates is "rawId:state" for each remote participant of c.
func participantStates(c calls.Call) []string {
	var out []string
	for _, p := range c.RemoteParticipants {
		out = append(out, p.RawID+":"+string(p.State))
	}
	slices.Sort(out)
	return out
}

func wantParticipants(t *testing.T, f *callstest.Fixture, p calls.Principal, id string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := participantStates(get(t, f, p, id)); !slices.Equal(got, want) {
		t.Errorf("%s sees %v, want %v", p.Identifier.RawID(), got, want)
	}
}

// lobbyEvents are the lobbyChanged data of agent's events on call.
func lobbyEvents(f *callstest.Fixture, agent, call string) []calls.LobbyChangedData {
	var out []calls.LobbyChangedData
	for _, ev := range f.Publisher.Events(agent) {
		if d, ok := ev.Data.(calls.LobbyChangedData); ok && ev.CallID == call {
			out = append(out, d)
		}
	}
	return out
}

// TestLobby walks a room with a lobby: the organizer opens it, two
// joiners wait (one holding his active call by joining), neither hears or
// is heard nor sees anyone, the organizer sees them InLobby, admits one
// (who becomes Connected, told who admitted him) and a supervisor admits
// the rest.
func TestLobby(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{alice, bob, carol, dave, sup} {
		f.Connect(t, p)
	}
	room := calls.JoinRequest{RoomID: "standup", Lobby: true}
	a := mustCall(t)(f.JoinCall(ctx, alice, room))
	if a.State != calls.StateConnected || !a.Lobby || !a.IsOrganizer {
		t.Fatalf("organizer's call %+v, want Connected, lobby, organizer", a)
	}
	bobOwn, _ := connect(t, f, bob, carol)
	f.Publisher.Reset()
	b := mustCall(t)(f.JoinCall(ctx, bob, calls.JoinRequest{RoomID: "standup"}))
	d := mustCall(t)(f.JoinCall(ctx, dave, room)) // asking for the lobby too changes nothing
	for _, c := range []calls.Call{b, d} {
		if c.State != calls.StateInLobby || c.IsActive || !c.Lobby || c.IsOrganizer || len(c.RemoteParticipants) != 0 {
			t.Fatalf("joiner's call %+v, want InLobby, not active, seeing nobody", c)
		}
	}
	// The lobby call is bob's current call: joining held his active one.
	wantState(t, f, bob, bobOwn.ID, calls.StateLocalHold)
	if n := activeCalls(t, f, bob); n != 0 {
		t.Errorf("bob has %d Connected calls while waiting, want 0", n)
	}
	bobRaw, daveRaw, aliceRaw := bob.Identifier.RawID(), dave.Identifier.RawID(), alice.Identifier.RawID()
	wantParticipants(t, f, alice, a.ID, bobRaw+":InLobby", daveRaw+":InLobby")
	for _, id := range []string{b.ID, d.ID} {
		if m := routeOf(t, f, id); m.Send || m.Receive {
			t.Errorf("a waiting joiner's media %+v: sends or receives", m)
		}
	}
	if got := lobbyEvents(f, bobRaw, b.ID); len(got) != 1 || got[0].Action != calls.LobbyEntered {
		t.Errorf("bob's lobby events %+v, want one entered", got)
	}
	if got := lobbyEvents(f, aliceRaw, a.ID); len(got) != 2 {
		t.Errorf("alice's lobby events %+v, want bob's and dave's entry", got)
	}

	// Errors.
	for _, tt := range []struct {
		name string
		p    calls.Principal
		call string
		req  calls.LobbyAdmitRequest
		want calls.Code
	}{
		{"a waiting joiner", dave, d.ID, calls.LobbyAdmitRequest{RawID: bobRaw}, calls.CodeForbidden},
		{"someone else's call", carol, a.ID, calls.LobbyAdmitRequest{RawID: bobRaw}, calls.CodeCallNotFound},
		{"nobody named", alice, a.ID, calls.LobbyAdmitRequest{}, calls.CodeInvalidRequest},
		{"both named", alice, a.ID, calls.LobbyAdmitRequest{RawID: bobRaw, All: true}, calls.CodeInvalidRequest},
		{"a malformed rawId", alice, a.ID, calls.LobbyAdmitRequest{RawID: "8:acs:"}, calls.CodeInvalidIdentifier},
		{"not in the room", alice, a.ID, calls.LobbyAdmitRequest{RawID: carol.Identifier.RawID()}, calls.CodeParticipantNotFound},
		{"not waiting", sup, a.ID, calls.LobbyAdmitRequest{RawID: aliceRaw}, calls.CodeInvalidState},
		{"no lobby", carol, mustCall(t)(f.GetCall(ctx, carol, incomingOrCall(t, f, carol))).ID, calls.LobbyAdmitRequest{RawID: bobRaw}, calls.CodeInvalidState},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.AdmitFromLobby(ctx, tt.p, tt.call, tt.req)
			wantCode(t, err, tt.want)
		})
	}

	f.Publisher.Reset()
	got := mustCall(t)(f.AdmitFromLobby(ctx, alice, a.ID, calls.LobbyAdmitRequest{RawID: bobRaw}))
	if ps := participantStates(got); !slices.Equal(ps, []string{bobRaw + ":Connected", daveRaw + ":InLobby"}) {
		t.Errorf("after admitting bob alice sees %v", ps)
	}
	wantState(t, f, bob, b.ID, calls.StateConnected)
	wantState(t, f, bob, bobOwn.ID, calls.StateLocalHold)
	wantParticipants(t, f, bob, b.ID, aliceRaw+":Connected") // not dave, still waiting
	wantParticipants(t, f, dave, d.ID)
	if m := routeOf(t, f, b.ID); !m.Send || !m.Receive {
		t.Errorf("bob admitted: media %+v, want sending and receiving", m)
	}
	adm := lobbyEvents(f, bobRaw, b.ID)
	if len(adm) != 1 || adm[0].Action != calls.LobbyAdmitted || adm[0].AdmittedBy != aliceRaw {
		t.Errorf("bob's lobby events on admission %+v, want admitted by alice", adm)
	}
	if len(lobbyEvents(f, aliceRaw, a.ID)) != 1 {
		t.Errorf("alice's timeline lacks bob's admission")
	}
	var told bool
	for _, ev := range f.Publisher.Events(bobRaw) {
		if sc, ok := ev.Data.(calls.StateChangedData); ok && ev.CallID == b.ID && sc.OldState == calls.StateInLobby && sc.State == calls.StateConnected {
			told = ev.Actor != nil && ev.Actor.RawID == aliceRaw
		}
	}
	if !told {
		t.Errorf("bob was not told InLobby -> Connected with alice as actor")
	}
	if recs := f.Store.Records(b.ID); !slices.ContainsFunc(recs, func(r calls.Record) bool {
		return slices.ContainsFunc(r.Events, func(ev calls.Event) bool { return ev.Type == calls.EventLobbyChanged })
	}) {
		t.Errorf("bob's history has no lobbyChanged")
	}
	if _, err := f.AdmitFromLobby(ctx, alice, a.ID, calls.LobbyAdmitRequest{RawID: bobRaw}); calls.ErrorCode(err) != calls.CodeInvalidState {
		t.Errorf("admitting bob twice: %v, want invalid_state", err)
	}
	if _, err := f.AdmitFromLobby(ctx, bob, b.ID, calls.LobbyAdmitRequest{RawID: daveRaw}); calls.ErrorCode(err) != calls.CodeForbidden {
		t.Errorf("admission by an admitted non-organizer: %v, want forbidden", err)
	}

	// A supervisor admits everyone left.
	mustCall(t)(f.AdmitFromLobby(ctx, sup, a.ID, calls.LobbyAdmitRequest{All: true}))
	wantState(t, f, dave, d.ID, calls.StateConnected)
	wantParticipants(t, f, dave, d.ID, aliceRaw+":Connected", bobRaw+":Connected")
	if adm := lobbyEvents(f, daveRaw, d.ID); len(adm) != 1 || adm[0].AdmittedBy != sup.Identifier.RawID() {
		t.Errorf("dave's admission %+v, want by the supervisor", adm)
	}
}

// incomingOrCall is one live call id of p.
func incomingOrCall(t *testing.T, f *callstest.Fixture, p calls.Principal) string {
	t.Helper()
	list, err := f.ListCalls(ctx, p, "")
	if err != nil || len(list) == 0 {
		t.Fatalf("%s has no call: %v", p.Identifier.RawID(), err)
	}
	return list[0].ID
}

// TestLobbyLeaves: a waiting joiner who hangs up leaves cleanly, the
// organizer turns one away by removing him, and a joiner who starts
// another call holds the lobby call (the rule) and resumes it waiting.
func TestLobbyLeaves(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{alice, bob, carol, dave} {
		f.Connect(t, p)
	}
	a := mustCall(t)(f.JoinCall(ctx, alice, calls.JoinRequest{RoomID: "r1", Lobby: true}))
	b := mustCall(t)(f.JoinCall(ctx, bob, calls.JoinRequest{RoomID: "r1"}))
	c := mustCall(t)(f.JoinCall(ctx, carol, calls.JoinRequest{RoomID: "r1"}))
	d := mustCall(t)(f.JoinCall(ctx, dave, calls.JoinRequest{RoomID: "r1"}))

	mustCall(t)(f.HangUp(ctx, bob, b.ID, false))
	wantEnded(t, f, b.ID, calls.ReasonHungUp)
	if _, err := f.RemoveParticipant(ctx, alice, a.ID, carol.Identifier.RawID()); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, f, c.ID, calls.ReasonRemoved)
	wantParticipants(t, f, alice, a.ID, dave.Identifier.RawID()+":InLobby")
	wantState(t, f, alice, a.ID, calls.StateConnected)

	// dave calls bob: the lobby call is held; resuming it waits again.
	own := mustCall(t)(f.StartCall(ctx, dave, to(bob)))
	wantState(t, f, dave, d.ID, calls.StateLocalHold)
	wantParticipants(t, f, alice, a.ID, dave.Identifier.RawID()+":InLobby")
	mustCall(t)(f.Resume(ctx, dave, d.ID))
	wantState(t, f, dave, d.ID, calls.StateInLobby)
	if got := get(t, f, dave, own.ID); got.State == calls.StateConnected {
		t.Errorf("dave's other call is %s after resuming the lobby call", got.State)
	}

	// The organizer leaves and comes back: she is the organizer still,
	// and dave waited all along.
	mustCall(t)(f.HangUp(ctx, alice, a.ID, false))
	wantState(t, f, dave, d.ID, calls.StateInLobby)
	a2 := mustCall(t)(f.JoinCall(ctx, alice, calls.JoinRequest{RoomID: "r1"}))
	if a2.State != calls.StateConnected || !a2.IsOrganizer {
		t.Fatalf("the organizer back: %+v", a2)
	}
	mustCall(t)(f.AdmitFromLobby(ctx, alice, a2.ID, calls.LobbyAdmitRequest{RawID: dave.Identifier.RawID()}))
	wantState(t, f, dave, d.ID, calls.StateConnected)
}

// TestLobbyJoinErrors: a lobby on a group call, or on a room already open
// without one, is refused; a room that failed to open is not left behind.
func TestLobbyJoinErrors(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, bob)
	_, err := f.JoinCall(ctx, alice, joinJSON(t, `{"groupId": "6f0b0e3c-8d43-4e2a-9a43-7c1c64b1c0de", "lobby": true}`))
	wantCode(t, err, calls.CodeInvalidRequest)
	mustCall(t)(f.JoinCall(ctx, alice, calls.JoinRequest{RoomID: "open"}))
	_, err = f.JoinCall(ctx, bob, joinJSON(t, `{"roomId": "open", "lobby": true}`))
	wantCode(t, err, calls.CodeInvalidState)
	b := mustCall(t)(f.JoinCall(ctx, bob, calls.JoinRequest{RoomID: "open"}))
	if b.State != calls.StateConnected || b.Lobby {
		t.Errorf("joining the open room: %+v", b)
	}
}

// TestLobbyProperty: 800 random operations (join two rooms, with or
// without asking for a lobby, admit one or all, hang up, remove, call,
// accept, hold, resume) by four agents and a supervisor, each from a fresh
// seed. After every one: nobody has two Connected calls; a waiting call
// sees nobody, neither sends nor receives audio and is in a room with a
// lobby; only the organizer and supervisors see anyone InLobby; every
// microphone reaches one conversation at most.
func TestLobbyProperty(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { lobbyProperty(t, seed) })
	}
}

func lobbyProperty(t *testing.T, seed uint64) {
	f := callstest.New(t, calls.Config{})
	people := []calls.Principal{alice, bob, carol, dave, sup}
	for _, p := range people {
		f.Connect(t, p)
	}
	r := rand.New(rand.NewPCG(seed, 15))
	pick := func() calls.Principal { return people[r.IntN(len(people))] }
	callOf := func(p calls.Principal) (calls.Call, bool) {
		list, _ := f.ListCalls(ctx, p, "")
		if len(list) == 0 {
			return calls.Call{}, false
		}
		return list[r.IntN(len(list))], true
	}
	var trail []string
	waitedOps, admitted := 0, 0
	for i := range 800 {
		p := pick()
		op := r.IntN(9)
		trail = append(trail, strconv.Itoa(op)+":"+p.Identifier.ID)
		switch op {
		case 0, 1:
			_, _ = f.JoinCall(ctx, p, calls.JoinRequest{RoomID: []string{"ra", "rb"}[r.IntN(2)], Lobby: r.IntN(4) > 0})
		case 2:
			if c, ok := callOf(p); ok {
				req := calls.LobbyAdmitRequest{All: true}
				if r.IntN(2) == 0 {
					req = calls.LobbyAdmitRequest{RawID: pick().Identifier.RawID()}
				}
				// Mostly someone p sees waiting, when there is one.
				list, _ := f.ListCalls(ctx, p, "")
				for _, lc := range list {
					for _, rp := range lc.RemoteParticipants {
						if rp.State == calls.ParticipantInLobby && r.IntN(4) > 0 {
							c, req = lc, calls.LobbyAdmitRequest{RawID: rp.RawID}
						}
					}
				}
				if _, err := f.AdmitFromLobby(ctx, p, c.ID, req); err == nil {
					admitted++
				}
			}
		case 3:
			if c, ok := callOf(p); ok {
				_, _ = f.HangUp(ctx, p, c.ID, false)
			}
		case 4:
			if c, ok := callOf(p); ok {
				_, _ = f.RemoveParticipant(ctx, p, c.ID, pick().Identifier.RawID())
			}
		case 5:
			if q := pick(); q.Identifier != p.Identifier {
				_, _ = f.StartCall(ctx, p, to(q))
			}
		case 6:
			if in, _ := f.ListIncoming(ctx, p); len(in) > 0 {
				_, _ = f.Accept(ctx, p, in[0].ID)
			}
		case 7:
			if c, ok := callOf(p); ok {
				_, _ = f.Hold(ctx, p, c.ID)
			}
		case 8:
			if c, ok := callOf(p); ok {
				_, _ = f.Resume(ctx, p, c.ID)
			}
		}
		if checkLobby(t, f, people, func() string { return strings.Join(trail, " ") + " at op " + strconv.Itoa(i) }) > 0 {
			waitedOps++
		}
	}
	// The walk must have reached the states it checks.
	if waitedOps < 20 || admitted < 5 {
		t.Fatalf("someone waited after %d operations and %d admissions succeeded: too few to judge", waitedOps, admitted)
	}
	t.Logf("someone waited after %d of 800 operations; %d admissions", waitedOps, admitted)
}

// checkLobby checks the invariants and answers how many calls wait.
func checkLobby(t *testing.T, f *callstest.Fixture, people []calls.Principal, trail func() string) int {
	t.Helper()
	waiting := map[string]bool{}
	for _, p := range people {
		list, err := f.ListCalls(ctx, p, "")
		if err != nil {
			t.Fatal(err)
		}
		connected := 0
		for _, c := range list {
			if c.AgentID != p.Identifier.RawID() {
				continue // a supervisor lists everyone's calls
			}
			if c.State == calls.StateConnected {
				connected++
			}
			if c.State == calls.StateInLobby {
				waiting[c.ID] = true
				if len(c.RemoteParticipants) != 0 || !c.Lobby || c.IsActive {
					t.Fatalf("%s's waiting call %+v sees someone, is active or has no lobby; %s", p.Identifier.ID, c, trail())
				}
			}
			for _, rp := range c.RemoteParticipants {
				if rp.State == calls.ParticipantInLobby && !c.IsOrganizer && p.Role != calls.RoleSupervisor {
					t.Fatalf("%s, neither organizer nor supervisor, sees %s InLobby; %s", p.Identifier.ID, rp.RawID, trail())
				}
			}
		}
		if connected > 1 {
			t.Fatalf("%s has %d Connected calls; %s", p.Identifier.ID, connected, trail())
		}
	}
	sends := map[string]string{}
	for _, r := range f.Media.Routes() {
		for _, m := range r.Members {
			if waiting[m.CallID] && (m.Send || m.Receive) {
				t.Fatalf("waiting call %s of %s sends or receives (%+v); %s", m.CallID, m.RawID, m, trail())
			}
			if m.Send {
				if other, ok := sends[m.RawID]; ok && other != r.ServerCallID {
					t.Fatalf("%s sends into %s and %s; %s", m.RawID, other, r.ServerCallID, trail())
				}
				sends[m.RawID] = r.ServerCallID
			}
		}
	}
	return len(waiting)
}

// TestLobbyBypass: a supervisor who joins and someone the organizer
// invites skip the lobby; a waiting call cannot be monitored nor invite
// anyone.
func TestLobbyBypass(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{alice, bob, carol, dave, sup} {
		f.Connect(t, p)
	}
	a := mustCall(t)(f.JoinCall(ctx, alice, calls.JoinRequest{RoomID: "r2", Lobby: true}))
	b := mustCall(t)(f.JoinCall(ctx, bob, calls.JoinRequest{RoomID: "r2"}))
	if s := mustCall(t)(f.JoinCall(ctx, sup, calls.JoinRequest{RoomID: "r2"})); s.State != calls.StateConnected || s.IsOrganizer {
		t.Errorf("a supervisor joining: %s organizer=%v, want Connected, not the organizer", s.State, s.IsOrganizer)
	}
	if _, err := f.AddParticipant(ctx, alice, a.ID, calls.AddParticipantRequest{Identifier: carol.Identifier}); err != nil {
		t.Fatal(err)
	}
	c := mustCall(t)(f.Accept(ctx, carol, incoming(t, f, carol).ID))
	if c.State != calls.StateConnected {
		t.Errorf("an invitee accepting: %s, want Connected", c.State)
	}
	sam := callstest.Supervisor("sam") // not in the room
	f.Connect(t, sam)
	_, err := f.Monitor(ctx, sam, b.ID, calls.MonitorRequest{Mode: calls.MonitorListen})
	wantCode(t, err, calls.CodeInvalidState)
	mustCall(t)(f.Monitor(ctx, sam, a.ID, calls.MonitorRequest{Mode: calls.MonitorListen})) // the organizer's call can be
	_, err = f.AddParticipant(ctx, bob, b.ID, calls.AddParticipantRequest{Identifier: dave.Identifier})
	wantCode(t, err, calls.CodeInvalidState)
	wantState(t, f, bob, b.ID, calls.StateInLobby)
	wantParticipants(t, f, carol, c.ID, alice.Identifier.RawID()+":Connected", sup.Identifier.RawID()+":Connected")
}
