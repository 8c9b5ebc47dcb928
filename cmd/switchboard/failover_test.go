package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// TestClusterFailover: node A, a `serve --cluster` process of its own, is
// killed with -9 while its agents have live calls. The survivors B and C
// (in this process, on the same NATS and Postgres, racing each other) end
// exactly A's live calls with 503/0, once each, dated between A's last
// acknowledged change and the kill and no earlier than a second before the
// kill (the 500 ms heartbeat, with slack for a loaded machine); B's own
// call is untouched and still answers; supervisors on B and C see each of
// A's calls end 503/0, once (published by the survivor that ended it);
// and A's agent opens her event stream on B, Connected, once her lease
// lapses. The times from the kill
// to the recovery and to Connected are logged, not asserted (issue 14's
// target for Connected: under 5 s).
//
// NATS is a server of the test's own: the child runs with the default
// lease bucket and subjects, which a shared server's other users may have.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real switchboard")
	}
	a, c, dbURL := serveCluster(t, "fo-a")
	b := c.startOn("fo-b", dbURL)
	cNode := c.startOn("fo-c", dbURL) // a second survivor, racing b to end a's calls

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	// A's agents: alice with two calls (the first on hold), carol with one.
	alice, carol, bob := mint(t, "alice", calls.RoleAgent), mint(t, "carol", calls.RoleAgent), mint(t, "bob", calls.RoleAgent)
	var onA []string
	owners := map[string]string{} // call id → its agent's token
	for _, token := range []string{alice, alice, carol} {
		id := startCall(t, a.base, token)
		onA = append(onA, id)
		owners[id] = token
	}
	lastAck := time.Now()
	// B's agent: bob, with one call.
	onB := startCall(t, "http://"+b.Addr, bob)

	// Supervisors on the survivors: sue on B, tom on C.
	var watches []*supervisorWatch
	for _, sv := range []struct {
		user string
		node *Main
	}{{"sue", b}, {"tom", cNode}} {
		token := mint(t, sv.user, calls.RoleSupervisor)
		if status, body, _ := send(t, sv.node, "GET", "/api/me", token, ""); status != http.StatusOK { // the node takes her
			t.Fatalf("GET /api/me of %s: %d %s", sv.user, status, body)
		}
		watches = append(watches, watchSupervisor(t, sv.node.Addr, token))
	}

	// Every call in Postgres, recorded with its node.
	waitUntil(ctx, t, "the calls to reach Postgres", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE end_time IS NULL AND node = ANY($1)`, []string{"fo-a", "fo-b"}).Scan(&n)
		return n == len(onA)+1, err
	})
	// A quiet spell longer than the heartbeat bound, so that a call dated
	// by its last event rather than by the heartbeat is caught.
	time.Sleep(2 * time.Second)
	killedAt := a.kill()

	// A's agent reconnects to B: 503 unavailable until her lease lapses.
	var connectedAfter time.Duration
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+b.Addr+"/api/events", http.Header{"Authorization": {"Bearer " + alice}})
		if err == nil {
			var snap struct {
				Type string
				Data calls.Snapshot
			}
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			err = ws.ReadJSON(&snap)
			connectedAfter = time.Since(killedAt)
			ws.Close()
			if err != nil || snap.Type != "snapshot" || snap.Data.ConnectionState != calls.Connected {
				t.Fatalf("alice's first event on b: %+v, %v; want a snapshot, Connected", snap, err)
			}
			break
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("alice's event stream on b after a died: %v %+v; want 503 until her lease lapses", err, resp)
		}
		if time.Now().After(deadline) {
			t.Fatal("alice could not open her event stream on b within 15 s of a's death")
		}
	}

	// B ended exactly A's live calls, 503/0, at the kill.
	var recoveredAfter time.Duration
	waitUntil(ctx, t, "b to end a's calls", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE node = 'fo-a' AND end_time IS NULL`).Scan(&n)
		recoveredAfter = time.Since(killedAt)
		return n == 0, err
	})
	// The README's bound (the 500 ms heartbeat), with as much again for a
	// late heartbeat on a loaded machine; a literal, so that a longer
	// heartbeat fails here.
	earliest := killedAt.Add(-time.Second)
	rows, err := conn.Query(ctx, `SELECT id, node, end_time, end_code, end_subcode FROM calls ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type ended struct {
		node          string
		at            *time.Time
		code, subcode *int
	}
	got := map[string]ended{}
	for rows.Next() {
		var id string
		var e ended
		if err := rows.Scan(&id, &e.node, &e.at, &e.code, &e.subcode); err != nil {
			t.Fatal(err)
		}
		got[id] = e
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(onA)+1 {
		t.Fatalf("%d calls in Postgres, want %d", len(got), len(onA)+1)
	}
	var worst time.Duration
	for _, id := range onA {
		e := got[id]
		if e.at == nil || e.code == nil || *e.code != 503 || e.subcode == nil || *e.subcode != 0 {
			t.Errorf("a's call %s: %+v; want ended 503/0", id, e)
			continue
		}
		if e.at.Before(lastAck) || e.at.Before(earliest) || e.at.After(killedAt) {
			t.Errorf("a's call %s ended at %v: want between the last change (%v) and the kill (%v), no earlier than %v",
				id, e.at, lastAck, killedAt, earliest)
		}
		worst = max(worst, killedAt.Sub(*e.at))
	}
	if e := got[onB]; e.at != nil || e.node != "fo-b" {
		t.Errorf("b's call after a's death: %+v; want live, on fo-b", e)
	}
	// The history says so too, with one callEnded event however many
	// survivors raced; and B's call still answers.
	for _, id := range onA {
		status, body := get(t, "http://"+b.Addr+"/api/history/calls/"+id, owners[id])
		var h calls.CallHistory
		if status != http.StatusOK || json.Unmarshal(body, &h) != nil {
			t.Fatalf("history of a's call %s via b: %d %s", id, status, body)
		}
		ends := 0
		for _, e := range h.Timeline {
			if e.Type == calls.EventCallEnded {
				ends++
			}
		}
		if r := h.Call.CallEndReason; r == nil || *r != calls.ReasonSwitchboardDied || ends != 1 {
			t.Errorf("history of a's call %s: ended %+v with %d callEnded events; want %+v, once", id, r, ends, calls.ReasonSwitchboardDied)
		}
	}
	// The supervisors on both survivors see each of A's calls end, 503/0,
	// once: from the survivor that ended it, whichever it was, through
	// its hub or its relay.
	for _, w := range watches {
		w.waitFor("the ends of a's calls", 15*time.Second, func(evs []watchedEvent) bool {
			got := ends(evs, 503, 0)
			for _, id := range onA {
				if got[id] == 0 {
					return false
				}
			}
			return true
		})
	}
	status, raw, _ := sendTo(t, "http://"+b.Addr, "POST", "/api/calls/"+onB+"/hold", bob, "")
	if status != http.StatusOK || !strings.Contains(raw, `"LocalHold"`) {
		t.Errorf("hold b's call after a's death: %d %s", status, raw)
	}
	for _, w := range watches {
		// B's hold comes after: an end published twice would most likely
		// have come by then.
		w.waitFor("the hold of b's call", 15*time.Second, func(evs []watchedEvent) bool {
			for _, e := range evs {
				if e.CallID == onB && e.State == string(calls.StateLocalHold) {
					return true
				}
			}
			return false
		})
		evs, _, _ := w.Events()
		got := ends(evs, 503, 0)
		for _, id := range onA {
			if got[id] != 1 {
				t.Errorf("supervisor on %s saw a's call %s end 503/0 %d times, want once", w.addr, id, got[id])
			}
		}
		if len(got) != len(onA) {
			t.Errorf("supervisor on %s saw %d calls end 503/0, want a's %d", w.addr, len(got), len(onA))
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("kill -9 of a: its agent Connected on b after %v; its %d calls ended by the survivors within %v (polled), dated up to %v before the kill; load average %s",
		connectedAfter.Round(time.Millisecond), len(onA), recoveredAfter.Round(time.Millisecond), worst.Round(time.Millisecond),
		strings.TrimSpace(string(load)))
}

// sendTo makes a request with token at base and answers the status, the
// body and the headers, checked against the OpenAPI description.
func sendTo(t *testing.T, base, method, path, token, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := checkedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), resp.Header
}

// waitUntil polls cond every 20 ms until it holds, failing t after 15 s.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not happen within 15 s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestClusterGracefulStop: a node stopped with SIGTERM ends its calls
// itself (503/1) and releases its leases as it stops: its agent's event
// stream opens on another node at once, without waiting for the lease to
// expire, and no node ends its calls as a dead node's.
func TestClusterGracefulStop(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a real switchboard")
	}
	a, c, dbURL := serveCluster(t, "gs-a", "--drain-grace", "0")
	b := c.startOn("gs-b", dbURL)
	alice := mint(t, "alice", calls.RoleAgent)
	id := startCall(t, a.base, alice)

	a.terminate()
	if a.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("serve exited with %d:\n%s", a.cmd.ProcessState.ExitCode(), a.log.tail())
	}
	// Her lease was released: the first try opens her stream on b.
	next, _ := openEvents(t, b.Addr, alice)
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("alice's first event on b: %v, %v", ev, err)
	}
	status, body := get(t, "http://"+b.Addr+"/api/history/calls/"+id, alice)
	var h calls.CallHistory
	if status != http.StatusOK || json.Unmarshal(body, &h) != nil {
		t.Fatalf("history of a's call via b: %d %s", status, body)
	}
	ends := 0
	for _, e := range h.Timeline {
		if e.Type == calls.EventCallEnded {
			ends++
		}
	}
	if r := h.Call.CallEndReason; r == nil || *r != calls.ReasonShutdown || ends != 1 {
		t.Fatalf("history of a's call via b: ended %+v with %d callEnded events; want %+v by a's own stop, once", r, ends, calls.ReasonShutdown)
	}
}

// TestClusterFenced: a node that cannot renew its node lease for a TTL
// (NATS out of reach longer than that) may have been taken for dead: it
// takes no new calls (/readyz 503, draining), while its live call goes
// on. With a history of its own (no other node could end its calls), it
// takes new calls again as soon as it holds its node lease again, once
// NATS is back.
func TestClusterFenced(t *testing.T) {
	srv := natstest.Start(t)
	c := &testCluster{t: t, url: srv.URL(), cfg: ClusterConfig{URL: srv.URL(), LeaseBucket: "leases", LeaseTTL: time.Second,
		SubjectPrefix: "sb", ForwardTimeout: time.Second}}
	a := c.start("a")
	alice := mint(t, "alice", calls.RoleAgent)
	id := startCall(t, "http://"+a.Addr, alice)
	srv.Shutdown()
	waitNotReady(t, "http://"+a.Addr)
	status, body, _ := send(t, a, "POST", "/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"draining"`) {
		t.Fatalf("a new call on a fenced node: %d %s; want 503 draining", status, body)
	}
	if status, body, _ := send(t, a, "POST", "/api/calls/"+id+"/hold", alice, ""); status != http.StatusOK || !strings.Contains(body, `"LocalHold"`) {
		t.Fatalf("hold the live call on a fenced node: %d %s", status, body)
	}

	srv.Restart()
	back := time.Now()
	waitUnfenced(t, a, alice)
	t.Logf("a takes new calls again %v after NATS came back", time.Since(back).Round(time.Millisecond))
	if status, body, _ := send(t, a, "POST", "/api/calls/"+id+"/resume", alice, ""); status != http.StatusOK || !strings.Contains(body, `"Connected"`) {
		t.Fatalf("resume the call the fence left live: %d %s", status, body)
	}
}

