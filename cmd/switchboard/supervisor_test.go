package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// watchedEvent is one event a supervisor's connection received.
type watchedEvent struct {
	Type     string
	Seq      uint64
	At       time.Time // when the owner made it
	AgentID  string
	CallID   string
	Old      string // stateChanged: the state before
	State    string // stateChanged: the state after
	End      [2]int // callEnded: code and subcode
	Session  int    // the connection that received it (0, 1, …)
	Received time.Time
}

// watchSession is one connection of a supervisor's watch.
type watchSession struct {
	Snapshot  time.Time // when its snapshot arrived
	SeqFrom   uint64    // the snapshot's seq: the events' follow it, gapless
	Closed    time.Time // zero while open
	CloseCode int       // the code the node closed it with, or 0
}

// supervisorWatch keeps a supervisor's event stream on one node open and
// records every event, from a goroutine of its own. A connection the node
// closes with 1013 (a relayed event was lost: start over from a snapshot)
// is opened again at once, as the console does; any other end of the
// stream before Stop is an error.
type supervisorWatch struct {
	t           *testing.T
	addr, token string

	mu       sync.Mutex
	events   []watchedEvent
	sessions []watchSession
	err      error
	stopping bool
	conn     *websocket.Conn
	changed  chan struct{} // closed and replaced on each event
	done     chan struct{}
}

// watchSupervisor opens the supervisor's stream on the node at addr and
// waits for its snapshot; the watch stops when the test ends.
func watchSupervisor(t *testing.T, addr, token string) *supervisorWatch {
	t.Helper()
	w := &supervisorWatch{t: t, addr: addr, token: token, changed: make(chan struct{}), done: make(chan struct{})}
	conn, err := w.open()
	if err != nil {
		t.Fatalf("supervisor's stream on %s: %v", addr, err)
	}
	go w.run(conn)
	t.Cleanup(w.Stop)
	return w
}

// open dials and reads the snapshot, recording a new session.
func (w *supervisorWatch) open() (*websocket.Conn, error) {
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+w.addr+"/api/events", http.Header{"Authorization": {"Bearer " + w.token}})
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var first struct {
		Type string
		Seq  uint64
	}
	if err := conn.ReadJSON(&first); err != nil || first.Type != "snapshot" {
		conn.Close()
		return nil, fmt.Errorf("first event %q, %v; want a snapshot", first.Type, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sessions = append(w.sessions, watchSession{Snapshot: time.Now(), SeqFrom: first.Seq})
	w.conn = conn
	if w.stopping {
		conn.Close()
	}
	return conn, nil
}

func (w *supervisorWatch) run(conn *websocket.Conn) {
	defer close(w.done)
	for {
		err := w.read(conn)
		var ce *websocket.CloseError
		w.mu.Lock()
		s := &w.sessions[len(w.sessions)-1]
		s.Closed = time.Now()
		if errors.As(err, &ce) {
			s.CloseCode = ce.Code
		}
		stopping := w.stopping
		w.mu.Unlock()
		if stopping {
			return
		}
		if s.CloseCode != websocket.CloseTryAgainLater {
			w.fail(fmt.Errorf("the stream on %s ended: %w", w.addr, err))
			return
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if conn, err = w.open(); err == nil {
				break
			}
			if time.Now().After(deadline) {
				w.fail(fmt.Errorf("reopen the stream on %s after 1013: %w", w.addr, err))
				return
			}
		}
	}
}

// read records conn's events until it ends.
func (w *supervisorWatch) read(conn *websocket.Conn) error {
	for {
		var raw struct {
			Type    string          `json:"type"`
			Seq     uint64          `json:"seq"`
			At      time.Time       `json:"at"`
			AgentID string          `json:"agentId"`
			CallID  string          `json:"callId"`
			Data    json.RawMessage `json:"data"`
		}
		if err := conn.ReadJSON(&raw); err != nil {
			return err
		}
		ev := watchedEvent{Type: raw.Type, Seq: raw.Seq, At: raw.At, AgentID: raw.AgentID, CallID: raw.CallID, Received: time.Now()}
		var data struct {
			OldState, State string
			CallEndReason   *struct{ Code, SubCode int }
		}
		_ = json.Unmarshal(raw.Data, &data)
		ev.Old, ev.State = data.OldState, data.State
		if data.CallEndReason != nil {
			ev.End = [2]int{data.CallEndReason.Code, data.CallEndReason.SubCode}
		}
		w.mu.Lock()
		ev.Session = len(w.sessions) - 1
		w.events = append(w.events, ev)
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
	}
}

func (w *supervisorWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// Stop closes the stream and waits for the reader; the events stay.
func (w *supervisorWatch) Stop() {
	w.mu.Lock()
	w.stopping = true
	if w.conn != nil {
		w.conn.Close()
	}
	w.mu.Unlock()
	<-w.done
}

// Events answers a copy of the events so far, the sessions and the error
// that ended the watch, if any.
func (w *supervisorWatch) Events() ([]watchedEvent, []watchSession, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]watchedEvent(nil), w.events...), append([]watchSession(nil), w.sessions...), w.err
}

// waitFor waits until cond holds for the events so far, failing the test
// after within or when the watch failed.
func (w *supervisorWatch) waitFor(what string, within time.Duration, cond func([]watchedEvent) bool) {
	w.t.Helper()
	deadline := time.After(within)
	for {
		w.mu.Lock()
		ok, err, changed := cond(w.events), w.err, w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			w.t.Fatalf("supervisor on %s, waiting for %s: %v", w.addr, what, err)
		}
		select {
		case <-changed:
		case <-deadline:
			w.t.Fatalf("supervisor on %s: %s did not happen within %v", w.addr, what, within)
		}
	}
}

// ends counts the callEnded events per call with the code and subcode.
func ends(evs []watchedEvent, code, subcode int) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		if e.Type == "callEnded" && e.End == [2]int{code, subcode} {
			n[e.CallID]++
		}
	}
	return n
}

// seqGaps describes each gap in the seqs of each session's events (the
// hub numbers a stream's events without gaps): a gap is an event the
// node sent this connection that never arrived.
func seqGaps(evs []watchedEvent, sessions []watchSession) []string {
	var gaps []string
	last := make([]uint64, len(sessions))
	for i, s := range sessions {
		last[i] = s.SeqFrom
	}
	for _, e := range evs {
		if e.Seq != last[e.Session]+1 {
			gaps = append(gaps, fmt.Sprintf("connection %d: seq %d after %d (a %s of call %s of %s)", e.Session, e.Seq, last[e.Session], e.Type, e.CallID, e.AgentID))
		}
		last[e.Session] = e.Seq
	}
	return gaps
}
