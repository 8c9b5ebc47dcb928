package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// run is the SQLite store's writer: it takes what Record queues and
// writes it, a batch per transaction, as soon as it is queued, and keeps
// the heartbeat. It returns, once Close was called, when everything is
// written, or when ctx ends (Close's context ended), after a last try.
func (s *SQLite) run(ctx context.Context) {
	var (
		pending  []queued // taken from Record's queue, not yet written
		failures int
		retryAt  time.Time
		beatAt   = time.Now().Add(s.opt.HeartbeatInterval)
		draining bool
		timer    = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer func() { s.stop(len(pending)) }()
	sleep := func(d time.Duration) {
		closing := s.closing
		if draining {
			closing = nil
		}
		timer.Reset(d)
		defer timer.Stop()
		select {
		case <-s.wake:
		case <-closing:
		case <-ctx.Done():
		case <-timer.C:
		}
	}
	for {
		if !draining {
			select {
			case <-s.closing:
				// Record took its last change before closing closed, so
				// the take below sees it.
				draining = true
			default:
			}
		}
		if len(pending) == 0 {
			s.mu.Lock()
			pending, s.queue = s.queue, nil
			if len(pending) > 0 {
				s.oldest = pending[0].at
			}
			s.mu.Unlock()
		}
		if ctx.Err() != nil {
			pending = s.lastTry(pending)
			return
		}
		now := time.Now()
		if len(pending) > 0 {
			if now.Before(retryAt) {
				sleep(retryAt.Sub(now))
				continue
			}
			n := min(len(pending), s.opt.BatchSize)
			err := s.writeBatch(ctx, pending[:n])
			if err != nil {
				failures++
				d := s.opt.RetryMin
				for i := 1; i < failures && d < s.opt.RetryMax; i++ {
					d *= 2
				}
				d = min(d, s.opt.RetryMax)
				retryAt = now.Add(d/2 + rand.N(d/2+1))
				s.mu.Lock()
				s.lastErr = err
				if s.failedAt.IsZero() {
					s.failedAt = now
				}
				s.mu.Unlock()
				if failures == 1 {
					s.log.Warn("history store: cannot write to the history file; keeping changes until it can", "path", s.path, "err", err)
				}
				continue
			}
			if failures > 0 {
				s.log.Info("history store: writing to the history file again", "failed_writes", failures)
			}
			failures, retryAt = 0, time.Time{}
			beatAt = now.Add(s.opt.HeartbeatInterval)
			clear(pending[:n])
			pending = pending[n:]
			s.mu.Lock()
			s.written += uint64(n)
			s.lastErr, s.failedAt, s.oldest = nil, time.Time{}, time.Time{}
			if len(pending) > 0 {
				s.oldest = pending[0].at
			}
			close(s.progress)
			s.progress = make(chan struct{})
			s.mu.Unlock()
			continue
		}
		if draining {
			return
		}
		if !now.Before(beatAt) {
			beatAt = now.Add(s.opt.HeartbeatInterval)
			if _, err := s.wdb.ExecContext(ctx, `UPDATE heartbeat SET at_ns = ?`, now.UnixNano()); err != nil {
				s.log.Debug("history store: heartbeat failed", "err", err)
			}
			continue
		}
		sleep(beatAt.Sub(now))
	}
}

// lastTry is the writer's last attempt, once Close's context ended: it
// writes pending and what is queued, a batch at a time, until a write
// fails (each waits for the file's lock for BusyTimeout at most), and
// answers what is left.
func (s *SQLite) lastTry(pending []queued) []queued {
	s.mu.Lock()
	pending = append(pending, s.queue...)
	s.queue = nil
	s.mu.Unlock()
	for len(pending) > 0 {
		n := min(len(pending), s.opt.BatchSize)
		if err := s.writeBatch(context.Background(), pending[:n]); err != nil {
			break
		}
		pending = pending[n:]
		s.mu.Lock()
		s.written += uint64(n)
		s.mu.Unlock()
	}
	return pending
}

// stop ends the writer; lost changes were neither written nor can be.
func (s *SQLite) stop(lost int) {
	s.mu.Lock()
	lost += len(s.queue)
	s.stopped = true
	close(s.progress)
	s.progress = make(chan struct{})
	s.mu.Unlock()
	if lost > 0 {
		s.log.Error("history store: closing with changes not written", "changes", lost, "path", s.path)
		s.runErr = fmt.Errorf("close: %d changes could not be written to %s", lost, s.path)
	}
	close(s.done)
}

// Statements of a batch.
const (
	sqliteUpsertCall = `
INSERT INTO calls (id, version, agent_id, direction, start_ns, end_ns, end_code, end_subcode, view)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (id) DO UPDATE SET
    version = excluded.version, agent_id = excluded.agent_id, direction = excluded.direction,
    start_ns = excluded.start_ns, end_ns = excluded.end_ns, end_code = excluded.end_code,
    end_subcode = excluded.end_subcode, view = excluded.view
WHERE (calls.end_ns IS NOT NULL, calls.version) < (excluded.end_ns IS NOT NULL, excluded.version)`
	// The participants of a call's view, given as a JSON array of raw ids:
	// those no longer in it go, new ones come, and a moved start follows.
	sqliteDeleteParticipants = `
DELETE FROM participants WHERE call_id = ?1 AND raw_id NOT IN (SELECT value FROM json_each(?2))`
	sqliteUpsertParticipants = `
INSERT INTO participants (call_id, raw_id, start_ns)
SELECT ?1, value, ?3 FROM json_each(?2) WHERE true
ON CONFLICT (call_id, raw_id) DO UPDATE SET start_ns = excluded.start_ns
WHERE participants.start_ns <> excluded.start_ns`
	sqliteInsertEvent = `
INSERT OR IGNORE INTO call_events (call_id, version, idx, type, at_ns, actor_kind, actor_id, actor_name, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqliteBeat = `UPDATE heartbeat SET at_ns = ?1, max_version = max(max_version, ?2)`
)

// writeBatch writes batch in one transaction: each call's newest view in
// the batch (a view never overwrites a newer one, nor a live view an ended
// one: see newerView), its participants, and
// every event, keyed so that writing a change twice changes nothing.
func (s *SQLite) writeBatch(ctx context.Context, batch []queued) error {
	newest := make(map[string]int, len(batch))
	var maxVersion int64
	for i := range batch {
		q := &batch[i]
		if j, ok := newest[q.rec.Call.ID]; !ok || newerView(batch[j].rec.Call.EndTime != nil, batch[j].version, q.rec.Call.EndTime != nil, q.version) {
			newest[q.rec.Call.ID] = i
		}
		maxVersion = max(maxVersion, q.version)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = tx.PrepareContext(ctx, q)
		return st
	}
	upsertCall, delParts, upsertParts := prep(sqliteUpsertCall), prep(sqliteDeleteParticipants), prep(sqliteUpsertParticipants)
	insertEvent := prep(sqliteInsertEvent)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	for i := range batch {
		q := &batch[i]
		c := &q.rec.Call
		if newest[c.ID] == i {
			if err := s.writeCall(ctx, upsertCall, delParts, upsertParts, c, q.version); err != nil {
				return err
			}
		}
		for j := range q.rec.Events {
			ev := &q.rec.Events[j]
			var kind, raw, name any
			if a := ev.Actor; a != nil {
				kind, raw, name = string(a.Kind), nullString(a.RawID), nullString(a.DisplayName)
			}
			var data any
			if ev.Data != nil {
				b, err := json.Marshal(ev.Data)
				if err != nil {
					s.log.Error("history: cannot encode an event's data; keeping the event without it",
						"call_id", c.ID, "type", ev.Type, "err", err)
				} else {
					data = string(b)
				}
			}
			if _, err := insertEvent.ExecContext(ctx, c.ID, q.version, j, string(ev.Type), unixNanos(ev.At), kind, raw, name, data); err != nil {
				return fmt.Errorf("insert event: %w", err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, sqliteBeat, time.Now().UnixNano(), maxVersion); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// writeCall writes one call's view and, when the view was applied, its
// participants.
func (s *SQLite) writeCall(ctx context.Context, upsertCall, delParts, upsertParts *sql.Stmt, c *calls.Call, version int64) error {
	view, err := json.Marshal(c)
	if err != nil {
		// A Call is plain data; this would be a bug in package calls.
		s.log.Error("history: cannot encode a call", "call_id", c.ID, "err", err)
		view = []byte(`{}`)
	}
	var end, code, sub any
	if c.EndTime != nil {
		end = unixNanos(*c.EndTime)
	}
	if r := c.CallEndReason; r != nil {
		code, sub = int64(r.Code), int64(r.SubCode)
	}
	start := unixNanos(c.StartTime)
	res, err := upsertCall.ExecContext(ctx, c.ID, version, c.AgentID, string(c.Direction), start, end, code, sub, string(view))
	if err != nil {
		return fmt.Errorf("upsert call: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // an older view: the newer one and its participants stay
	}
	ids := make([]string, len(c.RemoteParticipants))
	for i := range c.RemoteParticipants {
		ids[i] = c.RemoteParticipants[i].RawID
	}
	raw, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("encode participants: %w", err)
	}
	if _, err := delParts.ExecContext(ctx, c.ID, string(raw)); err != nil {
		return fmt.Errorf("delete participants: %w", err)
	}
	if len(ids) > 0 {
		if _, err := upsertParts.ExecContext(ctx, c.ID, string(raw), start); err != nil {
			return fmt.Errorf("upsert participants: %w", err)
		}
	}
	return nil
}

// Times the store can keep as Unix nanoseconds (1678 to 2262).
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// unixNanos is t in Unix nanoseconds, clamped to what an int64 holds.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
