package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// Switch is what the engine needs of the calls domain, for a waiting
// call's caller leg (package api implements it over calls.Switchboard).
type Switch interface {
	// Offer rings agent into the waiting call (an incomingCall for her).
	Offer(ctx context.Context, w Waiting, agent string) error
	// Withdraw stops ringing agent (the offer rang out, or the call left
	// the queue).
	Withdraw(ctx context.Context, w Waiting, agent string) error
	// Status answers how the waiting call and agent's part in it stand;
	// agent "" asks about the caller alone.
	Status(ctx context.Context, w Waiting, agent string) (Status, error)
	// End ends the caller's call (max wait with no overflow queue).
	End(ctx context.Context, w Waiting, reason string) error
}

// ReasonAgentLeft ends an answered queue call's caller when the agent
// hung up.
const ReasonAgentLeft = "agentLeft"

// Status is a waiting call as the calls domain sees it.
type Status struct {
	CallerGone bool // the caller's call ended
	Answered   bool // the agent accepted the offer (Connected)
	AgentGone  bool // the agent's part ended (declined, rang out, hung up)
}

// Events carries the engine's events to whoever watches (package api's
// hub: queueCallWaiting to the caller and supervisors, queueStatsChanged
// to supervisors).
type Events interface {
	QueueCallWaiting(w Waiting, position int)
	QueueStatsChanged(s Stats)
}

// EngineConfig configures an Engine.
type EngineConfig struct {
	Store  Store
	Switch Switch
	// Availability is asked who may be offered: agent status in serve
	// (calls.Switchboard); a Tracker (the default) also learns of
	// answers, ends and misses.
	Availability Availability
	Events       Events
	// Misses is told when an agent let MaxMisses offers in a row ring out
	// (status marks her Away); default: Tracker.MarkAway when
	// Availability is a *Tracker.
	Misses func(agent string)
	// WrapUp is told when the agent's answered queue call (callID: hers
	// when the Switch is an AgentCaller, else the caller's) ended: her status enters WrapUp for the queue's
	// wrapUpSeconds (calls.Switchboard.EnterWrapUp), which keeps offers
	// from her until it ends. A Tracker learns of it whether set or not.
	WrapUp func(ctx context.Context, agent, callID string, seconds int)
	// Record, when set, is told when an agent answered a call of a queue
	// whose definition says Record: it starts the call's recording.
	Record func(ctx context.Context, w Waiting, agent string)
	// Node is this node's id in a cluster: its waiting calls say so, so
	// that another node takes them out when it dies (Reap).
	Node   string
	Now    func() time.Time // default time.Now
	Tick   time.Duration    // how often waiting calls are looked at; default 200 ms
	Logger *slog.Logger
}

// Engine runs the offer cycle of the calls that entered a queue on this
// node: their caller legs live here, so this node offers them. Definitions,
// waiting calls, counters and the agents' offer claims are in the Store,
// shared by every node. Run drives it; its owner cancels Run's context to
// stop it.
type Engine struct {
	cfg     EngineConfig
	tracker *Tracker

	mu       sync.Mutex
	local    map[string]*Waiting // by caller call id
	answered map[string]answered // by caller call id
	last     map[string]string   // queue -> agent offered last
	misses   map[string]int      // agent -> offers in a row rung out
	offering map[string]bool     // agents this node's offers ring
	kick     chan struct{}
}

type answered struct {
	w         Waiting
	agent     string
	agentCall string // her own call's id, when the Switch tells (AgentCaller)
	wrapUp    time.Duration
}

// AgentCaller is what a Switch may also do: answer the id of the agent's
// own call in the waiting call w she answered, so that her wrap-up names
// her call (else it names the caller's).
type AgentCaller interface {
	AgentCallID(ctx context.Context, w Waiting, agent string) (string, error)
}

