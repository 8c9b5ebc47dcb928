package calls

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard/switchboard/internal/routing"
)

// EventAgentStatusChanged tells an agent, and every supervisor, that her
// status changed: what a dashboard shows (Busy and Offline included) or
// what she chose.
const EventAgentStatusChanged EventType = "agentStatusChanged"

// AgentStatusData is the data of agentStatusChanged, and the answer of
// GET /api/me/status: an agent's status as it stands.
type AgentStatusData struct {
	RawID string `json:"rawId"`
	// Status is what dashboards show: Offline without an event
	// connection, Busy with a call in progress, else the chosen status.
	Status routing.Status `json:"status"`
	// ChosenStatus is what was chosen last (Available, Away or WrapUp):
	// the status once no call is in progress and she is connected.
	ChosenStatus routing.Status `json:"chosenStatus"`
	// Since is when this status (or chosen status) began.
	Since time.Time `json:"since"`
	// ChangedBy is who changed it: the agent, a supervisor, or the system
	// (a wrap-up that ended, a queue).
	ChangedBy Actor `json:"changedBy"`
	// WrapUpUntil is when WrapUp ends (becomes Available); WrapUpCallID
	// the call it follows, when known.
	WrapUpUntil  *time.Time `json:"wrapUpUntil,omitempty"`
	WrapUpCallID string     `json:"wrapUpCallId,omitempty"`
}

// StatusChange is one change of an agent's status as history keeps it.
type StatusChange struct {
	AgentID string
	Status  routing.Status // shown (effective)
	Chosen  routing.Status // chosen
	At      time.Time
	By      Actor // DisplayName is not kept
}

// StatusFilter selects status changes. Zero fields do not filter.
type StatusFilter struct {
	AgentID  string
	From, To time.Time // At in [From, To)
	Limit    int       // 1 to MaxHistoryLimit; 0 means DefaultHistoryLimit
}

// WrapUpCode is the code an agent picked for a call she finished.
type WrapUpCode struct {
	CallID  string    `json:"callId"`
	AgentID string    `json:"agentId"`
	Code    string    `json:"code"`
	At      time.Time `json:"at"`
}

// AgentStatusLog keeps agents' status changes and the wrap-up codes of
// calls, with the history. All stores implement it and pass one suite.
type AgentStatusLog interface {
	// RecordStatusChanges keeps changes, in their order; they have been
	// written when it returns. Errors: CodeUnavailable (a closed or
	// unreachable store), the context's error wrapped.
	RecordStatusChanges(ctx context.Context, cs ...StatusChange) error
	// FindStatusChanges answers the changes passing f, newest first
	// (ties by agent), never nil. Errors as RecordStatusChange's.
	FindStatusChanges(ctx context.Context, f StatusFilter) ([]StatusChange, error)
	// LastStatusChange answers the agent's latest change, or
	// CodeNotFound.
	LastStatusChange(ctx context.Context, agentID string) (StatusChange, error)
	// PutWrapUpCode keeps the call's wrap-up code, replacing one the call
	// had; history then shows it on the call (Call.WrapUpCode) and
	// CallFilter.WrapUpCode finds it. Errors as RecordStatusChange's.
	PutWrapUpCode(ctx context.Context, w WrapUpCode) error
}

// SetStatusRequest is a chosen status: PUT /api/me/status.
type SetStatusRequest struct {
	Status routing.Status `json:"status"`
	// WrapUpSeconds, with WrapUp only, is how long it lasts (0: the
	// default, routing.DefaultWrapUp).
	WrapUpSeconds int `json:"wrapUpSeconds,omitempty"`
	// CallID, with WrapUp only, names the call the wrap-up follows.
	CallID string `json:"callId,omitempty"`
}

// MaxWrapUpCodeLen bounds a wrap-up code, in bytes.
const MaxWrapUpCodeLen = 64

// recentCallsKept is how many of her last ended calls an agent may give a
// wrap-up code to without the history being asked.
const recentCallsKept = 8

// statusQueue bounds the changes waiting to be written to the store.
const statusQueue = 4096

