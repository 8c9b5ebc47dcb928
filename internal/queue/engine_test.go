package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// fakeSwitch is the calls domain as the engine sees it: who rings where.
type fakeSwitch struct {
	mu       sync.Mutex
	ringing  map[string]string // call -> agent ringing
	answered map[string]string // call -> agent who answered
	gone     map[string]bool   // caller hung up
	ended    map[string]string // call -> reason the engine ended it
	offers   []string          // "call>agent", in order
	looks    int               // Status calls
	// changed, when set, is told of each change to a call, as
	// api.QueueWake tells Engine.Changed.
	changed func(call string)
	// answerOnWithdraw: the agent a withdraw is about accepts just
	// before it (the withdraw then fails, as the calls domain's does).
	answerOnWithdraw bool
	done             []string // calls the engine was done with (Done)
}

func (f *fakeSwitch) tell(call string) {
	if f.changed != nil {
		f.changed(call)
	}
}

func newFakeSwitch() *fakeSwitch {
	return &fakeSwitch{ringing: map[string]string{}, answered: map[string]string{}, gone: map[string]bool{}, ended: map[string]string{}}
}

func (f *fakeSwitch) Offer(_ context.Context, w Waiting, agent string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ringing[w.CallID] != "" {
		return fmt.Errorf("%s already rings %s", w.CallID, f.ringing[w.CallID])
	}
	if f.gone[w.CallID] || f.ended[w.CallID] != "" {
		return calls.Errorf(calls.CodeCallNotFound, "no call %s", w.CallID) // as the calls domain answers
	}
	f.ringing[w.CallID] = agent
	f.offers = append(f.offers, w.CallID+">"+agent)
	return nil
}

func (f *fakeSwitch) Withdraw(_ context.Context, w Waiting, agent string) error {
	f.mu.Lock()
	if f.answerOnWithdraw && f.ringing[w.CallID] == agent {
		// Not told: the next step finds her answer on its own.
		delete(f.ringing, w.CallID)
		f.answered[w.CallID] = agent
		f.mu.Unlock()
		return calls.Errorf(calls.CodeInvalidState, "%s answered %s", agent, w.CallID)
	}
	rang := f.ringing[w.CallID] == agent
	if rang {
		delete(f.ringing, w.CallID)
	}
	f.mu.Unlock()
	if rang {
		f.tell(w.CallID)
	}
	return nil
}

func (f *fakeSwitch) Status(_ context.Context, w Waiting, agent string) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks++
	st := Status{CallerGone: f.gone[w.CallID] || f.ended[w.CallID] != ""}
	if agent != "" {
		st.Answered = f.answered[w.CallID] == agent
		st.AgentGone = !st.Answered && f.ringing[w.CallID] != agent
	}
	return st, nil
}

func (f *fakeSwitch) Done(_ context.Context, w Waiting) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = append(f.done, w.CallID)
}

func (f *fakeSwitch) End(_ context.Context, w Waiting, reason string) error {
	f.mu.Lock()
	f.ended[w.CallID] = reason
	f.mu.Unlock()
	f.tell(w.CallID)
	return nil
}

// accept: the agent ringing for call answers it.
func (f *fakeSwitch) accept(call string) string {
	f.mu.Lock()
	a := f.ringing[call]
	delete(f.ringing, call)
	f.answered[call] = a
	f.mu.Unlock()
	f.tell(call)
	return a
}

// hangUp: the answered call ends.
func (f *fakeSwitch) hangUp(call string) {
	f.mu.Lock()
	f.gone[call] = true
	f.mu.Unlock()
	f.tell(call)
}

func (f *fakeSwitch) lookCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.looks
}

func (f *fakeSwitch) ringingNow() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for c, a := range f.ringing {
		out[c] = a
	}
	return out
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type recordedEvents struct {
	mu      sync.Mutex
	waiting int
	stats   []Stats
}

func (r *recordedEvents) QueueCallWaiting(Waiting, int) { r.mu.Lock(); r.waiting++; r.mu.Unlock() }
func (r *recordedEvents) QueueStatsChanged(s Stats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats = append(r.stats, s)
}

