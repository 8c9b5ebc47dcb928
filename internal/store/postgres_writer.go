package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// writer is the state of the Postgres store's writer goroutine.
//
// Changes reach it journaled (see journal), oldest first, and it writes
// them in that order: the batch in flight, then pending (in memory), then
// onDisk, the newest, which it did not keep in memory as it already held
// QueueSize changes there; they are read back from the journal when their
// turn comes. While onDisk is not zero, what the journaler hands over
// joins it (it is newer still), so that memory holds the oldest changes
// and the journal the rest, in order. While one goroutine writes a batch
// to Postgres (the flight), the writer keeps taking what the journaler
// hands over. Once a batch is in Postgres its changes are consumed from
// the journal. Only the writer touches this state; the
// flight's goroutine only writes its batch, and the writer waits for it
// before it moves on from the batch or returns.
type writer struct {
	*Postgres
	pending  []change // journaled, in memory, oldest first
	spare    []change // the journaler's next handoff
	onDisk   int      // changes newer than pending, in the journal only
	flight   *flight  // the batch being written; nil when none
	failures int      // writes failed in a row
	retryAt  time.Time
	beatAt   time.Time
	timer    *time.Timer
	draining bool // Close was called and everything is journaled: write it all, then return
}

// flight is a batch being written to Postgres by a goroutine of its own.
type flight struct {
	batch  []change
	onDisk bool    // read from the journal: batch[i] is frame at[i], ending at ends[at[i]] in generation gen
	at     []int   // see onDisk
	ends   []int64 // see onDisk
	gen    uint64  // see onDisk
	result chan flightResult
}

// flightResult is what write answered for a flight's batch.
type flightResult struct {
	done int
	err  error
}

// run is the writer: it takes what the journaler hands over, writes it in
// batches, and keeps the heartbeat. It returns, once Close was called,
// when everything is written, or when ctx ends (what is not written stays
// in the journal, for the next start).
func (p *Postgres) run(ctx context.Context) {
	w := &writer{Postgres: p, beatAt: time.Now(), timer: time.NewTimer(time.Hour)}
	w.timer.Stop()
	defer w.stop()
	for {
		if !w.draining {
			select {
			case <-p.journalDone:
				// The journaler handed over its last change before it
				// closed this, so a take after this sees it.
				w.draining = true
			default:
			}
		}
		w.take()
		if ctx.Err() != nil {
			if w.flight != nil {
				w.land(ctx, true)
			}
			return
		}
		if w.flight != nil {
			w.land(ctx, false)
		}
		now := time.Now()
		if w.flight == nil {
			if start, _ := w.due(now); start {
				w.launch(ctx)
			}
		}
		if w.flight != nil {
			w.land(ctx, true)
			continue
		}
		backlog := len(w.pending) > 0 || w.onDisk > 0
		if !backlog && w.draining {
			return
		}
		var wait time.Duration
		if backlog {
			_, wait = w.due(now)
		} else {
			if !now.Before(w.beatAt) {
				w.heartbeat(ctx)
				continue
			}
			wait = w.beatAt.Sub(now)
		}
		w.sleep(ctx, wait)
	}
}

// take moves what the journaler handed over into pending, as far as
// QueueSize allows; the rest waits in the journal only.
func (w *writer) take() {
	w.mu.Lock()
	h := w.handoff
	if len(h) > 0 {
		w.handoff, w.spare = w.spare[:0], nil
	}
	w.mu.Unlock()
	if len(h) == 0 {
		return
	}
	keep := 0
	if w.onDisk == 0 {
		keep = min(len(h), max(0, w.opt.QueueSize-len(w.pending)))
	}
	w.pending = append(w.pending, h[:keep]...)
	if n := len(h) - keep; n > 0 {
		w.onDisk += n
		w.log.Debug("history store: changes wait in the journal only", "changes", n, "on_disk", w.onDisk)
	}
	clear(h)
	if cap(h) <= 2*w.opt.QueueSize {
		w.spare = h[:0]
	}
	w.publish(0)
}

// due says whether to start writing a batch now and, when not, how long
// until one is due (0: when something else happens first). A batch is
// due when it is full, or when its oldest change has waited
// FlushInterval, or Flush or Close wants it, or changes wait on disk.
func (w *writer) due(now time.Time) (bool, time.Duration) {
	if w.onDisk == 0 && len(w.pending) == 0 {
		return false, 0
	}
	if now.Before(w.retryAt) {
		return false, w.retryAt.Sub(now)
	}
	switch {
	case w.onDisk > 0 || len(w.pending) >= w.opt.BatchSize || w.draining || w.flushWanted():
		return true, 0
	}
	wait := w.opt.FlushInterval - now.Sub(w.pending[0].recordedAt)
	return wait <= 0, wait
}

