package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

	onA := dialEvents(t, a.Addr, sue, nil)
	snap := readFrame(t, onA)
	if snap.Type != string(calls.EventSnapshot) {
		t.Fatalf("sue's first event on a: %s", snap.raw)
	}
	call := startCall(t, base, alice)
	seen := framesUntil(t, onA, snap.Seq, func(f wsFrame) bool {
		return f.Type == string(calls.EventCallsUpdated) && f.CallID == call
	})
	last := seen[len(seen)-1].Seq
	_ = onA.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	onA.Close()
	waitConnection(t, a, "8:acs:sue", calls.Disconnected)

	for _, action := range []string{"hold", "resume", "hold"} {
		post(t, base+"/api/calls/"+call+"/"+action, alice, "")
	}
	// missedOn reconnects sue to m with last and reads up to the second
	// hold: not a snapshot, the seqs following last by one.
	missedOn := func(m *Main) (*websocket.Conn, []wsFrame) {
		t.Helper()
		conn := dialEvents(t, m.Addr, sue, &last)
		holds := 0
		frames := framesUntil(t, conn, last, func(f wsFrame) bool {
			if f.Type == string(calls.EventStateChanged) && f.CallID == call && f.Data.State == "LocalHold" {
				holds++
			}
			return holds == 2
		})
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
	resumes := 0
	for _, f := range missed {
		if f.Type == string(calls.EventStateChanged) && f.CallID == call && f.Data.State == "Connected" {
			resumes++
		}
	}
	if resumes != 1 {
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
	live := framesUntil(t, onB, fromB[len(fromB)-1].Seq, func(f wsFrame) bool {
		return f.Type == string(calls.EventStateChanged) && f.CallID == call && f.Data.State == "Connected"
	})
	lastSeen := live[len(live)-1].Seq
	onB.Close()

	// Back to A with the seq B gave: the same numbering.
	back := dialEvents(t, a.Addr, sue, &lastSeen)
	post(t, base+"/api/calls/"+call+"/hold", alice, "")
	framesUntil(t, back, lastSeen, func(f wsFrame) bool {
		return f.Type == string(calls.EventStateChanged) && f.CallID == call && f.Data.State == "LocalHold"
	})
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
