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
	// the queue); a calls.Error with CodeInvalidState when she answered
	// meanwhile.
	Withdraw(ctx context.Context, w Waiting, agent string) error
	// Status answers how the waiting call and agent's part in it stand;
	// agent "" asks about the caller alone.
	Status(ctx context.Context, w Waiting, agent string) (Status, error)
	// End ends the caller's call (max wait with no overflow queue).
	End(ctx context.Context, w Waiting, reason string) error
	// Done tells that the queue is done with the answered call w, which
	// goes on without it: its agent left it to others she brought in (the
	// calls domain ends a caller left alone itself).
	Done(ctx context.Context, w Waiting)
}

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
	// MissCounter, when set, counts the misses in a row of every node's
	// offers together (Board.Misses); else this engine counts its own.
	MissCounter MissCounter
	// WrapUp is told when the agent's answered queue call (callID: hers
	// when the Switch is an AgentCaller, else the caller's) ended: her status enters WrapUp for the queue's
	// wrapUpSeconds (calls.Switchboard.EnterWrapUp), which keeps offers
	// from her until it ends. A Tracker learns of it whether set or not.
	WrapUp func(ctx context.Context, agent, callID string, seconds int)
	// Record, when set, is told when an agent answered a call of a queue
	// whose definition says Record: it starts the call's recording.
	Record func(ctx context.Context, w Waiting, agent string)
	// Voicemail, when set, takes the caller's call of w, which waited its
	// queue's max wait and leaves it for voicemail (Definition.Voicemail):
	// it plays her the greeting, records her for up to maxSeconds and
	// ends her call; it must not block that long. An error, or no hook
	// (a node without a media plane), ends the call as max wait does
	// (counted TimedOut, logged). Create refuses a voicemail queue when
	// it is not set.
	Voicemail func(ctx context.Context, w Waiting, maxSeconds int) error
	// Queued, when set, is told that a call went through a queue: the
	// caller's call when it enters one (also by overflow), and the
	// agent's own call when she answers (AgentCaller). History keeps it
	// (calls.Switchboard.RecordCallQueue); it may be told twice.
	Queued func(ctx context.Context, callID, queue string)
	// Node is this node's id in a cluster: its waiting calls say so, so
	// that another node takes them out when it dies (Reap).
	Node string
	Now  func() time.Time // default time.Now
	Tick time.Duration    // how often waiting calls are looked at; default 200 ms
	// Sweep, when set, says that Changed tells the engine of every change
	// to a waiting or answered call's caller leg (api.QueueWake does it
	// from the switchboard's events): a step then asks the Switch about a
	// call only when Changed named it, when it is about to act on it (an
	// offer, a ring timeout, max wait) or in a sweep that looks at every
	// call once per Sweep, a bit each step, as a fallback. 0 (the
	// default): every step asks about every call.
	Sweep time.Duration
	// AgentWakes, when set, says that the engine is told of each agent
	// who may have become free (WakeFor: her call ended, her status
	// changed; api.QueueWake does it): a step then looks again only at
	// those of a queue's members, at the one it is about to offer a call
	// to (who may have become busy), and at every member once per Tick,
	// as a fallback. false (the default): at every member each step.
	AgentWakes bool
	Logger     *slog.Logger
}

// DefaultSweep is the fallback sweep serve runs with (EngineConfig.Sweep).
const DefaultSweep = 10 * time.Second

// Engine runs the offer cycle of the calls that entered a queue on this
// node: their caller legs live here, so this node offers them. Definitions,
// waiting calls, counters and the agents' offer claims are in the Store,
// shared by every node. Run drives it; its owner cancels Run's context to
// stop it.
type Engine struct {
	cfg     EngineConfig
	tracker *Tracker

	mu       sync.Mutex
	local    map[string]*Waiting    // by caller call id
	queues   map[string]*localQueue // the same calls by queue, in line
	dirty    map[string]bool        // caller call ids Changed since their last look
	sweep    []string               // call ids the current sweep has yet to look at
	sweepAt  time.Time              // when the next sweep may start
	sweepOn  time.Time              // when the current sweep started
	sweepN   int                    // how many calls it started with
	answered map[string]answered    // by caller call id
	held     map[string]int         // agent -> her calls in answered
	last     map[string]string      // queue -> agent offered last
	misses   map[string]int         // agent -> offers in a row rung out
	offering map[string]bool        // agents this node's offers ring
	touched  map[string]bool        // agents WakeFor named since the last step (AgentWakes)
	pools    map[string]*pool       // each queue's candidates, kept while it waits empty; only Step uses a pool
	lookAll  bool                   // a Wake named nobody: the next step looks at every member
	kick     chan struct{}
}

