package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// nodeCall is a record of a one-to-one call with a phone, in state, that
// started at start, with one stateChanged event at last.
func nodeCall(id string, state calls.CallState, start, last time.Time) calls.Record {
	phone := calls.PhoneNumber("+15550100001")
	c := calls.Call{ID: id, AgentID: "8:acs:agent", Direction: calls.Incoming, Kind: calls.OneToOne,
		State: state, IsActive: state == calls.StateConnected, CallerInfo: calls.CallerInfo{Identifier: phone},
		RemoteParticipants: []calls.Participant{{Identifier: phone, RawID: "4:+15550100001", State: calls.ParticipantConnected}},
		StartTime:          start}
	if state == calls.StateDisconnected {
		reason := calls.ReasonDeclined
		c.CallEndReason, c.EndTime = &reason, &last
		c.RemoteParticipants[0].State = calls.ParticipantDisconnected
	}
	return calls.Record{Call: c, Events: []calls.Event{{Type: calls.EventStateChanged, At: last, AgentID: c.AgentID,
		CallID: id, Actor: &calls.Actor{Kind: calls.ActorAgent, RawID: c.AgentID}, Data: calls.StateChangedData{State: state}}}}
}

// checkCrashEnded checks that the call id ended with 503/0 at end, once:
// one callEnded event, the last, by the system.
func checkCrashEnded(t *testing.T, databaseURL string, s *Postgres, id string, end time.Time) {
	t.Helper()
	h, err := s.FindCallByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	c, crash := h.Call, calls.ReasonSwitchboardDied
	if c.State != calls.StateDisconnected || c.IsActive || c.CallEndReason == nil || *c.CallEndReason != crash ||
		c.EndTime == nil || !c.EndTime.Equal(end) {
		t.Errorf("%s = %s, active %v, reason %+v, end %v; want Disconnected, ended with %+v at %v",
			id, c.State, c.IsActive, c.CallEndReason, c.EndTime, crash, end)
	}
	if p := c.RemoteParticipants[0]; p.State != calls.ParticipantDisconnected || p.CallEndReason == nil || *p.CallEndReason != crash {
		t.Errorf("%s's participant = %s, %+v; want Disconnected with %+v", id, p.State, p.CallEndReason, crash)
	}
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM call_events WHERE call_id = $1 AND type = 'callEnded'`, id); n != 1 {
		t.Errorf("%s has %d callEnded events, want 1", id, n)
	}
	var ended *calls.TimelineEntry
	for i := range h.Timeline {
		if h.Timeline[i].Type == calls.EventCallEnded {
			ended = &h.Timeline[i]
		}
	}
	if ended == nil || !ended.At.Equal(end) || ended.Actor == nil || ended.Actor.Kind != calls.ActorSystem {
		t.Errorf("%s's callEnded event = %+v, want one at %v by the system", id, ended, end)
	}
}

// Two nodes share the database; node a dies with live calls, and node b
// ends exactly those, at a's last heartbeat (or a call's last event if
// later), once; a restarted a finds nothing left to do.
func TestRecoverNode(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	spoolA := t.TempDir()
	a := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "a", SpoolDir: spoolA})
	b := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "b"})
	a.Record(
		nodeCall("a-live", calls.StateConnected, tBase, tBase.Add(10*time.Minute)),
		nodeCall("a-late", calls.StateRinging, tBase.Add(time.Minute), tBase.Add(2*time.Hour)),
		nodeCall("a-done", calls.StateDisconnected, tBase.Add(time.Minute), tBase.Add(2*time.Minute)),
	)
	b.Record(nodeCall("b-live", calls.StateConnected, tBase, tBase.Add(time.Minute)))
	mustFlush(t, a)
	mustFlush(t, b)
	for node, want := range map[string]int{"a": 3, "b": 1} {
		if got := queryInt(t, databaseURL, `SELECT count(*) FROM calls WHERE node = $1`, node); got != want {
			t.Errorf("calls recorded as node %s's = %d, want %d", node, got, want)
		}
	}

	// Each node sees the other's live calls of the agent, not its own.
	for _, tc := range []struct {
		s    *Postgres
		want string
	}{{a, "b"}, {b, "a"}} {
		if got, err := tc.s.LiveCallNode(t.Context(), "8:acs:agent"); got != tc.want || err != nil {
			t.Errorf("LiveCallNode on %s = %q, %v; want %q", tc.s.opt.Node, got, err, tc.want)
		}
	}

	// Any node finds the node of a live call, none for an ended or
	// unknown one.
	for _, tc := range []struct {
		s        *Postgres
		id, want string
	}{{a, "a-live", "a"}, {b, "a-live", "a"}, {b, "a-late", "a"}, {a, "b-live", "b"}, {b, "a-done", ""}, {b, "no-such-call", ""}} {
		if got, err := tc.s.CallNode(t.Context(), tc.id); got != tc.want || err != nil {
			t.Errorf("CallNode(%s) on %s = %q, %v; want %q", tc.id, tc.s.opt.Node, got, err, tc.want)
		}
	}

	// a dies: it stops without ending its calls, last seen at heartbeat.
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	heartbeat := tBase.Add(time.Hour)
	mustExec(t, databaseURL, `UPDATE switchboard_heartbeat SET at = $1 WHERE node = 'a'`, heartbeat)
	if at, err := b.NodeAlive(t.Context(), "a"); err != nil || !at.Equal(heartbeat) {
		t.Errorf("NodeAlive(a) = %v, %v; want %v", at, err, heartbeat)
	}

	ended, err := b.RecoverNodeEvents(t.Context(), "a")
	if err != nil || len(ended) != 2 {
		t.Fatalf("RecoverNodeEvents(a) = %d events, %v; want 2, nil", len(ended), err)
	}
	checkCrashEnded(t, databaseURL, b, "a-live", heartbeat)
	checkCrashEnded(t, databaseURL, b, "a-late", tBase.Add(2*time.Hour))
	// What it answers is what it wrote: each call's callEnded, for
	// supervisors, with the call as it ended.
	for i, want := range []struct {
		id string
		at time.Time
	}{{"a-live", heartbeat}, {"a-late", tBase.Add(2 * time.Hour)}} {
		ev := ended[i]
		data, ok := ev.Data.(calls.CallEndedData)
		if ev.Type != calls.EventCallEnded || ev.CallID != want.id || ev.AgentID != "8:acs:agent" || !ev.At.Equal(want.at) ||
			!ev.Supervised || ev.Actor == nil || ev.Actor.Kind != calls.ActorSystem || !ok ||
			data.CallEndReason != calls.ReasonSwitchboardDied || data.Call.EndTime == nil || !data.Call.EndTime.Equal(want.at) {
			t.Errorf("event %d = %+v; want the supervised callEnded of %s at %v, 503/0, by the system", i, ev, want.id, want.at)
		}
	}
	for id, want := range map[string]calls.CallState{"a-done": calls.StateDisconnected, "b-live": calls.StateConnected} {
		h, err := b.FindCallByID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r := h.Call.CallEndReason; h.Call.State != want || (r != nil && r.Code == 503) {
			t.Errorf("%s = %s, reason %+v; want %s, untouched by RecoverNode", id, h.Call.State, r, want)
		}
	}
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM calls WHERE node = 'a'`); n != 3 {
		t.Errorf("calls of node a after RecoverNode = %d, want 3: they stay a's", n)
	}
	if n, err := b.RecoverNode(t.Context(), "a"); n != 0 || err != nil {
		t.Errorf("RecoverNode(a) again = %d, %v; want 0, nil", n, err)
	}
	if got, err := b.LiveCallNode(t.Context(), "8:acs:agent"); got != "" || err != nil {
		t.Errorf("LiveCallNode on b after a's calls ended = %q, %v; want none", got, err)
	}
	if got, err := b.CallNode(t.Context(), "a-live"); got != "" || err != nil {
		t.Errorf("CallNode(a-live) on b after it ended = %q, %v; want none", got, err)
	}

	// a restarts: its own recovery finds nothing left.
	again := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "a", SpoolDir: spoolA})
	if n, err := again.RecoverCrashed(t.Context()); n != 0 || err != nil {
		t.Errorf("RecoverCrashed of the restarted node a = %d, %v; want 0, nil", n, err)
	}
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM call_events WHERE type = 'callEnded'`); n != 2 {
		t.Errorf("callEnded events = %d, want 2", n)
	}
}

// A node's restart ends its own calls left live, never another live
// node's.
func TestRecoverCrashedOwnNodeOnly(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	spoolB := t.TempDir()
	a := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "a"})
	b := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "b", SpoolDir: spoolB})
	a.Record(nodeCall("a-live", calls.StateConnected, tBase, tBase.Add(time.Minute)))
	b.Record(nodeCall("b-live", calls.StateConnected, tBase, tBase.Add(time.Minute)))
	mustFlush(t, a)
	mustFlush(t, b)
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	heartbeat := tBase.Add(time.Hour)
	mustExec(t, databaseURL, `UPDATE switchboard_heartbeat SET at = $1 WHERE node = 'b'`, heartbeat)
	removeAlive(t, filepath.Join(spoolB, aliveFile))

	restarted := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "b", SpoolDir: spoolB})
	if n, err := restarted.RecoverCrashed(t.Context()); n != 1 || err != nil {
		t.Fatalf("RecoverCrashed of the restarted b = %d, %v; want 1, nil", n, err)
	}
	checkCrashEnded(t, databaseURL, restarted, "b-live", heartbeat)
	h, err := restarted.FindCallByID(t.Context(), "a-live")
	if err != nil {
		t.Fatal(err)
	}
	if h.Call.State != calls.StateConnected || h.Call.EndTime != nil {
		t.Errorf("a-live after b's recovery = %s, end %v; want Connected, live: a is alive", h.Call.State, h.Call.EndTime)
	}
}

func TestRecoverNodeErrors(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	b := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "b"})
	if _, err := b.RecoverNode(t.Context(), "b"); calls.ErrorCode(err) != calls.CodeInvalidRequest {
		t.Errorf("RecoverNode of its own node = %v, want %s", err, calls.CodeInvalidRequest)
	}
	if _, err := b.NodeAlive(t.Context(), "nobody"); calls.ErrorCode(err) != calls.CodeNotFound {
		t.Errorf("NodeAlive of an unknown node = %v, want %s", err, calls.CodeNotFound)
	}
	if n, err := b.RecoverNode(t.Context(), "nobody"); n != 0 || err != nil {
		t.Errorf("RecoverNode of an unknown node = %d, %v; want 0, nil", n, err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RecoverNode(t.Context(), "a"); calls.ErrorCode(err) != calls.CodeUnavailable {
		t.Errorf("RecoverNode after Close = %v, want %s", err, calls.CodeUnavailable)
	}
	if _, err := b.NodeAlive(t.Context(), "b"); calls.ErrorCode(err) != calls.CodeUnavailable {
		t.Errorf("NodeAlive after Close = %v, want %s", err, calls.CodeUnavailable)
	}
}

// Two survivors recover the dead node at once while it restarts and
// recovers its own: each call ends once, with one callEnded event.
func TestRecoverNodeConcurrently(t *testing.T) {
	const nCalls = 300
	databaseURL := testDatabaseURL(t)
	spoolA := t.TempDir()
	a := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "a", SpoolDir: spoolA})
	for i := range nCalls {
		a.Record(nodeCall(fmt.Sprintf("a-%04d", i), calls.StateConnected, tBase.Add(time.Duration(i)*time.Second), tBase.Add(time.Hour)))
	}
	mustFlush(t, a)
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "b"})
	c := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "c"})
	restarted := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "a", SpoolDir: spoolA})

	// The survivors answer the events of what they ended (to publish).
	announced := make([][]calls.Event, 2)
	recoverers := []func(context.Context) (int, error){
		func(ctx context.Context) (int, error) {
			evs, err := b.RecoverNodeEvents(ctx, "a")
			announced[0] = evs
			return len(evs), err
		},
		func(ctx context.Context) (int, error) {
			evs, err := c.RecoverNodeEvents(ctx, "a")
			announced[1] = evs
			return len(evs), err
		},
		restarted.RecoverCrashed,
	}
	ended := make([]int, len(recoverers))
	errs := make([]error, len(recoverers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, recover := range recoverers {
		wg.Go(func() {
			<-start
			ended[i], errs[i] = recover(t.Context())
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range recoverers {
		if errs[i] != nil {
			t.Errorf("recoverer %d: %v", i, errs[i])
		}
		total += ended[i]
	}
	if total != nCalls {
		t.Errorf("the recoverers ended %v calls, %d in all; want %d in all", ended, total, nCalls)
	}
	// Each call's end is announced by at most one survivor (none when the
	// restarted node ended it itself).
	seen := map[string]int{}
	for i, evs := range announced {
		for _, ev := range evs {
			if seen[ev.CallID]++; seen[ev.CallID] > 1 || ev.Type != calls.EventCallEnded {
				t.Errorf("survivor %d announced %s of %s, announced %d times", i, ev.Type, ev.CallID, seen[ev.CallID])
			}
		}
	}
	if len(seen) != ended[0]+ended[1] {
		t.Errorf("the survivors announced %d calls' ends, ended %d", len(seen), ended[0]+ended[1])
	}
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM call_events WHERE type = 'callEnded'`); n != nCalls {
		t.Errorf("callEnded events = %d, want %d: one per call", n, nCalls)
	}
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM calls WHERE end_code = 503 AND end_time IS NOT NULL`); n != nCalls {
		t.Errorf("calls ended with 503 = %d, want %d", n, nCalls)
	}
}

// Node a dies with changes only in its journal, some of them newer (its
// clock ran ahead) than the end node b gives its call. b ends the call; a
// restarts and replays its journal: the call stays ended, once, its
// journaled events are kept, and a call only the journal knew is a's own
// RecoverCrashed's to end.
func TestRecoverNodeThenJournalReplay(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	b := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "b"})
	ahead := time.Now().Add(time.Hour).UnixNano()
	mustExec(t, databaseURL, `INSERT INTO switchboard_heartbeat (node, max_version) VALUES ('a', $1)`, ahead)

	px := startProxy(t, databaseURL)
	spoolA := t.TempDir()
	opt := outageOptions(spoolA)
	opt.Node, opt.QueueSize = "a", 1000
	a, err := OpenPostgres(t.Context(), px.url(t, databaseURL), withTestLogger(t, opt))
	if err != nil {
		t.Fatal(err)
	}
	a.Record(nodeCall("call-1", calls.StateRinging, tBase, tBase.Add(time.Second)))
	mustFlush(t, a)
	px.Cut()
	a.Record(
		nodeCall("call-2", calls.StateRinging, tBase.Add(time.Minute), tBase.Add(time.Minute)),
		nodeCall("call-1", calls.StateConnected, tBase, tBase.Add(2*time.Second)),
	)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close during the outage = %v, want nil (everything journaled)", err)
	}
	if got := queryInt(t, databaseURL, `SELECT count(*) FROM calls`); got != 1 {
		t.Fatalf("calls in Postgres when a dies = %d, want 1: the rest only in its journal", got)
	}
	heartbeat := tBase.Add(time.Hour)
	mustExec(t, databaseURL, `UPDATE switchboard_heartbeat SET at = $1 WHERE node = 'a'`, heartbeat)

	if n, err := b.RecoverNode(t.Context(), "a"); n != 1 || err != nil {
		t.Fatalf("RecoverNode(a) = %d, %v; want 1, nil", n, err)
	}
	version := queryInt(t, databaseURL, `SELECT version FROM calls WHERE id = 'call-1'`)
	if version != int(ahead)+2 {
		t.Errorf("version of the ended call-1 = %d, want %d: just after a's, which a's journal goes past", version, ahead+2)
	}

	// a restarts; its journal is replayed.
	restarted := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "a", SpoolDir: spoolA})
	checkCrashEnded(t, databaseURL, restarted, "call-1", heartbeat)
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM call_events WHERE call_id = 'call-1' AND type = 'stateChanged'`); n != 2 {
		t.Errorf("call-1's stateChanged events = %d, want 2: the journaled one is kept", n)
	}
	if n, err := restarted.RecoverCrashed(t.Context()); n != 1 || err != nil {
		t.Fatalf("RecoverCrashed of the restarted a = %d, %v; want 1 (call-2, which only its journal had), nil", n, err)
	}
	h, err := restarted.FindCallByID(t.Context(), "call-2")
	if err != nil {
		t.Fatal(err)
	}
	if r := h.Call.CallEndReason; r == nil || *r != calls.ReasonSwitchboardDied {
		t.Errorf("call-2's end = %+v, want %+v", r, calls.ReasonSwitchboardDied)
	}
	checkCrashEnded(t, databaseURL, restarted, "call-1", heartbeat)
}

