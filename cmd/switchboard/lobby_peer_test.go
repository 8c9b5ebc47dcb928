package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// statesUntil reads events from next until one of typ on call, and
// answers its data and the states call went through on the way, as its
// stream said: as it was listed (callsUpdated), then each stateChanged,
// joined by " → ".
func statesUntil(t *testing.T, next func() (map[string]any, error), typ, call string) (map[string]any, string) {
	t.Helper()
	var states []string
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("waiting for %s on %s: %v", typ, call, err)
		}
		data, _ := ev["data"].(map[string]any)
		if ev["callId"] != call {
			continue
		}
		switch ev["type"] {
		case typ:
			return data, strings.Join(states, " → ")
		case string(calls.EventCallsUpdated):
			added, _ := data["added"].([]any)
			for _, a := range added {
				if c, _ := a.(map[string]any); c["id"] == call {
					states = append(states, fmt.Sprint(c["state"]))
				}
			}
		case string(calls.EventStateChanged):
			states = append(states, fmt.Sprint(data["state"]))
		}
	}
}

// TestClusterLobbyAcrossNodes: a room's lobby on a cluster, with pion
// WebRTC softphones (tones found per 20 ms frame). alice, on node a,
// opens a room with a lobby; bob, served by node b, joins and waits
// InLobby: his own node's events say so (lobbyChanged entered, his call
// Connecting → InLobby, never Connected before admission), alice sees
// him InLobby, and for a few seconds of frames he
// hears nothing of her nor she of him. alice admits him through node c:
// his call becomes Connected on b, told who admitted him, and each hears
// the other. carol, served by c, waits too and alice turns her away
// through b: her call ends 0/5300 on c. Each node's history (the shared
// Postgres) has its own party's lobbyChanged.
func TestClusterLobbyAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end across three nodes: about 10 s")
	}
	x := newAcrossNodes(t)
	carol, carolNext := online(t, x.c, "carol", calls.RoleAgent)
	_, connectA := softphones(t, "http://"+x.a.Addr)
	_, connectB := softphones(t, "http://"+x.b.Addr)
	alicePhone, bobPhone := connectA(x.alice, lobbyOrganizerHz), connectB(x.bob, lobbyJoinerHz)

	do := func(via *Main, method, path, token, body string, want int) calls.Call {
		t.Helper()
		status, got, _ := send(t, via, method, path, token, body)
		var c calls.Call
		if status != want || json.Unmarshal([]byte(got), &c) != nil {
			t.Fatalf("%s %s through %s: %d %s, want %d", method, path, via.Config.Cluster.NodeID, status, got, want)
		}
		return c
	}
	org := do(x.a, "POST", "/api/calls/join", x.alice, `{"roomId":"lobby-nodes","lobby":true}`, http.StatusCreated)
	if org.State != calls.StateConnected || !org.IsOrganizer {
		t.Fatalf("alice's room call %+v, want Connected, organizer", org)
	}
	waitAt := time.Now()
	b := do(x.b, "POST", "/api/calls/join", x.bob, `{"roomId":"lobby-nodes"}`, http.StatusCreated)
	if b.State != calls.StateInLobby || !b.Lobby || len(b.RemoteParticipants) != 0 {
		t.Fatalf("bob's join on b: %s lobby=%v %v, want InLobby in a lobby, seeing nobody", b.State, b.Lobby, b.RemoteParticipants)
	}
	// His node learns of the lobby from the anchor: his call is
	// Connecting until then, never Connected, as on one node.
	if d, states := statesUntil(t, x.bobNext, "lobbyChanged", b.ID); d["action"] != calls.LobbyEntered || d["participant"] != "8:acs:bob" || states != "Connecting → InLobby" {
		t.Errorf("bob's lobbyChanged on b: %v after states %q, want entered after Connecting → InLobby", d, states)
	}
	waitCall(t, x.b, x.bob, b.ID, "InLobby muted=false")
	waitCall(t, x.a, x.alice, org.ID, "Connected muted=false [8:acs:bob InLobby muted=false]")

	// He waits: no frame either hears carries the other's tone.
	if !within(10*time.Second, func() bool { return len(framesSince(bobPhone, waitAt)) >= 150 }) {
		t.Fatalf("bob heard %d frames in the lobby, want 150 (silence) to judge by", len(framesSince(bobPhone, waitAt)))
	}
	admitAt := time.Now()
	if heard := framesBetween(bobPhone, waitAt, admitAt); countTone(heard, lobbyOrganizerHz) > 0 {
		t.Errorf("bob, waiting in the lobby on another node, heard alice in %d of %d frames", countTone(heard, lobbyOrganizerHz), len(heard))
	}
	if heard := framesBetween(alicePhone, waitAt, admitAt); countTone(heard, lobbyJoinerHz) > 0 || len(heard) < 100 {
		t.Errorf("alice heard bob, waiting in the lobby, in %d of %d frames", countTone(heard, lobbyJoinerHz), len(heard))
	}

	// Admitted through node c (forwarded to a, alice's node and the room's).
	do(x.c, "POST", "/api/calls/"+org.ID+"/lobby/admit", x.alice, `{"rawId":"8:acs:bob"}`, http.StatusOK)
	if d, states := statesUntil(t, x.bobNext, "lobbyChanged", b.ID); d["action"] != calls.LobbyAdmitted || d["admittedBy"] != "8:acs:alice" || states != "Connected" {
		t.Errorf("bob's lobbyChanged on admission: %v after states %q, want admitted by alice after Connected", d, states)
	}
	waitCall(t, x.b, x.bob, b.ID, "Connected muted=false [8:acs:alice Connected muted=false]")
	waitCall(t, x.a, x.alice, org.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	if !phoneHears(bobPhone, admitAt, lobbyOrganizerHz, true) || !phoneHears(alicePhone, admitAt, lobbyJoinerHz, true) {
		t.Fatal("alice and bob, admitted across nodes, do not hear each other")
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("frames (20 ms) from admission to bob heard by alice: %d, to bob hearing alice: %d; bob waited %d frames; load average %s",
		monFramesUntil(alicePhone, admitAt, lobbyJoinerHz, true), monFramesUntil(bobPhone, admitAt, lobbyOrganizerHz, true),
		len(framesBetween(bobPhone, waitAt, admitAt)), strings.TrimSpace(string(load)))

	// carol, served by c, waits; alice turns her away through b.
	c := do(x.c, "POST", "/api/calls/join", carol, `{"roomId":"lobby-nodes"}`, http.StatusCreated)
	if c.State != calls.StateInLobby {
		t.Fatalf("carol's join on c: %s, want InLobby", c.State)
	}
	waitCall(t, x.a, x.alice, org.ID, "Connected muted=false [8:acs:bob Connected muted=false] [8:acs:carol InLobby muted=false]")
	waitCall(t, x.b, x.bob, b.ID, "Connected muted=false [8:acs:alice Connected muted=false]") // no organizer: he does not see her
	if status, body, _ := send(t, x.b, "DELETE", "/api/calls/"+org.ID+"/participants/8:acs:carol", x.alice, ""); status != http.StatusOK {
		t.Fatalf("alice removes carol through b: %d %s", status, body)
	}
	wantReason(t, waitCallEnded(t, carolNext, c.ID), 0, 5300)
	waitCall(t, x.a, x.alice, org.ID, "Connected muted=false [8:acs:bob Connected muted=false]")

	post(t, "http://"+x.b.Addr+"/api/calls/"+b.ID+"/hangup", x.bob, "")
	wantReason(t, waitCallEnded(t, x.bobNext, b.ID), 0, 0)
	post(t, "http://"+x.a.Addr+"/api/calls/"+org.ID+"/hangup", x.alice, "")
	wantReason(t, waitCallEnded(t, x.aliceNext, org.ID), 0, 0)
	got := endedInPostgres(t, x.dbURL, org.ID, b.ID, c.ID)
	for id, w := range map[string]string{org.ID: "0/0 on a", b.ID: "0/0 on b", c.ID: "0/5300 on c"} {
		if got[id] != w {
			t.Errorf("call %s in Postgres: %s, want %s", id, got[id], w)
		}
	}
	// Each node wrote its own party's lobby changes.
	for _, h := range []struct {
		m           *Main
		token, id   string
		wantActions string
	}{
		{x.a, x.alice, org.ID, "entered admitted entered"},
		{x.b, x.bob, b.ID, "entered admitted"},
		{x.c, carol, c.ID, "entered"},
	} {
		if got := lobbyHistory(t, h.m, h.token, h.id); got != h.wantActions {
			t.Errorf("history of %s on %s: lobbyChanged %q, want %q", h.id, h.m.Config.Cluster.NodeID, got, h.wantActions)
		}
	}
}

// lobbyHistory is the actions of the lobbyChanged entries in a call's
// history timeline, in order.
func lobbyHistory(t *testing.T, m *Main, token, id string) string {
	t.Helper()
	code, body := get(t, "http://"+m.Addr+"/api/history/calls/"+id, token)
	var h struct {
		Timeline []struct {
			Type string
			Data struct{ Action string }
		}
	}
	if err := json.Unmarshal(body, &h); code != http.StatusOK || err != nil {
		t.Fatalf("GET /api/history/calls/%s: %d %s", id, code, body)
	}
	var out []string
	for _, e := range h.Timeline {
		if e.Type == string(calls.EventLobbyChanged) {
			out = append(out, e.Data.Action)
		}
	}
	return strings.Join(out, " ")
}
