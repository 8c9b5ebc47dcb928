package store

// Backlog is how much history waits to be written: the history store's
// queue depth, for the metrics.
type Backlog struct {
	Memory  int // changes taken by Record and not yet written or spooled
	Spooled int // changes waiting in the spool file
}

// Backlog answers how many changes wait, in memory and in the spool.
func (p *Postgres) Backlog() Backlog {
	p.mu.Lock()
	defer p.mu.Unlock()
	waiting := int(p.enqueued - p.written)
	return Backlog{Memory: max(0, waiting-p.spooled), Spooled: p.spooled}
}

// Backlog answers nothing waiting: the embedded store writes as Record
// runs.
func (m *Memory) Backlog() Backlog { return Backlog{} }
