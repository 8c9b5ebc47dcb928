package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// writer is the state of the Postgres store's one writer goroutine.
type writer struct {
	*Postgres
	pending  []change // oldest first; all newer than the spool's
	spare    []queued // Record's next queue
	failures int      // writes failed in a row
	retryAt  time.Time
	beatAt   time.Time
	timer    *time.Timer
	draining bool // Close was called: write everything, then return
}

// run is the writer: it takes what Record queues, writes it in batches,
// spills to the spool what does not fit in memory, and keeps the heartbeat.
// It returns, once Close was called, when everything is written, or when
// ctx ends, after spooling what is left.
func (p *Postgres) run(ctx context.Context) {
	w := &writer{Postgres: p, beatAt: time.Now(), timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
	defer w.stop()
	for {
		if !w.draining {
			select {
			case <-p.closing:
				// Record took its last change before Close closed this,
				// so the take below sees it.
				w.draining = true
			default:
			}
		}
		w.take()
		if ctx.Err() != nil {
			w.spill(len(w.pending))
			return
		}
		if excess := len(w.pending) - p.opt.QueueSize; excess > 0 {
			w.spill(excess)
		}
		backlog := len(w.pending) > 0 || !p.spool.empty()
		if !backlog && w.draining {
			return
		}
		now := time.Now()
		var wait time.Duration
		switch {
		case !backlog:
			if !now.Before(w.beatAt) {
				w.heartbeat(ctx)
				continue
			}
			wait = w.beatAt.Sub(now)
		case now.Before(w.retryAt):
			wait = w.retryAt.Sub(now)
		case !w.draining && p.spool.empty() && len(w.pending) < p.opt.BatchSize && !w.flushWanted():
			wait = p.opt.FlushInterval - now.Sub(w.pending[0].recordedAt)
		}
		if wait > 0 {
			w.sleep(ctx, wait)
			continue
		}
		w.writeNext(ctx)
	}
}

// take moves what Record queued into pending, encoding it. Record's queue
// and spare swap places, so that Record appends without allocating once
// they have grown.
func (w *writer) take() {
	w.mu.Lock()
	q := w.queue
	if len(q) > 0 {
		w.queue, w.spare = w.spare[:0], nil
	}
	w.mu.Unlock()
	if len(q) == 0 {
		return
	}
	for i := range q {
		w.pending = append(w.pending, newChange(&q[i].rec, q[i].version, q[i].at, w.log))
	}
	clear(q)
	if cap(q) <= 2*w.opt.QueueSize {
		w.spare = q
	}
	w.publish(0)
}

// sleep waits up to d for something to do.
func (w *writer) sleep(ctx context.Context, d time.Duration) {
	closing := w.closing
	if w.draining {
		closing = nil // closed: it would not wait
	}
	w.timer.Reset(d)
	defer w.timer.Stop()
	select {
	case <-w.wake:
	case <-closing:
	case <-ctx.Done():
	case <-w.timer.C:
	}
}

func (w *writer) flushWanted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushTo > w.written
}

// writeNext writes one batch: from the spool while it has changes, which
// are older than those in memory, else from memory.
func (w *writer) writeNext(ctx context.Context) {
	var (
		batch []change
		done  int
		err   error
	)
	if !w.spool.empty() {
		payloads, ends, rerr := w.spool.read(w.opt.BatchSize)
		if rerr != nil {
			aside, lost := w.spool.quarantine()
			w.log.Error("history store: the spool cannot be read; its changes are lost", "err", rerr, "moved_to", aside, "changes", lost)
			w.publish(lost)
			return
		}
		var at []int // batch[i] is payloads[at[i]]
		batch, at = decodeSpooled(payloads, w.log)
		done, err = w.write(ctx, batch)
		// Frames consumed: those before the first change not written.
		n := len(payloads)
		if done < len(batch) {
			n = at[done]
		}
		if n > 0 {
			if cerr := w.spool.consume(ends[n-1], n); cerr != nil {
				w.log.Error("history store: cannot remove the spool", "err", cerr)
			}
		}
		w.publish(n)
	} else {
		batch = w.pending[:min(len(w.pending), w.opt.BatchSize)]
		done, err = w.write(ctx, batch)
		clear(w.pending[:done])
		w.pending = w.pending[done:]
		w.publish(done)
	}
	w.settle(err)
}