// AgentStatusOf answers the status of agent (a rawId; "" for the
// principal's own). An agent may ask for her own only. Errors: forbidden,
// invalid_identifier.
func (s *Switchboard) AgentStatusOf(ctx context.Context, p Principal, agent string) (AgentStatusData, error) {
	const op = "agent status"
	target, err := s.statusTarget(p, agent)
	if err != nil {
		return AgentStatusData{}, withOp(op, err)
	}
	last := s.lastChange(ctx, target)
	tx := s.begin(&p)
	defer tx.unlock()
	if s.closed {
		return AgentStatusData{}, withOp(op, errClosed)
	}
	pt := tx.party(target)
	tx.loadStatus(pt, last)
	return tx.statusData(pt, nil), nil
}

// SetStatus sets the chosen status of agent (a rawId; "" for the
// principal's own): by the agent herself or a supervisor. WrapUp lasts
// req.WrapUpSeconds (default routing.DefaultWrapUp) and becomes
// Available when they are up. Errors: invalid_request (an unknown status;
// Busy and Offline, which are derived; a wrap-up time out of range),
// forbidden (an agent setting another's, a caller), invalid_identifier.
func (s *Switchboard) SetStatus(ctx context.Context, p Principal, agent string, req SetStatusRequest) (AgentStatusData, error) {
	const op = "set status"
	target, err := s.statusTarget(p, agent)
	if err != nil {
		return AgentStatusData{}, withOp(op, err)
	}
	return s.applyStatus(ctx, &p, target, req)
}

// applyStatus sets target's chosen status for p, or for the system when p
// is nil (SetStatusBySystem).
func (s *Switchboard) applyStatus(ctx context.Context, p *Principal, target Identifier, req SetStatusRequest) (AgentStatusData, error) {
	const op = "set status"
	if req.Status != routing.WrapUp && (req.WrapUpSeconds != 0 || req.CallID != "") {
		return AgentStatusData{}, withOp(op, Errorf(CodeInvalidRequest, "wrapUpSeconds and callId go with status WrapUp only"))
	}
	by := ""
	if p != nil {
		by = p.Identifier.RawID()
	}
	last := s.lastChange(ctx, target)
	tx := s.begin(p)
	if s.closed {
		tx.unlock()
		return AgentStatusData{}, withOp(op, errClosed)
	}
	pt := tx.party(target)
	tx.loadStatus(pt, last)
	st, err := routing.Set(pt.presence, req.Status, by, tx.now,
		time.Duration(req.WrapUpSeconds)*time.Second, req.CallID)
	if err != nil {
		tx.unlock()
		return AgentStatusData{}, withOp(op, Errorf(CodeInvalidRequest, "%v", err))
	}
	tx.setStatus(pt, st)
	out := tx.statusData(pt, nil)
	tx.done()
	// Answered once kept: a crash after the answer loses no chosen status.
	if err := s.FlushStatuses(ctx); err != nil {
		return AgentStatusData{}, withOp(op, &Error{Code: CodeUnavailable, Err: err,
			Message: "the status is set but could not be kept in the history; set it again"})
	}
	return out, nil
}

// EnterWrapUp puts agent (a rawId owned by this node) in WrapUp for
// seconds after her queue call callID ended, as the system: the queue's
// wrapUpSeconds. 0 seconds, or an Away agent, changes nothing. It is the
// queues' way in (no principal: the queue decided). Errors:
// invalid_request (seconds out of range), invalid_identifier, not_found
// (the agent never connected to this node).
func (s *Switchboard) EnterWrapUp(ctx context.Context, agent, callID string, seconds int) (AgentStatusData, error) {
	const op = "enter wrap-up"
	id, err := ParseRawID(agent)
	if err != nil {
		return AgentStatusData{}, withOp(op, err)
	}
	tx := s.begin(nil)
	pt := s.parties[id.RawID()]
	if s.closed || pt == nil || !pt.statusLoaded {
		tx.unlock()
		if s.closed {
			return AgentStatusData{}, withOp(op, errClosed)
		}
		return AgentStatusData{}, withOp(op, Errorf(CodeNotFound, "agent %s is not served by this switchboard", agent))
	}
	st, err := routing.EnterWrapUp(pt.presence, callID, seconds, tx.now)
	if err != nil {
		tx.unlock()
		return AgentStatusData{}, withOp(op, Errorf(CodeInvalidRequest, "%v", err))
	}
	if st != pt.presence {
		tx.setStatus(pt, st)
	}
	out := tx.statusData(pt, nil)
	tx.done()
	return out, nil
}

