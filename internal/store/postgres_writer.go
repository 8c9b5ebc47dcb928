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
// Changes move through it oldest first: the spool, then the batch in
// flight, then pending (encoded), then raw (taken from Record's queue, not
// yet encoded). While one goroutine writes a batch to Postgres (the
// flight), the writer encodes the next changes, spills what does not fit
// in memory and reads the spool, so that Postgres and the encoding work at
// once. Only the writer touches this state; the flight's goroutine only
// writes its batch, and the writer waits for it before it moves on from
// the batch or returns.
type writer struct {
	*Postgres
	taken    []queued // what take took from Record's queue last; raw is its tail
	raw      []queued // taken, not yet encoded
	pending  []change // encoded, oldest first
	spare    []queued // Record's next queue
	flight   *flight  // the batch being written; nil when none
	failures int      // writes failed in a row
	retryAt  time.Time
	beatAt   time.Time
	timer    *time.Timer
	draining bool // Close was called: write everything, then return
}

// flight is a batch being written to Postgres by a goroutine of its own.
type flight struct {
	batch   []change
	spooled bool    // read from the spool: batch[i] is frame at[i], ending at ends[at[i]]
	at      []int   // see spooled
	ends    []int64 // see spooled
	result  chan flightResult
}

// flightResult is what write answered for a flight's batch.
type flightResult struct {
	done int
	err  error
}

// encodeChunk is how many changes the writer encodes between two looks
// at the batch in flight.
const encodeChunk = 1024

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
				// so a take after this sees it.
				w.draining = true
			default:
			}
		}
		w.take()
		if ctx.Err() != nil {
			w.spillAll()
			return
		}
		if w.flight != nil {
			w.land(false)
		}
		now := time.Now()
		if w.flight == nil {
			if start, _ := w.due(now); start {
				w.launch(ctx)
			}
		}
		if len(w.raw) > 0 {
			w.encode(encodeChunk)
			continue
		}
		if w.flight != nil {
			w.land(true)
			continue
		}
		backlog := len(w.pending) > 0 || !p.spool.empty()
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

// take moves what Record queued into raw, once raw is empty. Record's
// queue and spare swap places, so that Record appends without allocating
// once they have grown.
func (w *writer) take() {
	if len(w.raw) > 0 {
		return
	}
	if w.taken != nil {
		clear(w.taken)
		if cap(w.taken) <= 2*w.opt.QueueSize {
			w.spare = w.taken[:0]
		}
		w.taken = nil
	}
	w.mu.Lock()
	q := w.queue
	if len(q) > 0 {
		w.queue, w.spare = w.spare[:0], nil
	}
	w.mu.Unlock()
	if len(q) == 0 {
		return
	}
	w.taken, w.raw = q, q
	w.publish(0)
}

// encode encodes up to n changes of raw into pending, then spills the
// oldest in pending while the writer holds more than QueueSize changes.
func (w *writer) encode(n int) {
	n = min(n, len(w.raw))
	for i := range n {
		q := &w.raw[i]
		w.pending = append(w.pending, newChange(&q.rec, q.version, q.at, w.log))
	}
	clear(w.raw[:n])
	w.raw = w.raw[n:]
	if excess := len(w.pending) + len(w.raw) - w.opt.QueueSize; excess > 0 {
		w.spill(min(excess, len(w.pending)))
	}
	w.publish(0)
}

// spillAll ends the writer's work when its context ended: it waits for
// the batch in flight, then spools everything still in memory.
func (w *writer) spillAll() {
	if w.flight != nil {
		w.land(true)
	}
	for {
		w.take()
		if len(w.raw) == 0 {
			break
		}
		w.encode(len(w.raw))
	}
	w.spill(len(w.pending))
}

