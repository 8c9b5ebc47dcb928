package udpbatch

import (
	"sync"
	"sync/atomic"
)

// Group is a set of Conns whose writes wait while the group is held: a
// sender holds it around a burst of writes (to any of the Conns) so that
// they leave in batches. Holds nest and may come from many goroutines; the
// last Release wakes every Conn's flusher that has datagrams waiting. A
// nil *Group is never held.
type Group struct {
	holds atomic.Int32
	mu    sync.Mutex
	conns []*Conn
	gone  Stats // the counts of Conns closed
}

// Stats sums the counts of every Conn made with the group.
func (g *Group) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	sum := g.gone
	for _, c := range g.conns {
		sum = sum.plus(c.Stats())
	}
	return sum
}

// Hold delays the group's writes until the matching Release (or until a
// Conn has a full batch waiting).
func (g *Group) Hold() {
	if g != nil {
		g.holds.Add(1)
	}
}

// Release ends a Hold; the last one sends what waits.
func (g *Group) Release() {
	if g == nil || g.holds.Add(-1) > 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		// A writer that queued before this point is seen here; one that
		// queues after it sees no hold and wakes its flusher itself.
		if c.pending() {
			c.signal()
		}
	}
}

func (g *Group) holding() bool { return g != nil && g.holds.Load() > 0 }

func (g *Group) add(c *Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns = append(g.conns, c)
}

func (g *Group) remove(c *Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.conns {
		if x == c {
			g.gone = g.gone.plus(c.Stats())
			g.conns = append(g.conns[:i], g.conns[i+1:]...)
			return
		}
	}
}
