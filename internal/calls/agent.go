package calls

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/internal/routing"
)

// Attach opens an event connection for the principal: the identity is
// Connected (and can receive calls) while at least one is open. register
// runs with the connection's snapshot while the switchboard holds its live
// state (it must not block), and must subscribe the connection to events
// before it returns: no event is lost or repeated between the snapshot and
// the stream. Detach
// closes the connection; reason (such as "invalidToken") is told when the
// identity's last connection closes.
func (s *Switchboard) Attach(ctx context.Context, p Principal, register func(Snapshot)) (detach func(reason string), err error) {
	var last *StatusChange
	if p.Role == RoleAgent || p.Role == RoleSupervisor {
		if p.Identifier.Validate() == nil {
			last = s.lastChange(ctx, p.Identifier)
		}
	}
	tx := s.begin(&p)
	pt, err := tx.identify(p)
	if err != nil {
		tx.unlock()
		return nil, withOp("attach", err)
	}
	refresh(pt, p)
	pt.seen = true
	pt.conns++
	if pt.conns == 1 {
		tx.s.cfg.Publisher.Publish(tx.connectionEvent(pt, Disconnected, Connected, ""))
	}
	if pt.supervised() {
		tx.loadStatus(pt, last)
		tx.showStatus(pt, false)
	}
	snap := tx.snapshot(pt, p.Role == RoleSupervisor)
	register(snap)
	tx.done()

	var once bool
	return func(reason string) {
		tx := s.begin(&p)
		defer tx.done()
		if once {
			return
		}
		once = true
		pt.conns--
		if pt.conns == 0 {
			tx.s.cfg.Publisher.Publish(tx.connectionEvent(pt, Connected, Disconnected, reason))
			tx.showStatus(pt, false)
		}
	}, nil
}

func (tx *txn) connectionEvent(pt *party, from, to ConnectionState, reason string) Event {
	return Event{
		Type: EventConnectionStateChanged, At: tx.now, AgentID: pt.id,
		Data:       ConnectionStateData{OldState: from, NewState: to, Reason: reason},
		Supervised: pt.supervised(),
	}
}

// snapshot is what a connection sees when it opens: pt's calls, or with
// all every supervised identity's, in the order of their rawIds.
func (tx *txn) snapshot(pt *party, all bool) Snapshot {
	snap := Snapshot{ConnectionState: Connected, Calls: []Call{}, IncomingCalls: []IncomingCall{}}
	parties := []*party{pt}
	if all {
		parties = tx.s.sortedParties()
		snap.Agents = []AgentStatus{}
	}
	for _, q := range parties {
		if all && !q.supervised() {
			continue
		}
		for _, l := range q.legs {
			if l.phase == phaseIncoming {
				snap.IncomingCalls = append(snap.IncomingCalls, l.incomingView())
			} else {
				snap.Calls = append(snap.Calls, l.view(false))
			}
		}
		if all && q.seen {
			snap.Agents = append(snap.Agents, q.status())
		}
	}
	return snap
}

func (p *party) status() AgentStatus {
	st := AgentStatus{
		Identifier: p.ident, RawID: p.id, DisplayName: p.displayName,
		Role: p.role, ConnectionState: Disconnected,
	}
	if p.conns > 0 {
		st.ConnectionState = Connected
	}
	for _, l := range p.legs {
		if l.state() == StateConnected {
			st.ActiveCallID = l.id
		}
	}
	if p.statusLoaded {
		st.Status = routing.Effective(p.presence, p.conns > 0, p.inCall())
		st.ChosenStatus = p.presence.Chosen()
		since := p.presence.Since
		st.StatusSince = &since
	}
	return st
}

