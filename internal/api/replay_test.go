package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// reconnect closes st and opens the identity's stream again, resuming
// after the last event st read.
func (s *server) reconnect(st *stream, token string) *stream {
	s.t.Helper()
	_ = st.conn.Close()
	<-st.done
	return s.connectSince(token, st.seq)
}

// marker publishes an event for the identity that tests recognise, so
// that a stream can be read up to it.
func marker(s *server, rawID, name string) {
	s.hub.Publish(calls.Event{
		Type: calls.EventIsMutedChanged, At: time.Now(), AgentID: rawID, CallID: name,
		Data: map[string]string{"marker": name}, Supervised: true,
	})
}

// readUntil reads st up to the event about call, returning what came
// before it and it.
func readUntil(st *stream, call string) []event {
	st.t.Helper()
	var got []event
	for {
		ev := st.next()
		got = append(got, ev)
		if ev.CallID == call {
			return got
		}
	}
}

// sameEvents checks two reads of a stream carry the same events with the
// same seqs.
func sameEvents(t *testing.T, got, want []event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), kinds(got), len(want), kinds(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Type != w.Type || g.AgentID != w.AgentID || g.CallID != w.CallID || string(g.Data) != string(w.Data) {
			t.Fatalf("event %d: got %d %s %s %s, want %d %s %s %s", i, g.Seq, g.Type, g.AgentID, g.CallID, w.Seq, w.Type, w.AgentID, w.CallID)
		}
	}
}

func kinds(evs []event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d:%s", ev.Seq, ev.Type))
	}
	return out
}

// TestReplayWithinWindow: an agent that reconnects with the last seq it
// saw gets exactly the events it missed, with their seqs, and then the
// live ones, and no snapshot. Another connection of the identity, open
// throughout, is the witness of what was missed.
func TestReplayWithinWindow(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok := s.token("alice", calls.RoleAgent)
	witness := s.connect(tok)
	witness.next()
	a := s.connect(tok)
	a.next()

	var c calls.Call
	s.do("POST", "/api/calls", tok, map[string]any{"participants": []any{identityJSON("echo123")}}, http.StatusCreated, &c)
	s.do("POST", "/api/calls", tok, map[string]any{"participants": []any{map[string]any{"id": "8:echo123"}}}, http.StatusCreated, &c)
	marker(s, "8:acs:alice", "m1")
	readUntil(a, "m1")
	readUntil(witness, "m1")

	_ = a.conn.Close()
	<-a.done
	waitClients(t, s, 1)
	// Missed: a hold, a resume, mutes.
	s.do("POST", "/api/calls/"+c.ID+"/hold", tok, nil, http.StatusOK, nil)
	s.do("POST", "/api/calls/"+c.ID+"/resume", tok, nil, http.StatusOK, nil)
	s.do("POST", "/api/calls/"+c.ID+"/mute", tok, nil, http.StatusOK, nil)
	marker(s, "8:acs:alice", "m2")
	missed := readUntil(witness, "m2")
	if len(missed) < 4 {
		t.Fatalf("the witness saw %v: too few to tell", kinds(missed))
	}

	a2 := s.connectSince(tok, a.seq)
	got := readUntil(a2, "m2")
	if got[0].Type == calls.EventSnapshot {
		t.Fatalf("resumed with a snapshot, want the missed events")
	}
	sameEvents(t, got, missed)

	// Live events follow without a gap.
	marker(s, "8:acs:alice", "m3")
	sameEvents(t, readUntil(a2, "m3"), readUntil(witness, "m3"))
}