// TestClusterFencedThenDrained: a fenced node that is told to stop
// (SIGTERM drains it) stays drained when NATS comes back: a drain to stop
// is never undone.
func TestClusterFencedThenDrained(t *testing.T) {
	srv := natstest.Start(t)
	c := &testCluster{t: t, url: srv.URL(), cfg: ClusterConfig{URL: srv.URL(), LeaseBucket: "leases", LeaseTTL: time.Second,
		SubjectPrefix: "sb", ForwardTimeout: time.Second}}
	a := c.start("a")
	alice := mint(t, "alice", calls.RoleAgent)
	startCall(t, "http://"+a.Addr, alice)
	srv.Shutdown()
	waitNotReady(t, "http://"+a.Addr)
	a.switchboard.Drain() // what SIGTERM's Main.Drain does first

	srv.Restart()
	// TestClusterFenced's node takes calls again within a second of NATS
	// coming back; this one must not, however long it is given.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if status, _ := get(t, "http://"+a.Addr+"/readyz", ""); status != http.StatusServiceUnavailable {
			t.Fatalf("/readyz answers %d after NATS came back to a node draining to stop, want 503", status)
		}
	}
	status, body, _ := send(t, a, "POST", "/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"draining"`) {
		t.Fatalf("a new call on a node draining to stop: %d %s; want 503 draining", status, body)
	}
}

