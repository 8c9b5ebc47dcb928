package api

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
)

// TestQueueBytes: a client's queue is bounded in bytes, but its snapshot,
// however large, does not count: a supervisor's may be megabytes, and
// events may follow it before the writer has taken it.
func TestQueueBytes(t *testing.T) {
	const limit = 4 << 10
	h := NewHub(nil, 0)
	h.SetLimits(HubLimits{QueueBytes: limit})
	c := newClient(h, nil, nil, Session{}, wsTimings{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	event := bytes.Repeat([]byte("x"), 1<<10)

	c.enqueue(1, bytes.Repeat([]byte("s"), 64<<10)) // the snapshot
	seq := uint64(1)
	for range limit / len(event) {
		seq++
		c.enqueue(seq, event)
	}
	if c.isClosing() {
		t.Fatalf("closed with %d bytes of events queued behind the snapshot, the limit is %d", limit, limit)
	}
	c.enqueue(seq+1, event)
	if !c.isClosing() || c.closeCode != closeTryAgainLater {
		t.Fatalf("past the limit: closing %v with %d, want 1013", c.isClosing(), c.closeCode)
	}
	if got, want := len(c.queue), 1+limit/len(event); got != want {
		t.Errorf("%d queued, want %d: the event past the limit is not queued", got, want)
	}
}
