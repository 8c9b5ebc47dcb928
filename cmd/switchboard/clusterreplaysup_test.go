package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// TestClusterReplaySupervisor: a supervisor's stream is numbered the same
// on every node (the cluster's supervised feed). Sue, connected to node A
// (her owner), disconnects while alice holds, resumes and holds her call
// on A; reconnecting to node B with the last seq she saw, she gets exactly
// the events she missed, byte for byte those A replays for the same seq,
// with no gap and no repeat; so does B after it restarted (its memory
// lacks them: it reads the feed), then live ones on from there. A seq past
// the feed's last, seq 0, and a seq whose events left the feed (and the
// node's memory) get a snapshot.
func TestClusterReplaySupervisor(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.start("a"), c.start("b")
	waitPeers(t, a, "b")
	alice, sue := mint(t, "alice", calls.RoleAgent), mint(t, "sue", calls.RoleSupervisor)
	for _, token := range []string{alice, sue} {
		if status, body, _ := send(t, a, "GET", "/api/me", token, ""); status != http.StatusOK {
			t.Fatalf("GET /api/me on a: %d %s", status, body)
		}
	}
	base := "http://" + a.Addr

	call, last := callThenAway(t, a, sue, "sue", alice)

	for _, action := range []string{"hold", "resume", "hold"} {
		post(t, base+"/api/calls/"+call+"/"+action, alice, "")
	}
	// missedOn reconnects sue to m with last and reads up to the second
	// hold: not a snapshot, the seqs following last by one.
	missedOn := func(m *Main) (*websocket.Conn, []wsFrame) {
		t.Helper()
		conn := dialEvents(t, m.Addr, sue, &last)
		frames := untilSecondHold(t, conn, last, call)
		if frames[0].Type == string(calls.EventSnapshot) {
			t.Fatalf("sue reconnected to %s with sinceSeq %d: a snapshot, want the missed events", m.Config.Cluster.NodeID, last)
		}
		return conn, frames
	}
	sameAs := func(node string, got, want []wsFrame) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s replayed %d events after %d, want %d", node, len(got), last, len(want))
		}
		for i := range want {
			if got[i].raw != want[i].raw {
				t.Fatalf("event %d after %d: %s replayed %s, want %s", i, last, node, got[i].raw, want[i].raw)
			}
		}
	}
	onB, missed := missedOn(b)
	onB.Close()
	if resumes := countState(missed, call, "Connected"); resumes != 1 {
		t.Errorf("replayed %d resumes between the holds, want 1", resumes)
	}
	oracle, fromA := missedOn(a)
	oracle.Close()
	sameAs("a", fromA, missed)

	// B restarts: its memory begins after the events; it reads them from
	// the feed, then goes on live.
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b = c.start("b")
	waitPeers(t, b, "a")
	onB, fromB := missedOn(b)
	sameAs("b after its restart", fromB[:len(missed)], missed)
	post(t, base+"/api/calls/"+call+"/resume", alice, "")
	lastSeen := seqUntil(t, onB, fromB[len(fromB)-1].Seq, inState(call, "Connected"))
	onB.Close()

	// Back to A with the seq B gave: the same numbering.
	back := dialEvents(t, a.Addr, sue, &lastSeen)
	post(t, base+"/api/calls/"+call+"/hold", alice, "")
	framesUntil(t, back, lastSeen, inState(call, "LocalHold"))
	back.Close()

	snapshotOn := func(m *Main, since uint64, why string) {
		t.Helper()
		conn := dialEvents(t, m.Addr, sue, &since)
		if f := readFrame(t, conn); f.Type != string(calls.EventSnapshot) {
			t.Errorf("sue reconnected to %s with sinceSeq %d (%s): %s, want a snapshot", m.Config.Cluster.NodeID, since, why, f.raw)
		}
		conn.Close()
	}
	snapshotOn(b, lastSeen+1000, "past the feed's last")
	snapshotOn(b, 0, "never a place in the feed")

	// Past the retention: the feed's events are gone, and B's memory
	// began after last.
	feed, _ := feedNames(c.cfg.SubjectPrefix)
	_, js := natstest.Connect(t, c.url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, feed)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(lastSeen)); err != nil { // keeps lastSeen and later
		t.Fatal(err)
	}
	snapshotOn(b, last, "its events left the feed")
}

