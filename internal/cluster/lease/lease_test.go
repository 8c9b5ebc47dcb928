package lease_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/lease"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// testTTL is short so that expiry tests end quickly; renewals every 400 ms.
const testTTL = 1200 * time.Millisecond

// guard bounds every wait: a failure guard, not a timing assertion.
const guard = 20 * time.Second

func TestKey(t *testing.T) {
	for _, id := range []string{
		"agent:alice",
		"phone:+15551234567",
		"a.b*c>d e/f\\g",
		"agent:zoë",
		"x",
	} {
		key := lease.Key(id)
		for _, r := range key {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
			if !ok {
				t.Errorf("Key(%q) = %q has %q, not allowed in a KV key", id, key, r)
			}
		}
	}
	if lease.Key("agent:a") == lease.Key("agent:b") {
		t.Error("two identities share a key")
	}
}

// servers runs fn against the shared NATS and an in-process one.
func servers(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("shared", func(t *testing.T) { fn(t, natstest.SharedURL(t)) })
	t.Run("inprocess", func(t *testing.T) { fn(t, natstest.Start(t).URL()) })
}

// node is one cluster node's Leases on its own connection.
func mustNode(t *testing.T, url, bucket, name string) *lease.Leases {
	t.Helper()
	_, js := natstest.Connect(t, url)
	return mustNodeJS(t, js, bucket, name)
}

func mustNodeJS(t *testing.T, js jetstream.JetStream, bucket, name string) *lease.Leases {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	l, err := lease.New(ctx, js, lease.Config{
		Bucket: bucket, Node: name, TTL: testTTL, Storage: jetstream.MemoryStorage,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("lease.New(%s): %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		_ = l.Close(ctx)
	})
	return l
}

// mustBucket answers a fresh bucket name, deleted when t ends.
func mustBucket(t *testing.T, url string) string {
	t.Helper()
	bucket := natstest.Name(t, "sbtest_lease_")
	_, js := natstest.Connect(t, url)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete bucket %s: %v", bucket, err)
		}
	})
	return bucket
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

func TestAcquireOwnerRelease(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		a, b := mustNode(t, url, bucket, "node-a"), mustNode(t, url, bucket, "node-b")
		ctx := ctxT(t)
		const id = "agent:alice"

		steps := []struct {
			name      string
			do        func() error
			wantErr   error
			wantOwner string // "" = ErrNoOwner
		}{
			{"a acquires", func() error { return a.Acquire(ctx, id) }, nil, "node-a"},
			{"a acquires again", func() error { return a.Acquire(ctx, id) }, nil, "node-a"},
			{"b is refused", func() error { return b.Acquire(ctx, id) }, lease.ErrHeld, "node-a"},
			{"b releases what it does not hold", func() error { return b.Release(ctx, id) }, nil, "node-a"},
			{"a releases", func() error { return a.Release(ctx, id) }, nil, ""},
			{"b acquires", func() error { return b.Acquire(ctx, id) }, nil, "node-b"},
			{"empty identity", func() error { return a.Acquire(ctx, "") }, lease.ErrInvalid, "node-b"},
		}
		for _, s := range steps {
			err := s.do()
			if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
				t.Fatalf("%s: err = %v, want %v", s.name, err, s.wantErr)
			}
			var held *lease.HeldError
			if errors.As(err, &held) && held.Node != "node-a" {
				t.Errorf("%s: HeldError.Node = %q, want node-a", s.name, held.Node)
			}
			owner, err := a.Owner(ctx, id)
			if s.wantOwner == "" {
				if !errors.Is(err, lease.ErrNoOwner) {
					t.Errorf("%s: Owner = %q, %v; want ErrNoOwner", s.name, owner, err)
				}
			} else if err != nil || owner != s.wantOwner {
				t.Errorf("%s: Owner = %q, %v; want %q", s.name, owner, err, s.wantOwner)
			}
		}
		if !b.Held(id) || a.Held(id) {
			t.Errorf("Held: a %v, b %v; want false, true", a.Held(id), b.Held(id))
		}
	})
}

// next reads the next change, failing on the guard.
func next(t *testing.T, ch <-chan Change) lease.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return c
	case <-time.After(guard):
		t.Fatal("no change within the guard")
	}
	return lease.Change{}
}

type Change = lease.Change

