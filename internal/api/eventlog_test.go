package api_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/api"
)

// clock is a test's hand-moved time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func mustAppend(t *testing.T, l api.EventLog, stream string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		seq, err := l.Append(stream, fmt.Appendf(nil, `{"n":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// TestMemoryLogSince: what Since answers about a stream of ten events, of
// which the retention (by count) holds the last four.
func TestMemoryLogSince(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	l := api.NewMemoryLog(api.Retention{MaxAge: time.Minute, MaxEvents: 4}, c.now)
	last0, err := l.Last("a")
	if err != nil {
		t.Fatal(err)
	}
	seqs := mustAppend(t, l, "a", 10)
	for i, seq := range seqs {
		if seq != last0+uint64(i)+1 {
			t.Fatalf("seq %d is %d, want %d", i, seq, last0+uint64(i)+1)
		}
	}
	last := seqs[9]
	tests := []struct {
		since uint64
		want  int // how many come back; -1: ErrGone
	}{
		{last, 0},
		{last - 1, 1},
		{last - 4, 4},
		{last - 5, -1}, // its next is no longer held
		{last0, -1},
		{0, -1},
		{last + 1, -1}, // another log's
	}
	for _, tt := range tests {
		got, err := l.Since("a", tt.since)
		if tt.want < 0 {
			if !errors.Is(err, api.ErrGone) {
				t.Errorf("Since(%d) = %d events, %v; want ErrGone", tt.since, len(got), err)
			}
			continue
		}
		if err != nil || len(got) != tt.want {
			t.Fatalf("Since(%d) = %d events, %v; want %d", tt.since, len(got), err, tt.want)
		}
		for i, e := range got {
			if want := tt.since + uint64(i) + 1; e.Seq != want || string(e.Payload) != fmt.Sprintf(`{"n":%d}`, want-last0-1) {
				t.Errorf("Since(%d)[%d] = %d %s, want seq %d", tt.since, i, e.Seq, e.Payload, want)
			}
		}
	}
}

// TestMemoryLogAge: events older than the retention's age are dropped;
// a stream idle past it is forgotten, and begun again past every seq it
// gave; a new log (a restart) starts past the old one's seqs.
func TestMemoryLogAge(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	l := api.NewMemoryLog(api.Retention{MaxAge: time.Minute, MaxEvents: 100}, c.now)
	a := mustAppend(t, l, "a", 3)
	c.t = c.t.Add(40 * time.Second)
	b := mustAppend(t, l, "b", 2)
	mustAppend(t, l, "a", 1)
	c.t = c.t.Add(30 * time.Second) // a's first three are 70 s old
	if _, err := l.Since("a", a[0]); !errors.Is(err, api.ErrGone) {
		t.Fatalf("Since a's first: %v, want ErrGone", err)
	}
	if got, err := l.Since("a", a[2]); err != nil || len(got) != 1 {
		t.Fatalf("Since a's third: %d events, %v; want the fourth", len(got), err)
	}
	if n := l.Streams(); n != 2 {
		t.Fatalf("%d streams, want 2", n)
	}

	// Two minutes on, both are idle: the next append forgets them.
	c.t = c.t.Add(2 * time.Minute)
	z := mustAppend(t, l, "z", 1)
	if n := l.Streams(); n != 1 {
		t.Fatalf("%d streams after the idle ones' time, want 1", n)
	}
	again := mustAppend(t, l, "b", 1)
	if again[0] <= b[1] {
		t.Fatalf("b begun again at seq %d, not past its old last %d", again[0], b[1])
	}
	if _, err := l.Since("b", b[0]); !errors.Is(err, api.ErrGone) {
		t.Fatalf("Since b's old first: %v, want ErrGone", err)
	}

	c.t = c.t.Add(time.Second)
	restarted := api.NewMemoryLog(api.Retention{}, c.now)
	last, err := restarted.Last("z")
	if err != nil {
		t.Fatal(err)
	}
	if last <= z[0] {
		t.Fatalf("a restarted log's seq %d is not past the old one's %d", last, z[0])
	}
	if _, err := restarted.Since("z", z[0]); !errors.Is(err, api.ErrGone) {
		t.Fatalf("the old seq on a restarted log: %v, want ErrGone", err)
	}
}