// ListCalls answers the principal's live calls; a supervisor's answer is
// every agent's and supervisor's, or one identity's with agent set.
// Errors: forbidden (an agent asking for another's calls),
// invalid_identifier or invalid_phone_number (a malformed agent, checked
// first).
func (s *Switchboard) ListCalls(ctx context.Context, p Principal, agent string) ([]Call, error) {
	const op = "list calls"
	tx := s.begin(&p)
	defer tx.unlock()
	pt, err := tx.identify(p)
	if err != nil {
		return nil, withOp(op, err)
	}
	if agent != "" {
		if _, err := ParseRawID(agent); err != nil {
			return nil, withOp(op, err)
		}
	}
	var targets []*party
	switch {
	case agent != "" && agent != pt.id:
		if p.Role != RoleSupervisor {
			return nil, withOp(op, Errorf(CodeForbidden, "only supervisors see other identities' calls"))
		}
		if q := s.parties[agent]; q != nil {
			targets = append(targets, q)
		}
	case agent == "" && p.Role == RoleSupervisor:
		targets = s.sortedParties()
	default:
		targets = []*party{pt}
	}
	out := []Call{}
	for _, q := range targets {
		if q.bot || q != pt && !q.supervised() {
			continue
		}
		for _, l := range q.legs {
			if l.listed {
				out = append(out, l.view(false))
			}
		}
	}
	return out, nil
}

// GetCall answers one live call. Errors: call_not_found.
func (s *Switchboard) GetCall(ctx context.Context, p Principal, id string) (Call, error) {
	return s.callOp("get call", p, id, ownOrOversee, func(tx *txn, l *leg) error {
		if !l.listed {
			return errCallNotFound(id)
		}
		return nil
	})
}

// ListIncoming answers the calls ringing for the principal.
func (s *Switchboard) ListIncoming(ctx context.Context, p Principal) ([]IncomingCall, error) {
	tx := s.begin(&p)
	defer tx.unlock()
	pt, err := tx.identify(p)
	if err != nil {
		return nil, withOp("list incoming calls", err)
	}
	out := []IncomingCall{}
	for _, l := range pt.legs {
		if l.phase == phaseIncoming {
			out = append(out, l.incomingView())
		}
	}
	return out, nil
}

// History answers a page of call history: an agent's own calls, or, for a
// supervisor, anyone's. Errors: forbidden (callers; an agent asking for
// another's), invalid_request (a malformed cursor or limit),
// invalid_identifier or invalid_phone_number (a malformed agent or
// participant).
func (s *Switchboard) History(ctx context.Context, p Principal, f CallFilter) (CallPage, error) {
	const op = "history"
	if err := s.mayReadHistory(p, &f.AgentID); err != nil {
		return CallPage{}, withOp(op, err)
	}
	if f.Limit == 0 {
		f.Limit = DefaultHistoryLimit
	}
	if f.Limit < 1 || f.Limit > MaxHistoryLimit {
		return CallPage{}, withOp(op, Errorf(CodeInvalidRequest, "limit must be 1 to %d", MaxHistoryLimit))
	}
	if f.Direction != "" && f.Direction != Incoming && f.Direction != Outgoing {
		return CallPage{}, withOp(op, Errorf(CodeInvalidRequest, "direction must be Incoming or Outgoing"))
	}
	if f.Participant != "" {
		if _, err := ParseRawID(f.Participant); err != nil {
			return CallPage{}, withOp(op, err)
		}
	}
	page, err := s.cfg.Store.FindCalls(ctx, f)
	return page, withOp(op, err)
}

// HistoryCall answers one call of the history with its timeline. Errors:
// forbidden (callers), call_not_found (another agent's call too).
func (s *Switchboard) HistoryCall(ctx context.Context, p Principal, id string) (CallHistory, error) {
	const op = "history call"
	self := ""
	if err := s.mayReadHistory(p, &self); err != nil {
		return CallHistory{}, withOp(op, err)
	}
	h, err := s.cfg.Store.FindCallByID(ctx, id)
	if err != nil {
		return CallHistory{}, withOp(op, err)
	}
	if p.Role != RoleSupervisor && h.Call.AgentID != self {
		return CallHistory{}, withOp(op, errCallNotFound(id))
	}
	return h, nil
}

