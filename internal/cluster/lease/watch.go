package lease

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch reports ownership changes in the bucket, every node's, starting
// with the current owner of each held identity (Changes with a Node). A
// release is a Change with no Node; an expiry (see the package doc) one
// with Expired set. The channel is closed when ctx ends, when Close is
// called, or when the watch fails; its reader must keep up (the watch
// waits for it).
func (l *Leases) Watch(ctx context.Context) (<-chan Change, error) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(l.ctx, cancel)
	w, err := l.kv.WatchAll(ctx)
	if err != nil {
		stop()
		cancel()
		return nil, fmt.Errorf("lease: watch %s: %w", l.cfg.Bucket, err)
	}
	out := make(chan Change)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cancel()
		defer stop()
		defer close(out)
		defer func() { _ = w.Stop() }()
		l.watch(ctx, w, out)
	}()
	return out, nil
}

// live is a key's last seen revision and when it expires unless renewed.
type live struct {
	rev      uint64
	deadline time.Time
}

func (l *Leases) watch(ctx context.Context, w jetstream.KeyWatcher, out chan<- Change) {
	lives := map[string]live{}
	initial := true
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rearm := func() {
		var first time.Time
		for _, lv := range lives {
			if first.IsZero() || lv.deadline.Before(first) {
				first = lv.deadline
			}
		}
		if first.IsZero() {
			timer.Reset(time.Hour)
			return
		}
		timer.Reset(max(time.Until(first), 0))
	}
	send := func(c Change) bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the end of the initial values
				initial = false
				continue
			}
			id, err := identityOf(e.Key())
			if err != nil {
				l.log.Warn("lease watch: skipping a foreign key", "err", err)
				continue
			}
			c := Change{Identity: id, Revision: e.Revision()}
			if e.Operation() == jetstream.KeyValuePut {
				c.Node = string(e.Value())
				// Local receive time (immune to clock skew), or for an
				// initial value the server's write time when that is
				// earlier: it may have been written long ago.
				seen := time.Now()
				if created := e.Created(); initial && created.Before(seen) {
					seen = created
				}
				lives[id] = live{rev: e.Revision(), deadline: seen.Add(l.cfg.TTL)}
			} else {
				delete(lives, id)
			}
			rearm()
			if !send(c) {
				return
			}
		case now := <-timer.C:
			var expired []Change
			for id, lv := range lives {
				if !lv.deadline.After(now) {
					expired = append(expired, Change{Identity: id, Revision: lv.rev, Expired: true})
					delete(lives, id)
				}
			}
			rearm()
			for _, c := range expired {
				if !send(c) {
					return
				}
			}
		}
	}
}
