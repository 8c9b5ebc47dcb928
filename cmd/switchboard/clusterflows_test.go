package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// TestClusterAPIFlows runs the API flows of TestOpenAPIFlows, unchanged,
// against a cluster of three `serve --cluster` processes on one NATS
// (in-process) and one Postgres: every request and event stream goes to
// a node at random, and the flows' identities are owned by different
// nodes, so most calls cross nodes and most requests are forwarded.
func TestClusterAPIFlows(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three switchboards")
	}
	dbURL := freshSchema(t)
	natsSrv := natstest.Start(t)
	bin := buildSwitchboard(t)
	nodes := make([]*crashServer, 3)
	addrs := make([]string, len(nodes))
	for i := range nodes {
		nodes[i] = &crashServer{t: t, bin: bin,
			env: []string{"DATABASE_URL=" + dbURL, "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey},
			args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
				"--ring-timeout", "1m", "--log-level", "debug", "--media-grace", "1m",
				"--cluster", natsSrv.URL(), "--node-id", fmt.Sprintf("flows-%d", i+1),
				"--cluster-rtp-ports", fmt.Sprintf("%d-%d", 43000+100*i, 43099+100*i)}}
		nodes[i].start()
		n := nodes[i]
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("node %d's log:\n%s", i+1, n.log.tail())
			}
		})
		addrs[i] = strings.TrimPrefix(nodes[i].base, "http://")
	}
	// Spread the flows' identities: each is taken by the node its first
	// request reaches, so alice, bob and carol live on three nodes and the
	// supervisor sam beside carol, away from alice's calls, which he acts
	// on; the calls between them cross nodes.
	for _, who := range []struct {
		user string
		role calls.Role
		node int
	}{{"alice", calls.RoleAgent, 0}, {"bob", calls.RoleAgent, 1}, {"carol", calls.RoleAgent, 2}, {"sam", calls.RoleSupervisor, 2}} {
		if status, body, _ := sendTo(t, nodes[who.node].base, http.MethodGet, "/api/me", mint(t, who.user, who.role), ""); status != http.StatusOK {
			t.Fatalf("GET /api/me of %s on node %d: %d %s", who.user, who.node+1, status, body)
		}
	}
	runAPIFlows(t, addrs...)

	// The calls crossed nodes: each of alice's, bob's and carol's nodes
	// has calls in the shared history.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitUntil(ctx, t, "calls of every node in Postgres", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(DISTINCT node) FROM calls`).Scan(&n)
		return n == len(nodes), err
	})
}
