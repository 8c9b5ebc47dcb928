package holdpolicy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// world is a small model of the domain: agents, 1:1 calls (hold propagates
// to the other side) and group calls (hold is local), driven only through
// Plan, the way package calls drives it.
type world struct {
	agents  int
	convs   []*conv
	heldSeq uint64
	nextID  int
	opt     Options
}

type conv struct {
	oneToOne bool
	members  []*member
}

type member struct {
	agent   int
	id      string
	live    bool
	ended   bool
	holding bool
	heldSeq uint64
	conv    *conv
}

func (w *world) clone() *world {
	c := &world{agents: w.agents, heldSeq: w.heldSeq, nextID: w.nextID, opt: w.opt}
	for _, cv := range w.convs {
		ncv := &conv{oneToOne: cv.oneToOne}
		for _, m := range cv.members {
			nm := *m
			nm.conv = ncv
			ncv.members = append(ncv.members, &nm)
		}
		c.convs = append(c.convs, ncv)
	}
	return c
}

func (m *member) call() Call {
	c := Call{ID: m.id, Live: m.live, Ended: m.ended, HeldByAgent: m.holding, HeldSeq: m.heldSeq}
	if m.conv.oneToOne {
		for _, o := range m.conv.members {
			if o != m && o.holding && !o.ended {
				c.HeldByRemote = true
			}
		}
	}
	return c
}

// legs is every live or pending leg of agent a.
func (w *world) legs(a int) []*member {
	var out []*member
	for _, cv := range w.convs {
		for _, m := range cv.members {
			if m.agent == a && !m.ended {
				out = append(out, m)
			}
		}
	}
	return out
}

func (w *world) callsOf(a int) []Call {
	var out []Call
	for _, m := range w.legs(a) {
		out = append(out, m.call())
	}
	return out
}

func (w *world) leg(a int, id string) *member {
	for _, m := range w.legs(a) {
		if m.id == id {
			return m
		}
	}
	return nil
}

func (w *world) states() map[*member]State {
	s := map[*member]State{}
	for _, cv := range w.convs {
		for _, m := range cv.members {
			s[m] = m.call().State()
		}
	}
	return s
}

func (w *world) apply(a int, plan []Transition) {
	for _, tr := range plan {
		m := w.leg(a, tr.CallID)
		m.holding = tr.Hold
		if tr.Hold {
			w.heldSeq++
			m.heldSeq = w.heldSeq
		}
	}
}

// settle plans RemoteLive for every leg that became Connected since before,
// first the target of the agent's own action, until nothing changes.
func (w *world) settle(t *testing.T, before map[*member]State, first *member) {
	t.Helper()
	for range 100 {
		var became []*member
		if first != nil && before[first] != Connected && first.call().State() == Connected {
			became = append(became, first)
		}
		for m, s := range w.states() {
			if m != first && s == Connected && before[m] != Connected {
				became = append(became, m)
			}
		}
		changed := false
		for _, m := range became {
			if m.call().State() != Connected {
				continue
			}
			plan, err := Plan(w.callsOf(m.agent), RemoteLive, m.id, w.opt)
			if err != nil {
				t.Fatalf("RemoteLive %s: %v", m.id, err)
			}
			if len(plan) > 0 {
				w.apply(m.agent, plan)
				changed = true
			}
			before[m] = m.call().State()
		}
		if !changed {
			return
		}
	}
	t.Fatal("settle did not converge")
}

// prune drops conversations nobody is in any more.
func (w *world) prune() {
	w.convs = slices.DeleteFunc(w.convs, func(cv *conv) bool {
		for _, m := range cv.members {
			if !m.ended {
				return false
			}
		}
		return true
	})
}

func (w *world) newConv(oneToOne bool, agents ...int) *conv {
	cv := &conv{oneToOne: oneToOne}
	for _, a := range agents {
		w.nextID++
		cv.members = append(cv.members, &member{agent: a, id: fmt.Sprintf("c%d-a%d", w.nextID, a), conv: cv})
	}
	w.convs = append(w.convs, cv)
	return cv
}

