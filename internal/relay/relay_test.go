package relay_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/eventlog"
	"github.com/switchboard/switchboard/internal/relay"
)

// workers is the relays' (BenchmarkRelay sets it).
var workers = relay.DefaultWorkers

// guard bounds every wait: a failure guard, not a timing assertion.
const guard = 30 * time.Second

type delivered struct {
	identity   string
	supervised bool
	body       string
}

// sink records what a relay delivers.
type sink struct {
	mu   sync.Mutex
	got  []delivered
	lost []int // len(got) at each LostRemote
	c    chan struct{}
}

func (s *sink) LostRemote() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost = append(s.lost, len(s.got))
}

func newSink() *sink { return &sink{c: make(chan struct{}, 100)} }

func (s *sink) DeliverRemote(identity string, _ uint64, supervised bool, body []byte) {
	s.mu.Lock()
	s.got = append(s.got, delivered{identity, supervised, string(body)})
	s.mu.Unlock()
	s.c <- struct{}{}
}

func (s *sink) wait(t *testing.T, n int) []delivered {
	t.Helper()
	timeout := time.After(guard)
	for {
		s.mu.Lock()
		got := append([]delivered(nil), s.got...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-s.c:
		case <-timeout:
			t.Fatalf("%d deliveries, want %d", len(got), n)
		}
	}
}

// openLog opens the test's event log on a connection of its own.
func openLog(t testing.TB, url, stream string) (*eventlog.Log, *nats.Conn) {
	t.Helper()
	nc, js := natstest.Connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	l, err := eventlog.Open(ctx, js, eventlog.Config{Stream: stream, Subject: "sbtest." + stream, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	return l, nc
}

// startNode starts a relay for node on its own connection.
func startNode(t testing.TB, url, stream, node string, snap calls.Snapshot) (*relay.Relay, *sink) {
	t.Helper()
	l, nc := openLog(t, url, stream)
	s := newSink()
	r, err := relay.Start(relay.Config{Node: node, Log: l, Conn: nc, SnapshotSubject: "sbtest." + stream + "_snapshot",
		Sink: s, Snapshot: func() calls.Snapshot { return snap }, QueueSize: 1 << 16, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, s
}

// startWith starts a relay for node with the sink.
func startWith(l *eventlog.Log, nc *nats.Conn, node, stream string, s relay.Sink) (*relay.Relay, error) {
	return relay.Start(relay.Config{Node: node, Log: l, Conn: nc, SnapshotSubject: "sbtest." + stream + "_snapshot",
		Sink: s, Snapshot: func() calls.Snapshot { return calls.Snapshot{} }})
}

// newStream answers a stream name deleted when the test ends.
func newStream(t testing.TB, url string) string {
	stream := natstest.Name(t, "sbtest_relay_")
	_, js := natstest.Connect(t, url)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream: %v", err)
		}
	})
	return stream
}

// TestRelayGap: a gap in another node's counts (events it dropped or
// failed to append) is told to the sink before the next event; a new
// epoch (the node restarted) or another worker is not a gap.
func TestRelayGap(t *testing.T) {
	url := natstest.SharedURL(t)
	stream := newStream(t, url)
	_, s := startNode(t, url, stream, "b", calls.Snapshot{})
	l, _ := openLog(t, url, stream)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	for _, count := range []string{"e1.0.1", "e1.0.2", "e1.1.7", "e1.0.4", "e2.0.1", "e1.1.8"} {
		if _, err := l.Append(ctx, "8:acs:alice", []byte(count),
			eventlog.WithHeader(relay.NodeHeader, "z"), eventlog.WithHeader(relay.CountHeader, count)); err != nil {
			t.Fatal(err)
		}
	}
	s.wait(t, 6)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lost) != 1 || s.lost[0] != 3 {
		t.Fatalf("told of losses after events %v, want once after 3 (before e1.0.4)", s.lost)
	}
}

// TestRelay: node a's events reach node b's sink in order with their
// supervised flag, and never a's own; b gathers a's snapshot; a's events
// wait while b's snapshot is held.
func TestRelay(t *testing.T) {
	url := natstest.SharedURL(t)
	stream := newStream(t, url)
	a, sinkA := startNode(t, url, stream, "a", calls.Snapshot{Agents: []calls.AgentStatus{{
		Identifier: calls.CommunicationUser("alice"), RawID: "8:acs:alice", Role: calls.RoleAgent, ConnectionState: calls.Connected,
	}}})
	b, sinkB := startNode(t, url, stream, "b", calls.Snapshot{})

	a.Relay("8:acs:alice", true, []byte(`{"n":1}`))
	a.Relay("8:acs:alice", false, []byte(`{"n":2}`))
	a.Relay("8:acs:dave", true, []byte(`{"n":3}`))
	got := sinkB.wait(t, 3)
	var alice []delivered
	for _, d := range got {
		if d.identity == "8:acs:alice" {
			alice = append(alice, d)
		}
	}
	if len(alice) != 2 || alice[0] != (delivered{"8:acs:alice", true, `{"n":1}`}) || alice[1] != (delivered{"8:acs:alice", false, `{"n":2}`}) {
		t.Fatalf("b got %v", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	snaps, release := b.Snapshots(ctx)
	if len(snaps) != 1 || len(snaps[0].Agents) != 1 || snaps[0].Agents[0].RawID != "8:acs:alice" {
		release()
		t.Fatalf("b gathered %+v, want a's", snaps)
	}
	a.Relay("8:acs:alice", true, []byte(`{"n":4}`))
	for deadline := time.Now().Add(guard); a.Stats().Appended < 4; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a appended %+v", a.Stats())
		}
	}
	// Held: b's sink gets nothing until release. Bob's event, appended
	// after a's, reaches a: the stream is past a's event.
	b.Relay("8:acs:bob", true, []byte(`{"n":5}`))
	sinkA.wait(t, 1)
	sinkB.mu.Lock()
	n := len(sinkB.got)
	sinkB.mu.Unlock()
	release()
	if n != 3 {
		t.Fatalf("b's sink got %d events while held, want 3", n)
	}
	if got := sinkB.wait(t, 4); got[3].body != `{"n":4}` {
		t.Fatalf("b got %v after release", got)
	}
	if got := sinkA.wait(t, 1); len(got) != 1 || got[0].identity != "8:acs:bob" {
		t.Fatalf("a got %v, want bob's only (never its own)", got)
	}
	if sinkA.lost != nil || sinkB.lost != nil {
		t.Fatalf("losses told: a %v, b %v", sinkA.lost, sinkB.lost)
	}
}

// TestRelayRestartedNode: a node that restarts with the same id within the
// stream's duplicate window still has its events appended (its message
// ids are not its first run's again) and followed by the others.
func TestRelayRestartedNode(t *testing.T) {
	url := natstest.SharedURL(t)
	stream := newStream(t, url)
	_, sinkB := startNode(t, url, stream, "b", calls.Snapshot{})
	for run := range 2 {
		a, _ := startNode(t, url, stream, "a", calls.Snapshot{})
		for i := range 3 {
			a.Relay("8:acs:alice", false, []byte{'0' + byte(run), '0' + byte(i)})
		}
		if err := a.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := a.Stats(); st.Appended != 3 {
			t.Fatalf("run %d appended %+v, want 3", run, st)
		}
	}
	got := sinkB.wait(t, 6)
	if len(got) != 6 || got[3].body != "10" || got[5].body != "12" {
		t.Fatalf("b got %v, want both runs' 3 events", got)
	}
}
