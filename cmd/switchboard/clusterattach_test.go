package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// connectionOn answers the connection state node m has for rawID.
func connectionOn(m *Main, rawID string) calls.ConnectionState {
	for _, a := range m.switchboard.SupervisedSnapshot().Agents {
		if a.RawID == rawID {
			return a.ConnectionState
		}
	}
	return calls.Disconnected
}

// waitConnection waits until node m has rawID in state want, and answers
// how long that took.
func waitConnection(t *testing.T, m *Main, rawID string, want calls.ConnectionState) time.Duration {
	t.Helper()
	start := time.Now()
	waitUntil(context.Background(), t, rawID+" "+string(want)+" on "+m.Config.Cluster.NodeID, func() (bool, error) {
		return connectionOn(m, rawID) == want, nil
	})
	return time.Since(start)
}

// closeCode reads conn until it fails and answers the close code (0: it
// failed otherwise).
func closeCode(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, _, err := conn.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			t.Logf("stream ended without a close frame: %v", err)
			return 0
		}
	}
}

// TestClusterRemoteStream: alice, whom node A owns, opens her event stream
// on node B. A counts her Connected (she can be called), B's stream starts
// with A's snapshot and carries her incoming call and its state changes,
// with seqs growing by one, and she accepts through B. Her closing the
// stream disconnects her on A. Reopened on B with a sinceSeq the event log
// cannot answer, it starts from a snapshot holding her live call. When A stops, B closes it with 1012,
// and the console's reconnect to B then opens it there (B took her).
func TestClusterRemoteStream(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.start("a"), c.start("b")
	waitPeers(t, a, "b")
	alice, bob := mint(t, "alice", calls.RoleAgent), mint(t, "bob", calls.RoleAgent)
	for _, token := range []string{alice, bob} { // A takes them
		if status, body, _ := send(t, a, "GET", "/api/me", token, ""); status != http.StatusOK {
			t.Fatalf("GET /api/me on a: %d %s", status, body)
		}
	}
	if got := connectionOn(a, "8:acs:alice"); got == calls.Connected {
		t.Fatalf("alice is %s on a before her stream opened", got)
	}

	next, conn := openEvents(t, b.Addr, alice)
	snap, err := next()
	if err != nil || snap["type"] != "snapshot" || snap["data"].(map[string]any)["connectionState"] != "Connected" {
		t.Fatalf("alice's first event on b: %v, %v; want a Connected snapshot", snap, err)
	}
	if got := connectionOn(a, "8:acs:alice"); got != calls.Connected {
		t.Fatalf("alice is %s on a with her stream open on b, want Connected", got)
	}

	// Bob calls alice on A: her stream on B rings, she accepts through B.
	bobCall := post(t, "http://"+a.Addr+"/api/calls", bob, `{"participants":[{"communicationUserId":"alice"}]}`)["id"].(string)
	seq := snap["seq"].(float64)
	var incoming string
	for incoming == "" {
		ev, err := next()
		if err != nil {
			t.Fatalf("alice's stream on b before her incoming call: %v", err)
		}
		if got := ev["seq"].(float64); got != seq+1 {
			t.Errorf("seq %v after %v, want %v", got, seq, seq+1)
		}
		seq = ev["seq"].(float64)
		if ev["type"] == "incomingCall" {
			incoming = ev["data"].(map[string]any)["incomingCall"].(map[string]any)["id"].(string)
		}
	}
	accepted := post(t, "http://"+b.Addr+"/api/incoming-calls/"+incoming+"/accept", alice, "")
	aliceCall := accepted["id"].(string)
	// She holds it through B: her stream carries the state change.
	post(t, "http://"+b.Addr+"/api/calls/"+aliceCall+"/hold", alice, "")
	for {
		ev := until(t, next, "stateChanged", "8:acs:alice")
		if ev["callId"] == aliceCall && ev["data"].(map[string]any)["state"] == "LocalHold" {
			break
		}
	}
	if status, body, _ := send(t, a, "GET", "/api/calls/"+bobCall, bob, ""); status != http.StatusOK || !json.Valid([]byte(body)) {
		t.Fatalf("bob's call on a: %d %s", status, body)
	}

	// Closing the stream on B disconnects her on A at once.
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	conn.Close()
	if took := waitConnection(t, a, "8:acs:alice", calls.Disconnected); took > 2*time.Second {
		t.Errorf("alice Disconnected on a %s after her stream on b closed, want at once", took)
	}

	// Reopened on B with a seq the log cannot answer: a snapshot with her
	// live call (with the last seq she saw, the events after it:
	// TestClusterReplay).
	reopened, _, err := websocket.DefaultDialer.Dial("ws://"+b.Addr+"/api/events?sinceSeq=1", http.Header{"Authorization": {"Bearer " + alice}})
	if err != nil {
		t.Fatalf("reopen alice's stream on b: %v", err)
	}
	defer reopened.Close()
	var snap2 struct {
		Type string
		Data calls.Snapshot
	}
	_ = reopened.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := reopened.ReadJSON(&snap2); err != nil || snap2.Type != "snapshot" || len(snap2.Data.Calls) != 1 || snap2.Data.Calls[0].ID != aliceCall {
		t.Fatalf("alice's stream reopened on b with sinceSeq 1: %+v, %v; want a snapshot with call %s", snap2, err, aliceCall)
	}
	waitConnection(t, a, "8:acs:alice", calls.Connected)

	// A stops: B closes her stream with 1012, and her console's reconnect
	// opens it on B, which takes her.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(t, reopened); code != websocket.CloseServiceRestart {
		t.Fatalf("alice's stream on b closed with %d when a stopped, want 1012", code)
	}
	next3, _ := openEvents(t, b.Addr, alice)
	if ev, err := next3(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("alice's reconnect to b: %v, %v; want a snapshot", ev, err)
	}
	if got := connectionOn(b, "8:acs:alice"); got != calls.Connected {
		t.Fatalf("alice is %s on b after her reconnect, want Connected", got)
	}
}