func TestRenewalKeepsLease(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		a, b := mustNode(t, url, bucket, "node-a"), mustNode(t, url, bucket, "node-b")
		ctx := ctxT(t)
		const id = "agent:bob"
		w, err := b.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Acquire(ctx, id); err != nil {
			t.Fatal(err)
		}
		// Six renewals: two TTLs of life beyond the first.
		var last uint64
		for i := 0; i < 7; i++ {
			c := next(t, w)
			if c.Identity != id || c.Node != "node-a" || c.Expired || c.Revision <= last {
				t.Fatalf("change %d = %+v, want a renewal by node-a after revision %d", i, c, last)
			}
			last = c.Revision
		}
		if err := b.Acquire(ctx, id); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("b.Acquire after renewals: %v, want ErrHeld", err)
		}
		select {
		case lost := <-a.Lost():
			t.Fatalf("a lost %q while renewing", lost)
		default:
		}
	})
}

func TestStoppedNodeLosesLease(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		ncA, jsA := natstest.Connect(t, url)
		a := mustNodeJS(t, jsA, bucket, "node-a")
		b := mustNode(t, url, bucket, "node-b")
		ctx := ctxT(t)
		const id = "agent:carol"
		if err := a.Acquire(ctx, id); err != nil {
			t.Fatal(err)
		}
		w, err := b.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := next(t, w); c.Node != "node-a" {
			t.Fatalf("first change %+v, want node-a's lease", c)
		}
		// Node a stops renewing: its connection is gone, as if it died.
		ncA.Close()
		for {
			c := next(t, w)
			if c.Expired {
				if c.Identity != id || c.Node != "" {
					t.Fatalf("expiry %+v, want %q with no node", c, id)
				}
				break
			}
			if c.Node != "node-a" {
				t.Fatalf("change %+v before the expiry", c)
			}
		}
		// The server drops the key at MaxAge; the watch's timer may be first.
		for {
			err := b.Acquire(ctx, id)
			if err == nil {
				break
			}
			if !errors.Is(err, lease.ErrHeld) {
				t.Fatalf("b.Acquire: %v", err)
			}
			select {
			case <-ctx.Done():
				t.Fatal("b never acquired the expired lease")
			case <-time.After(testTTL / 10):
			}
		}
		if owner, err := b.Owner(ctx, id); err != nil || owner != "node-b" {
			t.Fatalf("Owner = %q, %v; want node-b", owner, err)
		}
		select {
		case lost := <-a.Lost():
			if lost != id {
				t.Fatalf("a lost %q, want %q", lost, id)
			}
		case <-ctx.Done():
			t.Fatal("a never reported the lease lost")
		}
		if a.Held(id) {
			t.Error("a still holds the lease it lost")
		}
	})
}

func TestTakenLeaseIsLost(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		a := mustNode(t, url, bucket, "node-a")
		ctx := ctxT(t)
		ids := []string{"agent:dave", "agent:erin", "phone:+15550001"}
		for _, id := range ids {
			if err := a.Acquire(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		// Another writer overwrites one key: a's next renewal is refused.
		_, js := natstest.Connect(t, url)
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, lease.Key("agent:erin"), []byte("node-x")); err != nil {
			t.Fatal(err)
		}
		select {
		case lost := <-a.Lost():
			if lost != "agent:erin" {
				t.Fatalf("lost %q, want agent:erin", lost)
			}
		case <-ctx.Done():
			t.Fatal("no lost lease reported")
		}
		if owner, err := a.Owner(ctx, "agent:erin"); err != nil || owner != "node-x" {
			t.Errorf("Owner = %q, %v; want node-x (a must not have written over it)", owner, err)
		}
		for _, id := range []string{"agent:dave", "phone:+15550001"} {
			if !a.Held(id) {
				t.Errorf("a lost %q too", id)
			}
		}
	})
}

