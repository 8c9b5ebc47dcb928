package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
	"github.com/switchboard/switchboard/internal/cluster/lease"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/store"
)

// testCluster is one test's cluster on the shared NATS: its own lease
// bucket and subjects. Each node keeps its own (memory) history.
type testCluster struct {
	t   *testing.T
	url string
	cfg ClusterConfig
}

func newTestCluster(t *testing.T) *testCluster {
	url := natstest.SharedURL(t)
	c := &testCluster{t: t, url: url, cfg: ClusterConfig{URL: url,
		LeaseBucket: natstest.Name(t, "sbtest_leases_"), LeaseTTL: time.Second,
		SubjectPrefix: natstest.Name(t, "sbtest"), ForwardTimeout: time.Second}}
	t.Cleanup(func() {
		_, js := natstest.Connect(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q := queueBucket(c.cfg.SubjectPrefix)
		for _, b := range []string{c.cfg.LeaseBucket, c.cfg.LeaseBucket + "_nodes", c.cfg.LeaseBucket + "_rooms", q, q + "_offers", q + "_agents"} {
			if err := js.DeleteKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
				t.Errorf("delete bucket %s: %v", b, err)
			}
		}
	})
	deleteEventStream(t, url, c.cfg.SubjectPrefix)
	return c
}

// start boots a node on port 0 with a history of its own in memory; it is
// closed when the test ends.
func (c *testCluster) start(id string) *Main {
	c.t.Helper()
	return c.startOn(id, "")
}

// startOn boots a node whose history is in the Postgres at databaseURL, or
// in memory when it is empty.
func (c *testCluster) startOn(id, databaseURL string) *Main {
	c.t.Helper()
	return c.startWith(id, func(cfg *Config) {
		if databaseURL != "" {
			cfg.DatabaseURL, cfg.DataDir = databaseURL, c.t.TempDir()
		}
	})
}

// startWith boots a node whose configuration edit changed (its history in
// memory unless edit names a database).
func (c *testCluster) startWith(id string, edit func(*Config)) *Main {
	c.t.Helper()
	cfg := c.cfg
	cfg.NodeID = id
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, Cluster: cfg},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
	}
	edit(&m.Config)
	if m.Config.DatabaseURL == "" {
		m.Store = store.NewMemory()
	}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close(context.Background())
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// send makes a request with token and answers the status, the body and
// the headers; it fails the test unless the answer fits the OpenAPI
// description.
func send(t *testing.T, m *Main, method, path, token, body string) (int, string, http.Header) {
	t.Helper()
	return sendTo(t, "http://"+m.Addr, method, path, token, body)
}

