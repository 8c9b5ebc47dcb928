package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestClusterLobby: on a cluster, lobby requests may reach any node and
// are forwarded as other call operations are. Alice (node a) opens a room
// with a lobby through node c; ann and cam, both served by a, join it
// through b and c and wait InLobby; ann's admission attempt through c is
// 403 forbidden; alice admits ann through b; sue, a supervisor whose
// console is on b, admits everyone left through c (forwarded to a, which
// runs the room). Joiners served by another node than the room's are
// TestClusterLobbyAcrossNodes.
func TestClusterLobby(t *testing.T) {
	x := newAcrossNodes(t)
	ann, _ := online(t, x.a, "ann", calls.RoleAgent)
	cam, _ := online(t, x.a, "cam", calls.RoleAgent)
	sue, _ := online(t, x.b, "sue", calls.RoleSupervisor)

	do := func(via *Main, method, path, token, body string, want int) calls.Call {
		t.Helper()
		status, got, _ := send(t, via, method, path, token, body)
		var c calls.Call
		if status != want || json.Unmarshal([]byte(got), &c) != nil {
			t.Fatalf("%s %s through %s: %d %s, want %d", method, path, via.Addr, status, got, want)
		}
		return c
	}
	org := do(x.c, "POST", "/api/calls/join", x.alice, `{"roomId":"cluster-lobby","lobby":true}`, http.StatusCreated)
	if org.State != calls.StateConnected || !org.IsOrganizer {
		t.Fatalf("alice's room call %+v, want Connected, organizer", org)
	}
	a := do(x.b, "POST", "/api/calls/join", ann, `{"roomId":"cluster-lobby"}`, http.StatusCreated)
	c := do(x.c, "POST", "/api/calls/join", cam, `{"roomId":"cluster-lobby"}`, http.StatusCreated)
	if a.State != calls.StateInLobby || c.State != calls.StateInLobby {
		t.Fatalf("joiners' calls %s and %s, want InLobby", a.State, c.State)
	}
	waitCall(t, x.a, x.alice, org.ID, "Connected muted=false [8:acs:ann InLobby muted=false] [8:acs:cam InLobby muted=false]")

	status, body, _ := send(t, x.c, "POST", "/api/calls/"+a.ID+"/lobby/admit", ann, `{"rawId":"8:acs:cam"}`)
	if status != http.StatusForbidden {
		t.Errorf("ann admits cam through c: %d %s, want 403", status, body)
	}
	do(x.b, "POST", "/api/calls/"+org.ID+"/lobby/admit", x.alice, `{"rawId":"8:acs:ann"}`, http.StatusOK)
	waitCall(t, x.a, ann, a.ID, "Connected muted=false [8:acs:alice Connected muted=false]")
	do(x.c, "POST", "/api/calls/"+org.ID+"/lobby/admit", sue, `{"all":true}`, http.StatusOK)
	waitCall(t, x.a, cam, c.ID, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:ann Connected muted=false]")
}

// TestClusterLobbySupervisorAcrossNodes: sue, a supervisor served by node
// b, joins a room with a lobby that node a anchors (alice's), in which cam
// (node c) waits. Her join carries her role to the anchor, so, as on one
// node, she passes the lobby, sees cam waiting, and admits him through
// her own call on b; cam's call on c is then Connected with both.
func TestClusterLobbySupervisorAcrossNodes(t *testing.T) {
	x := newAcrossNodes(t)
	sue, _ := online(t, x.b, "sue", calls.RoleSupervisor)
	cam, _ := online(t, x.c, "cam", calls.RoleAgent)
	do := func(via *Main, method, path, token, body string, want int) calls.Call {
		t.Helper()
		status, got, _ := send(t, via, method, path, token, body)
		var c calls.Call
		if status != want || json.Unmarshal([]byte(got), &c) != nil {
			t.Fatalf("%s %s through %s: %d %s, want %d", method, path, via.Config.Cluster.NodeID, status, got, want)
		}
		return c
	}
	do(x.a, "POST", "/api/calls/join", x.alice, `{"roomId":"sup-lobby","lobby":true}`, http.StatusCreated)
	c := do(x.c, "POST", "/api/calls/join", cam, `{"roomId":"sup-lobby"}`, http.StatusCreated)
	if c.State != calls.StateInLobby {
		t.Fatalf("cam's join: %s, want InLobby", c.State)
	}
	s := do(x.b, "POST", "/api/calls/join", sue, `{"roomId":"sup-lobby"}`, http.StatusCreated)
	waitCall(t, x.b, sue, s.ID, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:cam InLobby muted=false]")
	do(x.b, "POST", "/api/calls/"+s.ID+"/lobby/admit", sue, `{"rawId":"8:acs:cam"}`, http.StatusOK)
	waitCall(t, x.c, cam, c.ID, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:sue Connected muted=false]")
}