// settle notes a write's outcome and plans the next try after a failure.
func (w *writer) settle(err error) {
	now := time.Now()
	if err == nil {
		w.beatAt = now.Add(w.opt.HeartbeatInterval)
		if w.failures > 0 {
			w.mu.Lock()
			down := now.Sub(w.failedAt)
			w.lastErr, w.failedAt = nil, time.Time{}
			w.mu.Unlock()
			w.log.Info("history store: writing to Postgres again", "after", down.Round(time.Millisecond), "failed_writes", w.failures)
		}
		w.failures, w.retryAt = 0, time.Time{}
		return
	}
	w.failures++
	w.retryAt = now.Add(w.backoff())
	w.mu.Lock()
	w.lastErr = err
	if w.failedAt.IsZero() {
		w.failedAt = now
	}
	w.mu.Unlock()
	if w.failures == 1 {
		w.log.Warn("history store: cannot write to Postgres; keeping changes until it answers", "err", err)
	} else {
		w.log.Debug("history store: write failed again", "err", err, "failures", w.failures)
	}
}

// backoff is the wait before the next try: exponential in the failures so
// far, between RetryMin and RetryMax, with jitter (a uniform draw from the
// upper half) so that many switchboards do not retry in step.
func (w *writer) backoff() time.Duration {
	d := w.opt.RetryMin
	for i := 1; i < w.failures && d < w.opt.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.opt.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// spill moves the n oldest changes in memory to the spool. When the spool
// cannot take them, they stay in memory.
func (w *writer) spill(n int) {
	if n <= 0 {
		return
	}
	payloads := make([][]byte, 0, n)
	for i := range n {
		b, err := w.pending[i].spoolPayload()
		if err != nil {
			w.log.Error("history store: dropping a change that cannot be spooled", "call_id", w.pending[i].call.id, "err", err)
			continue
		}
		payloads = append(payloads, b)
	}
	if err := w.spool.append(payloads); err != nil {
		w.log.Error("history store: cannot spill to the spool; keeping changes in memory", "err", err, "changes", n)
		return
	}
	w.log.Debug("history store: spilled changes to the spool", "changes", n, "spooled", w.spool.unread)
	clear(w.pending[:n])
	w.pending = w.pending[n:]
	w.publish(n - len(payloads))
}

// publish tells Flush and Ready where the writer is: done more changes are
// in Postgres (or given up on).
func (w *writer) publish(done int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written += uint64(done)
	w.spooled = w.spool.unread
	w.oldest = time.Time{}
	if len(w.pending) > 0 {
		w.oldest = w.pending[0].recordedAt
	}
	if done > 0 {
		close(w.progress)
		w.progress = make(chan struct{})
	}
}

// stop ends the writer: what is still in memory now could not be written
// or spooled.
func (w *writer) stop() {
	w.mu.Lock()
	queued := len(w.queue)
	w.mu.Unlock()
	if n := len(w.pending) + queued; n > 0 {
		w.log.Error("history store: closing with changes neither written nor spooled", "changes", n)
		w.runErr = fmt.Errorf("close: %d changes could be neither written to Postgres nor spooled to %s", n, w.spool.path)
	} else if !w.spool.empty() {
		w.log.Warn("history store: closing with changes spooled; the next start writes them",
			"changes", w.spool.unread, "path", w.spool.path)
	}
	w.mu.Lock()
	w.stopped = true
	close(w.progress)
	w.progress = make(chan struct{})
	w.mu.Unlock()
	close(w.done)
}

// heartbeat notes that the switchboard is alive.
func (w *writer) heartbeat(ctx context.Context) {
	w.beatAt = time.Now().Add(w.opt.HeartbeatInterval)
	ctx, cancel := context.WithTimeout(ctx, w.opt.WriteTimeout)
	defer cancel()
	if _, err := w.pool.Exec(ctx, `UPDATE switchboard_heartbeat SET at = $1`, micro(time.Now())); err != nil {
		w.log.Debug("history store: heartbeat failed", "err", err)
	}
}

// decodeSpooled reads spool payloads back. One that cannot be read (which
// only a bug would write) is dropped, loudly. at maps each change to its
// payload.
func decodeSpooled(payloads [][]byte, log *slog.Logger) (batch []change, at []int) {
	batch = make([]change, 0, len(payloads))
	at = make([]int, 0, len(payloads))
	for i, b := range payloads {
		c, err := changeFromSpool(b)
		if err != nil {
			log.Error("history store: dropping a spooled change that cannot be read", "err", err)
			continue
		}
		batch = append(batch, c)
		at = append(at, i)
	}
	return batch, at
}

// write writes batch, in one transaction when it can, and answers how many
// of its changes, from the first, are done: written, or dropped because
// Postgres refuses them for good (a data error), which is logged. Its
// error is a failure to retry later, from the first change not done.
func (p *Postgres) write(ctx context.Context, batch []change) (int, error) {
	if len(batch) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.opt.WriteTimeout)
	defer cancel()
	err := p.writeTx(ctx, batch, false)
	if isUniqueViolation(err) {
		// Some events are in already: an earlier try committed before its
		// answer was lost, or this is a replay. Merge instead.
		err = p.writeTx(ctx, batch, true)
	}
	switch {
	case err == nil:
		return len(batch), nil
	case !permanent(err):
		return 0, err
	case len(batch) == 1:
		p.log.Error("history store: Postgres refuses a change; dropping it",
			"call_id", batch[0].call.id, "version", batch[0].version, "err", err)
		return 1, nil
	}
	// Find the change Postgres refuses by writing one at a time.
	for i := range batch {
		if _, err := p.write(ctx, batch[i:i+1]); err != nil {
			return i, err
		}
	}
	return len(batch), nil
}

