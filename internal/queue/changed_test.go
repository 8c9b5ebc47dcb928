package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestEngineChangedAbandon: with Changed feeding it, a step asks the
// switch about no call while nothing changed, even with every agent busy
// and 2,000 calls waiting; a caller who hangs up is counted abandoned at
// the step after Changed names his call, with one look; one who hangs up
// unseen is found by the sweep, once Sweep has passed.
func TestEngineChangedAbandon(t *testing.T) {
	ctx := context.Background()
	const sweep = time.Minute
	var members []Member
	for i := range 10 {
		members = append(members, Member{Agent: fmt.Sprintf("8:acs:agent%d", i)})
	}
	e, sw, clk, tr, _ := newEngineSweep(t, Definition{Name: "support", Members: members}, sweep)
	for _, m := range members {
		tr.MarkAway(m.Agent)
	}
	for i := range 2000 {
		if _, err := e.Enter(ctx, "support", fmt.Sprintf("c%04d", i), "8:acs:x", nil); err != nil {
			t.Fatal(err)
		}
	}
	e.Step(ctx) // the entries' first looks
	before := sw.lookCount()
	if before != 2000 {
		t.Fatalf("first step: %d looks, want one per entered call (2000)", before)
	}
	for range 3 {
		clk.add(time.Second)
		e.Step(ctx)
	}
	if n := sw.lookCount() - before; n != 0 {
		t.Fatalf("steps with nothing changed looked at %d calls, want 0", n)
	}

	sw.hangUp("c0500") // tells Changed
	before = sw.lookCount()
	e.Step(ctx)
	if n := sw.lookCount() - before; n != 1 {
		t.Errorf("the step after one change looked at %d calls, want 1", n)
	}
	if s, _ := e.Stats(ctx, "support"); s.Abandoned != 1 || s.Waiting != 1999 {
		t.Fatalf("after c0500 hung up: %+v, want 1 abandoned, 1999 waiting", s)
	}

	sw.mu.Lock()
	sw.gone["c1500"] = true // unseen: no Changed
	sw.mu.Unlock()
	e.Step(ctx)
	if s, _ := e.Stats(ctx, "support"); s.Abandoned != 1 {
		t.Fatalf("an unseen hangup counted before the sweep: %+v", s)
	}
	clk.add(sweep)
	// The sweep spreads over one Sweep by time, not by steps: a hundred
	// steps at its start (a burst of wakes) look at a Tick's share only.
	before = sw.lookCount()
	for range 100 {
		e.Step(ctx)
	}
	if n, share := sw.lookCount()-before, 1999*200/int(sweep/time.Millisecond)+1; n > share {
		t.Errorf("100 steps at the sweep's start looked at %d calls, want a Tick's share, at most %d", n, share)
	}
	for i := 0; i < int(sweep/(200*time.Millisecond)); i++ {
		e.Step(ctx)
		clk.add(200 * time.Millisecond)
	}
	if s, _ := e.Stats(ctx, "support"); s.Abandoned != 2 || s.Waiting != 1998 {
		t.Fatalf("after the sweep: %+v, want 2 abandoned, 1998 waiting", s)
	}
}

// TestEngineNoDoubleOffer: 20 agents and 300 callers who accept, decline,
// let ring out or hang up at random over many steps, with Changed feeding
// the engine; an agent may accept and the caller hang up before a step
// saw the answer. No call is offered to two agents at once, none is offered
// after it was answered or abandoned, every agent is freed again (all
// calls end) and the counters add up.
func TestEngineNoDoubleOffer(t *testing.T) { modes(t, testEngineNoDoubleOffer) }

