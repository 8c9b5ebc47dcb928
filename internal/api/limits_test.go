package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// TestEventConnectionCaps: past an identity's cap the upgrade is refused
// with 429 too_many_connections, past the total cap with 503 unavailable,
// both in the contract's error format; a closed connection frees its place.
func TestEventConnectionCaps(t *testing.T) {
	s := newServer(t, serverOptions{limits: api.HubLimits{PerIdentity: 2, Total: 3}})
	alice, bob, carol := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent), s.token("carol", calls.RoleAgent)

	a1 := s.connect(alice)
	a1.next()
	s.connect(alice).next()
	wantRefused(t, s, alice, http.StatusTooManyRequests, "too_many_connections")
	s.connect(bob).next()
	wantRefused(t, s, carol, http.StatusServiceUnavailable, calls.CodeUnavailable)
	wantRefused(t, s, bob, http.StatusServiceUnavailable, calls.CodeUnavailable)

	// Alice closes one: carol gets its place (once the server has seen it
	// go), and then the switchboard is full again.
	_ = a1.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events"), http.Header{"Authorization": {"Bearer " + carol}})
		if err == nil {
			s.stream(conn).next()
			break
		}
		if statusOf(resp) != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("carol after alice closed one: %v (status %d)", err, statusOf(resp))
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantRefused(t, s, alice, http.StatusServiceUnavailable, calls.CodeUnavailable)
}

// wantRefused checks the event connection is refused with status and code.
func wantRefused(t *testing.T, s *server, token string, status int, code calls.Code) {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events"), http.Header{"Authorization": {"Bearer " + token}})
	if err == nil {
		conn.Close()
		t.Fatalf("event connection opened, want %d %s", status, code)
	}
	if !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != status {
		t.Fatalf("event connection: %v (status %d), want %d", err, statusOf(resp), status)
	}
	var e struct {
		Error struct {
			Code    calls.Code `json:"code"`
			Message string     `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("refusal body: %+v, %v; want code %s and a message", e, err, code)
	}
}

// slowClient opens an event connection that the test reads only when it
// chooses; it returns the connection after reading the snapshot, and the
// snapshot's seq.
func slowClient(t *testing.T, s *server, token string) (*websocket.Conn, int) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events"), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var snap struct{ Seq int }
	if err := json.Unmarshal(msg, &snap); err != nil {
		t.Fatalf("snapshot %q: %v", msg, err)
	}
	return conn, snap.Seq
}

// padded is an event of about 1 KiB for alice.
func padded() calls.Event {
	return calls.Event{
		Type: calls.EventCallsUpdated, At: time.Now(), AgentID: "8:acs:alice",
		Data: map[string]string{"pad": strings.Repeat("x", 1000)},
	}
}

// readToClose reads the connection to its close: the events (seq after
// the snapshot's, one by one) and the close error. It returns how many
// events came and the largest.
func readToClose(t *testing.T, conn *websocket.Conn, snapSeq int) (events, largest int, closeErr error) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return events, largest, err
		}
		var ev struct{ Seq int }
		if err := json.Unmarshal(msg, &ev); err != nil {
			t.Fatalf("event %q: %v", msg, err)
		}
		events++
		if ev.Seq != snapSeq+events {
			t.Fatalf("event has seq %d, want %d", ev.Seq, snapSeq+events)
		}
		largest = max(largest, len(msg))
	}
}

// TestSlowClientQueueBytes: a client that stops reading is closed with
// 1013 once what is queued for it passes the byte limit: it gets every
// event up to its close, then 1013, and what it lost is at most the limit
// (not the 1,024 events of the queue's length).
func TestSlowClientQueueBytes(t *testing.T) {
	const limit = 64 << 10
	s := newServer(t, serverOptions{limits: api.HubLimits{QueueBytes: limit}, writeTimeout: 10 * time.Second})
	tok := s.token("alice", calls.RoleAgent)
	slow, snapSeq := slowClient(t, s, tok)
	live := s.connect(tok)
	live.next()
	waitClients(t, s, 2)

	// Events come as fast as a client that reads takes them: the live one
	// is never too slow, the slow one fills the network's buffers, then
	// its queue.
	published := 0
	var seen event
	for s.hub.Clients() == 2 {
		if published > 100_000 {
			t.Fatalf("the slow client is still open after %d events of 1 KiB", published)
		}
		s.hub.Publish(padded())
		published++
		seen = live.next()
	}
	got, size, err := readToClose(t, slow, snapSeq)
	if got == 0 {
		// Under load the slow client's writer may not have written a
		// frame before the close: the live client's tells the size.
		frame, err := json.Marshal(seen)
		if err != nil {
			t.Fatal(err)
		}
		size = len(frame)
	}
	wantCloseCode(t, err, websocket.CloseTryAgainLater)
	lost := published - got
	t.Logf("published %d events of %d bytes; the slow client read %d, lost %d", published, size, got, lost)
	// What was queued when the limit was passed is lost (the client
	// reconnects to a fresh snapshot), and the event that passed it: about
	// the limit, never more. An event's body is its frame without the seq.
	if body := size - len(fmt.Sprintf(`{"seq":%d,`, snapSeq+got)); lost*body > limit+body || lost*size < limit-2*size {
		t.Errorf("the slow client lost %d events of about %d bytes, want about %d bytes", lost, body, limit)
	}
	// The other connection of the identity goes on.
	s.hub.Publish(padded())
	live.next()
	if err := live.closeErr(); err != nil {
		t.Fatalf("the live connection was closed: %v", err)
	}
}

// TestSlowClientWriteDeadline: a client that takes nothing for the write
// deadline is closed with 1013 though its queue is within the limits, and
// when it reads again it gets every event up to the close, then 1013.
func TestSlowClientWriteDeadline(t *testing.T) {
	const writeTimeout = time.Second
	s := newServer(t, serverOptions{queueSize: 1 << 16, limits: api.HubLimits{QueueBytes: 64 << 20}, writeTimeout: writeTimeout})
	slow, snapSeq := slowClient(t, s, s.token("alice", calls.RoleAgent))
	waitClients(t, s, 1)

	// 4 MiB: more than the kernel's buffers of the two ends hold (the
	// server's is bounded), less than the queue's limits.
	const published = 4 << 10
	for range published {
		s.hub.Publish(padded())
	}
	last := time.Now()
	waitClients(t, s, 0)
	if waited := time.Since(last); waited > 5*writeTimeout {
		t.Errorf("closed %v after the last event, want about the write deadline (%v)", waited, writeTimeout)
	}
	got, size, err := readToClose(t, slow, snapSeq)
	wantCloseCode(t, err, websocket.CloseTryAgainLater)
	t.Logf("published %d events of %d bytes; the slow client read %d", published, size, got)
	if got >= published {
		t.Errorf("the slow client read all %d events: it was never too slow", got)
	}
}