// TestReplayOutsideWindow: a seq the log no longer holds, or never gave,
// gets a fresh snapshot carrying the stream's seq, and the live events
// follow it.
func TestReplayOutsideWindow(t *testing.T) {
	s := newServer(t, serverOptions{retention: api.Retention{MaxEvents: 2}})
	tok := s.token("alice", calls.RoleAgent)
	witness := s.connect(tok)
	witness.next()
	a := s.connect(tok)
	snapSeq := a.next().Seq
	_ = a.conn.Close()
	for i := range 3 {
		marker(s, "8:acs:alice", fmt.Sprint("m", i))
	}
	last := readUntil(witness, "m2")
	lastSeq := last[len(last)-1].Seq

	tests := []struct {
		name  string
		since uint64
	}{
		{"older than the window", snapSeq},
		{"zero", 0},
		{"past the stream's last (another server's)", lastSeq + 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := s.connectSince(tok, tt.since)
			st.started = false // a snapshot may carry any seq
			first := st.next()
			if first.Type != calls.EventSnapshot {
				t.Fatalf("first message %s (seq %d), want a snapshot", first.Type, first.Seq)
			}
			if first.Seq != lastSeq {
				t.Fatalf("snapshot seq %d, want the stream's last, %d", first.Seq, lastSeq)
			}
			name := "live " + tt.name
			marker(s, "8:acs:alice", name)
			readUntil(witness, name)
			if got := readUntil(st, name); len(got) != 1 {
				t.Fatalf("after the snapshot %v, want only the live event", kinds(got))
			}
			lastSeq++
			_ = st.conn.Close()
		})
	}

	// Within the window (the last two) the events are replayed.
	marker(s, "8:acs:alice", "n1")
	marker(s, "8:acs:alice", "n2")
	missed := readUntil(witness, "n2")
	st := s.connectSince(tok, missed[0].Seq-1)
	sameEvents(t, readUntil(st, "n2"), missed)
}