// NewEngine answers an engine; Run starts it.
func NewEngine(cfg EngineConfig) *Engine {
	e := &Engine{cfg: cfg, local: map[string]*Waiting{}, answered: map[string]answered{}, last: map[string]string{}, misses: map[string]int{}, offering: map[string]bool{}, kick: make(chan struct{}, 1)}
	if e.cfg.Availability == nil {
		e.cfg.Availability = &Tracker{}
	}
	if t, ok := e.cfg.Availability.(*Tracker); ok {
		e.tracker = t
		if e.cfg.Misses == nil {
			e.cfg.Misses = t.MarkAway
		}
	}
	if e.cfg.Now == nil {
		e.cfg.Now = time.Now
	}
	if e.cfg.Tick <= 0 {
		e.cfg.Tick = 200 * time.Millisecond
	}
	if e.cfg.Logger == nil {
		e.cfg.Logger = slog.Default()
	}
	return e
}

// Store answers the engine's store.
func (e *Engine) Store() Store { return e.cfg.Store }

// Create checks and stores a definition (creating or replacing it).
func (e *Engine) Create(ctx context.Context, d Definition) (Definition, error) {
	if err := d.Normalize(); err != nil {
		return Definition{}, err
	}
	if err := e.cfg.Store.PutQueue(ctx, d); err != nil {
		return Definition{}, err
	}
	return d, nil
}

// Stats answers a queue's stats now (CodeNotFound for an unknown queue).
func (e *Engine) Stats(ctx context.Context, name string) (Stats, error) {
	d, err := e.cfg.Store.Queue(ctx, name)
	if err != nil {
		return Stats{}, err
	}
	return e.stats(ctx, &d)
}

func (e *Engine) stats(ctx context.Context, d *Definition) (Stats, error) {
	c, err := e.cfg.Store.Counters(ctx, d.Name)
	if err != nil {
		return Stats{}, err
	}
	ws, err := e.cfg.Store.Waiting(ctx, d.Name)
	if err != nil {
		return Stats{}, err
	}
	return Compute(d, c, ws, e.cfg.Now()), nil
}

// Enter puts the caller's call callID into the queue; the engine offers it
// from the next tick. Errors: CodeNotFound for an unknown queue.
func (e *Engine) Enter(ctx context.Context, queue, callID, caller string, skills map[string]int) (Waiting, error) {
	d, err := e.cfg.Store.Queue(ctx, queue)
	if err != nil {
		return Waiting{}, err
	}
	now := e.cfg.Now()
	w := Waiting{CallID: callID, Queue: d.Name, Caller: caller, Skills: skills, EnteredAt: now, FirstEnteredAt: now}
	if err := e.put(ctx, &d, &w); err != nil {
		return Waiting{}, err
	}
	e.poke()
	return w, nil
}

// put stores a new waiting call, keeps it locally and tells of it.
func (e *Engine) put(ctx context.Context, d *Definition, w *Waiting) error {
	w.Node = e.cfg.Node
	if err := e.cfg.Store.PutWaiting(ctx, *w); err != nil {
		return err
	}
	own := *w // Step changes its own copy; w stays the caller's
	e.mu.Lock()
	e.local[w.CallID] = &own
	e.mu.Unlock()
	ws, err := e.cfg.Store.Waiting(ctx, d.Name)
	if err == nil && e.cfg.Events != nil {
		pos := slices.IndexFunc(ws, func(x Waiting) bool { return x.CallID == w.CallID }) + 1
		e.cfg.Events.QueueCallWaiting(*w, pos)
	}
	e.publishStats(ctx, d)
	return nil
}

// Wake makes Run look at the waiting calls at once rather than at the
// next Tick: the calls domain tells it that an offered or answered queue
// call changed or that an agent may have become free (a call ended, her
// status changed). Wakes that come while a look is pending make one
// look; it never blocks.
func (e *Engine) Wake() { e.poke() }

func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run looks at the waiting calls every Tick (and at once after Enter or
// Wake) until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
		}
		e.Step(ctx)
	}
}

