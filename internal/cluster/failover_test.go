package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// recorder is a Recoverer that notes the nodes it was asked to recover.
// Its heartbeats are those alive marks: a node in it has a fresh
// heartbeat, as one cut off from NATS but not from Postgres does.
type recorder struct {
	mu    sync.Mutex
	nodes []string
	asked chan string
	alive map[string]bool
}

func newRecorder() *recorder {
	return &recorder{asked: make(chan string, 10), alive: map[string]bool{}}
}

func (r *recorder) NodeAlive(_ context.Context, node string) (time.Time, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.alive[node] {
		return time.Now(), nil
	}
	return time.Time{}, nil
}

func (r *recorder) setAlive(node string, alive bool) {
	r.mu.Lock()
	r.alive[node] = alive
	r.mu.Unlock()
}

func (r *recorder) RecoverNode(_ context.Context, node string) (int, error) {
	r.mu.Lock()
	r.nodes = append(r.nodes, node)
	r.mu.Unlock()
	r.asked <- node
	return 2, nil
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.nodes...)
}

// TestFailover: a node that stops renewing (its NATS connection cut, as
// a killed node's is) is recovered by each survivor once its node lease
// expires, and is itself fenced; a node that closes gracefully is
// recovered by nobody.
func TestFailover(t *testing.T) {
	c := newTestCluster(t)
	recB, recC := newRecorder(), newRecorder()
	fenced := make(chan struct{}, 1)
	a := c.joinWith(t, Config{Node: "a", OnFenced: func() { fenced <- struct{}{} }, Recover: newRecorder()})
	b := c.joinWith(t, Config{Node: "b", Recover: recB})
	gone := make(chan string, 10)
	b.OnNodeGone(func(node string, graceful bool) { gone <- fmt.Sprintf("%s graceful=%v", node, graceful) })
	c.joinWith(t, Config{Node: "c", Recover: recC})
	d := c.joinWith(t, Config{Node: "d", Recover: newRecorder()})
	ctx := ctxT(t)
	if _, err := a.Owner(ctx, "8:acs:alice"); err != nil {
		t.Fatal(err)
	}

	// d leaves gracefully: released, not expired.
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// a is cut off from NATS: it renews nothing from now on.
	a.nc.Close()
	for _, r := range []*recorder{recB, recC} {
		select {
		case node := <-r.asked:
			if node != "a" {
				t.Fatalf("recovered %q, want a", node)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no survivor recovered a within 15 s of its connection's end")
		}
	}
	select {
	case <-fenced:
	case <-time.After(15 * time.Second):
		t.Fatal("a was not fenced within 15 s of losing NATS")
	}
	// b told its OnNodeGone of both, once each.
	var told []string
	for len(told) < 2 {
		select {
		case g := <-gone:
			told = append(told, g)
		case <-time.After(5 * time.Second):
			t.Fatalf("b's OnNodeGone heard %v, want d (graceful) and a", told)
		}
	}
	slices.Sort(told)
	if want := []string{"a graceful=false", "d graceful=true"}; !slices.Equal(told, want) {
		t.Errorf("b's OnNodeGone heard %v, want %v", told, want)
	}
	// alice's identity lease lapsed too: b takes her.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		b.Forget("8:acs:alice")
		owner, err := b.Owner(ctx, "8:acs:alice")
		if err == nil && owner == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b.Owner(alice) = %q, %v 15 s after a was cut off; want b", owner, err)
		}
	}
	// A lease TTL later, still nobody recovered d, nor a twice.
	time.Sleep(1500 * time.Millisecond)
	if len(gone) > 0 {
		t.Errorf("b's OnNodeGone heard more: %s", <-gone)
	}
	for name, r := range map[string]*recorder{"b": recB, "c": recC} {
		if got := r.seen(); len(got) != 1 || got[0] != "a" {
			t.Errorf("%s recovered %v, want [a]", name, got)
		}
	}
}

// stuck is a Recoverer whose store never answers: each call waits until
// its context ends.
type stuck struct {
	asked     chan string
	cancelled chan string
}