// TestReplayBadSinceSeq: a sinceSeq that is not a seq is refused with 400
// invalid_request before the upgrade (the request goes through
// http.DefaultClient, so the answer is checked against the OpenAPI
// description too).
func TestReplayBadSinceSeq(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok := s.token("alice", calls.RoleAgent)
	for _, q := range []string{"abc", "-1", "1.5", "", "18446744073709551616", "1&sinceSeq=2"} {
		t.Run(q, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, s.url+"/api/events?sinceSeq="+q, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = http.Header{
				"Authorization": {"Bearer " + tok}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"},
				"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("sinceSeq=%s: status %d, want 400", q, resp.StatusCode)
			}
			var e struct {
				Error struct {
					Code    calls.Code `json:"code"`
					Message string     `json:"message"`
				} `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Code != calls.CodeInvalidRequest || e.Error.Message == "" {
				t.Fatalf("sinceSeq=%s: body %+v, %v; want invalid_request and a message", q, e, err)
			}
		})
	}
	// A seq is taken (and answered with a snapshot here: nothing was held).
	st := s.connectSince(tok, 42)
	st.started = false
	if ev := st.next(); ev.Type != calls.EventSnapshot {
		t.Fatalf("sinceSeq=42: first message %s, want the snapshot", ev.Type)
	}
}

// TestReplayOwnStreamOnly: a seq is resumed in the stream the token's
// identity and role name, never another's: bob, resuming with a seq of
// alice's, gets only his own events; an agent never gets the
// supervisors' stream.
func TestReplayOwnStreamOnly(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, bob := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	a := s.connect(alice)
	a.next()
	b := s.connect(bob)
	b.next()
	_ = b.conn.Close()
	for i := range 5 {
		marker(s, "8:acs:alice", fmt.Sprint("alice-", i))
	}
	aliceEvents := readUntil(a, "alice-4")
	waitClients(t, s, 1)
	for i, since := range []uint64{aliceEvents[0].Seq - 1, aliceEvents[2].Seq} {
		st := s.connectSince(bob, since)
		st.started = false
		// The upgrade is answered before the stream is subscribed to: an
		// event before that would be in neither the replay nor a snapshot's
		// follow-up, so the marker waits for it.
		waitClients(t, s, 2)
		end := fmt.Sprint("bob-end-", i)
		marker(s, "8:acs:bob", end)
		for _, ev := range readUntil(st, end) {
			if ev.AgentID != "8:acs:bob" {
				t.Fatalf("bob resuming after %d got %s's %s %s", since, ev.AgentID, ev.Type, ev.CallID)
			}
		}
		_ = st.conn.Close()
		waitClients(t, s, 1)
	}

	// A supervised event of bob's is in the supervisors' stream; alice,
	// resuming with its seq, does not get it.
	sup := s.connect(s.token("sue", calls.RoleSupervisor))
	sup.next()
	marker(s, "8:acs:bob", "bob-sup")
	supSeq := readUntil(sup, "bob-sup")
	st := s.connectSince(alice, supSeq[len(supSeq)-1].Seq-1)
	st.started = false
	waitClients(t, s, 3)
	marker(s, "8:acs:alice", "alice-end")
	for _, ev := range readUntil(st, "alice-end") {
		if ev.AgentID != "8:acs:alice" {
			t.Fatalf("alice got %s's %s %s", ev.AgentID, ev.Type, ev.CallID)
		}
	}
}

// TestReplaySupervisorStream: a supervisor resuming gets every agent's
// events it missed, as a supervisor connected throughout saw them.
func TestReplaySupervisorStream(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, bob := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	sueTok := s.token("sue", calls.RoleSupervisor)
	witness := s.connect(s.token("sam", calls.RoleSupervisor))
	witness.next()
	sue := s.connect(sueTok)
	sue.next()
	marker(s, "8:acs:alice", "m1")
	readUntil(sue, "m1")
	readUntil(witness, "m1")
	_ = sue.conn.Close()
	<-sue.done

	// Alice and bob connect and call while sue is away.
	s.connect(alice).next()
	s.connect(bob).next()
	s.do("POST", "/api/calls", alice, map[string]any{"participants": []any{identityJSON("echo123")}}, http.StatusCreated, nil)
	s.do("POST", "/api/calls", bob, map[string]any{"participants": []any{identityJSON("echo123")}}, http.StatusCreated, nil)
	marker(s, "8:acs:bob", "m2")
	missed := readUntil(witness, "m2")
	agents := map[string]bool{}
	for _, ev := range missed {
		agents[ev.AgentID] = true
	}
	if !agents["8:acs:alice"] || !agents["8:acs:bob"] {
		t.Fatalf("the witness saw %v: want events of alice and bob", agents)
	}
	st := s.connectSince(sueTok, sue.seq)
	got := readUntil(st, "m2")
	if got[0].Type == calls.EventSnapshot {
		t.Fatal("resumed with a snapshot, want the missed events")
	}
	sameEvents(t, got, missed)
}

// TestReplayDuringPublish: events published without pause while the
// client reconnects again and again reach it exactly once each, in order:
// nothing is lost or repeated between the replay and the live events.
func TestReplayDuringPublish(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok := s.token("alice", calls.RoleAgent)
	const events, reconnects = 3000, 15
	// The publisher stays at most ahead events ahead of the reader, so a
	// replay fits the queue (1,024 events) and is never a snapshot.
	const ahead = 400
	credit := make(chan struct{}, ahead)
	for range ahead {
		credit <- struct{}{}
	}
	st := s.connect(tok)
	st.next()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer cancel()
	wg.Go(func() {
		for i := range events {
			select {
			case <-credit:
			case <-ctx.Done():
				return
			}
			s.hub.Publish(calls.Event{
				Type: calls.EventIsMutedChanged, At: time.Now(), AgentID: "8:acs:alice", CallID: "n",
				Data: map[string]int{"n": i},
			})
		}
	})
	defer wg.Wait()
	defer cancel()
	next, reconnectedAt := 0, 0
	for next < events {
		// Once at each mark: alice's own events (her connection, her
		// status) after a reconnect do not move next on.
		if next > 0 && next%(events/reconnects) == 0 && reconnectedAt != next {
			reconnectedAt = next
			st = s.reconnect(st, tok)
		}
		ev := st.next()
		if ev.Type == calls.EventSnapshot {
			t.Fatalf("resumed with a snapshot after %d events", next)
		}
		if ev.CallID != "n" {
			continue // alice's connection coming and going
		}
		var d struct{ N int }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.N != next {
			t.Fatalf("got event %d (seq %d), want %d", d.N, ev.Seq, next)
		}
		next++
		credit <- struct{}{}
	}
}