func testEngineNoDoubleOffer(t *testing.T, sweep time.Duration) {
	ctx := context.Background()
	var members []Member
	for i := range 20 {
		members = append(members, Member{Agent: fmt.Sprintf("8:acs:agent%02d", i)})
	}
	e, sw, clk, tr, _ := newEngineSweep(t, Definition{Name: "support", Members: members, RingTimeoutSeconds: 3, MaxMisses: 1000}, sweep)
	for _, m := range members {
		tr.SetAvailable(m.Agent, t0)
	}
	rng := rand.New(rand.NewPCG(15, 1))
	done := map[string]bool{} // answered or abandoned
	const calls = 300
	entered := 0
	for round := 0; ; round++ {
		if round > 5000 {
			s, _ := e.Stats(ctx, "support")
			t.Fatalf("not done after 5000 rounds: %d of %d done; %+v; ringing %v", len(done), calls, s, sw.ringingNow())
		}
		for range rng.IntN(4) {
			if entered < calls {
				if _, err := e.Enter(ctx, "support", fmt.Sprintf("c%03d", entered), "8:acs:x", nil); err != nil {
					t.Fatal(err)
				}
				entered++
			}
		}
		n := len(sw.offers)
		e.Step(ctx)
		for _, o := range sw.offers[n:] {
			call := o[:4]
			if done[call] {
				t.Fatalf("round %d: %s offered after it was answered or abandoned", round, o)
			}
		}
		for call, agent := range sw.ringingNow() {
			switch rng.IntN(6) {
			case 0, 1, 2:
				sw.accept(call)
				done[call] = true
			case 3:
				_ = sw.Withdraw(ctx, Waiting{CallID: call}, agent) // she declines
			case 4:
				sw.hangUp(call) // the caller gives up while it rings
				done[call] = true
			}
		}
		sw.mu.Lock()
		var talking []string
		for call := range sw.answered {
			if !sw.gone[call] {
				talking = append(talking, call)
			}
		}
		sw.mu.Unlock()
		for _, call := range talking {
			if rng.IntN(3) == 0 {
				sw.hangUp(call)
			}
		}
		clk.add(time.Duration(rng.IntN(1500)) * time.Millisecond)
		if entered == calls && len(done) == calls {
			e.Step(ctx)
			break
		}
	}
	// Calls abandoned while waiting, never offered, are not in done: hang
	// up nobody else, so every call ended answered or abandoned.
	s, err := e.Stats(ctx, "support")
	if err != nil {
		t.Fatal(err)
	}
	if s.Waiting != 0 || s.Answered+s.Abandoned != calls || s.Offered != len(sw.offers) {
		t.Errorf("stats %+v with %d offers; want none waiting, %d answered or abandoned", s, len(sw.offers), calls)
	}
	sw.mu.Lock()
	answered := len(sw.answered)
	sw.mu.Unlock()
	if s.Answered != answered {
		t.Errorf("%d answered by the stats, %d by the switch", s.Answered, answered)
	}
}

// TestEngineRingsWithoutALook: with Changed feeding it, a step rings a
// call nothing changed on without asking the Switch first; a caller who
// hung up unseen makes the offer fail, and the next step counts her
// abandoned and offers the agent the next call.
func TestEngineRingsWithoutALook(t *testing.T) {
	ctx := context.Background()
	members := []Member{{Agent: "8:acs:ann"}}
	e, sw, clk, tr, _ := newEngineSweep(t, Definition{Name: "support", Members: members}, time.Minute)
	tr.MarkAway("8:acs:ann")
	for _, id := range []string{"c1", "c2", "c3"} {
		if _, err := e.Enter(ctx, "support", id, "8:acs:x", nil); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Second)
	}
	e.Step(ctx) // the entries' looks; nobody free
	sw.mu.Lock()
	sw.gone["c1"] = true // unseen: no Changed
	sw.mu.Unlock()
	tr.SetAvailable("8:acs:ann", clk.Now())
	before := sw.lookCount()
	e.Step(ctx)
	if n := sw.lookCount() - before; n != 0 || len(sw.offers) != 0 {
		t.Fatalf("ringing c1: %d looks, offers %v; want no look, the offer failed", n, sw.offers)
	}
	e.Step(ctx)
	if s, _ := e.Stats(ctx, "support"); s.Abandoned != 1 || s.Waiting != 2 {
		t.Fatalf("after c1's offer failed: %+v; want c1 abandoned, 2 waiting", s)
	}
	if len(sw.offers) != 1 || sw.offers[0] != "c2>8:acs:ann" {
		t.Errorf("offers %v; want c2 offered to ann", sw.offers)
	}
}