// modes runs test twice: with every step looking at every call (no
// Sweep), and with the switch telling the engine of changes (Changed)
// and a sweep too rare to happen within the test.
func modes(t *testing.T, test func(t *testing.T, sweep time.Duration)) {
	t.Run("every-step", func(t *testing.T) { test(t, 0) })
	t.Run("changed", func(t *testing.T) { test(t, 24*time.Hour) })
}

// newEngineSweep is newEngine with EngineConfig.Sweep; with a sweep the
// fake switch tells the engine of changes.
func newEngineSweep(t *testing.T, d Definition, sweep time.Duration) (*Engine, *fakeSwitch, *clock, *Tracker, *recordedEvents) {
	t.Helper()
	sw, clk, ev := newFakeSwitch(), &clock{now: t0}, &recordedEvents{}
	tr := &Tracker{}
	e := NewEngine(EngineConfig{Store: NewMemory(), Switch: sw, Availability: tr, Events: ev, Now: clk.Now, Sweep: sweep})
	if sweep > 0 {
		sw.changed = func(call string) { e.Changed(call) }
	}
	if _, err := e.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	return e, sw, clk, tr, ev
}

// TestEngineLongestIdle: 10 agents, 100 calls; each offer goes to the
// agent idle the longest among those free, and the stats add up.
func TestEngineLongestIdle(t *testing.T) { modes(t, testEngineLongestIdle) }

func testEngineLongestIdle(t *testing.T, sweep time.Duration) {
	ctx := context.Background()
	var members []Member
	for i := range 10 {
		members = append(members, Member{Agent: fmt.Sprintf("8:acs:agent%d", i)})
	}
	e, sw, clk, tr, ev := newEngineSweep(t, Definition{Name: "support", Members: members, ServiceLevelSeconds: 20}, sweep)
	// Agents came online a second apart: agent9 idle the longest.
	for i, m := range members {
		tr.SetAvailable(m.Agent, t0.Add(-time.Duration(i+1)*time.Second))
	}
	for i := range 100 {
		if _, err := e.Enter(ctx, "support", fmt.Sprintf("call%03d", i), "8:acs:caller", nil); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Millisecond)
	}
	answeredBy := map[string]int{}
	for round := 0; len(sw.offers) < 100 || len(sw.ringingNow()) > 0; round++ {
		if round > 200 {
			t.Fatalf("not all offered after 200 rounds: %d offers", len(sw.offers))
		}
		// The free agents, longest idle first, are who the next calls go to.
		type idle struct {
			agent string
			since time.Time
		}
		var free []idle
		for _, m := range members {
			if tr.Offerable(m.Agent, 1, clk.Now()) {
				free = append(free, idle{m.Agent, tr.IdleSince(m.Agent)})
			}
		}
		before := len(sw.offers)
		e.Step(ctx)
		got := sw.offers[before:]
		if len(got) > len(free) {
			t.Fatalf("round %d: %d offers to %d free agents", round, len(got), len(free))
		}
		for i, o := range got {
			// the i-th offer goes to the i-th longest idle free agent
			best := free[0]
			for _, f := range free {
				if f.since.Before(best.since) {
					best = f
				}
			}
			free = slicesDelete(free, func(f idle) bool { return f.agent == best.agent })
			if want := "call" + o[4:7] + ">" + best.agent; o != want {
				t.Fatalf("round %d offer %d: %s, want %s", round, i, o, want)
			}
		}
		e.Step(ctx) // nothing changes while they ring
		if len(sw.offers) != before+len(got) {
			t.Fatalf("offers while ringing")
		}
		clk.add(time.Second)
		for call := range sw.ringingNow() {
			answeredBy[sw.accept(call)]++
		}
		n := len(sw.offers)
		e.Step(ctx) // answers seen
		if len(sw.offers) != n {
			t.Fatalf("round %d: agents who just answered were offered %d more calls", round, len(sw.offers)-n)
		}
		clk.add(time.Duration(round%3+1) * time.Second)
		for call := range sw.answered {
			sw.hangUp(call)
		}
		e.Step(ctx) // ends seen: idle from now
		clk.add(time.Second)
	}
	if len(answeredBy) != 10 {
		t.Errorf("answered by %d agents, want all 10: %v", len(answeredBy), answeredBy)
	}
	s, err := e.Stats(ctx, "support")
	if err != nil {
		t.Fatal(err)
	}
	if s.Waiting != 0 || s.Answered != 100 || s.Offered != 100 || s.Missed != 0 || s.Abandoned != 0 {
		t.Errorf("stats: %+v", s)
	}
	if s.AnsweredInSL == 0 || s.AnsweredInSL == 100 || s.ServiceLevel != float64(s.AnsweredInSL) {
		t.Errorf("service level: %d answered within %d s, %v%%; the later calls waited longer", s.AnsweredInSL, s.ServiceLevelSeconds, s.ServiceLevel)
	}
	if ev.waiting != 100 || len(ev.stats) == 0 || ev.stats[len(ev.stats)-1].Answered != 100 {
		t.Errorf("events: %d waiting, %d stats", ev.waiting, len(ev.stats))
	}
}