// mayReadHistory checks the principal may read history for agent, and pins
// an agent to its own.
func (s *Switchboard) mayReadHistory(p Principal, agent *string) error {
	if err := p.Identifier.Validate(); err != nil {
		return err
	}
	if *agent != "" {
		if _, err := ParseRawID(*agent); err != nil {
			return err
		}
	}
	switch p.Role {
	case RoleSupervisor:
		return nil
	case RoleAgent:
		self := p.Identifier.RawID()
		if *agent != "" && *agent != self {
			return Errorf(CodeForbidden, "agents see only their own history")
		}
		*agent = self
		return nil
	}
	return Errorf(CodeForbidden, "callers have no history")
}

// endEveryCall ends every call of the identity with reason; in a 1:1 call
// the other side ends with it too. Nothing resumes afterwards.
func (tx *txn) endEveryCall(pt *party, reason EndReason) {
	for _, l := range slices.Clone(pt.legs) {
		tx.endLeg(l, reason, reason)
	}
	tx.after = nil
}

// sortedParties is every party, in the order of their rawIds.
func (s *Switchboard) sortedParties() []*party {
	out := make([]*party, 0, len(s.parties))
	for _, q := range s.parties {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b *party) int { return strings.Compare(a.id, b.id) })
	return out
}

// Drain readies the switchboard to stop: from now on it refuses what would
// start a call (StartCall, StartPhoneCall, AddParticipant, and JoinCall of
// a group call or room nobody is in) with CodeDraining, while everything
// on the calls it has goes on as before (accept, hold, resume, mute, DTMF,
// hang up). It answers how many calls identities have now, ringing ones
// included, and a channel closed once none is left (closed already when
// none is). Calling it again answers the calls left and the same channel;
// Close ends whatever is left.
func (s *Switchboard) Drain() (calls int, idle <-chan struct{}) {
	tx := s.begin(nil)
	defer tx.unlock()
	s.draining = true
	if s.drained == nil {
		s.idle = make(chan struct{})
		s.drained = s.idle
		if len(s.legs) == 0 {
			close(s.idle)
			s.idle = nil
		}
	}
	for _, l := range s.legs {
		if !l.party.bot {
			calls++
		}
	}
	return calls, s.drained
}

// Draining reports whether Drain or Fence was called (and no Unfence
// since): the switchboard takes no new calls.
func (s *Switchboard) Draining() bool {
	tx := s.begin(nil)
	defer tx.unlock()
	return s.draining
}

// Fence stops taking new calls as Drain does, for a while: the node may
// have been taken for dead by the others, who end its calls in the shared
// history (a cluster node that lost its node lease). Unlike Drain's, this
// drain can be left (Unfence). It answers how many calls identities have.
func (s *Switchboard) Fence() (calls int) {
	tx := s.begin(nil)
	defer tx.unlock()
	if !s.closed {
		s.draining, s.fenced = true, true
	}
	for _, l := range s.legs {
		if !l.party.bot {
			calls++
		}
	}
	return calls
}

