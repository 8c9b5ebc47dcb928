package store

import (
	"testing"
)

// TestPostgresBacklog: while Postgres is out of reach the backlog counts
// the changes waiting (in memory and in the spool); once they are written
// it is empty again.
func TestPostgresBacklog(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	px := startProxy(t, databaseURL)
	p := mustOpenPostgres(t, px.url(t, databaseURL), outageOptions(t.TempDir()))
	recs := conversation(6)
	p.Record(recs[:4]...)
	mustFlush(t, p)
	if b := p.Backlog(); b != (Backlog{}) {
		t.Errorf("backlog after a flush = %+v, want none", b)
	}
	px.Cut()
	during := recs[4:]
	for _, r := range during {
		p.Record(r)
	}
	var b Backlog
	waitFor(t, "the backlog to be journaled and wait there", func() bool {
		b = p.Backlog()
		return b.Spooled > 0 && b.Journal == len(during)
	})
	if b.Memory+b.Spooled != len(during) || b.Memory < 0 {
		t.Errorf("backlog during the outage = %+v, want %d changes in all", b, len(during))
	}
	px.Restore()
	mustFlush(t, p)
	if b := p.Backlog(); b != (Backlog{}) {
		t.Errorf("backlog after the outage = %+v, want none", b)
	}
	if b := NewMemory().Backlog(); b != (Backlog{}) {
		t.Errorf("the embedded store's backlog = %+v, want none", b)
	}
}
