package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestClusterGroupActsAcrossNodes: a group call by GUID anchored on a
// (alice), joined by bob on b and carol on c. Through bob's call on b, a
// supervisor served by b mutes carol and then everyone, bob adds dave
// (owned by a) and the supervisor removes alice: each act reaches the
// party on its own node, as on one node (alice's call ends 0/5300). Each
// join's answer shows the others already.
func TestClusterGroupActsAcrossNodes(t *testing.T) {
	x := newAcrossNodes(t)
	carol, _ := online(t, x.c, "carol", calls.RoleAgent)
	dave, daveNext := online(t, x.a, "dave", calls.RoleAgent)
	sue, _ := online(t, x.b, "sue", calls.RoleSupervisor)
	const guid = `{"groupId":"7c9e6679-7425-40de-944b-e07fc1f90ae7"}`
	join := func(m *Main, token string) calls.Call {
		status, body, _ := send(t, m, "POST", "/api/calls/join", token, guid)
		var c calls.Call
		if status >= 300 || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("join via %s: %d %s", m.Config.Cluster.NodeID, status, body)
		}
		return c
	}
	start := time.Now()
	aliceCall := join(x.a, x.alice)
	t.Logf("alice's join through a, the anchor: %v", time.Since(start))
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false")
	start = time.Now()
	bobCall := join(x.b, x.bob)
	t.Logf("bob's join through b, which does not anchor the call (waits for a's roster): %v", time.Since(start))
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	carolCall := join(x.c, carol)
	// The join's answer shows the others, as one node's does.
	if got, want := describe(bobCall), "Connected muted=false [8:acs:alice Connected muted=false]"; got != want {
		t.Errorf("bob's join answered %q, want %q", got, want)
	}
	if got, want := describe(carolCall), "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:bob Connected muted=false]"; got != want {
		t.Errorf("carol's join answered %q, want %q", got, want)
	}
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:carol Connected muted=false]")

	act := func(name, method, path, token, body string) {
		t.Helper()
		if status, out, _ := send(t, x.b, method, "/api/calls/"+bobCall.ID+path, token, body); status >= 300 {
			t.Fatalf("%s: %d %s", name, status, out)
		}
	}
	act("sue mutes carol", "POST", "/participants/8:acs:carol/mute", sue, "")
	waitCall(t, x.c, carol, carolCall.ID, "Connected muted=true [8:acs:alice Connected muted=false] [8:acs:bob Connected muted=false]")
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false] [8:acs:carol Connected muted=true]")
	act("sue mutes all", "POST", "/mute-all", sue, "")
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=true [8:acs:bob Connected muted=false] [8:acs:carol Connected muted=true]")
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=true] [8:acs:carol Connected muted=true]")

	act("bob adds dave", "POST", "/participants", x.bob, `{"identifier":{"communicationUserId":"dave"}}`)
	daveCall := ringing(t, daveNext)
	if status, out, _ := send(t, x.a, "POST", "/api/incoming-calls/"+daveCall+"/accept", dave, ""); status != http.StatusOK {
		t.Fatalf("dave accepts: %d %s", status, out)
	}
	waitCall(t, x.c, carol, carolCall.ID, "Connected muted=true [8:acs:alice Connected muted=true] [8:acs:bob Connected muted=false] [8:acs:dave Connected muted=false]")

	act("sue removes alice", "DELETE", "/participants/8:acs:alice", sue, "")
	wantReason(t, waitCallEnded(t, x.aliceNext, aliceCall.ID), 0, 5300)
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:carol Connected muted=true] [8:acs:dave Connected muted=false]")
	if got := endedInPostgres(t, x.dbURL, aliceCall.ID); got[aliceCall.ID] != "0/5300 on a" {
		t.Errorf("alice's call in Postgres: %s, want 0/5300 on a", got[aliceCall.ID])
	}
}

// TestClusterGroupCalleesAcrossNodes: alice, on a, starts a group call
// with bob (on b) and carol (on c) through the API: each callee's call
// shows every party as on one node once answered (bob sees carol
// ringing, then answering, then holding).
func TestClusterGroupCalleesAcrossNodes(t *testing.T) {
	x := newAcrossNodes(t)
	carol, carolNext := online(t, x.c, "carol", calls.RoleAgent)
	status, body, _ := send(t, x.a, "POST", "/api/calls", x.alice,
		`{"participants":[{"communicationUserId":"bob"},{"communicationUserId":"carol"}]}`)
	var aliceCall calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &aliceCall) != nil {
		t.Fatalf("alice calls bob and carol: %d %s", status, body)
	}
	bobCall, carolCall := ringing(t, x.bobNext), ringing(t, carolNext)
	post(t, "http://"+x.b.Addr+"/api/incoming-calls/"+bobCall+"/accept", x.bob, "")
	waitCall(t, x.b, x.bob, bobCall, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:carol Ringing muted=false]")
	post(t, "http://"+x.c.Addr+"/api/incoming-calls/"+carolCall+"/accept", carol, "")
	waitCall(t, x.b, x.bob, bobCall, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:carol Connected muted=false]")
	post(t, "http://"+x.c.Addr+"/api/calls/"+carolCall+"/hold", carol, "")
	waitCall(t, x.b, x.bob, bobCall, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:carol Hold muted=false]")
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false] [8:acs:carol Hold muted=false]")
}
