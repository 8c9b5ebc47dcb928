package queue

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// stores answers the two stores under test: Memory, and two JetStream
// stores on one in-process server (two nodes' views of one bucket).
func stores(t *testing.T) map[string][2]Store {
	ctx := context.Background()
	srv := natstest.Start(t)
	bucket := natstest.Name(t, "queues")
	var js [2]Store
	for i := range js {
		_, j := natstest.Connect(t, srv.URL())
		s, err := OpenJetStream(ctx, j, bucket, jetstream.MemoryStorage)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		js[i] = s
	}
	m := NewMemory()
	return map[string][2]Store{"memory": {m, m}, "jetstream": js}
}

func TestStore(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a, b := st[0], st[1]
			_, err := b.Queue(ctx, "support")
			if e, ok := errors.AsType[*calls.Error](err); !ok || e.Code != calls.CodeNotFound {
				t.Fatalf("unknown queue: %v, want not_found", err)
			}
			d := Definition{Name: "support", Members: []Member{{Agent: "8:acs:alice", Skills: map[string]int{"fr": 2}}}}
			if err := d.Normalize(); err != nil {
				t.Fatal(err)
			}
			for _, q := range []Definition{d, {Name: "billing", Strategy: RoundRobin}} {
				if err := a.PutQueue(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			got, err := b.Queue(ctx, "support")
			if err != nil || got.Members[0].Skills["fr"] != 2 || got.RingTimeoutSeconds != DefaultRingTimeout {
				t.Fatalf("Queue = %+v, %v", got, err)
			}
			all, err := b.Queues(ctx)
			if err != nil || len(all) != 2 || all[0].Name != "billing" || all[1].Name != "support" {
				t.Fatalf("Queues = %+v, %v", all, err)
			}
			// Shared definitions: the same one until another node replaces it.
			sh := b.(Sharer)
			s1, err1 := sh.SharedQueue(ctx, "support")
			s2, err2 := sh.SharedQueue(ctx, "support")
			if err1 != nil || err2 != nil || s1 != s2 || s1.Members[0].Agent != "8:acs:alice" {
				t.Fatalf("SharedQueue twice = %p %v, %p %v; want one definition", s1, err1, s2, err2)
			}
			d2 := d.Clone()
			d2.Members = append(d2.Members, Member{Agent: "8:acs:bob"})
			if err := a.PutQueue(ctx, d2); err != nil {
				t.Fatal(err)
			}
			s3, err := sh.SharedQueue(ctx, "support")
			if err != nil || s3 == s1 || len(s3.Members) != 2 || len(s1.Members) != 1 {
				t.Fatalf("after PutQueue: SharedQueue = %+v, %v; the old one %+v", s3, err, s1)
			}
			if _, err := sh.SharedQueue(ctx, "nobody"); calls.ErrorCode(err) != calls.CodeNotFound {
				t.Fatalf("SharedQueue of an unknown queue: %v, want not_found", err)
			}
			if err := a.PutQueue(ctx, d); err != nil {
				t.Fatal(err)
			}

			for i, id := range []string{"call-2", "call-1", "call-3"} {
				w := Waiting{CallID: id, Queue: "support", Caller: "8:acs:c", EnteredAt: t0.Add(time.Duration(i) * time.Second)}
				if err := a.PutWaiting(ctx, w); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.DeleteWaiting(ctx, "support", "call-1"); err != nil {
				t.Fatal(err)
			}
			if err := a.DeleteWaiting(ctx, "support", "gone"); err != nil {
				t.Fatalf("deleting a call not there: %v", err)
			}
			ws, err := b.Waiting(ctx, "support")
			if err != nil || len(ws) != 2 || ws[0].CallID != "call-2" || ws[1].CallID != "call-3" {
				t.Fatalf("Waiting = %+v, %v", ws, err)
			}
			if ws, err := b.Waiting(ctx, "billing"); err != nil || len(ws) != 0 {
				t.Fatalf("billing waiting = %+v, %v", ws, err)
			}
			// The summary: at once on the node that wrote, soon on the other.
			want := Summary{Count: 2, Oldest: t0}
			if sum, err := a.(Summarizer).WaitingSummary(ctx, "support"); err != nil || sum.Count != want.Count || !sum.Oldest.Equal(want.Oldest) {
				t.Fatalf("WaitingSummary on the writer = %+v, %v; want %+v", sum, err, want)
			}
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				sum, err := b.(Summarizer).WaitingSummary(ctx, "support")
				if err == nil && sum.Count == want.Count && sum.Oldest.Equal(want.Oldest) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("WaitingSummary on the other node = %+v, %v; want %+v", sum, err, want)
				}
			}
			if sum, err := b.(Summarizer).WaitingSummary(ctx, "billing"); err != nil || sum.Count != 0 {
				t.Fatalf("billing summary = %+v, %v", sum, err)
			}

			// Two nodes counting at once lose nothing.
			var wg sync.WaitGroup
			for _, s := range []Store{a, b} {
				wg.Go(func() {
					for range 20 {
						if _, err := s.AddCounters(ctx, "support", Counters{Answered: 1, Offered: 2}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if c, err := a.Counters(ctx, "support"); err != nil || c.Answered != 40 || c.Offered != 80 {
				t.Fatalf("Counters = %+v, %v", c, err)
			}

			// One offer per agent, across nodes.
			if ok, err := a.ClaimAgent(ctx, "8:acs:alice", "call-2"); !ok || err != nil {
				t.Fatalf("first claim = %v, %v", ok, err)
			}
			if ok, err := b.ClaimAgent(ctx, "8:acs:alice", "call-3"); ok || err != nil {
				t.Fatalf("second claim = %v, %v; want refused", ok, err)
			}
			if err := b.ReleaseAgent(ctx, "8:acs:alice", "call-3"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := b.ClaimAgent(ctx, "8:acs:alice", "call-3"); ok {
				t.Fatal("a release by a call not holding the agent freed her")
			}
			if err := a.ReleaseAgent(ctx, "8:acs:alice", "call-2"); err != nil {
				t.Fatal(err)
			}
			if ok, err := b.ClaimAgent(ctx, "8:acs:alice", "call-3"); !ok || err != nil {
				t.Fatalf("claim after release = %v, %v", ok, err)
			}

			// Of two nodes taking one waiting call at once, one takes it.
			var took atomic.Int32
			for _, s := range []Store{a, b} {
				wg.Go(func() {
					ok, err := s.TakeWaiting(ctx, "support", "call-2")
					if err != nil {
						t.Error(err)
					}
					if ok {
						took.Add(1)
					}
				})
			}
			wg.Wait()
			if n := took.Load(); n != 1 {
				t.Errorf("call-2 taken %d times, want once", n)
			}
			if ws, err := b.Waiting(ctx, "support"); err != nil || len(ws) != 1 || ws[0].CallID != "call-3" {
				t.Errorf("Waiting after the take = %+v, %v", ws, err)
			}
		})
	}
}

// TestJetStreamSurvivesRestart: queues and waiting calls are in JetStream
// (file storage), so a restarted server still has them.
func TestJetStreamSurvivesRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv.URL())
	s, err := OpenJetStream(ctx, js, natstest.Name(t, "queues"), jetstream.FileStorage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.PutQueue(ctx, Definition{Name: "support"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutWaiting(ctx, Waiting{CallID: "c1", Queue: "support", EnteredAt: t0}); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ws, err := s.Waiting(ctx, "support")
		_, qerr := s.Queue(ctx, "support")
		if err == nil && qerr == nil && len(ws) == 1 && ws[0].CallID == "c1" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a restart: waiting %+v, %v; queue %v", ws, err, qerr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
