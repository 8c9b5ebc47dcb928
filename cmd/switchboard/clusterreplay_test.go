package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/eventlog"
	"github.com/switchboard/switchboard/internal/relay"
)

// wsFrame is one message of an event stream, raw and read.
type wsFrame struct {
	raw    string
	Seq    uint64 `json:"seq"`
	Type   string `json:"type"`
	CallID string `json:"callId"`
	Data   struct {
		State string `json:"state"`
	} `json:"data"`
}

// dialEvents opens token's event stream on addr, with sinceSeq when since
// is not nil; it is closed when the test ends.
func dialEvents(t *testing.T, addr, token string, since *uint64) *websocket.Conn {
	t.Helper()
	u := "ws://" + addr + "/api/events"
	if since != nil {
		u += "?" + url.Values{"sinceSeq": {strconv.FormatUint(*since, 10)}}.Encode()
	}
	conn, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readFrame reads the stream's next message.
func readFrame(t *testing.T, conn *websocket.Conn) wsFrame {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read an event: %v", err)
	}
	var f wsFrame
	if err := json.Unmarshal(msg, &f); err != nil {
		t.Fatalf("event %s: %v", msg, err)
	}
	f.raw = string(msg)
	return f
}

// framesUntil reads the stream's messages up to the one stop holds for,
// checking that their seqs follow prev by one each.
func framesUntil(t *testing.T, conn *websocket.Conn, prev uint64, stop func(wsFrame) bool) []wsFrame {
	t.Helper()
	var out []wsFrame
	for {
		f := readFrame(t, conn)
		if f.Seq != prev+1 {
			t.Fatalf("event %s after seq %d, want seq %d", f.raw, prev, prev+1)
		}
		prev = f.Seq
		out = append(out, f)
		if stop(f) {
			return out
		}
	}
}

