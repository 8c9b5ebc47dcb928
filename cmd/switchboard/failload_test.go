package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/eventlog"
)

// TestClusterFailoverUnderLoad is issue 14's failover test under load.
// Three nodes share one Postgres and an in-process NATS: A is a `serve
// --cluster` process of its own, B and C run in the test. Agents on every
// node hold and resume their calls without pause, while a supervisor on B
// and one on C record every event. Then:
//
//  1. A is killed with -9. Counted: the hold and resume events of B's and
//     C's calls that the API acknowledged, that Postgres holds and that
//     each supervisor received (none may be missing); A's calls, ended
//     503/0 by a survivor with end times between their last acknowledged
//     change and the kill, no earlier than a second before it (all), and
//     each end seen once by both supervisors; the time until each of A's
//     agents opens its event stream, Connected, on B or C (issue 14's
//     target: under 5 s; logged, not asserted, so that a loaded machine
//     does not fail the test, but over 15 s fails).
//  2. NATS is shut down for a second and started again, under the same
//     load. Counted again: nothing the API acknowledged is missing from
//     Postgres, and each supervisor received every event of B's and C's
//     calls, except those a connection closed with 1013 missed and its
//     new snapshot covers (the documented answer to an event a relay
//     could not append; there must be such a failure in the relays'
//     counts to excuse them).
func TestClusterFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real switchboard and restarts NATS under load")
	}
	dbURL := freshSchema(t)
	natsSrv := natstest.Start(t)
	bin := buildSwitchboard(t)

	a := &crashServer{t: t, bin: bin,
		env: []string{"DATABASE_URL=" + dbURL, "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey},
		args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--cluster", natsSrv.URL(), "--node-id", "fl-a"}}
	a.start()
	tc := &testCluster{t: t, url: natsSrv.URL(), cfg: ClusterConfig{URL: natsSrv.URL(), ForwardTimeout: time.Second}}
	b, c := tc.startOn("fl-b", dbURL), tc.startOn("fl-c", dbURL)
	nodes := []struct {
		name, base string
	}{{"fl-a", a.base}, {"fl-b", "http://" + b.Addr}, {"fl-c", "http://" + c.Addr}}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	// Six agents per node, each with a call through its own node (which
	// takes its lease).
	const perNode = 6
	var agents []*loadAgent
	for i, n := range nodes {
		for j := range perNode {
			user := fmt.Sprintf("%s%d", string(rune('a'+i)), j)
			token := mint(t, user, calls.RoleAgent)
			agents = append(agents, &loadAgent{node: n.name, base: n.base, user: user, token: token,
				call: startCall(t, n.base, token), state: calls.StateConnected})
		}
	}
	// Supervisors: sue on B, tom on C.
	var watches []*supervisorWatch
	for _, sv := range []struct {
		user string
		node *Main
	}{{"sue", b}, {"tom", c}} {
		token := mint(t, sv.user, calls.RoleSupervisor)
		if status, body, _ := send(t, sv.node, "GET", "/api/me", token, ""); status != http.StatusOK {
			t.Fatalf("GET /api/me of %s: %d %s", sv.user, status, body)
		}
		watches = append(watches, watchSupervisor(t, sv.node.Addr, token))
	}

	// The load: every agent holds and resumes through its node, one
	// change at a time, until stopped (A's until A is gone).
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var wg sync.WaitGroup
	loadFrom := time.Now()
	for _, ag := range agents {
		wg.Go(func() { ag.run(loadCtx, client) })
	}
	time.Sleep(2 * time.Second)

	// 1. A dies.
	killedAt := a.kill()
	var connected []time.Duration // A's agents, Connected on a survivor
	var cmu sync.Mutex
	var reconnects sync.WaitGroup
	for i, ag := range agents {
		if ag.node != "fl-a" {
			continue
		}
		to := []*Main{b, c}[i%2]
		reconnects.Go(func() {
			d, err := connectedAgain(to.Addr, ag.token, killedAt, 15*time.Second)
			cmu.Lock()
			defer cmu.Unlock()
			if err != nil {
				t.Errorf("%s on %s after a died: %v", ag.user, to.Config.Cluster.NodeID, err)
				return
			}
			connected = append(connected, d)
		})
	}
	reconnects.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var onA []string
	for _, ag := range agents {
		if ag.node == "fl-a" {
			onA = append(onA, ag.call)
		}
	}
	waitUntil(ctx, t, "a survivor to end a's calls", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE node = 'fl-a' AND end_time IS NULL`).Scan(&n)
		return n == 0, err
	})
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
	// The dead node's calls: ended 503/0, dated between their last
	// acknowledged change and the kill, no earlier than a second before.
	var offsets []time.Duration
	for _, ag := range agents {
		if ag.node != "fl-a" {
			continue
		}
		var end *time.Time
		var code, subcode *int
		if err := conn.QueryRow(ctx, `SELECT end_time, end_code, end_subcode FROM calls WHERE id = $1`, ag.call).
			Scan(&end, &code, &subcode); err != nil {
			t.Fatal(err)
		}
		switch {
		case end == nil || code == nil || subcode == nil || *code != 503 || *subcode != 0:
			t.Errorf("a's call %s: ended at %v with %v/%v; want 503/0", ag.call, end, code, subcode)
		case end.Before(killedAt.Add(-time.Second)) || end.After(killedAt):
			t.Errorf("a's call %s ended at %v: want before the kill (%v), no more than a second before it",
				ag.call, end, killedAt)
		default:
			offsets = append(offsets, killedAt.Sub(*end))
		}
	}
	// A's last changes: acknowledged, but its history writer had not
	// written them to Postgres when it died (they are in its journal, for
	// its next start to replay). The end is dated by what Postgres has.
	var onAAgents []*loadAgent
	for _, ag := range agents {
		if ag.node == "fl-a" {
			onAAgents = append(onAAgents, ag)
		}
	}
	aHistory, err := holdHistory(ctx, conn, onAAgents)
	if err != nil {
		t.Fatal(err)
	}
	aAcked, aUnwritten := 0, 0
	for _, ag := range onAAgents {
		aAcked += ag.acked()
		aUnwritten += max(0, ag.acked()-len(aHistory[ag.call]))
	}
	time.Sleep(time.Second) // load on the survivors alone

	// 2. NATS goes away for a second and comes back, under load.
	natsDownAt := time.Now()
	natsSrv.Shutdown()
	time.Sleep(time.Second)
	natsSrv.Restart()
	natsUpAt := time.Now()
	time.Sleep(3 * time.Second)
	stopLoad()
	wg.Wait()
	loadTo := time.Now()

	// Every acknowledged change is in Postgres (the history writes a
	// moment later), and each supervisor has the last event of each of
	// the survivors' calls, or gives up after 15 s and the count below
	// says what is missing.
	var survivors []*loadAgent
	for _, ag := range agents {
		if ag.node != "fl-a" {
			survivors = append(survivors, ag)
		}
	}
	var history map[string][]historyChange
	waitUntil(ctx, t, "the acknowledged changes to reach Postgres", func() (bool, error) {
		var err error
		history, err = holdHistory(ctx, conn, survivors)
		if err != nil {
			return false, err
		}
		for _, ag := range survivors {
			if len(history[ag.call]) < ag.acked() {
				return false, nil
			}
		}
		return true, nil
	})
	for _, w := range watches {
		deadline := time.Now().Add(15 * time.Second)
		for !w.hasLast(survivors, history) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The count.
	var relayFailed uint64
	for _, m := range []*Main{b, c} {
		st := m.events.relay.Stats()
		relayFailed += st.Failed + st.Dropped
		t.Logf("relay of %s: %+v", m.Config.Cluster.NodeID, st)
	}
	type count struct{ acked, history, received, covered, lost int }
	var phases [2]count // before the NATS restart, from it on
	phase := func(at time.Time) int {
		if at.Before(natsDownAt) {
			return 0
		}
		return 1
	}
	for _, ag := range survivors {
		h := history[ag.call]
		acked := ag.acked()
		if len(h) < acked {
			t.Errorf("%s's call %s: %d changes acknowledged, %d in Postgres", ag.user, ag.call, acked, len(h))
		}
		for i, ch := range h {
			p := phase(ch.at)
			if i < acked {
				phases[p].acked++
			}
			phases[p].history++
		}
	}
	for _, w := range watches {
		evs, sessions, werr := w.Events()
		if werr != nil {
			t.Errorf("supervisor on %s: %v", w.addr, werr)
		}
		if gaps := seqGaps(evs, sessions); len(gaps) > 0 {
			t.Errorf("supervisor on %s: its stream skipped seqs: %q", w.addr, gaps)
		}
		got := ends(evs, 503, 0)
		for _, id := range onA {
			if got[id] != 1 {
				t.Errorf("supervisor on %s saw a's call %s end 503/0 %d times, want once", w.addr, id, got[id])
			}
		}
		received := map[string]map[int64]bool{} // call → the events' times (µs)
		for _, e := range evs {
			if e.Type == "stateChanged" {
				if received[e.CallID] == nil {
					received[e.CallID] = map[int64]bool{}
				}
				received[e.CallID][e.At.UnixMicro()] = true
			}
		}
		var closes []watchSession
		for _, s := range sessions[:len(sessions)-1] {
			closes = append(closes, s)
			if s.Closed.Before(natsDownAt) {
				t.Errorf("supervisor on %s: its stream closed %d at %v, before NATS restarted", w.addr, s.CloseCode, s.Closed)
			}
		}
		for _, ag := range survivors {
			for _, ch := range history[ag.call] {
				p := phase(ch.at)
				switch {
				case received[ag.call][ch.at.UnixMicro()]:
					phases[p].received++
				case coveredBySnapshot(ch.at, sessions):
					phases[p].covered++
				default:
					phases[p].lost++
					t.Errorf("supervisor on %s never received %s's %s → %s of call %s (owned by %s) made at %v (%v after NATS went down); its connections: %+v; in the event log: %s",
						w.addr, ag.user, ch.old, ch.state, ag.call, ag.node, ch.at, ch.at.Sub(natsDownAt), sessions,
						whereInLog(natsSrv.URL(), "8:acs:"+ag.user, ch.at))
				}
			}
		}
		if len(closes) > 0 && relayFailed == 0 {
			t.Errorf("supervisor on %s was closed %d times, with no relayed event lost: %+v", w.addr, len(closes), closes)
		}
	}
	if phases[1].covered > 0 && relayFailed == 0 {
		t.Errorf("%d events covered by a new snapshot, with no relayed event lost", phases[1].covered)
	}

	refused, samples := 0, []string(nil)
	for _, ag := range survivors {
		ag.mu.Lock()
		refused += ag.refused
		if len(samples) < 4 {
			samples = append(samples, ag.failures...)
		}
		ag.mu.Unlock()
	}
	t.Logf("survivors' changes refused or failed (retried): %d, such as %q", refused, samples)
	load, _ := os.ReadFile("/proc/loadavg")
	slices.Sort(connected)
	slices.Sort(offsets)
	if len(offsets) == 0 {
		offsets = []time.Duration{0}
	}
	target := "under the 5 s target"
	if len(connected) > 0 && connected[len(connected)-1] >= 5*time.Second {
		target = "OVER the 5 s target"
	}
	t.Logf("kill -9 of a under load (%v): survivors' changes acknowledged %d, in Postgres %d; received by 2 supervisors %d, lost %d, covered by a new snapshot %d; "+
		"a's %d calls ended 503/0 %v to %v before the kill (%d of a's %d acknowledged changes not yet in Postgres at the kill); a's agents Connected on b or c after %v to %v (%s)",
		natsDownAt.Sub(loadFrom).Round(time.Millisecond), phases[0].acked, phases[0].history, phases[0].received, phases[0].lost, phases[0].covered,
		len(onA), offsets[0].Round(time.Millisecond), offsets[len(offsets)-1].Round(time.Millisecond), aUnwritten, aAcked,
		connected[0].Round(time.Millisecond), connected[len(connected)-1].Round(time.Millisecond), target)
	t.Logf("NATS down %v, then restarted, under load (%v from the shutdown to the end of the load): survivors' changes acknowledged %d, in Postgres %d; received by 2 supervisors %d, lost %d, covered by a new snapshot %d (relayed events lost: %d); load average %s",
		natsUpAt.Sub(natsDownAt).Round(time.Millisecond), loadTo.Sub(natsDownAt).Round(time.Millisecond), phases[1].acked, phases[1].history, phases[1].received, phases[1].lost, phases[1].covered,
		relayFailed, strings.TrimSpace(string(load)))
}

// loadAgent holds and resumes its call through its node, one change at a
// time, counting what the API acknowledged.
type loadAgent struct {
	node, base, user, token, call string

	mu       sync.Mutex
	state    calls.CallState // as last acknowledged
	ack      int
	refused  int
	failures []string
}

func (ag *loadAgent) run(ctx context.Context, client *http.Client) {
	for ctx.Err() == nil {
		op, want := "hold", calls.StateLocalHold
		if ag.state == calls.StateLocalHold {
			op, want = "resume", calls.StateConnected
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ag.base+"/api/calls/"+ag.call+"/"+op, nil)
		req.Header.Set("Authorization", "Bearer "+ag.token)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			ag.refuse(err.Error())
			if ag.node == "fl-a" {
				return // its node is gone
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"`+string(want)+`"`) {
			ag.refuse(fmt.Sprintf("%s: %d %s", op, resp.StatusCode, body))
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ag.mu.Lock()
		ag.state, ag.ack = want, ag.ack+1
		ag.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

func (ag *loadAgent) refuse(why string) {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	ag.refused++
	if len(ag.failures) < 4 {
		ag.failures = append(ag.failures, why)
	}
}

func (ag *loadAgent) acked() int {
	ag.mu.Lock()
	defer ag.mu.Unlock()
	return ag.ack
}

// historyChange is a hold or a resume in Postgres.
type historyChange struct {
	at         time.Time
	old, state string
}

// holdHistory answers the holds and resumes of the agents' calls in
// Postgres, in order.
func holdHistory(ctx context.Context, conn *pgx.Conn, agents []*loadAgent) (map[string][]historyChange, error) {
	ids := make([]string, len(agents))
	for i, ag := range agents {
		ids[i] = ag.call
	}
	rows, err := conn.Query(ctx, `SELECT call_id, at, data->>'oldState', data->>'state' FROM call_events
		WHERE type = 'stateChanged' AND call_id = ANY($1)
		AND (data->>'state' = 'LocalHold' OR data->>'oldState' = 'LocalHold')
		ORDER BY call_id, at, version, idx`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]historyChange{}
	for rows.Next() {
		var id string
		var ch historyChange
		if err := rows.Scan(&id, &ch.at, &ch.old, &ch.state); err != nil {
			return nil, err
		}
		ch.at = ch.at.UTC()
		out[id] = append(out[id], ch)
	}
	return out, rows.Err()
}

// hasLast reports whether the watch received the last hold or resume of
// each agent's call in history.
func (w *supervisorWatch) hasLast(agents []*loadAgent, history map[string][]historyChange) bool {
	evs, _, _ := w.Events()
	type key struct {
		call string
		at   int64
	}
	got := map[key]bool{}
	for _, e := range evs {
		got[key{e.CallID, e.At.UnixMicro()}] = true
	}
	for _, ag := range agents {
		h := history[ag.call]
		if len(h) > 0 && !got[key{ag.call, h[len(h)-1].at.UnixMicro()}] {
			return false
		}
	}
	return true
}

// coveredBySnapshot reports whether an event made at at, not received, is
// in the snapshot of a connection that replaced one closed with 1013: made
// before that snapshot, and no longer before the close than an event can
// be on its way (a relay's append timeout and a moment more).
func coveredBySnapshot(at time.Time, sessions []watchSession) bool {
	for i := 1; i < len(sessions); i++ {
		prev := sessions[i-1]
		if prev.CloseCode == websocket.CloseTryAgainLater && at.Before(sessions[i].Snapshot) &&
			at.After(prev.Closed.Add(-6*time.Second)) {
			return true
		}
	}
	return false
}

// connectedAgain opens the agent's event stream on the node at addr until
// it opens (503 wrong_node while its lease, held by a dead node, lasts),
// and answers how long after since its snapshot said Connected.
func connectedAgain(addr, token string, since time.Time, within time.Duration) (time.Duration, error) {
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/events", http.Header{"Authorization": {"Bearer " + token}})
		if err == nil {
			var snap struct {
				Type string
				Data calls.Snapshot
			}
			_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			err = ws.ReadJSON(&snap)
			d := time.Since(since)
			ws.Close()
			if err != nil || snap.Type != "snapshot" || snap.Data.ConnectionState != calls.Connected {
				return 0, fmt.Errorf("first event %+v, %v; want a snapshot, Connected", snap.Type, err)
			}
			return d, nil
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			return 0, fmt.Errorf("open the event stream: %v; want 503 until the lease lapses", err)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the event stream did not open within %v", within)
		}
	}
}

// whereInLog tells where an event of identity made at at is in the
// cluster's event log: its seqs and relay headers, or that it is not
// there (the relay never appended it). For a missing event's report.
func whereInLog(url, identity string, at time.Time) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	stream, subject, _ := eventNames("")
	log, err := eventlog.Open(ctx, js, eventlog.Config{Stream: stream, Subject: subject})
	if err != nil {
		return err.Error()
	}
	entries, err := log.Since(ctx, identity, 0)
	if err != nil {
		return err.Error()
	}
	for _, e := range entries {
		var ev struct{ At time.Time }
		if json.Unmarshal(e.Payload, &ev) == nil && ev.At.UnixMicro() == at.UnixMicro() {
			return fmt.Sprintf("Sb-Seq %d, stream seq %d, stored %v, headers %v", e.Seq, e.StreamSeq, e.Time, e.Header)
		}
	}
	return fmt.Sprintf("not among the identity's %d entries", len(entries))
}