// Step looks once at every waiting call of this node, oldest first, and
// at the answered ones (to start the agent's wrap-up when they end).
func (e *Engine) Step(ctx context.Context) {
	e.mu.Lock()
	ws := make([]*Waiting, 0, len(e.local))
	for _, w := range e.local {
		ws = append(ws, w)
	}
	ans := make([]answered, 0, len(e.answered))
	for _, a := range e.answered {
		ans = append(ans, a)
	}
	e.mu.Unlock()
	for _, a := range ans {
		st, err := e.cfg.Switch.Status(ctx, a.w, a.agent)
		if err != nil || !(st.CallerGone || st.AgentGone) {
			continue
		}
		e.mu.Lock()
		delete(e.answered, a.w.CallID)
		e.mu.Unlock()
		if !st.CallerGone {
			// The agent hung up: the caller, alone in the call, leaves too.
			if err := e.cfg.Switch.End(ctx, a.w, ReasonAgentLeft); err != nil {
				e.cfg.Logger.Warn("queue: end the caller after the agent left", "call_id", a.w.CallID, "err", err)
			}
		}
		if e.tracker != nil {
			e.tracker.Ended(a.agent, e.cfg.Now(), a.wrapUp)
		}
		if e.cfg.WrapUp != nil {
			e.cfg.WrapUp(ctx, a.agent, a.agentCall, int(a.wrapUp/time.Second))
		}
	}
	slices.SortFunc(ws, func(a, b *Waiting) int {
		return a.EnteredAt.Compare(b.EnteredAt)
	})
	defs := map[string]*Definition{}
	cands := map[string]*pool{}
	changed := map[string]bool{}
	for _, w := range ws {
		d, ok := defs[w.Queue]
		if !ok {
			def, err := e.cfg.Store.Queue(ctx, w.Queue)
			if err != nil {
				e.cfg.Logger.Warn("queue: definition", "queue", w.Queue, "err", err)
				continue
			}
			d = &def
			defs[w.Queue] = d
		}
		if _, ok := cands[w.Queue]; !ok {
			cands[w.Queue] = newPool(e.candidates(d))
		}
		ch, err := e.step(ctx, d, w, cands)
		if err != nil {
			e.cfg.Logger.Warn("queue: waiting call", "queue", w.Queue, "call_id", w.CallID, "err", err)
		}
		for _, q := range ch {
			changed[q] = true
		}
	}
	for q := range changed {
		d := defs[q]
		if d == nil {
			def, err := e.cfg.Store.Queue(ctx, q)
			if err != nil {
				continue
			}
			d = &def
		}
		e.publishStats(ctx, d)
	}
}

// pool is a queue's candidates during one Step, with how many of them
// are offerable (none: the queue's calls wait without a look).
type pool struct {
	cs   []Candidate
	free int
}

func newPool(cs []Candidate) *pool {
	p := &pool{cs: cs}
	for _, c := range cs {
		if c.Offerable {
			p.free++
		}
	}
	return p
}

// candidates answers d's members now; an agent this node is offering a
// call to is not offerable (on other nodes, the claim refuses her).
func (e *Engine) candidates(d *Definition) []Candidate {
	cs := Candidates(d, e.cfg.Availability, e.cfg.Now())
	e.mu.Lock()
	defer e.mu.Unlock()
	held := e.answeredHere(d)
	for i := range cs {
		if e.offering[cs[i].Agent] || held[cs[i].Agent] {
			cs[i].Offerable = false
		}
	}
	return cs
}

func (e *Engine) publishStats(ctx context.Context, d *Definition) {
	if e.cfg.Events == nil {
		return
	}
	s, err := e.stats(ctx, d)
	if err != nil {
		e.cfg.Logger.Warn("queue: stats", "queue", d.Name, "err", err)
		return
	}
	e.cfg.Events.QueueStatsChanged(s)
}

// leave removes w from its queue with delta counted.
func (e *Engine) leave(ctx context.Context, w *Waiting, delta Counters) error {
	e.mu.Lock()
	delete(e.local, w.CallID)
	e.mu.Unlock()
	if w.Offer != nil {
		if err := e.release(ctx, w.Offer.Agent, w.CallID); err != nil {
			return err
		}
	}
	if err := e.cfg.Store.DeleteWaiting(ctx, w.Queue, w.CallID); err != nil {
		return err
	}
	_, err := e.cfg.Store.AddCounters(ctx, w.Queue, delta)
	return err
}