// TestClusterRemoteStreamSupervisorAndGoneOwner: a supervisor's stream on a node that
// does not own it is attached on the owner as an agent's is (Connected
// there) and sees the owner's agents' events; an agent's stream whose
// owner does not answer (its lease is held, its process gone) answers 503
// unavailable in the contract's error format.
func TestClusterRemoteStreamSupervisorAndGoneOwner(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.start("a"), c.start("b")
	waitPeers(t, a, "b")
	sue, alice := mint(t, "sue", calls.RoleSupervisor), mint(t, "alice", calls.RoleAgent)
	for _, token := range []string{sue, alice} {
		if status, body, _ := send(t, a, "GET", "/api/me", token, ""); status != http.StatusOK {
			t.Fatalf("GET /api/me on a: %d %s", status, body)
		}
	}
	dial := func(token string) (int, calls.Code) {
		t.Helper()
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+b.Addr+"/api/events", http.Header{"Authorization": {"Bearer " + token}})
		if err == nil {
			ws.Close()
			t.Fatal("the stream opened")
		}
		if resp == nil {
			t.Fatalf("no answer: %v", err)
		}
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code calls.Code } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error.Code
	}
	nextSue, _ := openEvents(t, b.Addr, sue)
	if ev, err := nextSue(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("sue's first event on b: %v, %v", ev, err)
	}
	waitConnection(t, a, "8:acs:sue", calls.Connected)
	aliceCall := startCall(t, "http://"+a.Addr, alice)
	if ev := until(t, nextSue, "callsUpdated", "8:acs:alice"); !strings.Contains(fmt.Sprint(ev["data"]), aliceCall) {
		t.Errorf("sue on b saw %v, want alice's call %s", ev, aliceCall)
	}
	// A stops answering attaches (as a process that died does), while
	// its lease on alice is still held.
	if err := a.cluster.StopServing(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, code := dial(alice); status != http.StatusServiceUnavailable || code != calls.CodeUnavailable {
		t.Errorf("alice's stream on b with a gone: %d %s, want 503 unavailable", status, code)
	}
}

// TestClusterRemoteStreamKilled: node B, a `serve --cluster` process of its
// own holding alice's stream for node A, is killed with -9: A detaches her
// when B's keepalives stop (3 s), and she is Disconnected there.
func TestClusterRemoteStreamKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real switchboard")
	}
	dbURL := freshSchema(t)
	natsSrv := natstest.Start(t)
	bin := buildSwitchboard(t)
	c := &testCluster{t: t, url: natsSrv.URL(), cfg: ClusterConfig{URL: natsSrv.URL(), ForwardTimeout: time.Second}}
	a := c.startOn("rk-a", dbURL)
	b := &crashServer{t: t, bin: bin,
		env: []string{"DATABASE_URL=" + dbURL, "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey},
		args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--cluster", natsSrv.URL(), "--node-id", "rk-b"}}
	b.start()

	alice := mint(t, "alice", calls.RoleAgent)
	if status, body, _ := send(t, a, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
	next, _ := openEvents(t, b.base[len("http://"):], alice)
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("alice's first event on b: %v, %v", ev, err)
	}
	waitConnection(t, a, "8:acs:alice", calls.Connected)
	killedAt := b.kill()
	waitConnection(t, a, "8:acs:alice", calls.Disconnected)
	took := time.Since(killedAt)
	t.Logf("alice Disconnected on a %s after b was killed", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("alice Disconnected on a %s after b was killed, want within the 3 s expiry (and a tick)", took)
	}
}