// RecordWrapUpCode keeps the wrap-up code the agent picked for a call of
// hers: one live or just ended here, or one the history has as hers (a
// supervisor may give any call's). Errors: invalid_request (a code empty,
// longer than MaxWrapUpCodeLen or not printable; no callId),
// call_not_found, forbidden (callers), not_implemented (a store that
// keeps no statuses).
func (s *Switchboard) RecordWrapUpCode(ctx context.Context, p Principal, callID, code string) (WrapUpCode, error) {
	const op = "record wrap-up code"
	if s.statusLog == nil {
		return WrapUpCode{}, withOp(op, Errorf(CodeNotImplemented, "this store keeps no wrap-up codes"))
	}
	if err := p.Identifier.Validate(); err != nil {
		return WrapUpCode{}, withOp(op, err)
	}
	if p.Role != RoleAgent && p.Role != RoleSupervisor {
		return WrapUpCode{}, withOp(op, Errorf(CodeForbidden, "only agents and supervisors give wrap-up codes"))
	}
	if callID == "" {
		return WrapUpCode{}, withOp(op, Errorf(CodeInvalidRequest, "callId is required"))
	}
	if err := checkWrapUpCode(code); err != nil {
		return WrapUpCode{}, withOp(op, err)
	}
	self := p.Identifier.RawID()
	w := WrapUpCode{CallID: callID, AgentID: self, Code: code}
	tx := s.begin(&p)
	w.At = tx.now
	known := false
	if pt := s.parties[self]; pt != nil {
		known = slices.Contains(pt.recentCalls, callID) ||
			slices.ContainsFunc(pt.legs, func(l *leg) bool { return l.id == callID && l.listed })
	}
	tx.unlock()
	if !known {
		h, err := s.cfg.Store.FindCallByID(ctx, callID)
		if err != nil {
			return WrapUpCode{}, withOp(op, err)
		}
		if h.Call.AgentID != self && p.Role != RoleSupervisor {
			return WrapUpCode{}, withOp(op, errCallNotFound(callID))
		}
		w.AgentID = h.Call.AgentID
	}
	if err := s.statusLog.PutWrapUpCode(ctx, w); err != nil {
		return WrapUpCode{}, withOp(op, err)
	}
	return w, nil
}

// StatusHistory answers status changes, newest first: an agent's own, or
// for a supervisor anyone's. Errors: forbidden, invalid_request (a limit
// out of range), invalid_identifier, not_implemented.
func (s *Switchboard) StatusHistory(ctx context.Context, p Principal, f StatusFilter) ([]StatusChange, error) {
	const op = "status history"
	if s.statusLog == nil {
		return nil, withOp(op, Errorf(CodeNotImplemented, "this store keeps no status history"))
	}
	if err := s.mayReadHistory(p, &f.AgentID); err != nil {
		return nil, withOp(op, err)
	}
	if f.Limit == 0 {
		f.Limit = DefaultHistoryLimit
	}
	if f.Limit < 1 || f.Limit > MaxHistoryLimit {
		return nil, withOp(op, Errorf(CodeInvalidRequest, "limit must be 1 to %d", MaxHistoryLimit))
	}
	out, err := s.statusLog.FindStatusChanges(ctx, f)
	return out, withOp(op, err)
}

func checkWrapUpCode(code string) error {
	if code == "" || len(code) > MaxWrapUpCodeLen || !utf8.ValidString(code) {
		return Errorf(CodeInvalidRequest, "code must be 1 to %d bytes of UTF-8", MaxWrapUpCodeLen)
	}
	for _, r := range code {
		if !unicode.IsPrint(r) {
			return Errorf(CodeInvalidRequest, "code must be printable: %q is not", r)
		}
	}
	return nil
}

