package store

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// journal is the journaler goroutine: it takes what Record queued, encodes
// it, appends it to the journal (the spool file) with one write and one
// fsync for all that waited (group commit), and only then hands it to the
// writer and counts it journaled, which is what Durable waits for. While
// it fsyncs, the next changes queue up, so a burst costs one fsync per
// BatchSize changes, not one per change. It returns once Close was called
// and everything Record took is journaled, or when ctx ends.
func (p *Postgres) journal(ctx context.Context) {
	j := journaler{Postgres: p}
	defer j.stop()
	var spare []queued
	for {
		p.mu.Lock()
		q, closed := p.queue, p.closed
		if len(q) > 0 {
			p.queue, spare = spare[:0], nil
		}
		p.mu.Unlock()
		if len(q) == 0 {
			if closed {
				return
			}
			select {
			case <-p.journalWake:
			case <-p.closing:
			case <-ctx.Done():
				return
			}
			continue
		}
		for rest := q; len(rest) > 0; {
			n := min(len(rest), p.opt.BatchSize)
			if !j.append(ctx, rest[:n]) {
				return
			}
			rest = rest[n:]
		}
		clear(q)
		if cap(q) <= 2*p.opt.QueueSize {
			spare = q[:0]
		}
	}
}

// journaler is the journaler goroutine's own state.
type journaler struct {
	*Postgres
	buf      []byte // the frames of one append, reused
	failures int    // appends failed in a row
}

// append encodes qs, journals them and hands them to the writer. It
// retries a failed append with backoff, and answers false when ctx ended
// before the append succeeded.
func (j *journaler) append(ctx context.Context, qs []queued) bool {
	batch := make([]change, len(qs))
	if want := len(qs) * frameSizeHint; cap(j.buf) < want {
		j.buf = make([]byte, 0, want)
	}
	buf := j.buf[:0]
	for i := range qs {
		q := &qs[i]
		batch[i] = newChange(&q.rec, q.version, q.at, j.log)
		start := openFrame(&buf)
		buf = batch[i].appendSpoolFrame(buf)
		sealFrame(buf, start)
		batch[i].journalEnd = int64(len(buf)) // relative to buf for now
	}
	j.buf = buf
	for {
		start, gen, err := j.spool.appendFramed(buf, len(batch))
		if err == nil {
			for i := range batch {
				batch[i].journalEnd += start
				batch[i].journalGen = gen
			}
			if j.failures > 0 {
				j.log.Info("history store: journaling again", "failed_appends", j.failures)
				j.failures = 0
			}
			break
		}
		if errors.Is(err, errSpoolReplaced) {
			continue
		}
		j.failures++
		if j.failures == 1 {
			j.log.Error("history store: cannot write to the journal; changes wait unacknowledged", "err", err, "path", j.spool.path)
		}
		wait := min(50*time.Millisecond<<min(j.failures, 7), 5*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	j.mu.Lock()
	j.journaled += uint64(len(batch))
	j.handoff = append(j.handoff, batch...)
	close(j.journalProgress)
	j.journalProgress = make(chan struct{})
	j.mu.Unlock()
	j.nudge()
	return true
}

// frameSizeHint is about how many bytes a change takes in the journal, to
// size the append buffer once.
const frameSizeHint = 1024

// stop notes that the journaler returned, waking whoever waits in Durable
// and the writer.
func (j *journaler) stop() {
	j.mu.Lock()
	j.journalStopped = true
	close(j.journalProgress)
	j.journalProgress = make(chan struct{})
	j.mu.Unlock()
	close(j.journalDone)
	j.nudge()
}

// Durable returns once every change recorded before it is in the journal
// on disk (fsynced), so that a crash from then on loses none of them: the
// next start writes them to Postgres. It answers an error when ctx ends
// first, or when the store closed before journaling them.
func (p *Postgres) Durable(ctx context.Context) error {
	p.mu.Lock()
	target := p.enqueued
	p.mu.Unlock()
	for {
		p.mu.Lock()
		journaled, ch, stopped := p.journaled, p.journalProgress, p.journalStopped
		p.mu.Unlock()
		if journaled >= target {
			return nil
		}
		if stopped {
			return calls.Errorf(calls.CodeUnavailable, "the history store closed with %d changes not journaled", target-journaled)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return &calls.Error{Code: calls.CodeUnavailable, Op: "durable", Message: "the journal did not take the changes in time", Err: ctx.Err()}
		}
	}
}