// localQueue is one queue's waiting calls of this node: in line (oldest
// first) and those with an offer out.
type localQueue struct {
	line    line
	offered map[string]*Waiting
}

type answered struct {
	w         Waiting
	agent     string
	agentCall string // her own call's id, when the Switch tells (AgentCaller)
	wrapUp    time.Duration
}

// addAnswered keeps a as answered here, counted among the calls its
// agent holds (e.mu held).
func (e *Engine) addAnswered(a answered) {
	e.dropAnswered(a.w.CallID)
	e.answered[a.w.CallID] = a
	e.held[a.agent]++
}

// dropAnswered forgets the answered call callID (e.mu held).
func (e *Engine) dropAnswered(callID string) {
	a, ok := e.answered[callID]
	if !ok {
		return
	}
	delete(e.answered, callID)
	if e.held[a.agent]--; e.held[a.agent] <= 0 {
		delete(e.held, a.agent)
	}
	e.touch(a.agent)
}

// AgentCaller is what a Switch may also do: answer the id of the agent's
// own call in the waiting call w she answered, so that her wrap-up names
// her call (else it names the caller's).
type AgentCaller interface {
	AgentCallID(ctx context.Context, w Waiting, agent string) (string, error)
}

// NewEngine answers an engine; Run starts it.
func NewEngine(cfg EngineConfig) *Engine {
	e := &Engine{cfg: cfg, local: map[string]*Waiting{}, queues: map[string]*localQueue{}, dirty: map[string]bool{}, answered: map[string]answered{}, held: map[string]int{}, last: map[string]string{}, misses: map[string]int{}, offering: map[string]bool{}, touched: map[string]bool{}, pools: map[string]*pool{}, kick: make(chan struct{}, 1)}
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
	e.sweepAt = e.cfg.Now().Add(e.cfg.Sweep)
	return e
}

// Store answers the engine's store.
func (e *Engine) Store() Store { return e.cfg.Store }

// Create checks and stores a definition (creating or replacing it). A
// queue that takes voicemail needs the Voicemail hook (a media plane that
// records): without it, CodeNotImplemented.
func (e *Engine) Create(ctx context.Context, d Definition) (Definition, error) {
	if err := d.Normalize(); err != nil {
		return Definition{}, err
	}
	if d.Voicemail && e.cfg.Voicemail == nil {
		return Definition{}, calls.Errorf(calls.CodeNotImplemented,
			"this switchboard records no calls (no media plane or recordings directory): queue %s cannot take voicemail", d.Name)
	}
	if err := e.cfg.Store.PutQueue(ctx, d); err != nil {
		return Definition{}, err
	}
	return d, nil
}

// Stats answers a queue's stats now (CodeNotFound for an unknown queue).
func (e *Engine) Stats(ctx context.Context, name string) (Stats, error) {
	d, err := e.definition(ctx, name)
	if err != nil {
		return Stats{}, err
	}
	return e.stats(ctx, d)
}