func (s *stuck) NodeAlive(context.Context, string) (time.Time, error) { return time.Time{}, nil }

func (s *stuck) RecoverNode(ctx context.Context, node string) (int, error) {
	s.asked <- node
	<-ctx.Done()
	s.cancelled <- node
	return 0, ctx.Err()
}

// TestFailoverNodeBack: a recovery still trying (the store out of reach)
// is given up when the dead node comes back with the same id, since its
// own start ended its earlier run's calls and its new ones must stay live.
func TestFailoverNodeBack(t *testing.T) {
	c := newTestCluster(t)
	s := &stuck{asked: make(chan string, 10), cancelled: make(chan string, 10)}
	c.joinWith(t, Config{Node: "b", Recover: s})
	a := c.joinWith(t, Config{Node: "a"})
	a.nc.Close() // a dies
	select {
	case <-s.asked:
	case <-time.After(15 * time.Second):
		t.Fatal("b did not try to recover a within 15 s")
	}
	c.joinWith(t, Config{Node: "a"}) // a restarts
	select {
	case node := <-s.cancelled:
		if node != "a" {
			t.Fatalf("cancelled the recovery of %q, want a", node)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("b still recovers a 15 s after it came back")
	}
	// No further attempt, a lease TTL and more later.
	time.Sleep(1500 * time.Millisecond)
	if len(s.asked) != 0 {
		t.Fatalf("b tried again to recover a after it came back")
	}
}

// TestFailoverHeartbeatFresh: a node cut off from NATS whose heartbeat in
// the shared history stays fresh (NATS out, Postgres up) is not taken for
// dead: no survivor ends its calls and it is not fenced. Once its
// heartbeat stops too, the survivors end its calls.
func TestFailoverHeartbeatFresh(t *testing.T) {
	c := newTestCluster(t)
	rec := newRecorder()
	rec.setAlive("a", true)
	fenced := make(chan struct{}, 1)
	c.joinWith(t, Config{Node: "b", Recover: rec})
	a := c.joinWith(t, Config{Node: "a", Recover: rec, OnFenced: func() { fenced <- struct{}{} }})
	a.nc.Close()
	// Three lease TTLs (1 s in these tests): the lease lapsed long ago.
	select {
	case node := <-rec.asked:
		t.Fatalf("%s was recovered while its heartbeat was fresh", node)
	case <-fenced:
		t.Fatal("a was fenced while its heartbeat was fresh")
	case <-time.After(3 * time.Second):
	}
	rec.setAlive("a", false)
	select {
	case node := <-rec.asked:
		if node != "a" {
			t.Fatalf("recovered %q, want a", node)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a was not recovered within 15 s of its heartbeat stopping")
	}
}

// TestFencedThenUnfenced: a node whose NATS server goes away for longer
// than the TTL, with no heartbeat to vouch for it, is fenced; once NATS is
// back it takes its node lease again and OnUnfenced runs, with a context
// that ends when the node closes. A second outage fences it again.
func TestFencedThenUnfenced(t *testing.T) {
	srv := natstest.Start(t)
	c := testCluster{url: srv.URL(), bucket: "leases", prefix: "sb"}
	fenced, unfenced := make(chan struct{}, 4), make(chan context.Context, 4)
	a := c.joinWith(t, Config{Node: "a",
		OnFenced:   func() { fenced <- struct{}{} },
		OnUnfenced: func(ctx context.Context) { unfenced <- ctx }})
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("a was not %s within 20 s", what)
		}
	}
	var ctx context.Context
	for round := 1; round <= 2; round++ {
		srv.Shutdown()
		wait("fenced", fenced)
		srv.Restart()
		select {
		case ctx = <-unfenced:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: OnUnfenced did not run within 20 s of NATS coming back", round)
		}
		if ctx.Err() != nil {
			t.Fatalf("round %d: OnUnfenced's context ended already: %v", round, ctx.Err())
		}
	}
	if err := a.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == nil {
		t.Error("OnUnfenced's context did not end when the node closed")
	}
}