func slicesDelete[T any](s []T, del func(T) bool) []T {
	out := s[:0]
	for _, x := range s {
		if !del(x) {
			out = append(out, x)
		}
	}
	return out
}

// TestEngineMisses: an offer nobody answers moves on at the ring timeout;
// the second miss in a row reports the agent (Away); an abandoned call and
// a call at max wait are counted.
func TestEngineMisses(t *testing.T) { modes(t, testEngineMisses) }

func testEngineMisses(t *testing.T, sweep time.Duration) {
	ctx := context.Background()
	d := Definition{Name: "support", RingTimeoutSeconds: 5, MaxWaitSeconds: 100, MaxMisses: 2,
		Members: []Member{{Agent: "8:acs:a"}, {Agent: "8:acs:b"}}}
	e, sw, clk, tr, _ := newEngineSweep(t, d, sweep)
	tr.SetAvailable("8:acs:a", t0.Add(-time.Hour)) // idle the longest
	tr.SetAvailable("8:acs:b", t0)
	if _, err := e.Enter(ctx, "support", "c1", "8:acs:x", nil); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	if r := sw.ringingNow()["c1"]; r != "8:acs:a" {
		t.Fatalf("first offer to %q, want a", r)
	}
	clk.add(4 * time.Second)
	e.Step(ctx)
	if r := sw.ringingNow()["c1"]; r != "8:acs:a" {
		t.Fatalf("before the ring timeout the offer moved to %q", r)
	}
	clk.add(time.Second)
	e.Step(ctx) // withdrawn
	e.Step(ctx) // next
	if r := sw.ringingNow()["c1"]; r != "8:acs:b" {
		t.Fatalf("after a's ring timeout the offer went to %q, want b", r)
	}
	if tr.Away("8:acs:a") {
		t.Fatal("one miss marked a Away")
	}
	clk.add(5 * time.Second)
	e.Step(ctx)
	e.Step(ctx)
	if r := sw.ringingNow()["c1"]; r != "8:acs:a" {
		t.Fatalf("after both missed, the offer went to %q, want a again", r)
	}
	clk.add(5 * time.Second)
	e.Step(ctx)
	if !tr.Away("8:acs:a") {
		t.Fatal("two misses in a row did not mark a Away")
	}
	e.Step(ctx)
	if r := sw.ringingNow()["c1"]; r != "8:acs:b" {
		t.Fatalf("offer to %q, want b (a is Away)", r)
	}
	sw.hangUp("c1") // the caller gives up
	e.Step(ctx)
	if _, err := e.Enter(ctx, "support", "c2", "8:acs:y", nil); err != nil {
		t.Fatal(err)
	}
	tr.MarkAway("8:acs:b")
	e.Step(ctx)
	clk.add(100 * time.Second)
	e.Step(ctx)
	if sw.ended["c2"] != ReasonMaxWait {
		t.Fatalf("c2 at max wait: ended %q", sw.ended["c2"])
	}
	s, _ := e.Stats(ctx, "support")
	if s.Waiting != 0 || s.Abandoned != 1 || s.TimedOut != 1 || s.Missed != 3 || s.Offered != 4 || s.Answered != 0 || s.ServiceLevel != 0 {
		t.Errorf("stats: %+v", s)
	}
}