// step moves one waiting call on; it answers the queues whose stats
// changed.
func (e *Engine) step(ctx context.Context, d *Definition, w *Waiting, cands map[string]*pool) ([]string, error) {
	now := e.cfg.Now()
	agent := ""
	if w.Offer != nil {
		agent = w.Offer.Agent
	}
	st, err := e.cfg.Switch.Status(ctx, *w, agent)
	if err != nil {
		if ce, ok := errors.AsType[*calls.Error](err); ok && ce.Code == calls.CodeCallNotFound {
			st.CallerGone = true
		} else {
			return nil, err
		}
	}
	switch {
	case st.Answered && w.Offer != nil:
		delta := Counters{Answered: 1}
		if now.Sub(w.EnteredAt) <= time.Duration(d.ServiceLevelSeconds)*time.Second {
			delta.AnsweredInSL = 1
		}
		if e.tracker != nil {
			e.tracker.Answered(agent)
		}
		delete(cands, w.Queue) // she is busy now: ask availability again
		a := answered{w: *w, agent: agent, agentCall: w.CallID, wrapUp: time.Duration(d.WrapUpSeconds) * time.Second}
		if ac, ok := e.cfg.Switch.(AgentCaller); ok {
			if id, err := ac.AgentCallID(ctx, *w, agent); err == nil {
				a.agentCall = id
			}
		}
		e.mu.Lock()
		e.misses[agent] = 0
		e.answered[w.CallID] = a
		e.mu.Unlock()
		if d.Record && e.cfg.Record != nil {
			e.cfg.Record(ctx, *w, agent)
		}
		return []string{w.Queue}, e.leave(ctx, w, delta)
	case st.CallerGone:
		if w.Offer != nil {
			_ = e.cfg.Switch.Withdraw(ctx, *w, agent) // the caller's end ends the offer anyway
		}
		return []string{w.Queue}, e.leave(ctx, w, Counters{Abandoned: 1})
	case st.AgentGone && w.Offer != nil:
		// Declined (or rang out in the calls domain): the next agent.
		if err := e.release(ctx, agent, w.CallID); err != nil {
			return nil, err
		}
		w.Offer = nil
		if _, err := e.cfg.Store.AddCounters(ctx, w.Queue, Counters{Missed: 1}); err != nil {
			return nil, err
		}
		return []string{w.Queue}, e.cfg.Store.PutWaiting(ctx, *w)
	}

	e.mu.Lock()
	last := e.last[w.Queue]
	e.mu.Unlock()
	p := cands[w.Queue]
	if p.free == 0 && w.Offer == nil && (d.MaxWaitSeconds == 0 || now.Sub(w.EnteredAt) < time.Duration(d.MaxWaitSeconds)*time.Second) {
		return nil, nil // nobody to offer to: Next would answer Hold
	}
	dec := Next(d, w, p.cs, last, now)
	switch dec.Action {
	case Ring:
		return e.ring(ctx, d, w, cands, last, now, dec.Agent)
	case Withdraw:
		if err := e.cfg.Switch.Withdraw(ctx, *w, dec.Agent); err != nil {
			return nil, fmt.Errorf("withdraw the offer to %s: %w", dec.Agent, err)
		}
		if err := e.release(ctx, dec.Agent, w.CallID); err != nil {
			return nil, err
		}
		w.Offer = nil
		e.mu.Lock()
		e.misses[dec.Agent]++
		away := e.misses[dec.Agent] >= d.MaxMisses
		if away {
			e.misses[dec.Agent] = 0
		}
		e.mu.Unlock()
		if away && e.cfg.Misses != nil {
			e.cfg.Logger.Info("queue: agent missed offers in a row", "queue", d.Name, "agent", dec.Agent, "misses", d.MaxMisses)
			e.cfg.Misses(dec.Agent)
		}
		if _, err := e.cfg.Store.AddCounters(ctx, w.Queue, Counters{Missed: 1}); err != nil {
			return nil, err
		}
		return []string{w.Queue}, e.cfg.Store.PutWaiting(ctx, *w)
	case Overflow, GiveUp:
		if dec.Agent != "" {
			if err := e.cfg.Switch.Withdraw(ctx, *w, dec.Agent); err != nil {
				return nil, fmt.Errorf("withdraw the offer to %s: %w", dec.Agent, err)
			}
		}
		if dec.Action == Overflow {
			next, err := e.cfg.Store.Queue(ctx, dec.Queue)
			if err == nil {
				if err := e.leave(ctx, w, Counters{Overflowed: 1}); err != nil {
					return nil, err
				}
				nw := Waiting{CallID: w.CallID, Queue: next.Name, Caller: w.Caller, Skills: w.Skills, EnteredAt: now, FirstEnteredAt: w.FirstEnteredAt}
				e.cfg.Logger.Info("queue: overflow", "queue", d.Name, "to", next.Name, "call_id", w.CallID)
				return []string{d.Name, next.Name}, e.put(ctx, &next, &nw)
			}
			e.cfg.Logger.Warn("queue: overflow queue missing: ending the call", "queue", d.Name, "overflow", dec.Queue, "err", err)
		}
		e.cfg.Logger.Info("queue: call ended at max wait", "queue", d.Name, "call_id", w.CallID, "reason", ReasonMaxWait)
		if err := e.cfg.Switch.End(ctx, *w, ReasonMaxWait); err != nil {
			return nil, fmt.Errorf("end at max wait: %w", err)
		}
		return []string{w.Queue}, e.leave(ctx, w, Counters{TimedOut: 1})
	}
	return nil, nil
}

