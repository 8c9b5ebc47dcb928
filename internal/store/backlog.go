package store

// Backlog is how much history waits to be written: the history store's
// queue depth, for the metrics.
type Backlog struct {
	Memory  int // changes taken by Record, not yet written, and held in memory
	Spooled int // changes waiting in the journal only (past QueueSize)
	Journal int // changes in the journal not yet written, wherever else they are
}

// Backlog answers how many changes wait, in memory and in the journal.
func (p *Postgres) Backlog() Backlog {
	journal := p.spool.pending()
	p.mu.Lock()
	defer p.mu.Unlock()
	waiting := int(p.enqueued - p.written)
	return Backlog{Memory: max(0, waiting-p.spooled), Spooled: p.spooled, Journal: journal}
}

// Backlog answers nothing waiting: the embedded store writes as Record
// runs.
func (m *Memory) Backlog() Backlog { return Backlog{} }
