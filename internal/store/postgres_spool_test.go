package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A spool of format 1 (JSON) that an earlier version left is written to
// Postgres at start, and goes.
func TestPostgresReplaysJSONSpool(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	spoolDir := t.TempDir()
	recs := conversation(5)
	var file bytes.Buffer
	file.WriteString("switchboard history spool 1\n")
	for i := range recs {
		c := newChange(&recs[i], int64(i+1), tBase, quietLogger())
		file.Write(frameOf(spoolPayloadJSON(t, &c)))
	}
	path := filepath.Join(spoolDir, spoolFile)
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	p := mustOpenPostgres(t, databaseURL, PostgresOptions{SpoolDir: spoolDir})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool of format 1 after the start: %v, want it removed", err)
	}
	checkStored(t, databaseURL, p, recs)
}

// A burst far larger than the queue goes through the spool while batches
// are written, and every change arrives once, whatever the sizes.
func TestPostgresBurstThroughSpool(t *testing.T) {
	tests := []struct {
		name             string
		queue, batch, nc int
	}{
		{"queue smaller than a batch", 3, 8, 40},
		{"queue of a few batches", 10, 4, 60},
		{"batch of one", 5, 1, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			databaseURL := testDatabaseURL(t)
			spoolDir := t.TempDir()
			p := mustOpenPostgres(t, databaseURL, PostgresOptions{
				SpoolDir: spoolDir, QueueSize: tt.queue, BatchSize: tt.batch, FlushInterval: time.Millisecond})
			recs := conversation(tt.nc)
			p.Record(recs...) // all at once, as a burst
			mustFlush(t, p)
			checkStored(t, databaseURL, p, recs)
			if n := p.Backlog().Journal; n != 0 {
				t.Errorf("journal after the burst was written holds %d changes, want 0", n)
			}
			if err := p.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(spoolDir, spoolFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("journal after Close with the burst written: %v, want it removed", err)
			}
		})
	}
}
