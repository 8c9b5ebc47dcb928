package calls

import (
	"slices"
	"time"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// txn is one operation in progress: it holds the live state, remembers how
// every call it touches looked before, and on commit turns the difference
// into events, store records and media routes. There is one at a time, so
// the Switchboard keeps one and reuses it (and its scratch space); nothing
// may keep a txn past its done.
type txn struct {
	s     *Switchboard
	id    uint64     // tells this transaction's marks on legs from others'
	actor *Principal // nil: the system
	now   time.Time

	touched  []*conversation
	seen     []seenLeg        // legs in the order they were first seen
	explicit map[*leg][]Event // events the diff cannot see (mutedByOthers)
	after    []func()         // follow-ups to run once the live state is released

	parts      []partView        // what the legViews' parts slices point into
	policy     []holdpolicy.Call // scratch for the hold policy's input
	actorOwner *party            // the last actorFor answer, for reuse
	actorLast  *Actor
	located    map[string]string // callees owned by other nodes: rawId → node (PeerNetwork.Locate)
	// recorded: the shared history has these changes already (another
	// node wrote them), so they are published but not recorded again.
	recorded bool
}

// seenLeg is a leg the transaction saw, with how it looked before.
type seenLeg struct {
	leg    *leg
	before legView
	fresh  bool // the leg is new in this transaction
}

// reset readies the transaction for a new operation, keeping its scratch
// space.
func (tx *txn) reset(s *Switchboard, id uint64, actor *Principal) {
	clear(tx.touched)
	clear(tx.seen)
	clear(tx.parts)
	clear(tx.explicit)
	*tx = txn{
		// Microseconds: what Postgres keeps, so every store answers alike.
		s: s, id: id, actor: actor, now: s.cfg.Clock.Now().Truncate(time.Microsecond),
		touched: tx.touched[:0], seen: tx.seen[:0], explicit: tx.explicit,
		parts: tx.parts[:0], policy: tx.policy[:0],
	}
}

// unlock releases the live state without committing: for an operation
// that changed nothing.
func (tx *txn) unlock() { tx.s.live.Unlock() }

// touch must be called before anything of c changes: it records how each
// member's call looks now.
func (tx *txn) touch(c *conversation) {
	if slices.Contains(tx.touched, c) {
		return
	}
	tx.touched = append(tx.touched, c)
	for _, m := range c.members {
		tx.see(m)
	}
}

func (tx *txn) see(l *leg) {
	if l.seenBy == tx.id {
		return
	}
	l.seenBy, l.seenAt = tx.id, len(tx.seen)
	tx.seen = append(tx.seen, seenLeg{leg: l, before: tx.diffView(l)})
}

// seeNew records a leg created in this transaction.
func (tx *txn) seeNew(l *leg) {
	l.seenBy, l.seenAt = tx.id, len(tx.seen)
	tx.seen = append(tx.seen, seenLeg{leg: l, fresh: true})
}

// before is how l looked when the transaction first saw it; nil when it is
// new (or was never seen).
func (tx *txn) before(l *leg) *legView {
	if l.seenBy != tx.id || tx.seen[l.seenAt].fresh {
		return nil
	}
	return &tx.seen[l.seenAt].before
}

func (tx *txn) emit(l *leg, typ EventType, data any) {
	if l.standIn {
		tx.emitAcross(l, typ, data) // nobody's call here (peertransfer.go)
		return
	}
	if tx.explicit == nil {
		tx.explicit = map[*leg][]Event{}
	}
	tx.explicit[l] = append(tx.explicit[l], tx.event(l, typ, data))
}

func (tx *txn) event(l *leg, typ EventType, data any) Event {
	return Event{
		Type: typ, At: tx.now, AgentID: l.party.id, CallID: l.id,
		Actor: tx.actorFor(l.party), Data: data, Supervised: l.party.supervised(),
	}
}

// actAs makes p the author of the changes that follow in the transaction
// (a change a far node made, applied here as its author would on one
// node), dropping actorFor's answer for the one before.
func (tx *txn) actAs(p Principal) {
	tx.actor, tx.actorOwner, tx.actorLast = &p, nil, nil
}

// actorFor says who caused a change, as the owner of the changed call sees
// it. Events are never changed once made, so the events of one owner share
// their Actor.
func (tx *txn) actorFor(owner *party) *Actor {
	if owner == tx.actorOwner {
		return tx.actorLast
	}
	var a *Actor
	switch {
	case tx.actor == nil:
		a = &Actor{Kind: ActorSystem}
	case tx.actor.Identifier.hasRawID(owner.id):
		a = &Actor{Kind: ActorAgent, RawID: owner.id}
	case tx.actor.Role == RoleSupervisor && !tx.isMember(owner, tx.actor.Identifier.RawID()):
		a = &Actor{Kind: ActorSupervisor, RawID: tx.actor.Identifier.RawID(), DisplayName: tx.actor.DisplayName}
	default:
		a = &Actor{Kind: ActorRemote, RawID: tx.actor.Identifier.RawID(), DisplayName: tx.actor.DisplayName}
	}
	tx.actorOwner, tx.actorLast = owner, a
	return a
}

// isMember reports whether rawID is in a conversation the transaction
// touched together with owner.
func (tx *txn) isMember(owner *party, rawID string) bool {
	for _, c := range tx.touched {
		var hasOwner, hasActor bool
		for _, l := range c.all {
			hasOwner = hasOwner || l.party == owner
			// A monitoring supervisor acts as a supervisor, not a party.
			hasActor = hasActor || l.party.id == rawID && l.monitor == ""
		}
		if hasOwner && hasActor {
			return true
		}
	}
	return false
}

// callsOf is a party's calls as the hold policy sees them, in the
// transaction's scratch space (the policy keeps none of it).
func (tx *txn) callsOf(p *party) []holdpolicy.Call {
	out := tx.policy[:0]
	for _, l := range policyLegs(p.legs) {
		out = append(out, l.policyCall())
	}
	tx.policy = out
	return out
}

// plan asks the hold policy what action on l means for its party's calls,
// and applies the transitions.
func (tx *txn) plan(l *leg, action holdpolicy.Action) error {
	if l.party.bot || l.line != nil || l.ghost { // a ghost is a call on another node
		return nil
	}
	transitions, err := holdpolicy.Plan(tx.callsOf(l.party), action, l.id, tx.s.cfg.Policy)
	if err != nil {
		return Errorf(CodeInvalidState, "cannot %s call %s in state %s", action, l.id, l.state())
	}
	tx.apply(l.party, transitions)
	return nil
}

func (tx *txn) apply(p *party, transitions []holdpolicy.Transition) {
	for _, tr := range transitions {
		i := slices.IndexFunc(p.legs, func(l *leg) bool { return l.id == tr.CallID })
		if i < 0 {
			continue
		}
		l := p.legs[i]
		tx.touch(l.conv)
		l.holding = tr.Hold
		if tr.Hold {
			tx.s.heldSeq++
			l.heldSeq = tx.s.heldSeq
			l.heldAt = tx.now
		} else {
			l.heldAt = time.Time{}
		}
	}
}

// settle enforces the rule on calls that became Connected without their
// owner acting (the callee answered, the other side resumed): first is the
// call the actor activated, if any, so the actor's choice wins.
func (tx *txn) settle(first *leg) {
	done := map[*leg]bool{}
	for range 64 {
		var became []*leg
		consider := func(l *leg) {
			if done[l] || l.party.bot || l.state() != StateConnected {
				return
			}
			if b := tx.before(l); b != nil && b.state == StateConnected {
				return
			}
			became = append(became, l)
		}
		if first != nil {
			consider(first)
		}
		for i := range tx.seen {
			consider(tx.seen[i].leg)
		}
		if len(became) == 0 {
			return
		}
		for _, l := range became {
			done[l] = true
			if l.state() != StateConnected {
				continue
			}
			_ = tx.plan(l, holdpolicy.RemoteLive)
		}
	}
}

// goLive marks a leg answered or joined.
func (tx *txn) goLive(l *leg) {
	tx.touch(l.conv)
	l.phase = phaseLive
	l.listed = true
	if l.connectedAt.IsZero() {
		l.connectedAt = tx.now
	}
	tx.stopRinging(l)
}

// stopRinging stops a leg's ring timer; a timer stopped before it ran will
// never mark its work done, so this does.
func (tx *txn) stopRinging(l *leg) {
	if l.ringTimer != nil {
		if l.ringTimer.Stop() {
			tx.s.work.Done()
		}
		l.ringTimer = nil
	}
}

// endLeg ends one leg with reason and settles what that means for the rest
// of its conversation: peer is the reason the other side of a 1:1 call (or a
// caller left alone) ends with.
func (tx *txn) endLeg(l *leg, reason EndReason, peer EndReason) {
	if l.phase == phaseEnded {
		return
	}
	c := l.conv
	tx.touch(c)
	if !l.party.bot && l.line == nil && !l.ghost {
		transitions, err := holdpolicy.Plan(tx.callsOf(l.party), holdpolicy.End, l.id, tx.s.cfg.Policy)
		if err == nil && len(transitions) > 0 {
			s, p, id := tx.s, l.party, transitions[0].CallID
			tx.after = append(tx.after, func() { s.resumeAfterEnd(p, id) })
		}
	}
	if l.voicemail && reason.Code == 0 {
		reason = ReasonVoicemail // she hung up: the voicemail she left ends so
	}
	wasPending := l.phase != phaseLive
	wasCaller := l.direction == Outgoing
	l.phase = phaseEnded
	l.endAt = tx.now
	l.endReason = reason
	tx.stopRinging(l)
	c.members = slices.DeleteFunc(c.members, func(m *leg) bool { return m == l })
	if !l.party.bot {
		l.party.legs = slices.DeleteFunc(l.party.legs, func(m *leg) bool { return m == l })
	}
	delete(tx.s.legs, l.id)
	if l == c.endsWith {
		tx.s.keepAnswers(l)
	}
	if len(tx.s.legs) == 0 && tx.s.idle != nil {
		close(tx.s.idle) // the drain's last call ended
		tx.s.idle = nil
	}

	remaining := c.members
	switch {
	case l.monitor != "":
		tx.emitMonitor(l, l.monitor) // she left; the call goes on
	case len(remaining) == 0:
	case l.handedOff:
		// Transferred or merged: the others were handed on and stay.
	case c.endsWith != nil && l != c.endsWith && !wasPending && soleAnswered(remaining) && slices.Contains(remaining, c.endsWith):
		// A queue call's agent left the call she answered, its caller
		// alone in it now (supervisors monitoring are no company): the
		// caller is not kept in an empty group call; her call ends as a
		// 1:1 call's would (remote hung up, ended for all, the media lost,
		// the switchboard stopped), here, rather than when the queue
		// engine next looks.
		tx.endLeg(c.endsWith, peerReason(peer, c.endsWith), ReasonRemoteHungUp)
	case l == c.endsWith && !wasPending && soleAnswered(remaining):
		// A queue's caller left her answered call: the agent, alone in it
		// now, is not kept in an empty group call (nor those monitoring).
		for _, m := range slices.Clone(remaining) {
			tx.endLeg(m, peerReason(peer, m), ReasonRemoteHungUp)
		}
	case c.kind == OneToOne:
		for _, m := range slices.Clone(remaining) {
			tx.endLeg(m, peerReason(peer, m), ReasonRemoteHungUp)
		}
	case wasCaller && wasPending:
		// The caller gave up before anyone answered: cancel the ringing.
		for _, m := range slices.Clone(remaining) {
			if m.phase == phaseIncoming {
				tx.endLeg(m, ReasonCanceled, ReasonCanceled)
			}
		}
	default:
		// A caller still waiting, left with nobody to wait for, ends too.
		if len(remaining) == 1 && remaining[0].direction == Outgoing && remaining[0].phase != phaseLive {
			tx.endLeg(remaining[0], peer, peer)
			break
		}
		// Nobody is left in the call to answer for: whoever still rings
		// is canceled (a queue's offer whose waiting caller hung up).
		if !slices.ContainsFunc(remaining, func(m *leg) bool { return m.phase != phaseIncoming || m.ghost }) {
			for _, m := range slices.Clone(remaining) {
				tx.endLeg(m, ReasonCanceled, ReasonCanceled)
			}
		}
	}
	tx.endMonitors(c, l)
	if c.joiner != nil {
		tx.endMirror(c, l, peer)
	} else {
		tx.endCallee(c, l, peer)
	}
	tx.endBridge(c, l)
	if humans := slices.ContainsFunc(c.members, func(m *leg) bool { return !m.party.bot }); !humans {
		for _, m := range slices.Clone(c.members) {
			tx.endLeg(m, ReasonRemoteHungUp, ReasonRemoteHungUp)
		}
	}
	if len(c.members) == 0 && !c.closed {
		c.closed = true
		if key := c.registryKey(); key != "" {
			if tx.s.rooms[key] == c {
				delete(tx.s.rooms, key)
				tx.releaseClaim(key, c)
			}
		}
	}
}

// soleAnswered reports whether, besides supervisors' monitor legs, one
// party is left and she answered.
func soleAnswered(members []*leg) bool {
	var sole *leg
	for _, m := range members {
		if m.monitor != "" {
			continue
		}
		if sole != nil {
			return false
		}
		sole = m
	}
	return sole != nil && sole.phase == phaseLive
}

// peerReason is the reason the other side ends with: a ringing callee whose
// caller hung up was canceled, not hung up on.
func peerReason(peer EndReason, other *leg) EndReason {
	if other.phase == phaseIncoming && peer == ReasonRemoteHungUp {
		return ReasonCanceled
	}
	return peer
}

// commit hands the transaction's changes to the store, the publisher and
// the media plane, in that order, while it still holds the live state.
func (tx *txn) commit() {
	n := 0
	for i := range tx.seen {
		if l := tx.seen[i].leg; !l.party.bot && !l.standIn {
			n++
		}
	}
	var recs []Record
	if n > 0 {
		// One backing array for every record's events: the store may keep
		// them, and nobody changes them.
		events := make([]Event, 0, 2*n)
		recs = make([]Record, 0, n)
		for i := range tx.seen {
			sl := &tx.seen[i]
			l := sl.leg
			if l.party.bot || l.standIn {
				continue // a bot's own view or a stand-in is nobody's call: no events, no history
			}
			var before *legView
			if !sl.fresh {
				before = &sl.before
			}
			lo := len(events)
			events = tx.diff(events, l, before)
			events = append(events, tx.explicit[l]...)
			if len(events) == lo {
				continue
			}
			recs = append(recs, Record{Call: l.view(true), Events: events[lo:len(events):len(events)]})
		}
	}
	// Every call that leaves Connected is announced before any call that
	// enters it, so no observer ever sees two Connected calls. (A record's
	// call is its leg as it stands now.)
	slices.SortStableFunc(recs, func(a, b Record) int {
		ac, bc := a.Call.State == StateConnected, b.Call.State == StateConnected
		switch {
		case ac == bc:
			return 0
		case bc:
			return -1
		}
		return 1
	})
	if len(recs) > 0 && !tx.recorded {
		tx.s.cfg.Store.Record(recs...)
	}
	for i := range recs {
		for _, ev := range recs[i].Events {
			tx.s.cfg.Publisher.Publish(ev)
		}
	}
	tx.updateLines()
	if tx.s.cfg.Media != nil {
		for _, c := range tx.touched {
			tx.s.cfg.Media.SetRoute(c.route())
		}
	}
}

// done commits, releases the live state and runs the follow-ups. The
// transaction is another operation's from the moment it is released.
func (tx *txn) done() {
	tx.commit()
	tx.statuses()
	after := tx.after
	tx.after = nil
	tx.unlock()
	for _, f := range after {
		f()
	}
}

// route is the conversation's audio routing as it stands.
func (c *conversation) route() Route {
	r := Route{ServerCallID: c.mediaKey(), Kind: c.kind}
	for _, m := range c.members {
		if m.ghost {
			continue // its audio comes in the stand-in's leg
		}
		active := m.state() == StateConnected
		r.Members = append(r.Members, MediaMember{
			RawID:   m.party.id,
			CallID:  m.id,
			Send:    active && !m.muted,
			Receive: active && !m.incomingMuted,
			Held:    m.phase == phaseLive && m.holding,

			OwnEndpoint: m.line != nil,
		})
		if m.monitor != "" {
			m.monitorMedia(&r.Members[len(r.Members)-1])
		}
	}
	return r
}
