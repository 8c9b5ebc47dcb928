package queue

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// waitCache is one node's copy of the bucket's waiting calls, fed by a
// key-value watcher and by this node's own writes (so that it reads its
// writes at once), kept in line per queue: the engine's stats and a new
// call's position read it instead of listing the bucket. Other nodes'
// changes reach it as fast as the watcher delivers them.
type waitCache struct {
	watcher jetstream.KeyWatcher
	ready   chan struct{} // closed once the watcher delivered the bucket's values
	done    chan struct{} // closed when the watcher stopped

	mu    sync.Mutex
	byKey map[string]cachedWait
	lines map[string]*line
	gone  map[string]uint64 // keys deleted here, not yet seen deleted: the last revision known
}

type cachedWait struct {
	w   Waiting
	rev uint64
}

// watchWaiting starts the cache's watcher; its goroutine ends when Stop
// or the connection's end closes the watcher.
func watchWaiting(ctx context.Context, kv jetstream.KeyValue) (*waitCache, error) {
	w, err := kv.Watch(ctx, "wait.>")
	if err != nil {
		return nil, unavailable("watch waiting calls", err)
	}
	c := &waitCache{watcher: w, ready: make(chan struct{}), done: make(chan struct{}),
		byKey: map[string]cachedWait{}, lines: map[string]*line{}, gone: map[string]uint64{}}
	go c.run()
	return c, nil
}

func (c *waitCache) run() {
	defer close(c.done)
	initial := true
	for e := range c.watcher.Updates() {
		if e == nil {
			if initial {
				initial = false
				close(c.ready)
			}
			continue
		}
		switch e.Operation() {
		case jetstream.KeyValuePut:
			var w Waiting
			if json.Unmarshal(e.Value(), &w) == nil {
				c.put(e.Key(), w, e.Revision())
			}
		default:
			c.del(e.Key(), true)
		}
	}
	if initial {
		close(c.ready)
	}
}

// put files w under key at revision rev, unless the cache knows a later
// one or deleted the key since.
func (c *waitCache) put(key string, w Waiting, rev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byKey[key]; ok {
		if old.rev >= rev {
			return
		}
		c.lines[old.w.Queue].remove(old.w.EnteredAt, old.w.CallID)
	}
	if last, ok := c.gone[key]; ok && rev <= last {
		return
	}
	c.byKey[key] = cachedWait{w: w, rev: rev}
	l := c.lines[w.Queue]
	if l == nil {
		l = &line{}
		c.lines[w.Queue] = l
	}
	l.add(w.EnteredAt, w.CallID)
}

// del removes key: seen is true for the watcher's delete, false for this
// node's (which the watcher will deliver later).
func (c *waitCache) del(key string, seen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.byKey[key]
	if ok {
		delete(c.byKey, key)
		c.lines[old.w.Queue].remove(old.w.EnteredAt, old.w.CallID)
	}
	switch {
	case seen:
		delete(c.gone, key)
	case ok:
		c.gone[key] = old.rev
	}
}

// summary answers queue's summary; false when the cache cannot (the
// watcher stopped, or has not delivered the bucket yet).
func (c *waitCache) summary(queue string) (Summary, bool) {
	select {
	case <-c.done:
		return Summary{}, false
	case <-c.ready:
	default:
		return Summary{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lines[queue]
	if l == nil {
		return Summary{}, true
	}
	oldest, _ := l.oldest()
	return Summary{Count: l.len(), Oldest: oldest}, true
}

// stop stops the watcher and waits for its goroutine (which ends at once
// when the connection closed before).
func (c *waitCache) stop() error {
	err := c.watcher.Stop()
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		if err != nil {
			return err
		}
		return errors.New("the watcher did not stop within 5 s")
	}
}
