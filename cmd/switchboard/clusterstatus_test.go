package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// statusUntil reads events until an agentStatusChanged of agentID says
// want, and answers its data.
func statusUntil(t *testing.T, next func() (map[string]any, error), agentID, want string) map[string]any {
	t.Helper()
	for {
		ev := until(t, next, "agentStatusChanged", agentID)
		d := ev["data"].(map[string]any)
		if d["status"] == want {
			return d
		}
	}
}

// TestClusterAgentStatus: on three nodes, alice's status lives on node A,
// which owns her. A supervisor on node C sees it in her snapshot and
// live; her request to node B changing it runs on A; alice's own request
// to C too; the wrap-up ends on A's timer, and a call makes her Busy.
func TestClusterAgentStatus(t *testing.T) {
	c := newTestCluster(t)
	a, b, cc := c.start("a"), c.start("b"), c.start("c")
	const aliceRaw = "8:acs:alice"

	alice, aliceNext := online(t, a, "alice", calls.RoleAgent) // A takes alice
	sue := mint(t, "sue", calls.RoleSupervisor)
	if status, body, _ := send(t, cc, "GET", "/api/me", sue, ""); status != http.StatusOK { // C takes sue
		t.Fatalf("GET /api/me of sue on c: %d %s", status, body)
	}
	next, _ := openEvents(t, cc.Addr, sue)
	snap, err := next()
	if err != nil || snap["type"] != "snapshot" {
		t.Fatalf("sue's first event on c: %v, %v", snap, err)
	}
	var shown any
	for _, x := range snap["data"].(map[string]any)["agents"].([]any) {
		if ag := x.(map[string]any); ag["rawId"] == aliceRaw {
			shown = ag["status"]
		}
	}
	if shown != "Available" {
		t.Fatalf("sue's snapshot on c shows alice %v, want Available", shown)
	}

	// Sue, on B, sets alice Away: A runs it; C and alice see it.
	path := "/api/agents/" + url.PathEscape(aliceRaw) + "/status"
	status, body, _ := send(t, b, "PUT", path, sue, `{"status":"Away"}`)
	if status != http.StatusOK {
		t.Fatalf("PUT %s on b: %d %s", path, status, body)
	}
	var got calls.AgentStatusData
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Status != "Away" || got.ChangedBy.RawID != "8:acs:sue" {
		t.Fatalf("PUT %s on b answered %s (%v)", path, body, err)
	}
	if d := statusUntil(t, next, aliceRaw, "Away"); d["changedBy"].(map[string]any)["kind"] != "supervisor" {
		t.Errorf("sue saw alice Away changed by %v, want a supervisor", d["changedBy"])
	}
	statusUntil(t, aliceNext, aliceRaw, "Away")
	// The owner answers the same on any node.
	for _, m := range []*Main{a, b, cc} {
		status, body, _ := send(t, m, "GET", path, sue, "")
		if status != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.Status != "Away" {
			t.Errorf("GET %s on %s: %d %s, want Away", path, m.Config.Cluster.NodeID, status, body)
		}
	}

	// The admin key, on C: A runs it too.
	if status, body, _ := send(t, cc, "PUT", path, testAdminKey, `{"status":"Available"}`); status != http.StatusOK {
		t.Fatalf("PUT %s on c with the admin key: %d %s", path, status, body)
	}
	if d := statusUntil(t, next, aliceRaw, "Available"); d["changedBy"].(map[string]any)["rawId"] != "admin" {
		t.Errorf("sue saw alice Available changed by %v, want admin", d["changedBy"])
	}

	// Alice, on C, wraps up for 1 s: A times it out.
	if status, body, _ := send(t, cc, "PUT", "/api/me/status", alice, `{"status":"WrapUp","wrapUpSeconds":1}`); status != http.StatusOK {
		t.Fatalf("PUT /api/me/status of alice on c: %d %s", status, body)
	}
	statusUntil(t, next, aliceRaw, "WrapUp")
	if d := statusUntil(t, next, aliceRaw, "Available"); d["changedBy"].(map[string]any)["kind"] != "system" {
		t.Errorf("wrap-up ended by %v, want the system", d["changedBy"])
	}
	if status, _, _ := send(t, cc, "PUT", "/api/me/status", alice, `{"status":"Busy"}`); status != http.StatusBadRequest {
		t.Errorf("PUT Busy of alice on c: %d, want 400", status)
	}

	// A call through B (run on A) makes her Busy; its end Available.
	call := post(t, "http://"+b.Addr+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)["id"].(string)
	statusUntil(t, next, aliceRaw, "Busy")
	post(t, "http://"+b.Addr+"/api/calls/"+call+"/hangup", alice, "")
	statusUntil(t, next, aliceRaw, "Available")
}