// launch starts writing a batch: from pending, which is older, else from
// the journal.
func (w *writer) launch(ctx context.Context) {
	f := &flight{result: make(chan flightResult, 1)}
	if len(w.pending) > 0 {
		n := min(len(w.pending), w.opt.BatchSize)
		f.batch = w.pending[:n:n]
		w.pending = w.pending[n:]
	} else {
		payloads, ends, gen, err := w.spool.read(min(w.opt.BatchSize, w.onDisk))
		if err != nil {
			aside, _ := w.spool.quarantine()
			w.log.Error("history store: the journal cannot be read; the changes only it held are lost", "err", err, "moved_to", aside, "changes", w.onDisk)
			lost := w.onDisk
			w.onDisk = 0
			w.publish(lost)
			return
		}
		f.batch, f.at = decodeSpooled(payloads, w.spool.payloadFormat(), w.log)
		f.onDisk, f.ends, f.gen = true, ends, gen
	}
	w.flight = f
	go func() {
		done, err := w.write(ctx, f.batch)
		f.result <- flightResult{done: done, err: err}
	}()
}

// land settles the batch in flight once it is written or has failed:
// waiting for that when wait is set (but returning when the journaler
// hands over more, to take it), else only if it is over already. Written
// changes are consumed from the journal; those of a failed batch go back
// where they came from (the front of pending, or the journal), to be
// written again first.
func (w *writer) land(ctx context.Context, wait bool) {
	f := w.flight
	var r flightResult
	if wait {
		select {
		case r = <-f.result:
		case <-w.wake:
			return
		case <-ctx.Done():
			r = <-f.result // the flight ends with ctx
		}
	} else {
		select {
		case r = <-f.result:
		default:
			return
		}
	}
	w.flight = nil
	if f.onDisk {
		// Frames consumed: those before the first change not written.
		n := len(f.ends)
		if r.done < len(f.batch) {
			n = f.at[r.done]
		}
		if n > 0 {
			if err := w.spool.consume(f.gen, f.ends[n-1], n); err != nil {
				w.log.Error("history store: cannot cut back the journal", "err", err)
			}
		}
		w.onDisk -= n
		w.publish(n)
	} else {
		if r.done > 0 {
			last := &f.batch[r.done-1]
			if err := w.spool.consume(last.journalGen, last.journalEnd, r.done); err != nil {
				w.log.Error("history store: cannot cut back the journal", "err", err)
			}
		}
		if r.done < len(f.batch) {
			w.pending = slices.Concat(f.batch[r.done:], w.pending)
		}
		clear(f.batch)
		w.publish(r.done)
	}
	w.settle(r.err)
}

// sleep waits up to d for something to do.
func (w *writer) sleep(ctx context.Context, d time.Duration) {
	journalDone := w.journalDone
	if w.draining {
		journalDone = nil // closed: it would not wait
	}
	w.timer.Reset(d)
	defer w.timer.Stop()
	select {
	case <-w.wake:
	case <-journalDone:
	case <-ctx.Done():
	case <-w.timer.C:
	}
}

func (w *writer) flushWanted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushTo > w.written
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

// publish tells Flush and Ready where the writer is: done more changes are
// in Postgres (or given up on).
func (w *writer) publish(done int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written += uint64(done)
	w.spooled = w.onDisk
	w.oldest = time.Time{}
	switch f := w.flight; {
	case f != nil && !f.onDisk && len(f.batch) > 0:
		w.oldest = f.batch[0].recordedAt
	case len(w.pending) > 0:
		w.oldest = w.pending[0].recordedAt
	}
	if done > 0 {
		close(w.progress)
		w.progress = make(chan struct{})
	}
}

// stop ends the writer. Everything journaled and not written stays in the
// journal, for the next start; what the journaler could not take is lost.
func (w *writer) stop() {
	w.mu.Lock()
	lost := w.enqueued - w.journaled
	w.mu.Unlock()
	if lost > 0 {
		w.log.Error("history store: closing with changes neither written nor journaled", "changes", lost)
		w.runErr = fmt.Errorf("close: %d changes could be neither written to Postgres nor journaled in %s", lost, w.spool.path)
	} else if n := w.spool.pending(); n > 0 {
		w.log.Warn("history store: closing with changes in the journal; the next start writes them",
			"changes", n, "path", w.spool.path)
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
	if _, err := w.pool.Exec(ctx, `UPDATE switchboard_heartbeat SET at = $1 WHERE node = $2`, micro(time.Now()), w.opt.Node); err != nil {
		w.log.Debug("history store: heartbeat failed", "err", err)
	}
}

// decodeSpooled reads spool payloads back. One that cannot be read (which
// only a bug would write) is dropped, loudly. at maps each change to its