// release frees the agent of w's offer, here and in the store.
func (e *Engine) release(ctx context.Context, agent, callID string) error {
	e.mu.Lock()
	delete(e.offering, agent)
	e.mu.Unlock()
	return e.cfg.Store.ReleaseAgent(ctx, agent, callID)
}

// ring offers w to agent (or, when another node holds her, to the next).
func (e *Engine) ring(ctx context.Context, d *Definition, w *Waiting, cands map[string]*pool, last string, now time.Time, agent string) ([]string, error) {
	p := cands[w.Queue]
	cs := p.cs
	for agent != "" {
		ok, err := e.cfg.Store.ClaimAgent(ctx, agent, w.CallID)
		if err != nil {
			return nil, err
		}
		// Whoever takes her, she is no one else's this tick.
		if i := slices.IndexFunc(cs, func(c Candidate) bool { return c.Agent == agent }); i >= 0 && cs[i].Offerable {
			cs[i].Offerable = false
			p.free--
		}
		if ok {
			break
		}
		agent = Next(d, w, cs, last, now).Agent
	}
	if agent == "" {
		return nil, nil
	}
	if err := e.cfg.Switch.Offer(ctx, *w, agent); err != nil {
		_ = e.release(ctx, agent, w.CallID)
		return nil, fmt.Errorf("offer to %s: %w", agent, err)
	}
	if slices.Contains(w.Tried, agent) {
		w.Tried = nil // a new round
	}
	w.Tried = append(w.Tried, agent)
	w.Offer = &Offer{Agent: agent, At: now}
	e.mu.Lock()
	e.offering[agent] = true
	e.last[w.Queue] = agent
	e.mu.Unlock()
	if _, err := e.cfg.Store.AddCounters(ctx, w.Queue, Counters{Offered: 1}); err != nil {
		return nil, err
	}
	return []string{w.Queue}, e.cfg.Store.PutWaiting(ctx, *w)
}

// Forget removes this node's waiting calls from the store and frees the
// agents they ring, uncounted: the node is shutting down and their
// callers' calls end with it. Call it after Run returned.
func (e *Engine) Forget(ctx context.Context) error {
	e.mu.Lock()
	ws := make([]*Waiting, 0, len(e.local))
	for _, w := range e.local {
		ws = append(ws, w)
	}
	e.local = map[string]*Waiting{}
	e.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if w.Offer != nil {
			errs = append(errs, e.release(ctx, w.Offer.Agent, w.CallID))
		}
		errs = append(errs, e.cfg.Store.DeleteWaiting(ctx, w.Queue, w.CallID))
	}
	return errors.Join(errs...)
}