var (
	stageCallColumns = []string{"id", "version", "server_call_id", "agent_id", "direction", "kind", "state",
		"start_time", "end_time", "end_code", "end_subcode", "end_message", "view"}
	stagePartColumns = []string{"call_id", "raw_id", "position", "display_name", "state", "is_muted",
		"end_code", "end_subcode", "end_message"}
	eventColumns = []string{"call_id", "version", "idx", "type", "at", "actor_kind", "actor_raw_id", "data"}
)

// Statements that merge the staged calls and participants. A call's row
// changes only for a newer version; its participants follow its row, and a
// participant's row is written only when it changed.
const (
	mergeCalls = `
WITH up AS (
    INSERT INTO calls AS c (id, version, server_call_id, agent_id, direction, kind, state,
                            start_time, end_time, end_code, end_subcode, end_message, view)
    SELECT id, version, server_call_id, agent_id, direction, kind, state,
           start_time, end_time, end_code, end_subcode, end_message, view
    FROM switchboard_stage_calls
    ON CONFLICT (id) DO UPDATE SET
        version = excluded.version, server_call_id = excluded.server_call_id,
        agent_id = excluded.agent_id, direction = excluded.direction, kind = excluded.kind,
        state = excluded.state, start_time = excluded.start_time, end_time = excluded.end_time,
        end_code = excluded.end_code, end_subcode = excluded.end_subcode,
        end_message = excluded.end_message, view = excluded.view
    WHERE c.version < excluded.version
    RETURNING c.id
)
UPDATE switchboard_stage_calls s SET applied = true FROM up WHERE s.id = up.id`
	// deleteParticipants drops the rows of participants an applied view no
	// longer has. The staging tables are never analyzed, so a join with
	// them was planned as a scan of every participant ever stored (66% of
	// a batch's time with 1M calls stored); = ANY of an array walks the
	// primary key's index whatever the planner guesses.
	deleteParticipants = `
DELETE FROM participants p
WHERE p.call_id = ANY (ARRAY(SELECT id FROM switchboard_stage_calls WHERE applied))
  AND (p.call_id, p.raw_id) NOT IN (SELECT call_id, raw_id FROM switchboard_stage_participants)`
	upsertParticipants = `
INSERT INTO participants AS p (call_id, raw_id, position, display_name, state, is_muted,
                               end_code, end_subcode, end_message, start_time)
SELECT sp.call_id, sp.raw_id, sp.position, sp.display_name, sp.state, sp.is_muted,
       sp.end_code, sp.end_subcode, sp.end_message, s.start_time
FROM switchboard_stage_participants sp JOIN switchboard_stage_calls s ON s.id = sp.call_id
WHERE s.applied
ON CONFLICT (call_id, raw_id) DO UPDATE SET
    position = excluded.position, display_name = excluded.display_name, state = excluded.state,
    is_muted = excluded.is_muted, end_code = excluded.end_code, end_subcode = excluded.end_subcode,
    end_message = excluded.end_message, start_time = excluded.start_time
WHERE (p.position, p.display_name, p.state, p.is_muted, p.end_code, p.end_subcode, p.end_message, p.start_time)
    IS DISTINCT FROM (excluded.position, excluded.display_name, excluded.state, excluded.is_muted,
                      excluded.end_code, excluded.end_subcode, excluded.end_message, excluded.start_time)`
	beatWithVersion = `
UPDATE switchboard_heartbeat SET at = $1, max_version = greatest(max_version, $2)`
	mergeEvents = `
INSERT INTO call_events (call_id, version, idx, type, at, actor_kind, actor_raw_id, data)
SELECT call_id, version, idx, type, at, actor_kind, actor_raw_id, data FROM switchboard_stage_events
ON CONFLICT DO NOTHING`
)

