package eventlog_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/eventlog"
)

// TestFeed: a feed numbers its events 1, 2, 3, … for every reader; a
// follower started after some of them gets exactly the later ones, after
// the last it was told of; Range reads back those after a seq, and answers
// ErrGone past the last, past the limit, and for events purged.
func TestFeed(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		cfg := mustConfig(t, url)
		_, js := natstest.Connect(t, url)
		ctx := ctxT(t)
		f, err := eventlog.OpenFeed(ctx, js, eventlog.FeedConfig{Stream: cfg.Stream, Subject: cfg.Subject, Storage: jetstream.MemoryStorage})
		if err != nil {
			t.Fatal(err)
		}
		publish := func(n int) {
			t.Helper()
			seq, err := f.Publish(ctx, fmt.Appendf(nil, "e%d", n), nil, fmt.Sprint("id", n))
			if err != nil || seq != uint64(n) {
				t.Fatalf("publish %d: seq %d, %v", n, seq, err)
			}
		}
		publish(1)
		publish(2)
		if seq, err := f.Publish(ctx, []byte("again"), nil, "id2"); err != nil || seq != 2 {
			t.Fatalf("a repeated id: seq %d, %v; want the first's, 2", seq, err)
		}
		var mu sync.Mutex
		var got []string
		fl, last, err := f.Follow(ctx, func(e eventlog.FeedEntry) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, fmt.Sprintf("%d:%s", e.Seq, e.Payload))
		})
		if err != nil || last != 2 {
			t.Fatalf("follow: last %d, %v", last, err)
		}
		defer fl.Stop()
		publish(3)
		publish(4)
		for deadline := time.Now().Add(guard); ; time.Sleep(time.Millisecond) {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= 2 || time.Now().After(deadline) {
				break
			}
		}
		mu.Lock()
		if fmt.Sprint(got) != "[3:e3 4:e4]" {
			t.Errorf("followed %v, want [3:e3 4:e4]", got)
		}
		mu.Unlock()
		rangeOf := func(seq uint64, limit int) string {
			es, err := f.Range(ctx, seq, limit)
			if errors.Is(err, eventlog.ErrGone) {
				return "gone"
			}
			if err != nil {
				t.Fatalf("range after %d: %v", seq, err)
			}
			out := ""
			for _, e := range es {
				out += fmt.Sprintf("%d:%s ", e.Seq, e.Payload)
			}
			return out
		}
		for _, tc := range []struct {
			seq   uint64
			limit int
			want  string
		}{
			{1, 10, "2:e2 3:e3 4:e4 "}, {4, 10, ""}, {5, 10, "gone"}, {1, 2, "gone"}, {0, 10, "1:e1 2:e2 3:e3 4:e4 "},
		} {
			if got := rangeOf(tc.seq, tc.limit); got != tc.want {
				t.Errorf("range after %d (limit %d): %q, want %q", tc.seq, tc.limit, got, tc.want)
			}
		}
		s, err := js.Stream(ctx, cfg.Stream)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(ctx, jetstream.WithPurgeSequence(3)); err != nil { // 1 and 2 go
			t.Fatal(err)
		}
		if got := rangeOf(1, 10); got != "gone" {
			t.Errorf("range after 1 once 2 was purged: %q, want gone", got)
		}
		if got := rangeOf(2, 10); got != "3:e3 4:e4 " {
			t.Errorf("range after 2 once 1 and 2 were purged: %q", got)
		}
	})
}

// TestAppendAfter: an append after an identity's last event is written
// only while it is still her last; it never retries past another writer.
func TestAppendAfter(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		cfg := mustConfig(t, url)
		a, b := mustOpen(t, url, cfg), mustOpen(t, url, cfg)
		ctx := ctxT(t)
		mustAppend(t, a, "alice", "one")
		last, ok, err := a.Last(ctx, "alice")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		mustAppend(t, b, "alice", "two") // another writer came after it
		if _, err := a.AppendAfter(ctx, last, []byte("end")); !errors.Is(err, eventlog.ErrNotLast) {
			t.Fatalf("after a stale last: %v, want ErrNotLast", err)
		}
		last, _, _ = a.Last(ctx, "alice")
		seq, err := a.AppendAfter(ctx, last, []byte("end"), eventlog.WithHeader("Sb-X", "y"))
		if err != nil || seq != last.Seq+1 {
			t.Fatalf("after the last: %d, %v; want %d", seq, err, last.Seq+1)
		}
		end, _, _ := b.Last(ctx, "alice")
		if string(end.Payload) != "end" || end.Header.Get("Sb-X") != "y" || end.Seq != seq {
			t.Fatalf("alice's last: %+v", end)
		}
		if got := mustAppend(t, a, "alice", "three"); got != seq+1 { // a's cursor rereads
			t.Fatalf("next append: %d, want %d", got, seq+1)
		}
	})
}