// TestRefusedRenewalOfOwnWrite: a renewal refused because the key is one
// write further than the lease knows keeps the lease when that write holds
// this run's own value (a renewal stored as NATS went away, whose answer
// was lost), and loses it when another lease is there.
func TestRefusedRenewalOfOwnWrite(t *testing.T) {
	cases := []struct {
		name string
		// write changes the key behind node a's back, given its entry.
		write    func(t *testing.T, ctx context.Context, url, bucket string, kv jetstream.KeyValue, e jetstream.KeyValueEntry)
		lost     bool
		newOwner string
	}{
		{
			name: "own value again",
			write: func(t *testing.T, ctx context.Context, _, _ string, kv jetstream.KeyValue, e jetstream.KeyValueEntry) {
				if _, err := kv.Update(ctx, e.Key(), e.Value(), e.Revision()); err != nil {
					t.Fatal(err)
				}
			},
			newOwner: "node-a",
		},
		{
			name: "another node",
			write: func(t *testing.T, ctx context.Context, _, _ string, kv jetstream.KeyValue, e jetstream.KeyValueEntry) {
				if _, err := kv.Update(ctx, e.Key(), []byte("node-x\n0123"), e.Revision()); err != nil {
					t.Fatal(err)
				}
			},
			lost:     true,
			newOwner: "node-x",
		},
		{
			name: "this node's next run",
			write: func(t *testing.T, ctx context.Context, url, bucket string, _ jetstream.KeyValue, _ jetstream.KeyValueEntry) {
				// Same node name, another process: it takes over the
				// lease at once (TestTakeOverOwnEarlierLease).
				if err := mustNode(t, url, bucket, "node-a").Acquire(ctx, "agent:kim"); err != nil {
					t.Fatal(err)
				}
			},
			lost:     true,
			newOwner: "node-a",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servers(t, func(t *testing.T, url string) {
				bucket := mustBucket(t, url)
				a := mustNode(t, url, bucket, "node-a")
				ctx := ctxT(t)
				const id = "agent:kim"
				if err := a.Acquire(ctx, id); err != nil {
					t.Fatal(err)
				}
				_, js := natstest.Connect(t, url)
				kv, err := js.KeyValue(ctx, bucket)
				if err != nil {
					t.Fatal(err)
				}
				before, err := kv.Get(ctx, lease.Key(id))
				if err != nil {
					t.Fatal(err)
				}
				tc.write(t, ctx, url, bucket, kv, before)
				written, err := kv.Get(ctx, lease.Key(id))
				if err != nil {
					t.Fatal(err)
				}
				if tc.lost {
					select {
					case lost := <-a.Lost():
						if lost != id {
							t.Fatalf("lost %q, want %q", lost, id)
						}
					case <-ctx.Done():
						t.Fatal("no lost lease reported")
					}
					if a.Held(id) {
						t.Error("a still holds the lease it lost")
					}
					e, err := kv.Get(ctx, lease.Key(id))
					if err != nil {
						t.Fatal(err)
					}
					// The new owner may have renewed since (the next run
					// of this node does): its value, not its revision, says
					// whose the key is.
					if got, want := string(e.Value()), string(written.Value()); got != want {
						t.Errorf("value %q after the loss, want the new owner's %q: a wrote over the new lease", got, want)
					}
				} else {
					// Two renewals after the stray write, by a, and no loss.
					for {
						e, err := kv.Get(ctx, lease.Key(id))
						if err != nil {
							t.Fatal(err)
						}
						if e.Revision() >= written.Revision()+2 {
							if got, want := string(e.Value()), string(before.Value()); got != want {
								t.Fatalf("value %q after the renewals, want a's %q", got, want)
							}
							break
						}
						select {
						case lost := <-a.Lost():
							t.Fatalf("a lost %q after its own write", lost)
						case <-ctx.Done():
							t.Fatal("no renewal after the stray write")
						case <-time.After(testTTL / 10):
						}
					}
					if !a.Held(id) {
						t.Error("a no longer holds the lease")
					}
				}
				if owner, err := a.Owner(ctx, id); err != nil || owner != tc.newOwner {
					t.Errorf("Owner = %q, %v; want %q", owner, err, tc.newOwner)
				}
			})
		})
	}
}

func TestCloseReleasesAll(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		a, b := mustNode(t, url, bucket, "node-a"), mustNode(t, url, bucket, "node-b")
		ctx := ctxT(t)
		ids := []string{"agent:f", "agent:g"}
		for _, id := range ids {
			if err := a.Acquire(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Acquire(ctx, "agent:h"); !errors.Is(err, lease.ErrClosed) {
			t.Errorf("Acquire after Close: %v, want ErrClosed", err)
		}
		for _, id := range ids {
			if err := b.Acquire(ctx, id); err != nil {
				t.Errorf("b.Acquire(%q) after a closed: %v", id, err)
			}
		}
	})
}