// TestClusterReplaySupervisorFailover: node A, a `serve --cluster`
// process, is killed with -9 while alice has a call on it. Sue, a
// supervisor owned by B, disconnected before the kill; the survivors (B
// and C, on the same Postgres and NATS) end alice's call 503/0 and the one
// that ended it publishes its callEnded on the feed. Sue reconnects to C
// (attached on B) with the last seq she saw and gets exactly the events
// she missed, the callEnded 503/0 once among them, with no gap and no
// repeat: byte for byte what B replays for the same seq. Alice's console,
// which saw her call on A, reconnects to C with its last seq: A left no end
// of her stream in the event log, so nothing proves that A gave no seq
// after the log's last, and she gets a snapshot (without the call), not a
// replay that could skip one.
func TestClusterReplaySupervisorFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real switchboard")
	}
	a, c, dbURL := serveCluster(t, "rf-a")
	log := a.log
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("a's log ends:\n%s", log.tail())
		}
	})
	b, cNode := c.startOn("rf-b", dbURL), c.startOn("rf-c", dbURL)
	alice, bob, sue := mint(t, "alice", calls.RoleAgent), mint(t, "bob", calls.RoleAgent), mint(t, "sue", calls.RoleSupervisor)
	if status, body, _ := send(t, b, "GET", "/api/me", sue, ""); status != http.StatusOK { // b takes sue
		t.Fatalf("GET /api/me of sue on b: %d %s", status, body)
	}
	onB := dialEvents(t, b.Addr, sue, nil)
	snap := readFrame(t, onB)
	if snap.Type != string(calls.EventSnapshot) {
		t.Fatalf("sue's first event on b: %s", snap.raw)
	}
	call := startCall(t, a.base, alice)
	aliceSnap := readFrame(t, dialEvents(t, strings.TrimPrefix(a.base, "http://"), alice, nil))
	if aliceSnap.Type != string(calls.EventSnapshot) || !strings.Contains(aliceSnap.raw, call) {
		t.Fatalf("alice's first event on a: %s, want a snapshot with her call", aliceSnap.raw)
	}
	last := seqUntil(t, onB, snap.Seq, callSeen(call))
	onB.Close()
	waitConnection(t, b, "8:acs:sue", calls.Disconnected)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	waitUntil(ctx, t, "alice's call to reach Postgres", func() (bool, error) { // else no survivor knows of it
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM calls WHERE node = 'rf-a' AND end_time IS NULL`).Scan(&n)
		return n == 1, err
	})
	a.kill()
	waitUntil(ctx, t, "a survivor to end a's calls", func() (bool, error) {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM calls WHERE node = 'rf-a' AND end_time IS NULL`).Scan(&n)
		return n == 0, err
	})

	isEnd := func(f wsFrame) bool { return f.Type == string(calls.EventCallEnded) && f.CallID == call }
	onC := dialEvents(t, cNode.Addr, sue, &last)
	missed := framesUntil(t, onC, last, isEnd)
	if missed[0].Type == string(calls.EventSnapshot) {
		t.Fatalf("sue reconnected to c with sinceSeq %d: a snapshot, want the missed events", last)
	}
	var end struct {
		Data struct {
			Reason struct {
				Code    int `json:"code"`
				SubCode int `json:"subCode"`
			} `json:"callEndReason"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(missed[len(missed)-1].raw), &end); err != nil || end.Data.Reason.Code != 503 || end.Data.Reason.SubCode != 0 {
		t.Fatalf("alice's call ended %s (%v), want 503/0", missed[len(missed)-1].raw, err)
	}
	onC.Close()
	oracle := dialEvents(t, b.Addr, sue, &last)
	replaysSame(t, oracle, last, missed, "c", "b")
	// Alice, once her lease lapsed: a snapshot on c, without the call.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		u := "ws://" + cNode.Addr + "/api/events?sinceSeq=" + strconv.FormatUint(aliceSnap.Seq, 10)
		ws, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + alice}})
		if err == nil {
			f := readFrame(t, ws)
			ws.Close()
			if f.Type != string(calls.EventSnapshot) || strings.Contains(f.raw, call) {
				t.Fatalf("alice reconnected to c with a's seq %d after a died: %s, want a snapshot without the call", aliceSnap.Seq, f.raw)
			}
			break
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("alice's event stream on c after a died: %v %+v", err, resp)
		}
	}

	// No second end: sue's stream on b goes on live up to bob's new call
	// on b, never with the call's end again.
	post(t, "http://"+b.Addr+"/api/calls", bob, `{"participants":[{"id":"8:echo123"}]}`)
	for f := readFrame(t, oracle); !(f.Type == string(calls.EventCallsUpdated) && f.CallID != call); f = readFrame(t, oracle) {
		if isEnd(f) {
			t.Fatalf("alice's call ended twice: %s", f.raw)
		}
	}
}
