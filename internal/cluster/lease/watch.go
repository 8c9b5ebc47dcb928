package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch reports ownership changes in the bucket, every node's, starting
// with the current owner of each held identity (Changes with a Node). A
// release is a Change with no Node; an expiry (see the package doc) one
// with Expired set. The channel is closed when ctx ends, when Close is
// called, or when the watch cannot be re-established; its reader must keep
// up (the watch waits for it).
//
// The bucket's own watch can go quiet across a NATS restart, so Watch
// checks itself: before reporting an expiry it reads the key (a newer
// revision means the watch fell behind; an unreachable server postpones
// the verdict), and every TTL it compares the bucket's last sequence with
// the last revision it saw. Either sign of falling behind restarts the
// watch, whose initial values then bring it up to date; a lease that
// vanished meanwhile is reported as expired.
func (l *Leases) Watch(ctx context.Context) (<-chan Change, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.ctx, cancel)
	kw, err := l.kv.WatchAll(ctx)
	if err != nil {
		stop()
		cancel()
		return nil, fmt.Errorf("lease: watch %s: %w", l.cfg.Bucket, err)
	}
	out := make(chan Change)
	w := &watch{l: l, ctx: ctx, out: out, kw: kw, lives: map[string]live{}, initial: true}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cancel()
		defer stop()
		defer close(out)
		defer func() { _ = w.kw.Stop() }()
		w.run()
	}()
	return out, nil
}

// live is a key's last seen revision and when it expires unless renewed.
type live struct {
	node     string
	rev      uint64
	deadline time.Time
}

// watch is one Watch's state, owned by its goroutine.
type watch struct {
	l   *Leases
	ctx context.Context
	out chan<- Change
	kw  jetstream.KeyWatcher

	lives   map[string]live
	maxSeen uint64          // the highest revision seen
	initial bool            // reading the watcher's initial values
	fresh   map[string]bool // keys seen in this round of initial values
	behind  uint64          // the bucket's last sequence at the previous check, when ahead of maxSeen
}

func (w *watch) run() {
	ttl := w.l.cfg.TTL
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	check := time.NewTicker(ttl)
	defer check.Stop()
	for {
		w.rearm(timer)
		select {
		case <-w.ctx.Done():
			return
		case e, ok := <-w.kw.Updates():
			if !ok {
				if !w.restart() {
					return
				}
				continue
			}
			if !w.update(e) {
				return
			}
		case now := <-timer.C:
			if !w.expire(now) {
				return
			}
		case <-check.C:
			if w.fellBehind() && !w.restart() {
				return
			}
		}
	}
}

func (w *watch) rearm(timer *time.Timer) {
	var first time.Time
	for _, lv := range w.lives {
		if first.IsZero() || lv.deadline.Before(first) {
			first = lv.deadline
		}
	}
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	if first.IsZero() {
		timer.Reset(time.Hour)
		return
	}
	timer.Reset(max(time.Until(first), 0))
}

func (w *watch) send(c Change) bool {
	select {
	case w.out <- c:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// update applies one entry (nil ends the initial values).
func (w *watch) update(e jetstream.KeyValueEntry) bool {
	if e == nil {
		w.initial = false
		// Leases that vanished while the watch was blind.
		for id, lv := range w.lives {
			if w.fresh != nil && !w.fresh[id] {
				delete(w.lives, id)
				if !w.send(Change{Identity: id, Revision: lv.rev, Expired: true}) {
					return false
				}
			}
		}
		w.fresh = nil
		return true
	}
	w.maxSeen = max(w.maxSeen, e.Revision())
	id, err := identityOf(e.Key())
	if err != nil {
		w.l.log.Warn("lease watch: skipping a foreign key", "err", err)
		return true
	}
	if w.fresh != nil {
		w.fresh[id] = true
	}
	c := Change{Identity: id, Revision: e.Revision()}
	if e.Operation() != jetstream.KeyValuePut {
		_, known := w.lives[id]
		delete(w.lives, id)
		if w.initial && !known {
			return true // an old release, already reported or never live
		}
		return w.send(c)
	}
	c.Node = ownerOf(e.Value())
	// Local receive time (immune to clock skew), or for an initial value
	// the server's write time when that is earlier: it may be old.
	seen := time.Now()
	if created := e.Created(); w.initial && created.Before(seen) {
		seen = created
	}
	prev, known := w.lives[id]
	w.lives[id] = live{node: c.Node, rev: e.Revision(), deadline: seen.Add(w.l.cfg.TTL)}
	if known && prev.rev == e.Revision() {
		return true // seen before a restart of the watch
	}
	return w.send(c)
}

// expire reports the leases whose deadline passed, after reading each:
// a newer revision means the watch fell behind.
func (w *watch) expire(now time.Time) bool {
	ttl := w.l.cfg.TTL
	for id, lv := range w.lives {
		if lv.deadline.After(now) {
			continue
		}
		ctx, cancel := context.WithTimeout(w.ctx, ttl/3)
		e, err := w.l.kv.Get(ctx, Key(id))
		cancel()
		switch {
		case err == nil && e.Revision() != lv.rev:
			return w.restart()
		case err == nil, errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			delete(w.lives, id)
			if !w.send(Change{Identity: id, Revision: lv.rev, Expired: true}) {
				return false
			}
		case w.ctx.Err() != nil:
			return false
		default: // unreachable: decide later
			lv.deadline = now.Add(ttl / 3)
			w.lives[id] = lv
		}
	}
	return true
}

// fellBehind says whether the bucket's last sequence has stayed ahead of
// the last revision seen for a whole check interval.
func (w *watch) fellBehind() bool {
	ctx, cancel := context.WithTimeout(w.ctx, w.l.cfg.TTL/3)
	defer cancel()
	st, err := w.l.kv.Status(ctx)
	if err != nil {
		return false
	}
	info, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return false
	}
	last := info.StreamInfo().State.LastSeq
	wasBehind := w.behind != 0 && w.maxSeen < w.behind
	w.behind = 0
	if last > w.maxSeen {
		w.behind = last
	}
	return wasBehind
}

// restart replaces the bucket watch with a new one, whose initial values
// bring the state up to date.
func (w *watch) restart() bool {
	_ = w.kw.Stop()
	w.behind = 0
	for {
		kw, err := w.l.kv.WatchAll(w.ctx)
		if err == nil {
			w.kw, w.initial, w.fresh = kw, true, map[string]bool{}
			return true
		}
		w.l.log.Warn("lease watch: restarting", "err", err)
		select {
		case <-w.ctx.Done():
			return false
		case <-time.After(w.l.cfg.TTL / 3):
		}
	}
}
