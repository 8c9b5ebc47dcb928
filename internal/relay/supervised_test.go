package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/eventlog"
	"github.com/switchboard/switchboard/internal/relay"
)

// feedSink is a sink that also takes the supervised feed.
type feedSink struct {
	*sink
	mu    sync.Mutex
	start uint64
	feed  []relay.Event
	lost  []uint64
}

func (s *feedSink) StartSupervised(last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.start = last
}

func (s *feedSink) DeliverSupervised(seq uint64, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feed = append(s.feed, relay.Event{Seq: seq, Body: body})
}

func (s *feedSink) LostSupervised(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost = append(s.lost, seq)
}

// waitFeed waits until cond holds for what the sink got from the feed.
func (s *feedSink) waitFeed(t *testing.T, what string, cond func(feed []relay.Event, lost []uint64) bool) {
	t.Helper()
	for deadline := time.Now().Add(guard); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		ok := cond(s.feed, s.lost)
		s.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
	}
}

// newFeed opens a feed on a stream of its own, deleted when the test ends.
func newFeed(t testing.TB, url string) *eventlog.Feed {
	t.Helper()
	name := newStream(t, url)
	_, js := natstest.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	f, err := eventlog.OpenFeed(ctx, js, eventlog.FeedConfig{Stream: name, Subject: "sbtest." + name, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// startFeedNode starts a relay for node with the feed.
func startFeedNode(t testing.TB, url, stream, node string, feed *eventlog.Feed, edit func(*relay.Config)) (*relay.Relay, *feedSink) {
	t.Helper()
	l, nc := openLog(t, url, stream)
	s := &feedSink{sink: newSink()}
	cfg := relay.Config{Node: node, Log: l, Conn: nc, SnapshotSubject: "sbtest." + stream + "_snapshot", Feed: feed,
		Sink: s, Snapshot: func() calls.Snapshot { return calls.Snapshot{} }}
	if edit != nil {
		edit(&cfg)
	}
	r, err := relay.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, s
}

// TestRelayFeed: with a feed, every node (the publishing one too) gets the
// supervised events in one order with the same seqs, counted from the
// feed's last when it started; the log's followers no longer hand them on
// as supervised; SupervisedSince reads them back by those seqs, and a seq
// past the last, or a range across a loss marker (a full queue dropped a
// supervised event), answers ErrGone; every node is told of the marker.
func TestRelayFeed(t *testing.T) {
	url := natstest.SharedURL(t)
	stream := newStream(t, url)
	feed := newFeed(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if _, err := feed.Publish(ctx, []byte(`{"before":1}`), nil, ""); err != nil { // before any node
		t.Fatal(err)
	}
	a, sinkA := startFeedNode(t, url, stream, "a", feed, nil)
	b, sinkB := startFeedNode(t, url, stream, "b", feed, nil)
	if sinkA.start != 1 || sinkB.start != 1 {
		t.Fatalf("started after %d and %d, want 1", sinkA.start, sinkB.start)
	}
	a.Relay("8:acs:alice", true, []byte(`{"n":1}`))
	a.Relay("8:acs:alice", false, []byte(`{"n":2}`))
	b.Relay("8:acs:bob", true, []byte(`{"n":3}`))
	a.Relay("8:acs:alice", true, []byte(`{"n":4}`))
	both := func(feed []relay.Event, _ []uint64) bool { return len(feed) == 3 }
	sinkA.waitFeed(t, "a's feed", both)
	sinkB.waitFeed(t, "b's feed", both)
	sinkA.mu.Lock()
	gotA := slices.Clone(sinkA.feed)
	sinkA.mu.Unlock()
	sinkB.mu.Lock()
	gotB := slices.Clone(sinkB.feed)
	sinkB.mu.Unlock()
	var bodies []string
	for i, e := range gotA {
		if e.Seq != uint64(2+i) || string(gotB[i].Body) != string(e.Body) || gotB[i].Seq != e.Seq {
			t.Fatalf("a got %v, b %v: want the same seqs 2, 3, 4", gotA, gotB)
		}
		bodies = append(bodies, string(e.Body))
	}
	if i1, i4 := slices.Index(bodies, `{"n":1}`), slices.Index(bodies, `{"n":4}`); i1 < 0 || i4 < i1 || !slices.Contains(bodies, `{"n":3}`) {
		t.Fatalf("the feed has %v: want 1, 3 and 4, alice's in order", bodies)
	}
	for _, d := range sinkB.wait(t, 3) {
		if d.supervised {
			t.Errorf("b's log follower handed on %v as supervised: the feed does", d)
		}
	}

	check := func(r *relay.Relay, since uint64, want []relay.Event) {
		t.Helper()
		got, err := r.SupervisedSince(ctx, since, 100)
		if want == nil {
			if !errors.Is(err, relay.ErrGone) {
				t.Errorf("since %d: %v, %v; want ErrGone", since, got, err)
			}
			return
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("since %d: %v, %v; want %v", since, got, err, want)
		}
	}
	check(b, 2, gotA[1:])
	check(a, 4, []relay.Event{})
	check(a, 5, nil)
	if _, err := a.SupervisedSince(ctx, 1, 2); !errors.Is(err, relay.ErrGone) {
		t.Errorf("3 events after 1 with a limit of 2: %v, want ErrGone", err)
	}

	// A node whose queue holds one event drops some of a burst: a marker
	// follows, every node is told of it, and no range crosses it.
	c, sinkC := startFeedNode(t, url, stream, "c", feed, func(cfg *relay.Config) { cfg.Workers, cfg.QueueSize = 1, 1 })
	for deadline := time.Now().Add(guard); c.Stats().Dropped == 0; {
		if time.Now().After(deadline) {
			t.Fatal("c dropped nothing")
		}
		c.Relay("8:acs:carol", true, []byte(`{"burst":1}`))
	}
	marked := func(_ []relay.Event, lost []uint64) bool { return len(lost) > 0 }
	sinkA.waitFeed(t, "a told of the loss", marked)
	sinkC.waitFeed(t, "c told of the loss", marked)
	sinkA.mu.Lock()
	m := sinkA.lost[0]
	sinkA.mu.Unlock()
	check(a, 4, nil)
	check(b, m-1, nil)
	if _, err := a.SupervisedSince(ctx, m, 1<<20); err != nil && !errors.Is(err, relay.ErrGone) {
		t.Errorf("since the marker %d: %v", m, err)
	}
}
