package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// countingLooker is a Tracker that counts the agents asked about in
// LookAll.
type countingLooker struct {
	*Tracker
	mu     sync.Mutex
	looked int
}

func (c *countingLooker) LookAll(agents []string, maxConcurrent int, now time.Time, offerable []bool, idle []time.Time) {
	c.mu.Lock()
	c.looked += len(agents)
	c.mu.Unlock()
	c.Tracker.LookAll(agents, maxConcurrent, now, offerable, idle)
}

func (c *countingLooker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.looked
}

// TestEngineAgentWakes: with AgentWakes, a step looks again only at the
// members WakeFor named, at every member once a Tick has passed, and
// checks the agent it is about to offer a call to, who may have become
// busy unnoticed since its last look.
func TestEngineAgentWakes(t *testing.T) {
	ctx := context.Background()
	const n = 100
	var members []Member
	for i := range n {
		members = append(members, Member{Agent: fmt.Sprintf("8:acs:a%02d", i)})
	}
	sw, clk := newFakeSwitch(), &clock{now: t0}
	tr := &Tracker{}
	av := &countingLooker{Tracker: tr}
	e := NewEngine(EngineConfig{Store: NewMemory(), Switch: sw, Availability: av, Now: clk.Now,
		Sweep: time.Minute, AgentWakes: true})
	sw.changed = func(call string) { e.Changed(call) }
	if _, err := e.Create(ctx, Definition{Name: "support", Members: members}); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		tr.MarkAway(m.Agent)
	}
	enter := func(id string) {
		t.Helper()
		if _, err := e.Enter(ctx, "support", id, "8:acs:x", nil); err != nil {
			t.Fatal(err)
		}
	}
	enter("c1")
	enter("c2")
	e.Step(ctx) // the first look: every member
	if got := av.count(); got != n {
		t.Fatalf("the first step looked at %d agents, want %d", got, n)
	}

	// a05 is free and named: the next step looks at her alone.
	tr.SetAvailable("8:acs:a05", clk.Now())
	e.WakeFor("8:acs:a05")
	before := av.count()
	e.Step(ctx)
	if got := av.count() - before; got != 1 || !slices.Equal(sw.offers, []string{"c1>8:acs:a05"}) {
		t.Fatalf("after WakeFor(a05): looked at %d agents, offers %v; want 1, [c1>8:acs:a05]", got, sw.offers)
	}

	// a06 is free unnamed: seen at the look once a Tick.
	tr.SetAvailable("8:acs:a06", clk.Now())
	e.Step(ctx)
	if len(sw.offers) != 1 {
		t.Fatalf("offers %v: an agent nobody named was seen before the Tick's look", sw.offers)
	}
	clk.add(200 * time.Millisecond)
	e.Step(ctx)
	if !slices.Equal(sw.offers, []string{"c1>8:acs:a05", "c2>8:acs:a06"}) {
		t.Fatalf("offers %v after the Tick: want c2 offered to a06", sw.offers)
	}

	// a07 is looked at free while no call waits unoffered, then goes Away
	// unnamed: the call that comes next is not offered to her.
	tr.SetAvailable("8:acs:a07", clk.Now())
	e.WakeFor("8:acs:a07")
	e.Step(ctx)
	tr.MarkAway("8:acs:a07")
	enter("c3")
	e.Step(ctx)
	if len(sw.offers) != 2 {
		t.Fatalf("offers %v: c3 offered to an agent who went Away since the pool's look", sw.offers)
	}

	// A Wake that names nobody (another node's agent turned free) looks
	// at every member.
	tr.SetAvailable("8:acs:a08", clk.Now())
	before = av.count()
	e.Wake()
	e.Step(ctx)
	if got := av.count() - before; got != n || !slices.Equal(sw.offers[2:], []string{"c3>8:acs:a08"}) {
		t.Fatalf("after Wake: looked at %d agents, offers %v; want %d, c3 to a08", got, sw.offers, n)
	}

	// a05 answers c1 and her caller hangs up, with no WakeFor for her:
	// the step that sees the call end (its caller's Changed) offers her
	// the next call, without waiting for a Tick.
	sw.accept("c1")
	e.Step(ctx)
	enter("c4")
	e.Step(ctx)
	if len(sw.offers) != 3 {
		t.Fatalf("offers %v: c4 offered while every agent is busy", sw.offers)
	}
	sw.hangUp("c1")
	e.Step(ctx)
	if !slices.Equal(sw.offers[3:], []string{"c4>8:acs:a05"}) {
		t.Fatalf("offers %v: want c4 to a05 in the step that saw her call end", sw.offers)
	}
}