// statusTarget is whose status a request names: the principal's own
// (agent "" or her rawId), or, for a supervisor, anyone's.
func (s *Switchboard) statusTarget(p Principal, agent string) (Identifier, error) {
	if err := p.Identifier.Validate(); err != nil {
		return Identifier{}, err
	}
	if p.Role != RoleAgent && p.Role != RoleSupervisor {
		return Identifier{}, Errorf(CodeForbidden, "only agents and supervisors have a status")
	}
	if agent == "" || agent == p.Identifier.RawID() {
		return p.Identifier, nil
	}
	id, err := ParseRawID(agent)
	if err != nil {
		return Identifier{}, err
	}
	if p.Role != RoleSupervisor {
		return Identifier{}, Errorf(CodeForbidden, "an agent sets only her own status: use /api/me/status")
	}
	return id, nil
}

// lastChange reads the identity's last status change from the store when
// this switchboard has not loaded her status yet (before the live state is
// taken: it is I/O). nil: none, or no need.
func (s *Switchboard) lastChange(ctx context.Context, id Identifier) *StatusChange {
	if s.statusLog == nil {
		return nil
	}
	raw := id.RawID()
	s.live.Lock()
	pt := s.parties[raw]
	loaded, here := pt != nil && pt.statusLoaded, pt != nil && pt.conns > 0
	s.live.Unlock()
	if here {
		return nil // connected here: this node owns her status
	}
	if loaded {
		// Another node may have changed it since: read the store, once
		// it has what this node changed.
		if err := s.FlushStatuses(ctx); err != nil {
			s.log.Warn("write the queued status changes before reading", "agent_id", raw, "err", err)
		}
	}
	c, err := s.statusLog.LastStatusChange(ctx, raw)
	if err != nil {
		if ErrorCode(err) != CodeNotFound {
			s.log.Warn("read the last status: starting Available", "agent_id", raw, "err", err)
		}
		return nil
	}
	return &c
}

// loadStatus gives pt her status: once, the one last chosen before a
// restart (routing.Restore), read by lastChange, else Available; and
// again when the store has a change newer than this node's last (another
// node of a cluster owned her meanwhile).
func (tx *txn) loadStatus(pt *party, last *StatusChange) {
	if pt.bot || pt.statusLoaded && (last == nil || !last.At.After(pt.statusAt)) {
		return
	}
	pt.statusLoaded = true
	if last != nil {
		tx.setTimerless(pt, routing.Restore(last.Chosen, last.At, last.By.RawID, tx.now))
		pt.shown, pt.shownChosen, pt.statusAt = last.Status, last.Chosen, last.At
		return
	}
	pt.presence, pt.statusAt = routing.State{Status: routing.Available, Since: tx.now}, tx.now
}

// setTimerless sets a restored status, which is never WrapUp, stopping a
// wrap-up timer left from before.
func (tx *txn) setTimerless(pt *party, st routing.State) {
	if pt.wrapTimer != nil {
		if pt.wrapTimer.Stop() {
			tx.s.work.Done()
		}
		pt.wrapTimer = nil
	}
	pt.presence = st
}

// setStatus applies a new chosen status, times its wrap-up, and tells of
// it.
func (tx *txn) setStatus(pt *party, st routing.State) {
	s := tx.s
	pt.presence = st
	if pt.wrapTimer != nil {
		if pt.wrapTimer.Stop() {
			s.work.Done()
		}
		pt.wrapTimer = nil
	}
	if st.Chosen() == routing.WrapUp {
		id, until := pt.id, st.WrapUpUntil
		s.work.Add(1)
		pt.wrapTimer = s.cfg.Clock.AfterFunc(until.Sub(tx.now), func() {
			defer s.work.Done()
			s.expireWrapUp(id, until)
		})
	}
	tx.showStatus(pt, true)
}

// expireWrapUp ends the wrap-up of the identity that was to end at until,
// unless another status replaced it since.
func (s *Switchboard) expireWrapUp(id string, until time.Time) {
	tx := s.begin(nil)
	pt := s.parties[id]
	if s.closed || pt == nil || pt.presence.Chosen() != routing.WrapUp || !pt.presence.WrapUpUntil.Equal(until) {
		tx.unlock()
		return
	}
	pt.wrapTimer = nil
	pt.presence, _ = routing.Expire(pt.presence, until)
	tx.showStatus(pt, true)
	tx.done()
}

