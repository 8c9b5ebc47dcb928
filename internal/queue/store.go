package queue

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/switchboard/switchboard/internal/calls"
)

// Store keeps queue definitions, waiting calls, counters and the offers
// agents hold, for every node: Memory on one node, JetStream on a
// cluster. Errors are *calls.Error (CodeNotFound for an unknown queue,
// CodeUnavailable when the store cannot answer) or wrap ctx's error.
type Store interface {
	// PutQueue creates or replaces a queue's definition.
	PutQueue(ctx context.Context, d Definition) error
	// Queue answers a queue's definition.
	Queue(ctx context.Context, name string) (Definition, error)
	// Queues answers every definition, by name.
	Queues(ctx context.Context) ([]Definition, error)
	// PutWaiting adds or updates a waiting call.
	PutWaiting(ctx context.Context, w Waiting) error
	// DeleteWaiting removes a waiting call (no error when it is gone).
	DeleteWaiting(ctx context.Context, queue, callID string) error
	// TakeWaiting removes a waiting call and reports whether this was the
	// removal that took it: of nodes taking one call at once, one is told
	// true.
	TakeWaiting(ctx context.Context, queue, callID string) (bool, error)
	// Waiting answers a queue's waiting calls, oldest first.
	Waiting(ctx context.Context, queue string) ([]Waiting, error)
	// AddCounters adds delta to a queue's counters and answers the sum.
	AddCounters(ctx context.Context, queue string, delta Counters) (Counters, error)
	// Counters answers a queue's counters.
	Counters(ctx context.Context, queue string) (Counters, error)
	// ClaimAgent reserves the agent for an offer of callID, so that no two
	// nodes offer her two queue calls at once; false when she holds
	// another call's offer. ReleaseAgent frees her (when callID holds her).
	ClaimAgent(ctx context.Context, agent, callID string) (bool, error)
	ReleaseAgent(ctx context.Context, agent, callID string) error
}

// Sharer is what a Store may also do: answer a definition without a
// copy of its members, the same one to every caller until PutQueue
// replaces it. Nobody changes what it answers. The engine asks it for each
// entering call and each step, where a copy of a big queue's members cost
// more than the routing itself.
type Sharer interface {
	SharedQueue(ctx context.Context, name string) (*Definition, error)
}

func errNoQueue(name string) error {
	return calls.Errorf(calls.CodeNotFound, "no queue named %q", name)
}

// Memory is a Store in this process, for one node.
type Memory struct {
	mu       sync.Mutex
	defs     map[string]*Definition // never changed once stored: SharedQueue hands them out
	waiting  map[string]map[string]Waiting
	lines    map[string]*line // each queue's waiting calls in order
	counters map[string]Counters
	claims   map[string]string
}

// NewMemory answers an empty Memory store.
func NewMemory() *Memory {
	return &Memory{defs: map[string]*Definition{}, waiting: map[string]map[string]Waiting{}, lines: map[string]*line{}, counters: map[string]Counters{}, claims: map[string]string{}}
}

// PutQueue implements Store.
func (m *Memory) PutQueue(_ context.Context, d Definition) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := d.Clone()
	m.defs[d.Name] = &c
	return nil
}

// Queue implements Store.
func (m *Memory) Queue(ctx context.Context, name string) (Definition, error) {
	d, err := m.SharedQueue(ctx, name)
	if err != nil {
		return Definition{}, err
	}
	return d.Clone(), nil
}

// SharedQueue implements Sharer.
func (m *Memory) SharedQueue(_ context.Context, name string) (*Definition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.defs[name]
	if !ok {
		return nil, errNoQueue(name)
	}
	return d, nil
}

// Queues implements Store.
func (m *Memory) Queues(_ context.Context) ([]Definition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Definition, 0, len(m.defs))
	for _, d := range m.defs {
		out = append(out, d.Clone())
	}
	sortDefs(out)
	return out, nil
}

func sortDefs(ds []Definition) {
	slices.SortFunc(ds, func(a, b Definition) int { return cmp.Compare(a.Name, b.Name) })
}

// PutWaiting implements Store.
func (m *Memory) PutWaiting(_ context.Context, w Waiting) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.waiting[w.Queue] == nil {
		m.waiting[w.Queue] = map[string]Waiting{}
		m.lines[w.Queue] = &line{}
	}
	l := m.lines[w.Queue]
	if old, ok := m.waiting[w.Queue][w.CallID]; ok {
		l.remove(old.EnteredAt, old.CallID)
	}
	m.waiting[w.Queue][w.CallID] = w
	l.add(w.EnteredAt, w.CallID)
	return nil
}

// DeleteWaiting implements Store.
func (m *Memory) DeleteWaiting(_ context.Context, queue, callID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.waiting[queue][callID]; ok {
		m.lines[queue].remove(old.EnteredAt, callID)
		delete(m.waiting[queue], callID)
	}
	return nil
}

// TakeWaiting implements Store.
func (m *Memory) TakeWaiting(_ context.Context, queue, callID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.waiting[queue][callID]
	if ok {
		m.lines[queue].remove(old.EnteredAt, callID)
		delete(m.waiting[queue], callID)
	}
	return ok, nil
}

// Waiting implements Store.
func (m *Memory) Waiting(_ context.Context, queue string) ([]Waiting, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.lines[queue]
	if l == nil {
		return []Waiting{}, nil
	}
	out := make([]Waiting, 0, l.len())
	for _, k := range l.keys {
		out = append(out, m.waiting[queue][k.id])
	}
	return out, nil
}

// WaitingSummary implements Summarizer.
func (m *Memory) WaitingSummary(_ context.Context, queue string) (Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.lines[queue]
	if l == nil {
		return Summary{}, nil
	}
	oldest, _ := l.oldest()
	return Summary{Count: l.len(), Oldest: oldest}, nil
}

func sortWaiting(ws []Waiting) {
	slices.SortFunc(ws, func(a, b Waiting) int {
		return cmp.Or(a.EnteredAt.Compare(b.EnteredAt), cmp.Compare(a.CallID, b.CallID))
	})
}

// AddCounters implements Store.
func (m *Memory) AddCounters(_ context.Context, queue string, delta Counters) (Counters, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counters[queue].add(delta)
	m.counters[queue] = c
	return c, nil
}

// Counters implements Store.
func (m *Memory) Counters(_ context.Context, queue string) (Counters, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counters[queue], nil
}

// ClaimAgent implements Store.
func (m *Memory) ClaimAgent(_ context.Context, agent, callID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if held, ok := m.claims[agent]; ok && held != callID {
		return false, nil
	}
	m.claims[agent] = callID
	return true, nil
}

// ReleaseAgent implements Store.
func (m *Memory) ReleaseAgent(_ context.Context, agent, callID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claims[agent] == callID {
		delete(m.claims, agent)
	}
	return nil
}

func (c Counters) add(d Counters) Counters {
	c.Answered += d.Answered
	c.AnsweredInSL += d.AnsweredInSL
	c.Abandoned += d.Abandoned
	c.Overflowed += d.Overflowed
	c.TimedOut += d.TimedOut
	c.Voicemails += d.Voicemails
	c.Offered += d.Offered
	c.Missed += d.Missed
	return c
}
