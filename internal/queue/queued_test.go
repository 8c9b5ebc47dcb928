package queue

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestEngineQueued: Queued hears of a call when it enters a queue and
// again when it overflows to another.
func TestEngineQueued(t *testing.T) {
	ctx := context.Background()
	sw, clk, tr := newFakeSwitch(), &clock{now: t0}, &Tracker{}
	var (
		mu     sync.Mutex
		queued []string
	)
	e := NewEngine(EngineConfig{Store: NewMemory(), Switch: sw, Availability: tr, Now: clk.Now,
		Queued: func(_ context.Context, callID, queue string) {
			mu.Lock()
			defer mu.Unlock()
			queued = append(queued, callID+" "+queue)
		}})
	for _, d := range []Definition{
		{Name: "support", MaxWaitSeconds: 30, OverflowQueue: "backup", Members: []Member{{Agent: "8:acs:a"}}},
		{Name: "backup", Members: []Member{{Agent: "8:acs:b"}}},
	} {
		if _, err := e.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	tr.MarkAway("8:acs:a")
	if _, err := e.Enter(ctx, "support", "c1", "8:acs:x", nil); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	clk.add(30 * time.Second)
	e.Step(ctx)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"c1 support", "c1 backup"}; !slices.Equal(queued, want) {
		t.Errorf("Queued heard %q, want %q", queued, want)
	}
}