// stopWrapUps stops every wrap-up timer (Close). Under live.
func (s *Switchboard) stopWrapUps() {
	for _, pt := range s.parties {
		if pt.wrapTimer != nil && pt.wrapTimer.Stop() {
			s.work.Done()
		}
		pt.wrapTimer = nil
	}
}

// offlineAll shows every agent Offline as the switchboard closes (her
// connections here are about to end), told and kept; nothing changes her
// status here afterwards.
func (tx *txn) offlineAll() {
	for _, pt := range tx.s.sortedParties() {
		if !pt.statusLoaded || pt.bot || pt.conns == 0 || pt.shown == routing.Offline {
			continue
		}
		tx.tellStatus(pt, routing.Offline)
	}
	tx.s.statusFinal = true
}

// inCall reports whether the party has a call in progress: placing one,
// or answered (held or not). A call ringing for her does not count.
func (p *party) inCall() bool {
	for _, l := range p.legs {
		if l.standIn {
			continue
		}
		switch l.phase {
		case phaseConnecting, phaseRinging, phaseLive:
			return true
		}
	}
	return false
}

// statuses tells of the status changes of the parties whose calls the
// transaction changed (Busy), and remembers the calls that ended for
// their wrap-up codes.
func (tx *txn) statuses() {
	for i := range tx.seen {
		l := tx.seen[i].leg
		p := l.party
		if p.bot || l.standIn {
			continue
		}
		if l.phase == phaseEnded {
			p.callEndedAt = tx.now
		}
		if l.phase == phaseEnded && l.listed && !slices.Contains(p.recentCalls, l.id) {
			if len(p.recentCalls) >= recentCallsKept {
				p.recentCalls = slices.Delete(p.recentCalls, 0, 1)
			}
			p.recentCalls = append(p.recentCalls, l.id)
		}
		tx.showStatus(p, false)
	}
}

// showStatus publishes agentStatusChanged when what dashboards show of pt
// changed (or, with chosen, when her chosen status was set), and queues
// the change for the store.
func (tx *txn) showStatus(pt *party, chosen bool) {
	if !pt.statusLoaded || pt.bot || tx.s.statusFinal {
		return
	}
	shown := routing.Effective(pt.presence, pt.conns > 0, pt.inCall())
	if !chosen && shown == pt.shown && pt.presence.Chosen() == pt.shownChosen {
		return
	}
	tx.tellStatus(pt, shown)
}

// tellStatus publishes pt's status shown as agentStatusChanged and queues
// the change for the store.
func (tx *txn) tellStatus(pt *party, shown routing.Status) {
	pt.shown, pt.shownChosen, pt.statusAt = shown, pt.presence.Chosen(), tx.now
	by := tx.statusActor(pt)
	data := tx.statusData(pt, &by)
	data.Status = shown
	tx.s.cfg.Publisher.Publish(Event{
		Type: EventAgentStatusChanged, At: tx.now, AgentID: pt.id, Actor: &by, Data: data,
		Supervised: true,
	})
	tx.s.queueStatus(StatusChange{AgentID: pt.id, Status: shown, Chosen: pt.presence.Chosen(), At: tx.now,
		By: Actor{Kind: by.Kind, RawID: by.RawID}})
}

// statusActor is who made the transaction's change to pt's status.
func (tx *txn) statusActor(pt *party) Actor {
	switch {
	case tx.actor == nil:
		return Actor{Kind: ActorSystem}
	case tx.actor.Identifier.RawID() == pt.id:
		return Actor{Kind: ActorAgent, RawID: pt.id}
	case tx.actor.Role == RoleSupervisor:
		return Actor{Kind: ActorSupervisor, RawID: tx.actor.Identifier.RawID(), DisplayName: tx.actor.DisplayName}
	}
	return Actor{Kind: ActorRemote, RawID: tx.actor.Identifier.RawID(), DisplayName: tx.actor.DisplayName}
}

