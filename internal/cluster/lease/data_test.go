package lease_test

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/cluster/lease"
)

// TestAcquireWithData: a lease taken with data answers it to every node's
// Lookup, keeps it across renewals, and another node's Acquire is refused
// naming the holder; once released, Lookup answers ErrNoOwner and the
// other node takes it with its own data.
func TestAcquireWithData(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		bucket := mustBucket(t, url)
		a, b := mustNode(t, url, bucket, "node-a"), mustNode(t, url, bucket, "node-b")
		ctx := ctxT(t)
		const key = "r:standup"
		if err := a.AcquireWith(ctx, key, "conv-1"); err != nil {
			t.Fatal(err)
		}
		var held *lease.HeldError
		if err := b.AcquireWith(ctx, key, "conv-2"); !errors.As(err, &held) || held.Node != "node-a" {
			t.Fatalf("b acquires a's lease: %v, want held by node-a", err)
		}
		// Past a few renewals (every TTL/3).
		time.Sleep(2 * testTTL)
		if !a.Held(key) {
			t.Fatal("a lost its lease with data on renewal")
		}
		node, data, err := b.Lookup(ctx, key)
		if err != nil || node != "node-a" || data != "conv-1" {
			t.Fatalf("Lookup after renewals: %q, %q, %v; want node-a, conv-1", node, data, err)
		}
		if owner, err := b.Owner(ctx, key); err != nil || owner != "node-a" {
			t.Errorf("Owner of a lease with data: %q, %v", owner, err)
		}
		if err := a.Release(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Lookup(ctx, key); !errors.Is(err, lease.ErrNoOwner) {
			t.Fatalf("Lookup once released: %v, want ErrNoOwner", err)
		}
		if err := b.AcquireWith(ctx, key, "conv-2"); err != nil {
			t.Fatal(err)
		}
		if node, data, err := a.Lookup(ctx, key); err != nil || node != "node-b" || data != "conv-2" {
			t.Errorf("Lookup of b's lease: %q, %q, %v; want node-b, conv-2", node, data, err)
		}
	})
}