// TestClusterForwards: alice's requests reaching nodes B and C are
// answered by node A, which owns her, with the answers A gives directly;
// her event stream opens on any node.
func TestClusterForwards(t *testing.T) {
	c := newTestCluster(t)
	a, b, cc := c.start("a"), c.start("b"), c.start("c")
	alice := mint(t, "alice", calls.RoleAgent)

	// The first request of alice reaches A: A acquires her.
	if status, body, _ := send(t, a, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
	status, body, _ := send(t, b, "POST", "/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/calls via b: %d %s", status, body)
	}
	var call calls.Call
	if err := json.Unmarshal([]byte(body), &call); err != nil {
		t.Fatal(err)
	}
	// The call lives on A, not on B, where the request came in.
	principal := calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent}
	for _, n := range []struct {
		m    *Main
		want int
	}{{a, 1}, {b, 0}, {cc, 0}} {
		list, err := n.m.switchboard.ListCalls(context.Background(), principal, "")
		if err != nil || len(list) != n.want {
			t.Fatalf("node %s has %d calls of alice (%v), want %d", n.m.Config.Cluster.NodeID, len(list), err, n.want)
		}
	}

	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/me", "", http.StatusOK},
		{"GET", "/api/calls", "", http.StatusOK},
		{"GET", "/api/calls/" + call.ID, "", http.StatusOK},
		{"GET", "/api/calls?agent=8:acs:bob", "", http.StatusForbidden},
		{"GET", "/api/incoming-calls", "", http.StatusOK},
		{"GET", "/api/calls/no-such-call", "", http.StatusNotFound},
		{"POST", "/api/calls/no-such-call/hold", "", http.StatusNotFound},
		{"POST", "/api/calls", `{"participants":`, http.StatusBadRequest},
		{"DELETE", "/api/calls", "", http.StatusMethodNotAllowed},
		{"POST", "/api/calls", `{"participants":[{"id":"8:echo123"}],"x":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.method+" "+tt.path+" "+strconv.Itoa(tt.status), func(t *testing.T) {
			wantStatus, want, _ := send(t, a, tt.method, tt.path, alice, tt.body)
			if wantStatus != tt.status {
				t.Fatalf("on a: %d %s, want %d", wantStatus, want, tt.status)
			}
			for _, n := range []*Main{b, cc} {
				if status, got, _ := send(t, n, tt.method, tt.path, alice, tt.body); status != wantStatus || got != want {
					t.Errorf("via %s: %d %s\n want %d %s", n.Config.Cluster.NodeID, status, got, wantStatus, want)
				}
			}
		})
	}

	// Alice's event stream: open on A, and on B, attached on A (A's
	// snapshot, with her call).
	next, _ := openEvents(t, a.Addr, alice)
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("first event on a: %v, %v", ev, err)
	}
	nextB, _ := openEvents(t, b.Addr, alice)
	if ev, err := nextB(); err != nil || ev["type"] != "snapshot" || !strings.Contains(fmt.Sprint(ev["data"]), call.ID) {
		t.Fatalf("first event on b: %v, %v; want a snapshot with call %s", ev, err, call.ID)
	}

	// Carol's first contact is her event stream on B: B takes her, and
	// her requests reaching A go to B.
	carol := mint(t, "carol", calls.RoleAgent)
	nextCarol, _ := openEvents(t, b.Addr, carol)
	if ev, err := nextCarol(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("carol's first event on b: %v, %v", ev, err)
	}
	if status, body, _ := send(t, a, "POST", "/api/calls", carol, `{"participants":[{"id":"8:echo123"}]}`); status != http.StatusCreated {
		t.Fatalf("POST /api/calls of carol via a: %d %s", status, body)
	}
	if ev, err := nextCarol(); err != nil || ev["type"] == "snapshot" || ev["callId"] == nil {
		t.Fatalf("carol's stream on b after her call started via a: %v, %v; want the call's event", ev, err)
	}

	// Bob's first request reaches C: C owns him, and B forwards to C.
	bob := mint(t, "bob", calls.RoleAgent)
	if status, body, _ := send(t, cc, "POST", "/api/calls", bob, `{"participants":[{"id":"8:echo123"}]}`); status != http.StatusCreated {
		t.Fatalf("POST /api/calls on c: %d %s", status, body)
	}
	_, onC, _ := send(t, cc, "GET", "/api/calls", bob, "")
	if _, viaB, _ := send(t, b, "GET", "/api/calls", bob, ""); viaB != onC || !strings.Contains(onC, `"id"`) {
		t.Fatalf("bob's calls via b %s, on c %s", viaB, onC)
	}
}

// TestClusterOwnerGone: an identity whose node closed is taken by the
// next node its requests reach; one whose owner stopped answering gets 503
// until the owner's lease expires, then the next node takes it.
func TestClusterOwnerGone(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.start("a"), c.start("b")
	alice := mint(t, "alice", calls.RoleAgent)
	if status, body, _ := send(t, a, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
	if status, body, _ := send(t, b, "GET", "/api/me", alice, ""); status != http.StatusOK { // b remembers a owns alice
		t.Fatalf("GET /api/me via b: %d %s", status, body)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := send(t, b, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on b after a closed: %d %s", status, body)
	}
	if list, err := b.switchboard.ListCalls(context.Background(), calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent}, ""); err != nil || len(list) != 0 {
		t.Fatalf("b: %v %v", list, err)
	}

	// A ghost node takes carol's lease and never answers, then dies.
	ghostConn, js := natstest.Connect(t, c.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ghost, err := lease.New(ctx, js, lease.Config{Bucket: c.cfg.LeaseBucket, Node: "ghost", TTL: c.cfg.LeaseTTL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := ghost.Acquire(ctx, "8:acs:carol"); err != nil {
		t.Fatal(err)
	}
	carol := mint(t, "carol", calls.RoleAgent)
	status, body, _ := send(t, b, "GET", "/api/me", carol, "")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"unavailable"`) || !strings.Contains(body, "ghost") {
		t.Fatalf("GET /api/me of carol, owned by a node that does not listen: %d %s; want 503 unavailable naming ghost", status, body)
	}
	// Now the ghost takes forwarded requests and never answers: the
	// forward times out (ForwardTimeout), and the answer is 503 again.
	taken := make(chan struct{}, 10)
	if _, err := ghostConn.Subscribe(c.cfg.SubjectPrefix+".node.ghost.http", func(*nats.Msg) { taken <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := ghostConn.Flush(); err != nil {
		t.Fatal(err)
	}
	status, body, _ = send(t, b, "GET", "/api/me", carol, "")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "ghost") || len(taken) != 1 {
		t.Fatalf("GET /api/me of carol, owned by a node that does not answer: %d %s, the ghost took %d requests; want 503 after it took one", status, body, len(taken))
	}
	ghostConn.Close() // the ghost stops renewing: its lease expires after the TTL
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body, _ := send(t, b, "GET", "/api/me", carol, "")
		if status == http.StatusOK {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("GET /api/me of carol after the ghost died: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if owner, err := b.cluster.Owner(ctx, "8:acs:carol"); err != nil || owner != "" {
		t.Fatalf("b.Owner(carol) = %q, %v; want b", owner, err)
	}
	_ = ghost.Close(ctx)
}

// TestClusterRefusesForgedRequests: a node answers requests that are not
// signed with the cluster's key, malformed, or not API routes with an
// error, never running them, and keeps serving.
func TestClusterRefusesForgedRequests(t *testing.T) {
	c := newTestCluster(t)
	a := c.start("a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	join := func(id string, secret []byte) *cluster.Node {
		n, err := cluster.Join(ctx, cluster.Config{URL: c.url, Node: id, Secret: secret, LeaseBucket: c.cfg.LeaseBucket,
			LeaseTTL: c.cfg.LeaseTTL, SubjectPrefix: c.cfg.SubjectPrefix, ForwardTimeout: time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close(context.Background()) })
		return n
	}
	peer := join("peer", clusterSecret(testAdminKey))
	forger := join("forger", clusterSecret("another admin key, 0123456789abcdef"))
	alice, _ := json.Marshal(map[string]any{"Identifier": map[string]any{"rawId": "8:acs:alice", "communicationUser": map[string]any{"id": "8:acs:alice"}}, "Role": "agent"})
	if _, err := peer.Owner(ctx, "8:acs:alice"); err != nil { // alice is the peer's: a must not run her requests
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name       string
		from       *cluster.Node
		req        cluster.Request
		wantStatus int    // 0: refused by the cluster layer
		want       string // in the refusal or the body
	}{
		{"another key", forger, cluster.Request{Method: "GET", Target: "/api/me", Principal: alice}, 0, "not signed"},
		{"malformed principal", peer, cluster.Request{Method: "GET", Target: "/api/me", Principal: json.RawMessage(`[1]`)}, 0, "malformed principal"},
		{"no identity", peer, cluster.Request{Method: "GET", Target: "/api/me", Principal: json.RawMessage(`{}`)}, 400, "valid identity"},
		{"not an API route", peer, cluster.Request{Method: "GET", Target: "/metrics", Principal: alice}, 400, "API route"},
		{"the event stream", peer, cluster.Request{Method: "GET", Target: "/api/events", Principal: alice}, 400, "API route"},
		{"bad method", peer, cluster.Request{Method: "GE T", Target: "/api/me", Principal: alice}, 400, "malformed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.from.Forward(ctx, "a", tt.req)
			if tt.wantStatus == 0 {
				if !errors.Is(err, cluster.ErrRefused) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("%+v, %v; want a refusal saying %q", resp, err, tt.want)
				}
				return
			}
			if err != nil || resp.Status != tt.wantStatus || !strings.Contains(string(resp.Body), tt.want) {
				t.Fatalf("%d %s, %v; want %d saying %q", resp.Status, resp.Body, err, tt.wantStatus, tt.want)
			}
		})
	}
	// Alice's request forwarded to a, which does not own her: not run.
	resp, err := peer.Forward(ctx, "a", cluster.Request{Method: "POST", Target: "/api/calls", Principal: alice,
		Header: map[string][]string{"Content-Type": {"application/json"}}, Body: []byte(`{"participants":[{"id":"8:echo123"}]}`)})
	if err != nil || resp.NotOwner != "peer" {
		t.Fatalf("%+v, %v; want not owner, naming peer", resp, err)
	}
	if list, _ := a.switchboard.ListCalls(ctx, calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent}, ""); len(list) != 0 {
		t.Fatalf("a started a call for an identity it does not own: %v", list)
	}
	// a still serves its own identities.
	bob := mint(t, "bob", calls.RoleAgent)
	if status, body, _ := send(t, a, "GET", "/api/me", bob, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
}