// statusData is pt's status as the API shows it; by, when set, is who
// just changed it (else who chose the status).
func (tx *txn) statusData(pt *party, by *Actor) AgentStatusData {
	st := pt.presence
	d := AgentStatusData{
		RawID: pt.id, Status: routing.Effective(st, pt.conns > 0, pt.inCall()), ChosenStatus: st.Chosen(),
		Since: st.Since, WrapUpCallID: st.WrapUpCallID,
	}
	if by != nil {
		d.ChangedBy, d.Since = *by, tx.now
	} else {
		d.ChangedBy = Actor{Kind: ActorSystem}
		if st.By == pt.id {
			d.ChangedBy = Actor{Kind: ActorAgent, RawID: st.By}
		} else if st.By != "" {
			d.ChangedBy = Actor{Kind: ActorSupervisor, RawID: st.By}
		}
	}
	if !st.WrapUpUntil.IsZero() {
		u := st.WrapUpUntil
		d.WrapUpUntil = &u
	}
	return d
}

// statusItem is a change for the writer, or (flushed set) a mark it
// answers once everything before it is written: nil, or the error of a
// write since the mark before it.
type statusItem struct {
	change  StatusChange
	flushed chan error // buffered: one answer
}

// queueStatus hands a change to the writer that keeps them in the store,
// in order, starting it the first time. Under live. A full queue, or a
// closed switchboard's, drops the change (logged): the live state and the
// events stand.
func (s *Switchboard) queueStatus(c StatusChange) {
	if s.statusLog == nil {
		return
	}
	if !s.startStatusWriter() {
		s.log.Debug("status change not kept: the switchboard is closed", "agent_id", c.AgentID, "status", c.Status)
		return
	}
	select {
	case s.statusWrites <- statusItem{change: c}:
	default:
		s.log.Error("status change not kept: the store's queue is full", "agent_id", c.AgentID, "status", c.Status)
	}
}

// startStatusWriter starts the writer unless it runs; false once it was
// closed. Under live.
func (s *Switchboard) startStatusWriter() bool {
	if s.statusClosed {
		return false
	}
	if s.statusWrites == nil {
		s.statusWrites = make(chan statusItem, statusQueue)
		s.statusDone = make(chan struct{})
		go s.writeStatuses(s.statusWrites, s.statusDone)
	}
	return true
}

// writeStatuses writes queued status changes until the queue is closed
// (closeStatusWriter).
func (s *Switchboard) writeStatuses(in <-chan statusItem, done chan<- struct{}) {
	defer close(done)
	var batch []StatusChange
	var marks []chan error
	var failed error // a write that failed since the last marks were answered
	for it := range in {
		batch, marks = batch[:0], marks[:0]
		take := func(it statusItem) {
			if it.flushed != nil {
				marks = append(marks, it.flushed)
			} else {
				batch = append(batch, it.change)
			}
		}
		take(it)
		// What else is queued goes in the same write.
	more:
		for len(batch) < statusBatch {
			select {
			case it, ok := <-in:
				if !ok {
					break more
				}
				take(it)
			default:
				break more
			}
		}
		if len(batch) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.statusLog.RecordStatusChanges(ctx, batch...)
			cancel()
			if err != nil {
				s.log.Error("keep status changes", "changes", len(batch), "first_agent_id", batch[0].AgentID, "err", err)
				failed = err
			}
		}
		for _, m := range marks {
			m <- failed
		}
		if len(marks) > 0 {
			failed = nil
		}
	}
}

// statusBatch bounds the changes written at once.
const statusBatch = 256

// closeStatusWriter stops the writer once it wrote what was queued, or
// ctx ends (Close).
func (s *Switchboard) closeStatusWriter(ctx context.Context) error {
	s.live.Lock()
	in, done := s.statusWrites, s.statusDone
	s.statusWrites, s.statusClosed = nil, true
	s.live.Unlock()
	if in == nil {
		return nil
	}
	close(in)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("write the queued status changes: %w", ctx.Err())
	}
}

// FlushStatuses returns once the status changes made so far are in the
// store, or ctx ends; an error when one of them could not be written.
func (s *Switchboard) FlushStatuses(ctx context.Context) error {
	if s.statusLog == nil {
		return nil
	}
	mark := make(chan error, 1)
	s.live.Lock()
	if s.statusWrites == nil {
		s.live.Unlock()
		return nil
	}
	select {
	case s.statusWrites <- statusItem{flushed: mark}:
	case <-ctx.Done():
		s.live.Unlock()
		return ctx.Err()
	}
	s.live.Unlock()
	select {
	case err := <-mark:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