// TestEngineOverflow: at max wait a call moves to the overflow queue, and
// a declined offer moves on at once.
func TestEngineOverflow(t *testing.T) { modes(t, testEngineOverflow) }

func testEngineOverflow(t *testing.T, sweep time.Duration) {
	ctx := context.Background()
	e, sw, clk, tr, _ := newEngineSweep(t, Definition{Name: "support", MaxWaitSeconds: 30, OverflowQueue: "backup", Members: []Member{{Agent: "8:acs:a"}}}, sweep)
	if _, err := e.Create(ctx, Definition{Name: "backup", Members: []Member{{Agent: "8:acs:b"}, {Agent: "8:acs:c", Skills: map[string]int{"fr": 1}}}}); err != nil {
		t.Fatal(err)
	}
	tr.MarkAway("8:acs:a")
	if _, err := e.Enter(ctx, "support", "c1", "8:acs:x", map[string]int{"fr": 1}); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	clk.add(30 * time.Second)
	e.Step(ctx)
	e.Step(ctx)
	if r := sw.ringingNow()["c1"]; r != "8:acs:c" {
		t.Fatalf("overflowed call rings %q, want c (the one with the skill)", r)
	}
	sw.Withdraw(ctx, Waiting{CallID: "c1"}, "8:acs:c") // she declines
	e.Step(ctx)
	e.Step(ctx)
	if r := sw.ringingNow()["c1"]; r != "8:acs:c" {
		t.Fatalf("after a decline, rings %q; want c again (the only qualified)", r)
	}
	s1, _ := e.Stats(ctx, "support")
	s2, _ := e.Stats(ctx, "backup")
	if s1.Overflowed != 1 || s1.Waiting != 0 || s2.Waiting != 1 || s2.Offered != 2 || s2.Missed != 1 {
		t.Errorf("stats: support %+v, backup %+v", s1, s2)
	}
}

// TestEngineForget: a node shutting down takes its waiting calls out of
// the shared store and frees the agent it rang.
func TestEngineForget(t *testing.T) { modes(t, testEngineForget) }

