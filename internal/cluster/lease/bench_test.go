package lease

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// BenchmarkLease measures one lease operation against the shared NATS
// (file storage), beside kv.Put on the same bucket as the baseline. A
// renewal is one KV Update; acquire+release cycles 64 identities, so each
// Acquire finds the delete marker of its last Release (Create refused,
// the marker read, Update at its revision: three requests) and Release is
// one more:
//
//	cat /proc/loadavg; go test -run '^$' -bench BenchmarkLease -benchtime 5000x ./internal/cluster/lease/
func BenchmarkLease(b *testing.B) {
	url := natstest.SharedURL(b)
	_, js := natstest.Connect(b, url)
	ctx := context.Background()
	bucket := natstest.Name(b, "sbbench_lease_")
	b.Cleanup(func() {
		if err := js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			b.Errorf("delete bucket: %v", err)
		}
	})
	l, err := New(ctx, js, Config{Bucket: bucket, Node: "bench", TTL: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close(ctx) })

	key := Key("agent:put")
	for range 300 { // warm up: the new bucket's first writes
		if _, err := l.kv.Put(ctx, key, []byte("bench")); err != nil {
			b.Fatal(err)
		}
	}
	// Rounds interleave the three, so that a change in the machine's load
	// falls on all.
	for range 3 {
		b.Run("kv.Put", func(b *testing.B) {
			for b.Loop() {
				if _, err := l.kv.Put(ctx, key, []byte("bench")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("renew", func(b *testing.B) {
			const id = "agent:renew"
			if err := l.Acquire(ctx, id); err != nil {
				b.Fatal(err)
			}
			l.mu.Lock()
			h := l.held[id]
			l.mu.Unlock()
			for b.Loop() {
				if !l.renew(id, h) {
					b.Fatal("renewal lost")
				}
			}
		})
		b.Run("acquire+release", func(b *testing.B) {
			i := 0
			for b.Loop() {
				id := fmt.Sprintf("agent:%d", i%64)
				i++
				if err := l.Acquire(ctx, id); err != nil {
					b.Fatal(err)
				}
				if err := l.Release(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenewPass measures one renewer pass over 1,000 leases
// (renewAll, renewConcurrency in flight) against the same renewals made
// one after another (the baseline):
//
//	cat /proc/loadavg; go test -run '^$' -bench BenchmarkRenewPass -benchtime 20x ./internal/cluster/lease/
func BenchmarkRenewPass(b *testing.B) {
	url := natstest.SharedURL(b)
	_, js := natstest.Connect(b, url)
	ctx := context.Background()
	bucket := natstest.Name(b, "sbbench_lease_")
	b.Cleanup(func() {
		if err := js.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			b.Errorf("delete bucket: %v", err)
		}
	})
	l, err := New(ctx, js, Config{Bucket: bucket, Node: "bench", TTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close(ctx) })
	const n = 1000
	for i := range n {
		if err := l.Acquire(ctx, fmt.Sprintf("agent:%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	for range 3 {
		b.Run("sequential", func(b *testing.B) {
			for b.Loop() {
				l.mu.Lock()
				all := make(map[string]*held, len(l.held))
				for id, h := range l.held {
					all[id] = h
				}
				l.mu.Unlock()
				for id, h := range all {
					if !l.renew(id, h) {
						b.Fatal("renewal lost")
					}
				}
			}
		})
		b.Run("renewAll", func(b *testing.B) {
			for b.Loop() {
				l.renewAll()
			}
			select {
			case id := <-l.Lost():
				b.Fatalf("lost %q", id)
			default:
			}
		})
	}
}
