package relay_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/relay"
)

// countSink counts deliveries and signals when it reaches want.
type countSink struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (s *countSink) DeliverRemote(string, uint64, bool, []byte) {
	if s.n.Add(1) == s.want {
		close(s.done)
	}
}
func (s *countSink) LostRemote() {}

// feedCountSink counts the feed's deliveries (the supervisors' stream) and
// signals when it reaches want.
type feedCountSink struct{ countSink }

func (s *feedCountSink) DeliverRemote(string, uint64, bool, []byte) {}
func (s *feedCountSink) StartSupervised(uint64)                     {}
func (s *feedCountSink) LostSupervised(uint64)                      {}
func (s *feedCountSink) DeliverSupervised(uint64, []byte) {
	s.countSink.DeliverRemote("", 0, true, nil)
}

// BenchmarkRelay measures an event of 270 bytes from one node to another
// through the relay (appended to the JetStream log by 1, 4 and 16
// workers, followed by the other node), against the baseline of a plain NATS subject
// (published by one connection, received by another), b.N events of 64
// identities at a time; and with the supervised feed (feed-workers=…: each
// event appended to the log, then published on the feed, and received by
// the other node from the feed), the cost the feed adds per supervised
// event against relay-workers=… in the same run:
//
//	cat /proc/loadavg; go test -run '^$' -bench BenchmarkRelay -benchtime 3000x ./internal/relay/
func BenchmarkRelay(b *testing.B) {
	url := natstest.SharedURL(b)
	body := []byte(`{"type":"stateChanged","agentId":"8:acs:agent","callId":"` + strings.Repeat("x", 200) + `"}`)
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = "8:acs:agent" + string(rune('A'+i%26)) + string(rune('a'+i/26))
	}
	b.Run("subject", func(b *testing.B) {
		pub, _ := natstest.Connect(b, url)
		sub, _ := natstest.Connect(b, url)
		subject := natstest.Name(b, "sbbench.relay.")
		var n atomic.Int64
		done := make(chan struct{})
		want := int64(b.N)
		s, err := sub.Subscribe(subject, func(*nats.Msg) {
			if n.Add(1) == want {
				close(done)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.SetPendingLimits(-1, -1)
		if err := sub.Flush(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		for i := range b.N {
			if err := pub.PublishMsg(&nats.Msg{Subject: subject, Header: nats.Header{"Sb-Node": {"a"}, "Sb-Agent": {ids[i%len(ids)]}}, Data: body}); err != nil {
				b.Fatal(err)
			}
		}
		waitDone(b, done)
	})
	benchFeed(b, url, body, ids)
	for _, w := range []int{1, 4, 16} {
		b.Run("relay-workers="+strconv.Itoa(w), func(b *testing.B) {
			workers = w
			defer func() { workers = relay.DefaultWorkers }()
			stream := newStream(b, url)
			a, _ := startNode(b, url, stream, "a", calls.Snapshot{})
			l, nc := openLog(b, url, stream)
			sink := &countSink{want: int64(b.N), done: make(chan struct{})}
			r, err := startWith(l, nc, "b", stream, sink)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			relayAll(b, a, body, ids, sink.done)
		})
	}
}

func benchFeed(b *testing.B, url string, body []byte, ids []string) {
	for _, w := range []int{1, 16} {
		b.Run("feed-workers="+strconv.Itoa(w), func(b *testing.B) {
			workers = w
			defer func() { workers = relay.DefaultWorkers }()
			stream := newStream(b, url)
			feed := newFeed(b, url)
			a, _ := startFeedNode(b, url, stream, "a", feed, func(c *relay.Config) { c.Workers, c.QueueSize = w, 1<<16 })
			l, nc := openLog(b, url, stream)
			sink := &feedCountSink{countSink{want: int64(b.N), done: make(chan struct{})}}
			r, err := relay.Start(relay.Config{Node: "b", Log: l, Conn: nc, SnapshotSubject: "sbtest." + stream + "_snapshot",
				Feed: feed, Sink: sink, Snapshot: func() calls.Snapshot { return calls.Snapshot{} }})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			relayAll(b, a, body, ids, sink.done)
		})
	}
}

// relayAll times a relaying b.N events of body (for ids in turn) until
// done, the receiving sink's, is closed; a must drop and fail none.
func relayAll(b *testing.B, a *relay.Relay, body []byte, ids []string, done chan struct{}) {
	b.Helper()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := range b.N {
		a.Relay(ids[i%len(ids)], true, body)
	}
	waitDone(b, done)
	b.StopTimer()
	if st := a.Stats(); st.Dropped != 0 || st.Failed != 0 {
		b.Fatalf("relay: %+v", st)
	}
}

func waitDone(b *testing.B, done chan struct{}) {
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("not every event arrived")
	}
}
