// Package callstest has hand-written fakes of the ports package calls
// needs (Publisher, Store, Media, Clock) and helpers to build a Switchboard
// in tests. It is for tests only.
package callstest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// Publisher records every published event.
type Publisher struct {
	mu     sync.Mutex
	events []calls.Event
}

// Publish records ev.
func (p *Publisher) Publish(ev calls.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}

// Events returns the events published for agent (all when agent is "").
func (p *Publisher) Events(agent string) []calls.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []calls.Event
	for _, ev := range p.events {
		if agent == "" || ev.AgentID == agent {
			out = append(out, ev)
		}
	}
	return out
}

// Types returns the types of the events published for agent about call.
func (p *Publisher) Types(agent, call string) []calls.EventType {
	var out []calls.EventType
	for _, ev := range p.Events(agent) {
		if call == "" || ev.CallID == call {
			out = append(out, ev.Type)
		}
	}
	return out
}

// Reset forgets the events recorded so far.
func (p *Publisher) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = nil
}

// Store records what the switchboard stores; it answers no queries.
type Store struct {
	mu      sync.Mutex
	records []calls.Record
}

var _ calls.Store = (*Store)(nil)

// Record records recs.
func (s *Store) Record(recs ...calls.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, recs...)
}

// Durable answers nil: what it records is kept as Record returns.
func (s *Store) Durable(context.Context) error { return nil }

// Records returns what was recorded about call (all when call is "").
func (s *Store) Records(call string) []calls.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []calls.Record
	for _, r := range s.records {
		if call == "" || r.Call.ID == call {
			out = append(out, r)
		}
	}
	return out
}

// FindCalls answers an empty page.
func (s *Store) FindCalls(context.Context, calls.CallFilter) (calls.CallPage, error) {
	return calls.CallPage{Items: []calls.Call{}}, nil
}

// FindCallByID answers call_not_found.
func (s *Store) FindCallByID(_ context.Context, id string) (calls.CallHistory, error) {
	return calls.CallHistory{}, calls.Errorf(calls.CodeCallNotFound, "no call %q", id)
}

// RevokeToken keeps nothing and answers nil.
func (s *Store) RevokeToken(context.Context, string, time.Time) error { return nil }

// FindRevokedTokens answers none.
func (s *Store) FindRevokedTokens(context.Context, time.Time) ([]calls.RevokedToken, error) {
	return []calls.RevokedToken{}, nil
}

// Ready answers nil.
func (s *Store) Ready(context.Context) error { return nil }

// Close answers nil.
func (s *Store) Close(context.Context) error { return nil }

// Media records the last route of every conversation and the DTMF tones
// it is asked to play.
type Media struct {
	mu     sync.Mutex
	routes map[string]calls.Route
	tones  []string
}

var _ calls.Tones = (*Media)(nil)

// SendTones records the tones (calls.Tones).
func (m *Media) SendTones(serverCallID, fromRawID, digits string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tones = append(m.tones, serverCallID+" "+fromRawID+" "+digits)
}

// Tones returns the tones it was asked to play, in order, each as
// "serverCallID fromRawID digits".
func (m *Media) Tones() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.tones)
}

// SetRoute records r.
func (m *Media) SetRoute(r calls.Route) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.routes == nil {
		m.routes = map[string]calls.Route{}
	}
	m.routes[r.ServerCallID] = r
}

// Routes returns the last route of every conversation.
func (m *Media) Routes() []calls.Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]calls.Route, 0, len(m.routes))
	for _, r := range m.routes {
		out = append(out, r)
	}
	return out
}

// Clock is a fake clock: time moves only when Advance says so.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
}

type timer struct {
	at      time.Time
	f       func()
	stopped atomic.Bool
}

func (t *timer) Stop() bool { return !t.stopped.Swap(true) }

// NewClock returns a fake clock set to a fixed time.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc runs f when Advance passes now+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) calls.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the time on by d and runs, in order, the functions that
// fall due, outside the clock's lock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*timer
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool {
		if !t.at.After(c.now) {
			due = append(due, t)
			return true
		}
		return false
	})
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *timer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		if !t.stopped.Swap(true) {
			t.f()
		}
	}
}

// IDs returns a generator of readable, unique ids: c1, c2, ...
func IDs() func() string {
	var n atomic.Int64
	return func() string { return fmt.Sprintf("c%d", n.Add(1)) }
}

// Fixture is a Switchboard with fakes around it.
type Fixture struct {
	*calls.Switchboard
	Publisher *Publisher
	Store     *Store
	Media     *Media
	Clock     *Clock
}

// New returns a Fixture; cfg's Store, Publisher, Media, Clock and NewID
// are filled with fakes where unset.
func New(tb testing.TB, cfg calls.Config) *Fixture {
	tb.Helper()
	f := &Fixture{Publisher: &Publisher{}, Store: &Store{}, Media: &Media{}, Clock: NewClock()}
	if cfg.Store == nil {
		cfg.Store = f.Store
	}
	if cfg.Publisher == nil {
		cfg.Publisher = f.Publisher
	}
	if cfg.Media == nil {
		cfg.Media = f.Media
	}
	if cfg.Clock == nil {
		cfg.Clock = f.Clock
	}
	if cfg.NewID == nil {
		cfg.NewID = IDs()
	}
	sb, err := calls.New(cfg)
	if err != nil {
		tb.Fatalf("calls.New: %v", err)
	}
	f.Switchboard = sb
	tb.Cleanup(func() { _ = sb.Close(context.Background()) })
	return f
}

// Agent returns the principal of agent name (communicationUserId name).
func Agent(name string) calls.Principal {
	return calls.Principal{Identifier: calls.CommunicationUser(name), DisplayName: name, Role: calls.RoleAgent}
}

// Supervisor returns the principal of supervisor name.
func Supervisor(name string) calls.Principal {
	return calls.Principal{Identifier: calls.CommunicationUser(name), DisplayName: name, Role: calls.RoleSupervisor}
}

// Connect opens an event connection for p and returns its snapshot; the
// connection closes when the test ends.
func (f *Fixture) Connect(tb testing.TB, p calls.Principal) calls.Snapshot {
	tb.Helper()
	var snap calls.Snapshot
	detach, err := f.Attach(context.Background(), p, func(s calls.Snapshot) { snap = s })
	if err != nil {
		tb.Fatalf("Attach(%s): %v", p.Identifier.RawID(), err)
	}
	tb.Cleanup(func() { detach("") })
	return snap
}

// Must returns a function that fails the test on a non-nil error and
// otherwise returns the value: Must(t)(f.StartCall(...)).
func Must[T any](tb testing.TB) func(T, error) T {
	return func(v T, err error) T {
		tb.Helper()
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}