// TestClusterSharedPostgres: a node records its calls as its own in the
// Postgres the cluster shares, and a node that joins does not end the
// others' live calls at start (only its own earlier run's).
func TestClusterSharedPostgres(t *testing.T) {
	base := os.Getenv("SWITCHBOARD_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("SWITCHBOARD_TEST_DATABASE_URL is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	schema := strings.ReplaceAll(natstest.Name(t, "sbcluster_"), "-", "")
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	c := newTestCluster(t)
	a := c.startOn("a", u.String())
	alice := mint(t, "alice", calls.RoleAgent)
	status, body, _ := send(t, a, "POST", "/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
	if status != http.StatusCreated {
		t.Fatalf("POST /api/calls on a: %d %s", status, body)
	}
	var call calls.Call
	if err := json.Unmarshal([]byte(body), &call); err != nil {
		t.Fatal(err)
	}
	// Wait until the call is in Postgres, where b would see it.
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".calls WHERE id = $1", call.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the call never reached Postgres")
		case <-time.After(20 * time.Millisecond):
		}
	}
	var node string
	if err := conn.QueryRow(ctx, "SELECT node FROM "+schema+".calls WHERE id = $1", call.ID).Scan(&node); err != nil || node != "a" {
		t.Fatalf("the call's node in Postgres: %q, %v; want a", node, err)
	}
	b := c.startOn("b", u.String())
	var ended *time.Time
	if err := conn.QueryRow(ctx, "SELECT end_time FROM "+schema+".calls WHERE id = $1", call.ID).Scan(&ended); err != nil || ended != nil {
		t.Fatalf("a's live call after b started: end_time %v, %v; want still live", ended, err)
	}
	if status, got, _ := send(t, b, "GET", "/api/calls/"+call.ID, alice, ""); status != http.StatusOK || !strings.Contains(got, `"Connected"`) {
		t.Fatalf("GET the call via b: %d %s", status, got)
	}
}

