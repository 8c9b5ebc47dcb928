package queue

import (
	"sync"
	"time"
)

// Tracker is an in-memory Availability, fed by the queue's own calls (an
// agent who answers is busy until the call ends, then in wrap-up for the
// queue's WrapUpSeconds) and by misses (MarkAway). Online, when set, says
// whether an agent has an event connection (Offline otherwise); Calls,
// when set, counts the calls she holds outside queues. It stands in for
// agent status (calls.Switchboard, wired by WithStatus) in this package's
// tests and benchmarks, and is safe for concurrent use.
type Tracker struct {
	Online func(agent string) bool
	Calls  func(agent string) int

	mu     sync.Mutex
	agents map[string]*tracked
}

type tracked struct {
	active    int
	idleSince time.Time
	wrapUntil time.Time
	away      bool
}

func (t *Tracker) get(agent string) *tracked {
	if t.agents == nil {
		t.agents = map[string]*tracked{}
	}
	a := t.agents[agent]
	if a == nil {
		a = &tracked{}
		t.agents[agent] = a
	}
	return a
}

// Offerable implements Availability.
func (t *Tracker) Offerable(agent string, maxConcurrent int, now time.Time) bool {
	if t.Online != nil && !t.Online(agent) {
		return false
	}
	t.mu.Lock()
	a := t.get(agent)
	active, away, wrap := a.active, a.away, now.Before(a.wrapUntil)
	t.mu.Unlock()
	if t.Calls != nil {
		active = max(active, t.Calls(agent))
	}
	return !away && !wrap && active < max(maxConcurrent, 1)
}

// LookAll implements Looker: its own state under one lock (Online and
// Calls are still asked per agent).
func (t *Tracker) LookAll(agents []string, maxConcurrent int, now time.Time, offerable []bool, idleSince []time.Time) {
	t.mu.Lock()
	for i, agent := range agents {
		a := t.get(agent)
		offerable[i] = !a.away && !now.Before(a.wrapUntil) && a.active < max(maxConcurrent, 1)
		idleSince[i] = a.idleSince
	}
	t.mu.Unlock()
	for i, agent := range agents {
		if !offerable[i] {
			continue
		}
		if t.Online != nil && !t.Online(agent) || t.Calls != nil && t.Calls(agent) >= max(maxConcurrent, 1) {
			offerable[i] = false
		}
	}
}

// IdleSince implements Availability.
func (t *Tracker) IdleSince(agent string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.get(agent).idleSince
}

// Answered records that the agent took a queue call.
func (t *Tracker) Answered(agent string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(agent).active++
}

// Ended records that the agent's queue call ended at now, with wrapUp
// before her next offer.
func (t *Tracker) Ended(agent string, now time.Time, wrapUp time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.get(agent)
	a.active = max(a.active-1, 0)
	a.idleSince = now
	a.wrapUntil = now.Add(wrapUp)
}

// MarkAway marks the agent Away (after repeated misses); SetAvailable
// makes her Available again from now.
func (t *Tracker) MarkAway(agent string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.get(agent).away = true
}

// SetAvailable makes the agent Available, idle from now.
func (t *Tracker) SetAvailable(agent string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.get(agent)
	a.away = false
	a.idleSince = now
}

// Away reports whether MarkAway marked the agent.
func (t *Tracker) Away(agent string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.get(agent).away
}