// writeTx writes batch in one transaction. Each call's newest view in the
// batch is staged and merged; events are copied straight into call_events,
// or, when merge is set, staged and merged so that rows already there are
// skipped.
func (p *Postgres) writeTx(ctx context.Context, batch []change, merge bool) error {
	newest := make(map[string]int, len(batch))
	var maxVersion int64
	nEvents := 0
	for i := range batch {
		c := &batch[i]
		if j, ok := newest[c.call.id]; !ok || batch[j].version < c.version {
			newest[c.call.id] = i
		}
		maxVersion = max(maxVersion, c.version)
		nEvents += len(c.events)
	}
	views := make([]*change, 0, len(newest))
	nParts := 0
	for _, i := range newest {
		views = append(views, &batch[i])
		nParts += len(batch[i].parts)
	}

	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit it does nothing; before it, its error is moot

	_, err = tx.CopyFrom(ctx, pgx.Identifier{"switchboard_stage_calls"}, stageCallColumns,
		pgx.CopyFromSlice(len(views), func(i int) ([]any, error) {
			c := &views[i].call
			return []any{c.id, views[i].version, c.serverCallID, c.agentID, c.direction, c.kind, c.state,
				c.start, c.end, c.endCode, c.endSubCode, c.endMessage, c.view}, nil
		}))
	if err != nil {
		return err
	}
	if nParts > 0 {
		rows := make([][]any, 0, nParts)
		for _, v := range views {
			for _, r := range v.parts {
				rows = append(rows, []any{v.call.id, r.rawID, r.position, r.displayName, r.state, r.isMuted,
					r.endCode, r.endSubCode, r.endMessage})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"switchboard_stage_participants"}, stagePartColumns, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	b.Queue(mergeCalls)
	b.Queue(deleteParticipants)
	b.Queue(upsertParticipants)
	b.Queue(beatWithVersion, micro(time.Now()), maxVersion)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if nEvents > 0 {
		table := pgx.Identifier{"call_events"}
		if merge {
			table = pgx.Identifier{"switchboard_stage_events"}
		}
		if _, err := tx.CopyFrom(ctx, table, eventColumns, &eventSource{batch: batch, i: 0, j: -1}); err != nil {
			return err
		}
		if merge {
			if _, err := tx.Exec(ctx, mergeEvents); err != nil {
				return err
			}
		}
	}
	return tx.Commit(ctx)
}

// eventSource feeds a batch's events to COPY, keyed by call, version and
// place.
type eventSource struct {
	batch []change
	i, j  int // the change, and the event in it
	row   [8]any
}

func (s *eventSource) Next() bool {
	for s.i < len(s.batch) {
		s.j++
		if s.j < len(s.batch[s.i].events) {
			return true
		}
		s.i, s.j = s.i+1, -1
	}
	return false
}

func (s *eventSource) Values() ([]any, error) {
	c := &s.batch[s.i]
	e := &c.events[s.j]
	s.row = [8]any{c.call.id, c.version, int32(s.j), e.typ, e.at, nil, nil, nil}
	if e.actor != nil {
		s.row[5] = string(e.actor.Kind)
		if e.actor.RawID != "" {
			s.row[6] = e.actor.RawID
		}
	}
	if e.data != nil {
		s.row[7] = e.data
	}
	return s.row[:], nil
}

func (s *eventSource) Err() error { return nil }

// isUniqueViolation reports whether Postgres refused a duplicate key.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// permanent reports whether Postgres refused what was written for good
// (a data exception, an integrity or a size limit), so that retrying the
// same rows cannot succeed. Anything else (the connection, a timeout, a
// server shutting down or read-only during a failover) is worth retrying.
func permanent(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 {
		return false
	}
	switch pg.Code[:2] {
	case "22", "23", "54":
		return true
	}
	return false
}