// TestClusterNATSRestart: NATS restarts under two nodes; they reconnect,
// and a request reaching the node that does not own its identity is
// answered by the owner again, with the same answer as before.
func TestClusterNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	c := &testCluster{t: t, url: srv.URL(), cfg: ClusterConfig{URL: srv.URL(), LeaseBucket: "leases", LeaseTTL: 5 * time.Second, // longer than the restart: a stays the owner
		SubjectPrefix: "sb", ForwardTimeout: time.Second}}
	a, b := c.start("a"), c.start("b")
	alice := mint(t, "alice", calls.RoleAgent)
	if status, body, _ := send(t, a, "POST", "/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`); status != http.StatusCreated {
		t.Fatalf("POST /api/calls on a: %d %s", status, body)
	}
	_, want, _ := send(t, a, "GET", "/api/calls", alice, "")
	if status, got, _ := send(t, b, "GET", "/api/calls", alice, ""); status != http.StatusOK || got != want {
		t.Fatalf("via b before the restart: %d %s, want %s", status, got, want)
	}
	srv.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, got, _ := send(t, b, "GET", "/api/calls", alice, "")
		if status == http.StatusOK && got == want {
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("via b after the restart: %d %s, want %s", status, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterRevocation: a token revoked on one node is refused by every
// node, not only the one that revoked it.
func TestClusterRevocation(t *testing.T) {
	c := newTestCluster(t)
	a, b, cc := c.start("a"), c.start("b"), c.start("c")
	waitPeers(t, a, "b", "c")
	status, body, _ := send(t, a, "POST", "/api/tokens", testAdminKey, `{"identity":{"communicationUserId":"alice"},"role":"agent"}`)
	if status != http.StatusCreated {
		t.Fatalf("mint on a: %d %s", status, body)
	}
	var tok struct{ Token, ID string }
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Main{a, b, cc} {
		if status, body, _ := send(t, n, "GET", "/api/me", tok.Token, ""); status != http.StatusOK {
			t.Fatalf("GET /api/me on %s before the revocation: %d %s", n.Config.Cluster.NodeID, status, body)
		}
	}
	if status, body, _ := send(t, a, "DELETE", "/api/tokens/"+tok.ID, testAdminKey, ""); status != http.StatusNoContent {
		t.Fatalf("revoke on a: %d %s", status, body)
	}
	// Every node confirmed it before a answered.
	for _, n := range []*Main{a, b, cc} {
		if status, body, _ := send(t, n, "GET", "/api/me", tok.Token, ""); status != http.StatusUnauthorized || !strings.Contains(body, `"unauthorized"`) {
			t.Errorf("GET /api/me on %s with the revoked token: %d %s, want 401 unauthorized", n.Config.Cluster.NodeID, status, body)
		}
	}
}

// TestClusterLapsedLeaseStaysWithCalls: an identity whose lease lapsed
// (NATS out of reach longer than the TTL) while its node still runs its
// calls is not taken by the next node its requests reach: that node sends
// them to the node with the calls, which takes the lease back. (Taking it
// would split the identity: its calls on one node, its new requests on
// another, answering call_not_found for the calls it has.)
func TestClusterLapsedLeaseStaysWithCalls(t *testing.T) {
	dbURL := freshSchema(t)
	c := newTestCluster(t)
	a, b := c.startOn("lapse-a", dbURL), c.startOn("lapse-b", dbURL)
	alice := mint(t, "alice", calls.RoleAgent)
	id := startCall(t, "http://"+a.Addr, alice)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitUntil(ctx, t, "alice's call in the shared history", func() (bool, error) {
		var node string
		err := conn.QueryRow(ctx, `SELECT node FROM calls WHERE id = $1 AND end_time IS NULL`, id).Scan(&node)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return node == "lapse-a", err
	})

	// Alice's lease lapses, as after a NATS outage: a's lease is gone from
	// the bucket, and b gets alice's next request before a takes it back.
	_, js := natstest.Connect(t, c.url)
	kv, err := js.KeyValue(ctx, c.cfg.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, lease.Key(calls.CommunicationUser("alice").RawID())); err != nil {
		t.Fatal(err)
	}
	status, body, _ := send(t, b, "POST", "/api/calls/"+id+"/hold", alice, "")
	if status != http.StatusOK || !strings.Contains(body, `"LocalHold"`) {
		t.Fatalf("hold alice's call through b after her lease lapsed: %d %s, want 200 LocalHold (run by a)", status, body)
	}
	waitUntil(ctx, t, "a to own alice again", func() (bool, error) {
		owner, err := a.cluster.Owner(ctx, calls.CommunicationUser("alice").RawID())
		return err == nil && owner == "", nil
	})
	if owner, err := b.cluster.Owner(ctx, calls.CommunicationUser("alice").RawID()); err != nil || owner != "lapse-a" {
		t.Fatalf("b says alice's node is %q (%v), want lapse-a", owner, err)
	}
}

// waitPeers waits until m's node sees every one of peers in the cluster.
func waitPeers(t *testing.T, m *Main, peers ...string) {
	t.Helper()
	waitUntil(context.Background(), t, "the node to see its peers", func() (bool, error) {
		return slices.Equal(m.cluster.Peers(), peers), nil
	})
}

// TestClusterSupervisorListsEveryNode: a supervisor's list of every live
// call (GET /api/calls without agent) has the calls of every node, not
// only those of the node that answers it, as on one node.
func TestClusterSupervisorListsEveryNode(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.start("list-a"), c.start("list-b")
	waitPeers(t, a, "list-b")
	waitPeers(t, b, "list-a")
	alice, _ := online(t, a, "alice", calls.RoleAgent)
	sam, _ := online(t, b, "sam", calls.RoleSupervisor)
	status, body, _ := send(t, a, "POST", "/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
	var call calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &call) != nil {
		t.Fatalf("alice calls the echo bot on a: %d %s", status, body)
	}
	for _, tt := range []struct {
		name string
		node *Main
	}{{"the supervisor's node", b}, {"the call's node", a}} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := send(t, tt.node, "GET", "/api/calls", sam, "")
			var list []calls.Call
			if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil {
				t.Fatalf("the supervisor's list: %d %s", status, body)
			}
			n := 0
			for _, l := range list {
				if l.ID == call.ID {
					n++
				}
			}
			if n != 1 {
				t.Errorf("alice's call on list-a is %d times in the supervisor's list %s; want once", n, body)
			}
		})
	}
}
