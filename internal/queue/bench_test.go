package queue

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkPick: the routing decision alone, longest-idle over 1,000
// members of whom every other is offerable, with a skill filter.
func BenchmarkPick(b *testing.B) {
	cands := make([]Candidate, 1000)
	for i := range cands {
		cands[i] = Candidate{Agent: fmt.Sprintf("8:acs:a%d", i), Offerable: i%2 == 0,
			IdleSince: t0.Add(time.Duration((i*7919)%1000) * time.Second), Skills: map[string]int{"fr": i % 3}}
	}
	need := map[string]int{"fr": 1}
	b.ReportAllocs()
	for b.Loop() {
		if Pick(LongestIdle, cands, need, nil, "") == "" {
			b.Fatal("nobody")
		}
	}
}

// BenchmarkStepBusy: one engine step over 10,000 waiting calls while all
// 1,000 agents are busy (the per-tick cost of a full queue, memory store):
// sweep=0 asks the switch about every call each step (EngineConfig.Sweep
// unset), changed only about the calls Changed named (none here) and its
// share of the 10 s sweep at one step a Tick.
func BenchmarkStepBusy(b *testing.B) {
	for _, sweep := range []time.Duration{0, DefaultSweep} {
		name := "sweep=0"
		if sweep > 0 {
			name = "changed"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			members := make([]Member, 1000)
			for i := range members {
				members[i] = Member{Agent: fmt.Sprintf("8:acs:a%d", i)}
			}
			tr := &Tracker{}
			for _, m := range members {
				tr.MarkAway(m.Agent)
			}
			clk := &clock{now: t0}
			e := NewEngine(EngineConfig{Store: NewMemory(), Switch: newFakeSwitch(), Availability: tr, Now: clk.Now, Sweep: sweep})
			if _, err := e.Create(ctx, Definition{Name: "q", Members: members}); err != nil {
				b.Fatal(err)
			}
			for i := range 10000 {
				if _, err := e.Enter(ctx, "q", fmt.Sprintf("c%05d", i), "8:acs:x", nil); err != nil {
					b.Fatal(err)
				}
			}
			e.Step(ctx) // the entries' first looks
			b.ReportAllocs()
			for b.Loop() {
				clk.add(200 * time.Millisecond) // a Tick: the sweep's pace
				e.Step(ctx)
			}
		})
	}
}

// BenchmarkEnterToOffer: a call entering a queue of 1,000 agents (one
// free) with 10,000 calls waiting ahead... is offered at the next step;
// here the queue is otherwise empty, so the time is Enter plus one Step
// that offers it.
func BenchmarkEnterToOffer(b *testing.B) {
	ctx := context.Background()
	members := make([]Member, 1000)
	for i := range members {
		members[i] = Member{Agent: fmt.Sprintf("8:acs:a%d", i)}
	}
	sw := newFakeSwitch()
	e := NewEngine(EngineConfig{Store: NewMemory(), Switch: sw, Availability: &Tracker{}, Now: func() time.Time { return t0 }})
	if _, err := e.Create(ctx, Definition{Name: "q", Members: members}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("c%d", i)
		i++
		if _, err := e.Enter(ctx, "q", id, "8:acs:x", nil); err != nil {
			b.Fatal(err)
		}
		e.Step(ctx)
		agent := sw.accept(id)
		if agent == "" {
			b.Fatal("not offered")
		}
		e.Step(ctx) // answered: leaves the queue
		sw.hangUp(id)
		e.Step(ctx) // ended: the agent is free again
	}
}