// With AliveWithin, RecoverNode checks again, in its transaction, that the
// node is dead: a node whose heartbeat is fresh (it came back) keeps its
// calls live; one whose heartbeat is stale has them ended.
func TestRecoverNodeAliveAgain(t *testing.T) {
	tests := []struct {
		name      string
		heartbeat func() time.Time
		wantEnded int
		wantCode  calls.Code // "": no error
		wantState calls.CallState
	}{
		{"heartbeat fresh", func() time.Time { return time.Now() }, 0, calls.CodeInvalidState, calls.StateConnected},
		{"heartbeat stale", func() time.Time { return time.Now().Add(-time.Minute) }, 1, "", calls.StateDisconnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			databaseURL := testDatabaseURL(t)
			a := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "a", SpoolDir: t.TempDir()})
			b := mustOpenPostgres(t, databaseURL, PostgresOptions{Node: "b", AliveWithin: time.Minute / 2})
			a.Record(nodeCall("a-live", calls.StateConnected, tBase, tBase.Add(time.Minute)))
			mustFlush(t, a)
			if err := a.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			mustExec(t, databaseURL, `UPDATE switchboard_heartbeat SET at = $1 WHERE node = 'a'`, tt.heartbeat())

			n, err := b.RecoverNode(t.Context(), "a")
			if n != tt.wantEnded || (err == nil) != (tt.wantCode == "") || err != nil && calls.ErrorCode(err) != tt.wantCode {
				t.Fatalf("RecoverNode(a) = %d, %v; want %d, code %q", n, err, tt.wantEnded, tt.wantCode)
			}
			h, err := b.FindCallByID(t.Context(), "a-live")
			if err != nil {
				t.Fatal(err)
			}
			if h.Call.State != tt.wantState {
				t.Errorf("a-live = %s, want %s", h.Call.State, tt.wantState)
			}
		})
	}
}