// Unfence leaves a Fence once the caller knows no other node can still end
// this node's calls. First it reconciles: each live call the shared
// history (the Store) shows ended was ended by another node that took this
// one for dead, so it ends here too, with the recorded reason (503/0),
// its participants told, and nothing resumed after it. A call the store
// cannot find (not written yet) or shows live stays live. Then it takes
// new calls again. It answers how many calls it ended.
//
// A drain to stop (Drain, SIGTERM) is never left: Unfence then answers
// draining and changes nothing; a closed switchboard answers unavailable.
// Unfence without a fence does nothing. A store error is answered as it
// is (wrapped), with the switchboard still fenced: try again later.
func (s *Switchboard) Unfence(ctx context.Context) (ended int, err error) {
	const op = "unfence"
	tx := s.begin(nil)
	if err := s.unfenceable(); err != nil {
		tx.unlock()
		return 0, withOp(op, err)
	}
	if !s.fenced {
		tx.unlock()
		return 0, nil
	}
	var live []string
	for id, l := range s.legs {
		if !l.party.bot && !l.standIn && l.phase != phaseEnded {
			live = append(live, id)
		}
	}
	tx.unlock()
	slices.Sort(live)
	for _, id := range live {
		h, err := s.cfg.Store.FindCallByID(ctx, id)
		if err != nil && ErrorCode(err) == CodeCallNotFound {
			continue // not written yet: no other node could have ended it
		}
		if err != nil {
			return ended, fmt.Errorf("%s: read call %s in the history: %w", op, id, err)
		}
		if h.Call.CallEndReason == nil {
			continue
		}
		reason := *h.Call.CallEndReason
		tx := s.begin(nil)
		// The survivor recorded the end, dated when this node went
		// silent: recording this node's own end too would write a second
		// callEnded and move the end to now.
		tx.recorded = true
		if l := s.legs[id]; l != nil && l.phase != phaseEnded {
			tx.endLeg(l, reason, reason)
			tx.after = nil // the others' end: nothing resumes after it
			ended++
		}
		tx.done()
	}
	tx = s.begin(nil)
	defer tx.unlock()
	if err := s.unfenceable(); err != nil {
		return ended, withOp(op, err)
	}
	s.draining, s.fenced = false, false
	return ended, nil
}

// unfenceable answers why a fence cannot be left: the switchboard drains
// to stop, or is closed. Under live.
func (s *Switchboard) unfenceable() error {
	switch {
	case s.closed:
		return Errorf(CodeUnavailable, "the switchboard is closed")
	case s.drained != nil:
		return errDraining
	}
	return nil
}

// Close ends every live call with 503/1 (the switchboard was shut down),
// waits for timers and follow-ups in flight, and refuses new operations.
// The store is the caller's to close afterwards, so these ends are kept.
func (s *Switchboard) Close(ctx context.Context) error {
	tx := s.begin(nil)
	if s.closed {
		tx.unlock()
		return nil
	}
	s.closed = true
	s.stopWrapUps()
	parties := s.sortedParties()
	tx.done()
	// One transaction per identity: each stays small, and nothing new can
	// start once closed is set.
	for _, p := range parties {
		if p.bot {
			continue
		}
		tx := s.begin(nil)
		tx.endEveryCall(p, ReasonShutdown)
		tx.done()
	}
	tx = s.begin(nil)
	tx.endAnchoredStandIns(ReasonShutdown)
	tx.offlineAll()
	tx.done()
	done := make(chan struct{})
	go func() {
		s.work.Wait()
		close(done)
	}()
	select {
	case <-done:
		return s.closeStatusWriter(ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SupervisedSnapshot is what a supervisor's snapshot shows of this
// switchboard (every supervised identity's calls and status) without
// opening a connection: another node of a cluster merges it into its
// supervisors' snapshots.
func (s *Switchboard) SupervisedSnapshot() Snapshot {
	tx := s.begin(nil)
	defer tx.unlock()
	return tx.snapshot(nil, true)
}

// WithSupervisedSnapshot calls register with SupervisedSnapshot while no
// event can be published (under the switchboard's lock, as Attach calls
// its register): a supervisor's connection attached on another node (the
// owner of its identity, in a cluster) subscribes to this node's events
// in it, so that it misses none and gets none twice. register must not
// call the Switchboard.
func (s *Switchboard) WithSupervisedSnapshot(register func(Snapshot)) {
	tx := s.begin(nil)
	defer tx.unlock()
	register(tx.snapshot(nil, true))
}

// Connected reports whether the identity rawID has an event connection
// on this node: in a cluster, the node a supervisor's monitor leg needs.
func (s *Switchboard) Connected(rawID string) bool {
	s.live.Lock()
	defer s.live.Unlock()
	pt := s.parties[rawID]
	return pt != nil && pt.conns > 0
}