func testEngineForget(t *testing.T, sweep time.Duration) {
	ctx := context.Background()
	e, sw, clk, _, _ := newEngineSweep(t, Definition{Name: "support", Members: []Member{{Agent: "8:acs:a"}}}, sweep)
	for _, id := range []string{"c1", "c2"} {
		if _, err := e.Enter(ctx, "support", id, "8:acs:x", nil); err != nil {
			t.Fatal(err)
		}
		clk.add(time.Millisecond) // c1 is the oldest: offered first
	}
	e.Step(ctx)
	if sw.ringingNow()["c1"] != "8:acs:a" {
		t.Fatal("c1 not offered")
	}
	if err := e.Forget(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.Stats(ctx, "support"); s.Waiting != 0 || s.Abandoned != 0 {
		t.Errorf("after Forget: %+v", s)
	}
	if ok, _ := e.Store().ClaimAgent(ctx, "8:acs:a", "other"); !ok {
		t.Error("the agent is still claimed")
	}
}

// TestReap: the waiting calls of a node gone leave the store counted
// abandoned once, and free the agent one rang; other nodes' stay.
func TestReap(t *testing.T) {
	ctx := context.Background()
	st := NewMemory()
	d := Definition{Name: "support", Members: []Member{{Agent: "8:acs:ann"}}}
	if err := d.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := st.PutQueue(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, w := range []Waiting{
		{CallID: "c1", Queue: "support", Node: "dead", Offer: &Offer{Agent: "8:acs:ann", At: t0}},
		{CallID: "c2", Queue: "support", Node: "dead"},
		{CallID: "c3", Queue: "support", Node: "alive"},
	} {
		if err := st.PutWaiting(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := st.ClaimAgent(ctx, "8:acs:ann", "c1"); !ok {
		t.Fatal("claim refused")
	}
	e := NewEngine(EngineConfig{Store: st, Node: "here"})
	for i, want := range []int{2, 0} {
		if n, err := e.Reap(ctx, "dead"); n != want || err != nil {
			t.Fatalf("reap %d = %d, %v; want %d", i, n, err, want)
		}
	}
	ws, _ := st.Waiting(ctx, "support")
	c, _ := st.Counters(ctx, "support")
	if len(ws) != 1 || ws[0].CallID != "c3" || c.Abandoned != 2 {
		t.Errorf("after the reap: waiting %+v, counters %+v", ws, c)
	}
	if ok, _ := st.ClaimAgent(ctx, "8:acs:ann", "c9"); !ok {
		t.Error("ann is still held by the dead node's offer")
	}
}

// TestEngineVoicemail: at max wait, a queue that takes voicemail (and has
// no overflow queue) withdraws the offer ringing, hands the call to the
// Voicemail hook with its max seconds and counts it a voicemail, not a
// timeout; a failing hook ends the call as max wait does; a queue without
// a hook cannot take voicemail, and a node without one ends the call.
func TestEngineVoicemail(t *testing.T) { modes(t, testEngineVoicemail) }

func testEngineVoicemail(t *testing.T, sweep time.Duration) {
	ctx := context.Background()
	type vm struct {
		call string
		max  int
	}
	var got []vm
	var fail bool
	sw, clk, ev := newFakeSwitch(), &clock{now: t0}, &recordedEvents{}
	tr := &Tracker{}
	cfg := EngineConfig{Store: NewMemory(), Switch: sw, Availability: tr, Events: ev, Now: clk.Now, Sweep: sweep,
		Voicemail: func(_ context.Context, w Waiting, max int) error {
			if fail {
				return errors.New("no recorder")
			}
			got = append(got, vm{w.CallID, max})
			return nil
		}}
	e := NewEngine(cfg)
	if sweep > 0 {
		sw.changed = func(call string) { e.Changed(call) }
	}
	d, err := e.Create(ctx, Definition{Name: "support", MaxWaitSeconds: 30, RingTimeoutSeconds: 60, Voicemail: true, VoicemailMaxSeconds: 45,
		Members: []Member{{Agent: "8:acs:a"}}})
	if err != nil || !d.Voicemail || d.VoicemailMaxSeconds != 45 {
		t.Fatalf("create = %+v, %v", d, err)
	}
	tr.SetAvailable("8:acs:a", t0)
	if _, err := e.Enter(ctx, "support", "c1", "8:acs:x", nil); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	if sw.ringingNow()["c1"] != "8:acs:a" {
		t.Fatal("c1 not offered")
	}
	clk.add(29 * time.Second)
	e.Step(ctx)
	if len(got) != 0 {
		t.Fatal("voicemail before max wait")
	}
	clk.add(time.Second)
	e.Step(ctx)
	if len(got) != 1 || got[0] != (vm{"c1", 45}) {
		t.Fatalf("voicemail hook told %+v, want c1 with 45 s", got)
	}
	if r := sw.ringingNow()["c1"]; r != "" {
		t.Errorf("the offer to %s still rings", r)
	}
	if sw.ended["c1"] != "" {
		t.Errorf("the engine ended c1 (%q): voicemail ends it", sw.ended["c1"])
	}
	s, _ := e.Stats(ctx, "support")
	if s.Waiting != 0 || s.Voicemails != 1 || s.TimedOut != 0 || s.Offered != 1 || s.Answered != 0 || s.ServiceLevel != 0 {
		t.Errorf("stats after the voicemail: %+v", s)
	}
	if ok, _ := e.Store().ClaimAgent(ctx, "8:acs:a", "other"); !ok {
		t.Error("the agent is still claimed")
	}
	_ = e.Store().ReleaseAgent(ctx, "8:acs:a", "other")

	// The hook fails: the call ends at max wait.
	fail = true
	tr.MarkAway("8:acs:a")
	if _, err := e.Enter(ctx, "support", "c2", "8:acs:x", nil); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	clk.add(30 * time.Second)
	e.Step(ctx)
	if sw.ended["c2"] != ReasonMaxWait {
		t.Errorf("c2 with a failing hook: ended %q, want %q", sw.ended["c2"], ReasonMaxWait)
	}
	if s, _ := e.Stats(ctx, "support"); s.Waiting != 0 || s.Voicemails != 1 || s.TimedOut != 1 {
		t.Errorf("stats after the failed voicemail: %+v", s)
	}

	// No hook: the queue cannot take voicemail; one made elsewhere ends
	// its calls at max wait here.
	plain := NewEngine(EngineConfig{Store: cfg.Store, Switch: sw, Availability: tr, Now: clk.Now, Sweep: sweep})
	_, err = plain.Create(ctx, Definition{Name: "other", Voicemail: true})
	if ce, ok := errors.AsType[*calls.Error](err); !ok || ce.Code != calls.CodeNotImplemented {
		t.Errorf("create a voicemail queue without the hook = %v, want not_implemented", err)
	}
	if _, err := plain.Enter(ctx, "support", "c3", "8:acs:x", nil); err != nil {
		t.Fatal(err)
	}
	plain.Step(ctx)
	clk.add(30 * time.Second)
	plain.Step(ctx)
	if sw.ended["c3"] != ReasonMaxWait {
		t.Errorf("c3 on a node without the hook: ended %q, want %q", sw.ended["c3"], ReasonMaxWait)
	}
	if s, _ := e.Stats(ctx, "support"); s.Voicemails != 1 || s.TimedOut != 2 {
		t.Errorf("stats after c3: %+v", s)
	}
}

// TestEngineAnsweredAsWithdrawn: the agent accepts between the step's
// look and its withdraw (the ring timeout, the max wait): the calls domain
// refuses the withdraw, and the call is served, not missed, abandoned or
// timed out, and nobody else is offered it.
func TestEngineAnsweredAsWithdrawn(t *testing.T) { modes(t, testEngineAnsweredAsWithdrawn) }

func testEngineAnsweredAsWithdrawn(t *testing.T, sweep time.Duration) {
	for _, tt := range []struct {
		name  string
		after time.Duration // from the offer to the step that withdraws it
	}{
		{name: "ring timeout", after: 5 * time.Second},
		{name: "max wait", after: 100 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d := Definition{Name: "support", RingTimeoutSeconds: 5, MaxWaitSeconds: 100, MaxMisses: 1,
				Members: []Member{{Agent: "8:acs:a"}, {Agent: "8:acs:b"}}}
			e, sw, clk, tr, _ := newEngineSweep(t, d, sweep)
			tr.SetAvailable("8:acs:a", t0.Add(-time.Hour))
			tr.SetAvailable("8:acs:b", t0)
			if _, err := e.Enter(ctx, "support", "c1", "8:acs:x", nil); err != nil {
				t.Fatal(err)
			}
			e.Step(ctx)
			if r := sw.ringingNow()["c1"]; r != "8:acs:a" {
				t.Fatalf("first offer to %q, want a", r)
			}
			sw.mu.Lock()
			sw.answerOnWithdraw = true
			sw.mu.Unlock()
			clk.add(tt.after)
			e.Step(ctx) // the withdraw is refused: she answered
			e.Step(ctx) // the look that sees her answer
			st, err := e.Stats(ctx, "support")
			if err != nil {
				t.Fatal(err)
			}
			if c := st.Counters; c.Answered != 1 || c.Missed != 0 || c.Abandoned != 0 || c.TimedOut != 0 || st.Waiting != 0 {
				t.Errorf("stats %+v, want one answered", st)
			}
			if tr.Away("8:acs:a") {
				t.Error("a marked Away for a miss she answered")
			}
			sw.mu.Lock()
			defer sw.mu.Unlock()
			if len(sw.offers) != 1 || sw.ended["c1"] != "" {
				t.Errorf("offers %v, ended %q: want only a's, the call going on", sw.offers, sw.ended["c1"])
			}
		})
	}
}