// TestClusterFencedRecovered: node a is cut off from NATS and from
// Postgres (a partition), so its heartbeat goes stale; b takes it for dead
// and ends its live call in the shared history (503/0), while a, its node
// lease lost, fences itself. Once the partition heals, a takes its lease
// back and new calls again within seconds (/readyz ok), and the call b
// ended is no longer live on a: it ended there too, 503/0.
func TestClusterFencedRecovered(t *testing.T) {
	if testing.Short() {
		t.Skip("a partition of several lease TTLs")
	}
	dbURL := freshSchema(t)
	srv := natstest.Start(t)
	natsCut := startCutProxy(t, strings.TrimPrefix(srv.URL(), "nats://"))
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pgCut := startCutProxy(t, u.Host)
	u.Host = pgCut.Addr()
	c := &testCluster{t: t, url: srv.URL(), cfg: ClusterConfig{URL: srv.URL(), LeaseBucket: "leases", LeaseTTL: time.Second,
		SubjectPrefix: "sb", ForwardTimeout: time.Second}}
	a := c.startWith("fence-a", func(cfg *Config) {
		cfg.Cluster.URL = "nats://" + natsCut.Addr()
		cfg.DatabaseURL, cfg.DataDir = u.String(), t.TempDir()
	})
	c.startOn("fence-b", dbURL)
	alice := mint(t, "alice", calls.RoleAgent)
	id := startCall(t, "http://"+a.Addr, alice)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	endOf := func() (code, sub int, ended bool, err error) {
		var c, s *int
		err = conn.QueryRow(ctx, `SELECT (view->'callEndReason'->>'code')::int, (view->'callEndReason'->>'subCode')::int FROM calls WHERE id = $1`, id).Scan(&c, &s)
		if err != nil || c == nil || s == nil {
			return 0, 0, false, err
		}
		return *c, *s, true, nil
	}
	waitUntil(ctx, t, "a's call to be written to Postgres", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE id = $1`, id).Scan(&n)
		return n == 1, err
	})

	natsCut.Cut()
	pgCut.Cut()
	waitUntil(ctx, t, "b to end a's call in the history", func() (bool, error) {
		_, _, ended, err := endOf()
		return ended, err
	})
	waitNotReady(t, "http://"+a.Addr)
	if code, sub, _, _ := endOf(); code != 503 || sub != 0 {
		t.Errorf("a's call ended %d/%d in the history, want 503/0", code, sub)
	}
	if !a.switchboard.Draining() {
		t.Fatal("a is not fenced (draining) after b took it for dead")
	}
	var recoveredAt time.Time
	if err := conn.QueryRow(ctx, `SELECT end_time FROM calls WHERE id = $1`, id).Scan(&recoveredAt); err != nil {
		t.Fatal(err)
	}

	natsCut.Mend()
	pgCut.Mend()
	back := time.Now()
	waitUnfenced(t, a, alice)
	t.Logf("a takes new calls again %v after the partition healed", time.Since(back).Round(time.Millisecond))

	status, body, _ := send(t, a, "GET", "/api/calls/"+id, alice, "")
	if status == http.StatusOK && !strings.Contains(body, `"Disconnected"`) {
		t.Fatalf("the call b ended is live on a after the fence: %d %s", status, body)
	}
	status, body, _ = send(t, a, "GET", "/api/calls", alice, "")
	if status != http.StatusOK || strings.Contains(body, id) {
		t.Fatalf("alice's calls on a: %d %s; want the recovered call %s gone", status, body, id)
	}
	if code, sub, ended, err := endOf(); err != nil || !ended || code != 503 || sub != 0 {
		t.Errorf("a's call in the history after a came back: %d/%d ended %v (%v), want 503/0", code, sub, ended, err)
	}
	// a's own end of the call (for its connections) is not written over
	// b's: one callEnded, at the time b dated it. a's history writes in
	// order, so once a later call of a's is in Postgres, so is anything a
	// wrote of the recovered one.
	status, body, _ = send(t, a, "POST", "/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
	var later calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &later) != nil {
		t.Fatalf("a later call on a: %d %s", status, body)
	}
	waitUntil(ctx, t, "a's later call to be written to Postgres", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE id = $1`, later.ID).Scan(&n)
		return n == 1, err
	})
	var endAt time.Time
	var ends int
	if err := conn.QueryRow(ctx, `SELECT end_time, (SELECT count(*) FROM call_events WHERE call_id = $1 AND type = 'callEnded') FROM calls WHERE id = $1`, id).Scan(&endAt, &ends); err != nil {
		t.Fatal(err)
	}
	if !endAt.Equal(recoveredAt) || ends != 1 {
		t.Errorf("the recovered call in the history after a came back: ended at %v with %d callEnded events; want %v (b's) and 1", endAt, ends, recoveredAt)
	}
}