// due says whether to start writing a batch now and, when not, how long
// until one is due (0: when something else happens first). A batch is
// due when it is full, or when nothing is left to encode and the batch's
// oldest change has waited FlushInterval, or Flush or Close wants it.
func (w *writer) due(now time.Time) (bool, time.Duration) {
	if w.spool.empty() && len(w.pending) == 0 {
		return false, 0
	}
	if now.Before(w.retryAt) {
		return false, w.retryAt.Sub(now)
	}
	switch {
	case w.spool.unread >= w.opt.BatchSize || (w.spool.empty() && len(w.pending) >= w.opt.BatchSize):
		return true, 0
	case len(w.raw) > 0:
		return false, 0 // encode more first, to fill the batch
	case !w.spool.empty() || w.draining || w.flushWanted():
		return true, 0
	}
	wait := w.opt.FlushInterval - now.Sub(w.pending[0].recordedAt)
	return wait <= 0, wait
}

// launch starts writing a batch: from the spool while it has changes,
// which are older than those in memory, else from pending.
func (w *writer) launch(ctx context.Context) {
	f := &flight{result: make(chan flightResult, 1)}
	if !w.spool.empty() {
		payloads, ends, err := w.spool.read(w.opt.BatchSize)
		if err != nil {
			aside, lost := w.spool.quarantine()
			w.log.Error("history store: the spool cannot be read; its changes are lost", "err", err, "moved_to", aside, "changes", lost)
			w.publish(lost)
			return
		}
		f.batch, f.at = decodeSpooled(payloads, w.spool.format, w.log)
		f.spooled, f.ends = true, ends
	} else {
		n := min(len(w.pending), w.opt.BatchSize)
		f.batch = w.pending[:n:n]
		w.pending = w.pending[n:]
	}
	w.flight = f
	go func() {
		done, err := w.write(ctx, f.batch)
		f.result <- flightResult{done: done, err: err}
	}()
}

// land settles the batch in flight once it is written or has failed:
// waiting for that when wait is set, else only if it is over already.
// Changes of a failed batch stay where they were (the spool) or go back
// to the front of pending, to be written again.
func (w *writer) land(wait bool) {
	f := w.flight
	var r flightResult
	if wait {
		r = <-f.result
	} else {
		select {
		case r = <-f.result:
		default:
			return
		}
	}
	w.flight = nil
	if f.spooled {
		// Frames consumed: those before the first change not written.
		n := len(f.ends)
		if r.done < len(f.batch) {
			n = f.at[r.done]
		}
		if n > 0 {
			if err := w.spool.consume(f.ends[n-1], n); err != nil {
				w.log.Error("history store: cannot remove the spool", "err", err)
			}
		}
		w.publish(n)
	} else {
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

// spill moves the n oldest changes in pending to the spool, in order, in
// format 2 (see appendSpoolFrame). When the spool cannot take them, they
// stay in memory.
func (w *writer) spill(n int) {
	if n <= 0 {
		return
	}
	buf := make([]byte, 0, n*1536)
	offs := make([]int, n+1)
	for i := range n {
		offs[i] = len(buf)
		buf = w.pending[i].appendSpoolFrame(buf)
	}
	offs[n] = len(buf)
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = buf[offs[i]:offs[i+1]]
	}
	if err := w.spool.append(payloads); err != nil {
		w.log.Error("history store: cannot spill to the spool; keeping changes in memory", "err", err, "changes", n)
		return
	}
	w.log.Debug("history store: spilled changes to the spool", "changes", n, "spooled", w.spool.unread)
	clear(w.pending[:n])
	w.pending = w.pending[n:]
	w.publish(0)
}

// publish tells Flush and Ready where the writer is: done more changes are
// in Postgres (or given up on).
func (w *writer) publish(done int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written += uint64(done)
	w.spooled = w.spool.unread
	w.oldest = time.Time{}
	switch f := w.flight; {
	case f != nil && !f.spooled && len(f.batch) > 0:
		w.oldest = f.batch[0].recordedAt
	case len(w.pending) > 0:
		w.oldest = w.pending[0].recordedAt
	case len(w.raw) > 0:
		w.oldest = w.raw[0].at
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
	if n := len(w.pending) + len(w.raw) + queued; n > 0 {
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