// TestLeaseSurvivesNATSRestart restarts the in-process server: the lease is
// still node a's afterwards, and a's renewals go on at the same revisions.
func TestLeaseSurvivesNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	// File storage: the bucket must survive the restart.
	_, jsA := natstest.Connect(t, srv.URL())
	ctx := ctxT(t)
	open := func(js jetstream.JetStream, node string) *lease.Leases {
		l, err := lease.New(ctx, js, lease.Config{Bucket: "leases", Node: node, TTL: 3 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close(context.Background()) })
		return l
	}
	a := open(jsA, "node-a")
	_, jsB := natstest.Connect(t, srv.URL())
	b := open(jsB, "node-b")
	const id = "agent:ivan"
	if err := a.Acquire(ctx, id); err != nil {
		t.Fatal(err)
	}
	w, err := b.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := next(t, w); c.Node != "node-a" {
		t.Fatalf("first change %+v, want node-a's lease", c)
	}
	_, jsT := natstest.Connect(t, srv.URL())
	kv, err := jsT.KeyValue(ctx, "leases")
	if err != nil {
		t.Fatal(err)
	}
	before, err := kv.Get(ctx, lease.Key(id))
	if err != nil {
		t.Fatal(err)
	}

	srv.Restart()

	// Wait for two renewals after the restart.
	for {
		e, err := kv.Get(ctx, lease.Key(id))
		if err == nil && e.Revision() >= before.Revision()+2 {
			if !strings.HasPrefix(string(e.Value()), "node-a\n") {
				t.Fatalf("value %q after restart, want node-a's lease", e.Value())
			}
			break
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatal("the lease vanished across the restart")
		}
		select {
		case <-ctx.Done():
			t.Fatal("no renewal after the restart")
		case lost := <-a.Lost():
			t.Fatalf("a lost %q across the restart", lost)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := b.Acquire(ctx, id); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("b.Acquire after the restart: %v, want ErrHeld", err)
	}
	// b's watch goes on across the restart: it sees a renewal made after it.
	after, err := kv.Get(ctx, lease.Key(id))
	if err != nil {
		t.Fatal(err)
	}
	for {
		c := next(t, w)
		if c.Expired || c.Node != "node-a" {
			t.Fatalf("change %+v across the restart, want renewals by node-a", c)
		}
		if c.Revision > after.Revision() {
			break
		}
	}
}

// TestTakeOverOwnEarlierLease: a node that restarts under the same name
// takes its earlier run's lease at once, without waiting for it to expire.
func TestTakeOverOwnEarlierLease(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		nc, js := natstest.Connect(t, url)
		first := mustNodeJS(t, js, bucket, "node-a")
		ctx := ctxT(t)
		const id = "agent:judy"
		if err := first.Acquire(ctx, id); err != nil {
			t.Fatal(err)
		}
		nc.Close() // the first run dies without releasing
		again := mustNode(t, url, bucket, "node-a")
		if err := again.Acquire(ctx, id); err != nil {
			t.Fatalf("the same node's new run: Acquire = %v, want nil", err)
		}
		other := mustNode(t, url, bucket, "node-b")
		if err := other.Acquire(ctx, id); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("another node: Acquire = %v, want ErrHeld", err)
		}
	})
}

func TestWatchSeesAcquireAndRelease(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		a, b := mustNode(t, url, bucket, "node-a"), mustNode(t, url, bucket, "node-b")
		ctx := ctxT(t)
		if err := a.Acquire(ctx, "agent:old"); err != nil {
			t.Fatal(err)
		}
		w, err := b.Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := next(t, w); c.Identity != "agent:old" || c.Node != "node-a" {
			t.Fatalf("initial change %+v, want agent:old held by node-a", c)
		}
		if err := a.Release(ctx, "agent:old"); err != nil {
			t.Fatal(err)
		}
		if err := b.Acquire(ctx, "agent:new"); err != nil {
			t.Fatal(err)
		}
		want := []Change{{Identity: "agent:old"}, {Identity: "agent:new", Node: "node-b"}}
		for _, wc := range want {
			c := next(t, w)
			for c.Node == "node-a" { // a renewal before the release
				c = next(t, w)
			}
			if c.Identity != wc.Identity || c.Node != wc.Node || c.Expired {
				t.Fatalf("change %+v, want %+v", c, wc)
			}
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  lease.Config
	}{
		{"no bucket", lease.Config{Node: "a"}},
		{"no node", lease.Config{Bucket: "b"}},
		{"negative TTL", lease.Config{Bucket: "b", Node: "a", TTL: -time.Second}},
		{"TTL below the minimum", lease.Config{Bucket: "b", Node: "a", TTL: time.Millisecond}},
	} {
		// Checked before any request: no server is needed.
		if _, err := lease.New(context.Background(), nil, tc.cfg); !errors.Is(err, lease.ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", tc.name, err)
		}
	}
}