// definition answers the queue's definition, read-only: the store's own
// when it shares them (Sharer), else a copy.
func (e *Engine) definition(ctx context.Context, name string) (*Definition, error) {
	if sh, ok := e.cfg.Store.(Sharer); ok {
		return sh.SharedQueue(ctx, name)
	}
	d, err := e.cfg.Store.Queue(ctx, name)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Check answers the error Enter would for an unknown queue, without
// copying its definition: nil when the queue exists.
func (e *Engine) Check(ctx context.Context, name string) error {
	_, err := e.definition(ctx, name)
	return err
}

func (e *Engine) stats(ctx context.Context, d *Definition) (Stats, error) {
	c, err := e.cfg.Store.Counters(ctx, d.Name)
	if err != nil {
		return Stats{}, err
	}
	if sm, ok := e.cfg.Store.(Summarizer); ok {
		sum, err := sm.WaitingSummary(ctx, d.Name)
		if err != nil {
			return Stats{}, err
		}
		return ComputeSummary(d, c, sum, e.cfg.Now()), nil
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
	d, err := e.definition(ctx, queue)
	if err != nil {
		return Waiting{}, err
	}
	now := e.cfg.Now()
	w := Waiting{CallID: callID, Queue: d.Name, Caller: caller, Skills: skills, EnteredAt: now, FirstEnteredAt: now}
	if err := e.put(ctx, d, &w); err != nil {
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
	e.addLocal(&own)
	e.dirty[w.CallID] = true // its first step looks at it
	e.mu.Unlock()
	if e.cfg.Queued != nil {
		e.cfg.Queued(ctx, w.CallID, w.Queue)
	}
	if e.cfg.Events != nil {
		if pos, err := e.position(ctx, w); err == nil {
			e.cfg.Events.QueueCallWaiting(*w, pos)
		}
	}
	e.publishStats(ctx, d)
	return nil
}

// position answers w's place in its queue (1: next): the number waiting
// when the store summarizes (w entered last), else its index in the list.
func (e *Engine) position(ctx context.Context, w *Waiting) (int, error) {
	if s, ok := e.cfg.Store.(Summarizer); ok {
		sum, err := s.WaitingSummary(ctx, w.Queue)
		return sum.Count, err
	}
	ws, err := e.cfg.Store.Waiting(ctx, w.Queue)
	if err != nil {
		return 0, err
	}
	return slices.IndexFunc(ws, func(x Waiting) bool { return x.CallID == w.CallID }) + 1, nil
}

// addLocal keeps w as this node's (e.mu held).
func (e *Engine) addLocal(w *Waiting) {
	e.local[w.CallID] = w
	q := e.queues[w.Queue]
	if q == nil {
		q = &localQueue{offered: map[string]*Waiting{}}
		e.queues[w.Queue] = q
	}
	q.line.add(w.EnteredAt, w.CallID)
	if w.Offer != nil {
		q.offered[w.CallID] = w
	}
}

// removeLocal forgets w (e.mu held). A Changed mark stays: the call may
// be answered now, and a step drops marks of calls it no longer has.
func (e *Engine) removeLocal(w *Waiting) {
	delete(e.local, w.CallID)
	if q := e.queues[w.Queue]; q != nil {
		q.line.remove(w.EnteredAt, w.CallID)
		delete(q.offered, w.CallID)
		if q.line.len() == 0 {
			delete(e.queues, w.Queue)
		}
	}
}

// setOffer sets w's offer and files w among its queue's offered calls.
func (e *Engine) setOffer(w *Waiting, o *Offer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w.Offer = o
	q := e.queues[w.Queue]
	if q == nil {
		return
	}
	if o != nil {
		q.offered[w.CallID] = w
	} else {
		delete(q.offered, w.CallID)
	}
}

// Wake makes Run look at the waiting calls at once rather than at the
// next Tick: the calls domain tells it that an offered or answered queue
// call changed or that an agent may have become free (a call ended, her
// status changed). Wakes that come while a look is pending make one
// look; it never blocks. With no call waiting or answered here it does
// nothing.
func (e *Engine) Wake() { e.WakeFor("") }

// WakeFor is Wake for a change to agent (a rawId), who may have become
// free: with AgentWakes the next step looks at her again, and at every
// member when agent is "".
func (e *Engine) WakeFor(agent string) {
	e.mu.Lock()
	idle := len(e.local) == 0 && len(e.answered) == 0
	switch {
	case !idle:
		e.touch(agent)
	case e.cfg.AgentWakes:
		e.lookAll = true // nobody is told while idle: the next look is whole
	}
	e.mu.Unlock()
	if !idle {
		e.poke()
	}
}

// touch marks agent for a look, every member when "" (e.mu held; only
// with AgentWakes): at the pool's next look, in this step if it has not
// looked yet, else in the next one, which it asks for.
func (e *Engine) touch(agent string) {
	if !e.cfg.AgentWakes {
		return
	}
	if agent == "" {
		e.lookAll = true
	} else {
		e.touched[agent] = true
	}
	e.poke()
}

// Changed tells the engine that the call callID changed (an event of the
// calls domain named it: it ended, a participant came, went or changed
// state). When it is the caller's call of a waiting or answered queue call
// of this node, the next step asks the Switch about it and Run steps at
// once; Changed then reports true. It never blocks.
func (e *Engine) Changed(callID string) bool {
	e.mu.Lock()
	_, waiting := e.local[callID]
	_, ans := e.answered[callID]
	if waiting || ans {
		e.dirty[callID] = true
	}
	e.mu.Unlock()
	if waiting || ans {
		e.poke()
	}
	return waiting || ans
}

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

// Step moves this node's waiting calls on, and looks at the answered
// ones (to start the agent's wrap-up when they end). Without Sweep it asks
// the Switch about every call, oldest first. With Sweep it looks only at
// the calls Changed named, at its share of the sweep, at the calls whose
// offer or max wait is due, and, while agents are free, at the oldest
// calls without an offer, in line, until none is: its cost follows what
// changed, not the backlog.
func (e *Engine) Step(ctx context.Context) {
	now := e.cfg.Now()
	e.mu.Lock()
	look := e.dirty
	e.dirty = map[string]bool{}
	all := e.cfg.Sweep <= 0
	if !all {
		e.sweepShare(now, look)
	}
	var ans []answered
	if all {
		ans = make([]answered, 0, len(e.answered))
		for _, a := range e.answered {
			ans = append(ans, a)
		}
	} else {
		// The calls to look at are few beside the answered ones (an agent
		// each): walk those.
		for id := range look {
			if a, ok := e.answered[id]; ok {
				ans = append(ans, a)
			}
		}
	}
	names := make([]string, 0, len(e.queues))
	for q := range e.queues {
		names = append(names, q)
	}
	e.mu.Unlock()
	slices.Sort(names)
	for _, a := range ans {
		e.lookAnswered(ctx, a)
	}
	defs := map[string]*Definition{}
	changed := map[string]bool{}
	for _, name := range names {
		d, err := e.definition(ctx, name)
		if err != nil {
			e.cfg.Logger.Warn("queue: definition", "queue", name, "err", err)
			continue
		}
		defs[name] = d
		for _, q := range e.stepQueue(ctx, d, look, all, now) {
			changed[q] = true
		}
	}
	for q := range changed {
		d := defs[q]
		if d == nil {
			var err error
			if d, err = e.definition(ctx, q); err != nil {
				continue
			}
		}
		e.publishStats(ctx, d)
	}
}

// sweepShare adds to look this step's share of the sweep: a sweep starts
// every Sweep with every waiting and answered call, and spreads them
// evenly over its Sweep, by time, however many steps run: by a time t
// into it, its calls up to t plus a Tick are looked at, so that it ends
// within Sweep at one step a Tick and never comes as one burst (e.mu
// held).
func (e *Engine) sweepShare(now time.Time, look map[string]bool) {
	if len(e.sweep) == 0 && !now.Before(e.sweepAt) {
		for id := range e.local {
			e.sweep = append(e.sweep, id)
		}
		for id := range e.answered {
			e.sweep = append(e.sweep, id)
		}
		e.sweepAt = now.Add(e.cfg.Sweep)
		e.sweepOn, e.sweepN = now, len(e.sweep)
	}
	if len(e.sweep) == 0 {
		return
	}
	into := now.Sub(e.sweepOn) + e.cfg.Tick
	due := e.sweepN
	if into < e.cfg.Sweep {
		due = int((int64(e.sweepN)*int64(into) + int64(e.cfg.Sweep) - 1) / int64(e.cfg.Sweep))
	}
	n := min(max(due-(e.sweepN-len(e.sweep)), 0), len(e.sweep))
	for _, id := range e.sweep[:n] {
		look[id] = true
	}
	e.sweep = e.sweep[n:]
	if len(e.sweep) == 0 {
		e.sweep = nil
	}
}

// lookAnswered ends an answered call's part in the queue once its caller
// or agent left: the caller leaves too, the agent gets her wrap-up.
func (e *Engine) lookAnswered(ctx context.Context, a answered) {
	st, err := e.cfg.Switch.Status(ctx, a.w, a.agent)
	if ce, ok := errors.AsType[*calls.Error](err); ok && ce.Code == calls.CodeCallNotFound {
		// Over before this look (the step that saw it answered saw it end
		// too): both are gone.
		st, err = Status{CallerGone: true, AgentGone: true}, nil
	}
	if err != nil || !(st.CallerGone || st.AgentGone) {
		return
	}
	e.mu.Lock()
	e.dropAnswered(a.w.CallID)
	e.mu.Unlock()
	if !st.CallerGone {
		// The agent left, the caller not alone (the domain ends her call
		// when she is): someone the agent brought in goes on with her.
		e.cfg.Switch.Done(ctx, a.w)
	}
	if e.tracker != nil {
		e.tracker.Ended(a.agent, e.cfg.Now(), a.wrapUp)
	}
	if e.cfg.WrapUp != nil {
		e.cfg.WrapUp(ctx, a.agent, a.agentCall, int(a.wrapUp/time.Second))
	}
}

// pickChunk is how many calls of a line a step takes at once while agents
// are free.
const pickChunk = 32

// stepQueue moves d's calls on this node on (Step); it answers the queues
// whose stats changed.
func (e *Engine) stepQueue(ctx context.Context, d *Definition, look map[string]bool, all bool, now time.Time) []string {
	var changed []string
	cands := map[string]*pool{}
	seen := map[string]bool{}
	run := func(w *Waiting, looked bool) {
		if !all {
			seen[w.CallID] = true // the walk below skips it
		}
		ch, err := e.step(ctx, d, w, cands, looked)
		if err != nil {
			e.cfg.Logger.Warn("queue: waiting call", "queue", w.Queue, "call_id", w.CallID, "err", err)
		}
		changed = append(changed, ch...)
	}
	maxWait := time.Duration(d.MaxWaitSeconds) * time.Second
	// First the calls with news, offers out and max wait due, oldest first.
	e.mu.Lock()
	q := e.queues[d.Name]
	var first []*Waiting
	if q != nil {
		if all {
			first = make([]*Waiting, 0, len(q.line.keys))
			for _, k := range q.line.keys {
				first = append(first, e.local[k.id])
			}
		} else {
			for _, w := range q.offered {
				first = append(first, w)
			}
			for id := range look {
				if w := e.local[id]; w != nil && w.Queue == d.Name && w.Offer == nil {
					first = append(first, w)
				}
			}
			for _, k := range q.line.keys {
				if d.MaxWaitSeconds == 0 || now.Sub(k.at) < maxWait {
					break // the rest entered later
				}
				if w := e.local[k.id]; w.Offer == nil && !look[k.id] {
					first = append(first, w)
				}
			}
		}
	}
	e.mu.Unlock()
	if q == nil {
		return nil
	}
	if !all { // else in line already
		slices.SortFunc(first, func(a, b *Waiting) int {
			return compareKeys(lineKey{a.EnteredAt, a.CallID}, lineKey{b.EnteredAt, b.CallID})
		})
	}
	for _, w := range first {
		run(w, all || look[w.CallID])
	}
	if all {
		return changed
	}
	// Then, while agents are free, the calls without an offer, in line.
	var after *lineKey
	for e.pool(d, cands).free > 0 {
		e.mu.Lock()
		q := e.queues[d.Name]
		var chunk []*Waiting
		if q != nil {
			i := 0
			if after != nil {
				i, _ = slices.BinarySearchFunc(q.line.keys, *after, compareKeys)
			}
			for ; i < len(q.line.keys) && len(chunk) < pickChunk; i++ {
				k := q.line.keys[i]
				after = &lineKey{k.at, k.id + "\x00"} // just after k
				if w := e.local[k.id]; w.Offer == nil && !seen[k.id] {
					chunk = append(chunk, w)
				}
			}
		}
		e.mu.Unlock()
		if len(chunk) == 0 {
			break
		}
		for _, w := range chunk {
			if e.pool(d, cands).free == 0 {
				break
			}
			run(w, false)
		}
	}
	return changed
}

// pool answers d's candidates for this step: looked at the first time
// a step asks (again after an answer made one busy, relook).
func (e *Engine) pool(d *Definition, cands map[string]*pool) *pool {
	p := cands[d.Name]
	if p == nil {
		p = e.lookPool(d)
		cands[d.Name] = p
	}
	return p
}

// pool is a queue's candidates during one Step, with how many of them
// are offerable (none: the queue's calls wait without a look). It lives
// as long as the engine, its buffers reused by each step;
// with AgentWakes its look at the members is kept between steps too, and
// only the members named stale since are looked at again (a full look
// once per Tick, or when the definition changed).
type pool struct {
	cs        []Candidate
	agents    []string
	offerable []bool
	idle      []time.Time
	free      int

	def      *Definition    // the definition of the last full look
	index    map[string]int // agent -> her place in cs
	lookedAt time.Time      // the last full look; zero: none yet, or one is due
	stale    map[string]bool
}

// look fills p with d's members as av shows them at now, in one look when
// av is a Looker.
func (p *pool) look(d *Definition, av Availability, now time.Time) {
	n := len(d.Members)
	p.cs = slices.Grow(p.cs[:0], n)[:n]
	p.agents = slices.Grow(p.agents[:0], n)[:n]
	p.offerable = slices.Grow(p.offerable[:0], n)[:n]
	p.idle = slices.Grow(p.idle[:0], n)[:n]
	for i, m := range d.Members {
		p.agents[i] = m.Agent
	}
	lookAll(av, p.agents, d.MaxConcurrentCalls, now, p.offerable, p.idle)
	for i, m := range d.Members {
		p.cs[i] = Candidate{Agent: m.Agent, Skills: m.Skills, Offerable: p.offerable[i], IdleSince: p.idle[i]}
	}
}

// lookAll asks av about agents, in one look when it is a Looker.
func lookAll(av Availability, agents []string, maxConcurrent int, now time.Time, offerable []bool, idle []time.Time) {
	if l, ok := av.(Looker); ok {
		l.LookAll(agents, maxConcurrent, now, offerable, idle)
		return
	}
	for i, a := range agents {
		offerable[i] = av.Offerable(a, maxConcurrent, now)
		idle[i] = av.IdleSince(a)
	}
}

// set marks agent, a member (lookPool indexed her), offerable or not,
// keeping free.
func (p *pool) set(agent string, ok bool) {
	i, found := p.index[agent]
	if !found {
		return
	}
	if p.cs[i].Offerable != ok {
		if ok {
			p.free++
		} else {
			p.free--
		}
		p.cs[i].Offerable = ok
	}
}

// staleMembers hands the agents WakeFor named to the pools of this node's
// queues, which look at them again when next used (e.mu held).
func (e *Engine) staleMembers() {
	if !e.cfg.AgentWakes || (len(e.touched) == 0 && !e.lookAll) {
		return
	}
	for _, p := range e.pools {
		if e.lookAll {
			p.lookedAt = time.Time{}
			continue
		}
		for a := range e.touched {
			if _, member := p.index[a]; member {
				if p.stale == nil {
					p.stale = map[string]bool{}
				}
				p.stale[a] = true
			}
		}
	}
	clear(e.touched)
	e.lookAll = false
}

// lookPool looks at d's members now into the pool of d's calls here: all
// of them, or with AgentWakes only those named stale while its last full
// look is under a Tick old. An agent this node is offering a call to, or
// who holds as many calls as d lets her that this engine saw her answer,
// is not offerable (on other nodes, the claim refuses her; the Board
// learns of her answer later).
func (e *Engine) lookPool(d *Definition) *pool {
	e.mu.Lock()
	e.staleMembers() // what WakeFor and this step so far named
	p := e.pools[d.Name]
	if p == nil {
		p = &pool{}
		e.pools[d.Name] = p
	}
	e.mu.Unlock()
	now := e.cfg.Now()
	av := e.cfg.Availability
	var looked []int // the members looked at
	if !e.cfg.AgentWakes || p.def != d || p.lookedAt.IsZero() || now.Sub(p.lookedAt) >= e.cfg.Tick {
		p.look(d, av, now)
		p.def, p.lookedAt, p.stale = d, now, nil
		if p.index == nil {
			p.index = make(map[string]int, len(d.Members))
		}
		clear(p.index)
		for i, c := range p.cs {
			p.index[c.Agent] = i
		}
		looked = nil // all
	} else {
		if len(p.stale) == 0 {
			return p
		}
		agents := make([]string, 0, len(p.stale))
		for a := range p.stale {
			looked = append(looked, p.index[a])
			agents = append(agents, a)
		}
		p.stale = nil
		ok, idle := make([]bool, len(agents)), make([]time.Time, len(agents))
		lookAll(av, agents, d.MaxConcurrentCalls, now, ok, idle)
		for k, i := range looked {
			p.cs[i].Offerable, p.cs[i].IdleSince = ok[k], idle[k]
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	busy := func(c *Candidate) {
		if c.Offerable && e.takenHere(d, c.Agent) {
			c.Offerable = false
		}
	}
	if looked == nil {
		for i := range p.cs {
			busy(&p.cs[i])
		}
	} else {
		for _, i := range looked {
			busy(&p.cs[i])
		}
	}
	p.free = 0
	for _, c := range p.cs {
		if c.Offerable {
			p.free++
		}
	}
	return p
}

// takenHere reports whether this engine keeps agent from d's offers
// whatever Availability says: it is ringing her, or she holds as many
// calls as d lets her that it saw her answer (e.mu held).
func (e *Engine) takenHere(d *Definition, agent string) bool {
	return e.offering[agent] || e.held[agent] >= max(d.MaxConcurrentCalls, 1)
}

// relook asks again about agent alone, in p: after she answered, rather
// than about every member.
func (e *Engine) relook(d *Definition, p *pool, agent string) {
	av := e.cfg.Availability
	ok := av.Offerable(agent, d.MaxConcurrentCalls, e.cfg.Now())
	idle := av.IdleSince(agent)
	e.mu.Lock()
	ok = ok && !e.takenHere(d, agent)
	e.mu.Unlock()
	p.set(agent, ok)
	if i, found := p.index[agent]; found {
		p.cs[i].IdleSince = idle
	}
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
	e.removeLocal(w)
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
// changed. Unless looked (the call changed, or every call is looked at),
// it asks the Switch about the call only when the decision would act.
func (e *Engine) step(ctx context.Context, d *Definition, w *Waiting, cands map[string]*pool, looked bool) ([]string, error) {
	now := e.cfg.Now()
	agent := ""
	if w.Offer != nil {
		agent = w.Offer.Agent
	}
	var decided *Decision // by holds, over the pool as it is
	if !looked {
		var hold bool
		if hold, decided = e.holds(d, w, cands, now); hold {
			return nil, nil
		}
		if decided != nil && decided.Action == Ring {
			// Nothing changed on the caller's call since its last look
			// (Changed would have named it): ring at once. Should she hang
			// up meanwhile, the offer fails and the next step looks.
			e.mu.Lock()
			last := e.last[w.Queue]
			e.mu.Unlock()
			return e.ring(ctx, d, w, cands, last, now, decided.Agent)
		}
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
		a := answered{w: *w, agent: agent, agentCall: w.CallID, wrapUp: time.Duration(d.WrapUpSeconds) * time.Second}
		if ac, ok := e.cfg.Switch.(AgentCaller); ok {
			if id, err := ac.AgentCallID(ctx, *w, agent); err == nil {
				a.agentCall = id
			}
		}
		e.answeredMisses(ctx, agent)
		e.mu.Lock()
		e.addAnswered(a)
		// The next step looks at it: its end may have come before this
		// look, and no change will tell of it again.
		e.dirty[w.CallID] = true
		e.mu.Unlock()
		if p := cands[w.Queue]; p != nil {
			e.relook(d, p, agent) // she holds one more call now
		}
		e.poke()
		if e.cfg.Queued != nil && a.agentCall != w.CallID {
			e.cfg.Queued(ctx, a.agentCall, w.Queue)
		}
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
		e.setOffer(w, nil)
		if _, err := e.cfg.Store.AddCounters(ctx, w.Queue, Counters{Missed: 1}); err != nil {
			return nil, err
		}
		return []string{w.Queue}, e.cfg.Store.PutWaiting(ctx, *w)
	}

	e.mu.Lock()
	last := e.last[w.Queue]
	e.mu.Unlock()
	p := e.pool(d, cands)
	if p.free == 0 && w.Offer == nil && (d.MaxWaitSeconds == 0 || now.Sub(w.EnteredAt) < time.Duration(d.MaxWaitSeconds)*time.Second) {
		return nil, nil // nobody to offer to: Next would answer Hold
	}
	var dec Decision
	if decided != nil {
		dec = *decided // Status told nothing new: Next would answer it again
	} else {
		dec = Next(d, w, p.cs, last, now)
	}
	switch dec.Action {
	case Ring:
		return e.ring(ctx, d, w, cands, last, now, dec.Agent)
	case Withdraw:
		if err := e.cfg.Switch.Withdraw(ctx, *w, dec.Agent); err != nil {
			if answeredMeanwhile(err) {
				e.lookAgain(w)
				return nil, nil
			}
			return nil, fmt.Errorf("withdraw the offer to %s: %w", dec.Agent, err)
		}
		if err := e.release(ctx, dec.Agent, w.CallID); err != nil {
			return nil, err
		}
		e.setOffer(w, nil)
		away := e.missed(ctx, dec.Agent, d.MaxMisses)
		if away && e.cfg.Misses != nil {
			e.cfg.Logger.Info("queue: agent missed offers in a row", "queue", d.Name, "agent", dec.Agent, "misses", d.MaxMisses)
			e.cfg.Misses(dec.Agent)
		}
		if _, err := e.cfg.Store.AddCounters(ctx, w.Queue, Counters{Missed: 1}); err != nil {
			return nil, err
		}
		return []string{w.Queue}, e.cfg.Store.PutWaiting(ctx, *w)
	case Overflow, GiveUp, Voicemail:
		if dec.Agent != "" {
			if err := e.cfg.Switch.Withdraw(ctx, *w, dec.Agent); err != nil {
				if answeredMeanwhile(err) {
					e.lookAgain(w) // answered, at the last moment: served
					return nil, nil
				}
				return nil, fmt.Errorf("withdraw the offer to %s: %w", dec.Agent, err)
			}
		}
		if dec.Action == Overflow {
			next, err := e.definition(ctx, dec.Queue)
			if err == nil {
				if err := e.leave(ctx, w, Counters{Overflowed: 1}); err != nil {
					return nil, err
				}
				nw := Waiting{CallID: w.CallID, Queue: next.Name, Caller: w.Caller, Skills: w.Skills, EnteredAt: now, FirstEnteredAt: w.FirstEnteredAt}
				e.cfg.Logger.Info("queue: overflow", "queue", d.Name, "to", next.Name, "call_id", w.CallID)
				return []string{d.Name, next.Name}, e.put(ctx, next, &nw)
			}
			e.cfg.Logger.Warn("queue: overflow queue missing: ending the call", "queue", d.Name, "overflow", dec.Queue, "err", err)
		}
		if dec.Action == Voicemail {
			if e.cfg.Voicemail == nil {
				e.cfg.Logger.Warn("queue: no media plane records voicemail here: ending the call", "queue", d.Name, "call_id", w.CallID)
			} else if err := e.cfg.Voicemail(ctx, *w, d.VoicemailMaxSeconds); err != nil {
				e.cfg.Logger.Warn("queue: voicemail failed: ending the call", "queue", d.Name, "call_id", w.CallID, "err", err)
			} else {
				e.cfg.Logger.Info("queue: call left for voicemail at max wait", "queue", d.Name, "call_id", w.CallID)
				return []string{w.Queue}, e.leave(ctx, w, Counters{Voicemails: 1})
			}
		}
		e.cfg.Logger.Info("queue: call ended at max wait", "queue", d.Name, "call_id", w.CallID, "reason", ReasonMaxWait)
		if err := e.cfg.Switch.End(ctx, *w, ReasonMaxWait); err != nil {
			return nil, fmt.Errorf("end at max wait: %w", err)
		}
		return []string{w.Queue}, e.leave(ctx, w, Counters{TimedOut: 1})
	}
	return nil, nil
}

// holds reports whether w, with no news of its caller's call, waits on
// as it is: nobody free to offer it to, or its offer still rings, and its
// max wait not reached. When it decided over the pool, it answers the
// decision too, which holds for the step unless the caller's call changed.
func (e *Engine) holds(d *Definition, w *Waiting, cands map[string]*pool, now time.Time) (bool, *Decision) {
	if d.MaxWaitSeconds > 0 && now.Sub(w.EnteredAt) >= time.Duration(d.MaxWaitSeconds)*time.Second {
		return false, nil
	}
	if w.Offer != nil {
		return now.Sub(w.Offer.At) < time.Duration(d.RingTimeoutSeconds)*time.Second, nil
	}
	p := e.pool(d, cands)
	if p.free == 0 {
		return true, nil
	}
	e.mu.Lock()
	last := e.last[w.Queue]
	e.mu.Unlock()
	dec := Next(d, w, p.cs, last, now)
	return dec.Action == Hold, &dec
}

// release frees the agent of w's offer, here and in the store.
func (e *Engine) release(ctx context.Context, agent, callID string) error {
	e.mu.Lock()
	delete(e.offering, agent)
	e.touch(agent)
	e.mu.Unlock()
	return e.cfg.Store.ReleaseAgent(ctx, agent, callID)
}

// ring offers w to agent (or, when another node holds her, to the next).
func (e *Engine) ring(ctx context.Context, d *Definition, w *Waiting, cands map[string]*pool, last string, now time.Time, agent string) ([]string, error) {
	p := e.pool(d, cands)
	cs := p.cs
	for agent != "" {
		if e.cfg.AgentWakes && !e.cfg.Availability.Offerable(agent, d.MaxConcurrentCalls, now) {
			// The pool's look at her is older than this step: she became
			// busy (or went away) since. The next.
			p.set(agent, false)
			agent = Next(d, w, cs, last, now).Agent
			continue
		}
		ok, err := e.cfg.Store.ClaimAgent(ctx, agent, w.CallID)
		if err != nil {
			return nil, err
		}
		// Whoever takes her, she is no one else's this tick.
		p.set(agent, false)
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
		if ce, ok := errors.AsType[*calls.Error](err); ok && (ce.Code == calls.CodeCallNotFound || ce.Code == calls.CodeInvalidState) {
			// The caller's call ended or changed since its last look: the
			// next step looks at it.
			e.lookAgain(w)
			return nil, nil
		}
		return nil, fmt.Errorf("offer to %s: %w", agent, err)
	}
	if slices.Contains(w.Tried, agent) {
		w.Tried = nil // a new round
	}
	w.Tried = append(w.Tried, agent)
	e.setOffer(w, &Offer{Agent: agent, At: now})
	e.mu.Lock()
	e.offering[agent] = true
	e.last[w.Queue] = agent
	e.mu.Unlock()
	if _, err := e.cfg.Store.AddCounters(ctx, w.Queue, Counters{Offered: 1}); err != nil {
		return nil, err
	}
	return []string{w.Queue}, e.cfg.Store.PutWaiting(ctx, *w)
}

// answeredMeanwhile reports whether err is a withdraw's refusal because
// the agent answered between the step's look and the withdraw.
func answeredMeanwhile(err error) bool {
	ce, ok := errors.AsType[*calls.Error](err)
	return ok && ce.Code == calls.CodeInvalidState
}

// lookAgain makes the next step, which it asks for, look at w's call.
func (e *Engine) lookAgain(w *Waiting) {
	e.mu.Lock()
	e.dirty[w.CallID] = true
	e.mu.Unlock()
	e.poke()
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
	e.queues = map[string]*localQueue{}
	e.dirty = map[string]bool{}
	e.sweep = nil
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