// waitUnfenced waits (generously: the machine may be loaded) for m to take
// new calls again after a fence: /readyz answers 200 and a new call of
// token's starts; the call is hung up.
func waitUnfenced(t *testing.T, m *Main, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitUntil(ctx, t, "/readyz to answer 200 again", func() (bool, error) {
		status, _ := get(t, "http://"+m.Addr+"/readyz", "")
		return status == http.StatusOK, nil
	})
	status, body, _ := send(t, m, "POST", "/api/calls", token, `{"participants":[{"id":"8:echo123"}]}`)
	if status != http.StatusCreated {
		t.Fatalf("a new call once unfenced: %d %s; want 201", status, body)
	}
	var c calls.Call
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := send(t, m, "POST", "/api/calls/"+c.ID+"/hangup", token, ""); status != http.StatusOK {
		t.Fatalf("hang up the new call: %d %s", status, body)
	}
}

// TestClusterNATSOutage: NATS goes away for several lease TTLs and comes
// back, while Postgres stays up. Every node's leases lapse, but each node
// keeps writing its heartbeat in Postgres, so no node takes another for
// dead: no call is ended, no node is fenced, and the live calls answer
// through their nodes once NATS is back.
func TestClusterNATSOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("NATS out for several lease TTLs")
	}
	dbURL := freshSchema(t)
	natsSrv := natstest.Start(t)
	c := &testCluster{t: t, url: natsSrv.URL(), cfg: ClusterConfig{URL: natsSrv.URL(), LeaseBucket: "leases", LeaseTTL: time.Second,
		SubjectPrefix: "sb", ForwardTimeout: time.Second}}
	a, b := c.startOn("out-a", dbURL), c.startOn("out-b", dbURL)
	alice, bob := mint(t, "alice", calls.RoleAgent), mint(t, "bob", calls.RoleAgent)
	onA, onB := startCall(t, "http://"+a.Addr, alice), startCall(t, "http://"+b.Addr, bob)

	natsSrv.Shutdown()
	time.Sleep(4 * time.Second) // four TTLs: every lease has lapsed
	natsSrv.Restart()
	time.Sleep(3 * time.Second) // three TTLs more: time to take anyone for dead

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var ended int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE end_time IS NOT NULL`).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	if ended != 0 {
		t.Fatalf("%d calls ended during a NATS outage, want 0", ended)
	}
	for _, m := range []*Main{a, b} {
		if m.switchboard.Draining() {
			t.Errorf("node %s is fenced (draining) after a NATS outage", m.Config.Cluster.NodeID)
		}
	}
	// Each call answers through the node that has it, once that node is
	// back on NATS and has taken its identity's lease back. (Through another
	// node it may not: a node that reconnects first and gets a request for
	// the identity takes the free lease, and the call it does not have
	// answers call_not_found. docs/cluster.md lists this as open.)
	for _, tc := range []struct {
		node      *Main
		token, id string
	}{{a, alice, onA}, {b, bob, onB}} {
		waitUntil(ctx, t, "the call to answer hold through its node", func() (bool, error) {
			status, body, _ := sendTo(t, "http://"+tc.node.Addr, "POST", "/api/calls/"+tc.id+"/hold", tc.token, "")
			return status == http.StatusOK && strings.Contains(body, `"LocalHold"`), nil
		})
	}
}