// TestClusterReplay: alice's console, connected to node A (her owner),
// disconnects; events of hers happen; it reconnects to node B with the
// last seq it saw and gets exactly the events it missed (those A replays
// from its memory for the same seq, byte for byte), then live ones, the
// seqs following on without a gap; back on A with B's last seq, the stream
// goes on there too. A seq the cluster's event log cannot
// answer (never given, or past the retention: the log's events are gone)
// gets a snapshot.
func TestClusterReplay(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.start("a"), c.start("b")
	waitPeers(t, a, "b")
	alice := mint(t, "alice", calls.RoleAgent)
	if status, body, _ := send(t, a, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
	base := "http://" + a.Addr

	call, last := callThenAway(t, a, alice, "alice", alice)

	// Missed: she holds, resumes and holds the call again (through A's
	// API, with no stream open).
	for _, action := range []string{"hold", "resume", "hold"} {
		post(t, base+"/api/calls/"+call+"/"+action, alice, "")
	}
	start := time.Now()
	onB := dialEvents(t, b.Addr, alice, &last)
	missed := untilSecondHold(t, onB, last, call)
	if missed[0].Type == string(calls.EventSnapshot) {
		t.Fatalf("reconnected to b with sinceSeq %d: a snapshot, want the missed events", last)
	}
	t.Logf("%d missed events replayed on b %s after the dial", len(missed), time.Since(start).Round(time.Microsecond))
	if resumes := countState(missed, call, "Connected"); resumes != 1 {
		t.Errorf("replayed %d resumes between the holds, want 1", resumes)
	}
	// The same seqs replayed by the owner from its memory: the same events.
	oracle := dialEvents(t, a.Addr, alice, &last)
	replaysSame(t, oracle, last, missed, "b", "a")
	oracle.Close()

	// Live: she resumes through B; her stream there goes on.
	post(t, "http://"+b.Addr+"/api/calls/"+call+"/resume", alice, "")
	lastSeen := seqUntil(t, onB, missed[len(missed)-1].Seq, inState(call, "Connected"))

	// Back to A with the seq B gave: the same numbering, A's memory
	// replays it (nothing missed), then live.
	onB.Close()
	back := dialEvents(t, a.Addr, alice, &lastSeen)
	post(t, base+"/api/calls/"+call+"/hold", alice, "")
	framesUntil(t, back, lastSeen, inState(call, "LocalHold"))
	back.Close()

	// A seq never given, or past what the log holds, gets a snapshot.
	never, ahead := uint64(1), lastSeen+1000
	for _, since := range []*uint64{&never, &ahead} {
		conn := dialEvents(t, b.Addr, alice, since)
		if f := readFrame(t, conn); f.Type != string(calls.EventSnapshot) {
			t.Errorf("reconnected to b with sinceSeq %d: %s, want a snapshot", *since, f.raw)
		}
		conn.Close()
	}
	// Past the retention: the log's events of alice are gone.
	stream, subject, _ := eventNames(c.cfg.SubjectPrefix)
	_, js := natstest.Connect(t, c.url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	l, err := eventlog.Open(ctx, js, eventlog.Config{Stream: stream, Subject: subject, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(l.Subject("8:acs:alice"))); err != nil {
		t.Fatal(err)
	}
	conn := dialEvents(t, b.Addr, alice, &last)
	if f := readFrame(t, conn); f.Type != string(calls.EventSnapshot) {
		t.Errorf("reconnected to b with sinceSeq %d after the log lost alice's events: %s, want a snapshot", last, f.raw)
	}
}

// TestClusterReplayNewOwner: alice's console, on node A (her owner), saw
// her call start and went away; she held the call; A stopped (ending the
// call 503/1, and marking in the event log where her stream ended there);
// B took her and continued her stream from there, and she started another
// call on B. Reconnecting to C with the last seq it saw, her console gets
// exactly what it missed, A's events then B's, seqs following on with no
// gap and no repeat, byte for byte what B (her owner) replays for the
// same seq; a seq never given gets a snapshot.
func TestClusterReplayNewOwner(t *testing.T) {
	c := newTestCluster(t)
	a, b, cc := c.start("a"), c.start("b"), c.start("c")
	waitPeers(t, a, "b", "c")
	alice := mint(t, "alice", calls.RoleAgent)
	if status, body, _ := send(t, a, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
	onA := dialEvents(t, a.Addr, alice, nil)
	snap := readFrame(t, onA)
	call := startCall(t, "http://"+a.Addr, alice)
	last := seqUntil(t, onA, snap.Seq, callSeen(call))
	onA.Close()
	waitConnection(t, a, "8:acs:alice", calls.Disconnected)
	post(t, "http://"+a.Addr+"/api/calls/"+call+"/hold", alice, "")
	if err := a.Close(context.Background()); err != nil { // appends what its relay holds, then where her stream ended
		t.Fatal(err)
	}
	if status, body, _ := send(t, b, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on b: %d %s", status, body)
	}
	call2 := startCall(t, "http://"+b.Addr, alice)

	held, ended := -1, -1 // where her hold and her call's end on a are among the missed events
	n := 0
	isCall2 := func(f wsFrame) bool {
		switch {
		case f.Type == string(calls.EventStateChanged) && f.CallID == call && f.Data.State == "LocalHold" && held < 0:
			held = n
		case f.Type == string(calls.EventCallEnded) && f.CallID == call:
			if ended >= 0 {
				t.Errorf("her call on a ended twice: %s", f.raw)
			}
			ended = n
		}
		n++
		return f.Type == string(calls.EventCallsUpdated) && f.CallID == call2
	}
	onC := dialEvents(t, cc.Addr, alice, &last)
	missed := framesUntil(t, onC, last, isCall2)
	if missed[0].Type == string(calls.EventSnapshot) {
		t.Fatalf("reconnected to c with a's seq %d after b took alice: a snapshot, want what she missed", last)
	}
	if held < 0 || ended < held {
		t.Errorf("replayed %d events, her hold on a at %d and her call's end at %d: want both, in that order", len(missed), held, ended)
	}
	onB := dialEvents(t, b.Addr, alice, &last)
	for i, want := range missed {
		if got := readFrame(t, onB); got.raw != want.raw {
			t.Fatalf("event %d after %d: c replayed %s, b replays %s", i, last, want.raw, got.raw)
		}
	}
	never := uint64(1)
	if f := readFrame(t, dialEvents(t, cc.Addr, alice, &never)); f.Type != string(calls.EventSnapshot) {
		t.Errorf("sinceSeq 1 on c: %s, want a snapshot", f.raw)
	}
}

// TestClusterReplayFigures measures a reconnect with sinceSeq after alice
// missed n events (holds and resumes of her call on A, her owner): from
// the dial to the last missed event read, replayed by A from its memory
// and by B from the cluster's event log (once the log has them all), and
// B's snapshot for an unknown seq. Logged, not asserted (BENCHMARKS.md
// "Event replay").
func TestClusterReplayFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("measures")
	}
	c := newTestCluster(t)
	a, b := c.start("a"), c.start("b")
	waitPeers(t, a, "b")
	alice := mint(t, "alice", calls.RoleAgent)
	if status, body, _ := send(t, a, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
	base := "http://" + a.Addr
	call := startCall(t, base, alice)
	stream, subject, _ := eventNames(c.cfg.SubjectPrefix)
	_, js := natstest.Connect(t, c.url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := eventlog.Open(ctx, js, eventlog.Config{Stream: stream, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	conn := dialEvents(t, a.Addr, alice, nil)
	last := readFrame(t, conn).Seq
	for _, n := range []int{10, 100, 500} {
		conn.Close()
		waitConnection(t, a, "8:acs:alice", calls.Disconnected)
		for i := range n {
			post(t, base+"/api/calls/"+call+"/"+[]string{"hold", "resume"}[i%2], alice, "")
		}
		lastState := []string{"LocalHold", "Connected"}[(n-1)%2]
		replay := func(m *Main) (time.Duration, []wsFrame) {
			start := time.Now()
			conn := dialEvents(t, m.Addr, alice, &last)
			acted := 0
			frames := framesUntil(t, conn, last, func(f wsFrame) bool {
				if f.Type == string(calls.EventStateChanged) && f.CallID == call {
					acted++
				}
				return acted == n && f.Data.State == lastState
			})
			took := time.Since(start)
			conn.Close()
			if frames[0].Type == string(calls.EventSnapshot) {
				t.Fatalf("%s replayed a snapshot", m.Config.Cluster.NodeID)
			}
			return took, frames
		}
		onA, frames := replay(a)
		top := frames[len(frames)-1].Seq
		waitUntil(ctx, t, "the log has the events", func() (bool, error) {
			e, ok, err := l.Last(ctx, "8:acs:alice")
			seq, _ := strconv.ParseUint(e.Header.Get(relay.HubSeqHeader), 10, 64)
			return ok && seq >= top, err
		})
		onB, framesB := replay(b)
		start := time.Now()
		never := uint64(1)
		snapConn := dialEvents(t, b.Addr, alice, &never)
		if f := readFrame(t, snapConn); f.Type != string(calls.EventSnapshot) {
			t.Fatalf("sinceSeq 1 on b: %s", f.raw)
		}
		snapTook := time.Since(start)
		snapConn.Close()
		t.Logf("%d missed (%d events read on a, %d on b): replayed by a (memory) in %s, by b (event log) in %s; a snapshot on b in %s",
			n, len(frames), len(framesB), onA.Round(time.Microsecond), onB.Round(time.Microsecond), snapTook.Round(time.Microsecond))
		conn = dialEvents(t, a.Addr, alice, &framesB[len(framesB)-1].Seq)
		last = framesB[len(framesB)-1].Seq
	}
}

// TestClusterReplayOwnerRestarted: node A, a `serve --cluster` process,
// owns alice; her console saw her call start there and went away; she held
// the call; A got SIGTERM (ending the call 503/1 and marking where her
// stream ended) and started again. Her console, reconnecting to B with the
// last seq it saw, gets exactly what it missed: her hold and the call's
// end from A's first run, then her events from its second (which
// continued her stream), seqs on without a gap, byte for byte what the
// restarted A replays for the same seq.
func TestClusterReplayOwnerRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a real switchboard")
	}
	a, c, dbURL := serveCluster(t, "rr-a", "--drain-grace", "0")
	b := c.startOn("rr-b", dbURL)
	alice := mint(t, "alice", calls.RoleAgent)
	addr := func() string { return strings.TrimPrefix(a.base, "http://") }

	onA := dialEvents(t, addr(), alice, nil)
	snap := readFrame(t, onA)
	call := startCall(t, a.base, alice)
	last := seqUntil(t, onA, snap.Seq, callSeen(call))
	onA.Close()
	post(t, a.base+"/api/calls/"+call+"/hold", alice, "")
	a.terminate()
	a.start()
	if status, body, _ := sendTo(t, a.base, "GET", "/api/me", alice, ""); status != http.StatusOK { // the restarted a takes her
		t.Fatalf("GET /api/me on the restarted a: %d %s", status, body)
	}

	isEnd := func(f wsFrame) bool { return f.Type == string(calls.EventCallEnded) && f.CallID == call }
	onB := dialEvents(t, b.Addr, alice, &last)
	missed := framesUntil(t, onB, last, isEnd)
	if missed[0].Type == string(calls.EventSnapshot) {
		t.Fatalf("reconnected to b with sinceSeq %d after a restarted: a snapshot, want what she missed", last)
	}
	if countState(missed, call, "LocalHold") == 0 {
		t.Errorf("replayed %d events without her hold", len(missed))
	}
	// The restarted a's own events go on from there: her console on b is
	// attached there (Connected), then she calls again.
	call2 := startCall(t, a.base, alice)
	framesUntil(t, onB, missed[len(missed)-1].Seq, callSeen(call2))
	oracle := dialEvents(t, addr(), alice, &last)
	replaysSame(t, oracle, last, missed, "b", "the restarted a")
}