// step does one random operation; it returns a description for failures.
func (w *world) step(t *testing.T, r *rand.Rand) string {
	t.Helper()
	a := r.IntN(w.agents)
	legs := w.legs(a)
	var m *member
	if len(legs) > 0 {
		m = legs[r.IntN(len(legs))]
	}
	before := w.states()
	do := func(action Action, target *member, then func()) string {
		plan, err := Plan(w.callsOf(target.agent), action, target.id, w.opt)
		if err != nil {
			return fmt.Sprintf("%s %s refused: %v", action, target.id, err)
		}
		w.apply(target.agent, plan)
		if then != nil {
			then()
		}
		w.settle(t, before, target)
		return fmt.Sprintf("agent %d %s %s: %v", target.agent, action, target.id, plan)
	}

	op := r.IntN(9)
	if len(legs) >= 8 && op <= 1 {
		op = 8 // an agent juggles a handful of calls: end one instead
	}
	switch {
	case op == 0 || m == nil: // start a 1:1 call to another agent
		b := (a + 1 + r.IntN(w.agents-1)) % w.agents
		cv := w.newConv(true, a, b)
		return do(Start, cv.members[0], nil)
	case op == 1: // join a group in which another agent, on hold, already is
		cv := w.newConv(false, a, (a+1)%w.agents)
		other := cv.members[1]
		other.live, other.holding = true, true
		return do(Join, cv.members[0], func() { cv.members[0].live = true })
	case op == 2: // accept: either side of a pending 1:1 call may be picked
		if m.live {
			return "skip"
		}
		callee := m.conv.members[len(m.conv.members)-1]
		return do(Accept, callee, func() {
			for _, o := range m.conv.members {
				o.live = true
			}
		})
	case op <= 4:
		return do(Resume, m, nil)
	case op <= 6:
		return do(Hold, m, nil)
	default: // end: a 1:1 call ends for both sides, a group call for one
		ending := []*member{m}
		if m.conv.oneToOne {
			ending = nil
			for _, o := range m.conv.members {
				if !o.ended {
					ending = append(ending, o)
				}
			}
		}
		for _, e := range ending {
			plan, err := Plan(w.callsOf(e.agent), End, e.id, w.opt)
			if err != nil {
				t.Fatalf("end %s: %v", e.id, err)
			}
			e.ended = true
			w.apply(e.agent, plan)
		}
		w.settle(t, before, nil)
		w.prune()
		return fmt.Sprintf("agent %d end %s", a, m.id)
	}
}

func (w *world) checkOneActive(t *testing.T, seed uint64, i int, what string) {
	t.Helper()
	for a := range w.agents {
		n := 0
		for _, c := range w.callsOf(a) {
			if c.State() == Connected {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("seed %d step %d (%s): agent %d has %d Connected calls", seed, i, what, a, n)
		}
	}
}

// checkResumable resumes, on a copy of the world, every call an agent holds,
// and checks the resume is allowed and leaves the agent's hold off it.
func (w *world) checkResumable(t *testing.T, seed uint64, i int) {
	t.Helper()
	for a := range w.agents {
		for _, c := range w.callsOf(a) {
			if c.State() != LocalHold {
				continue
			}
			cp := w.clone()
			before := cp.states()
			plan, err := Plan(cp.callsOf(a), Resume, c.ID, cp.opt)
			if err != nil {
				t.Fatalf("seed %d step %d: agent %d cannot resume %s: %v", seed, i, a, c.ID, err)
			}
			cp.apply(a, plan)
			target := cp.leg(a, c.ID)
			cp.settle(t, before, target)
			if target.holding {
				t.Fatalf("seed %d step %d: agent %d resumed %s but still holds it", seed, i, a, c.ID)
			}
			cp.checkOneActive(t, seed, i, "after resume "+c.ID)
		}
	}
}

// TestPropertyOneActiveCall runs random sequences of thousands of operations
// across several agents and checks, after every step, that no agent has two
// Connected calls and, every few steps, that every held call can be resumed.
func TestPropertyOneActiveCall(t *testing.T) {
	seeds, steps := 40, 3000
	if testing.Short() {
		seeds, steps = 5, 1000
	}
	for _, opt := range []Options{{}, {ResumeLastHeld: true}} {
		for seed := range uint64(seeds) {
			r := rand.New(rand.NewPCG(seed, 0x5eed))
			w := &world{agents: 2 + int(seed%5), opt: opt}
			for i := range steps {
				what := w.step(t, r)
				w.checkOneActive(t, seed, i, what)
				if i%25 == 0 {
					w.checkResumable(t, seed, i)
				}
			}
		}
	}
}
