package calls

import (
	"context"
	"slices"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// Transfer and merge. An agent hands her Connected 1:1 call (the
// customer's) to a target:
//
//   - blind: the target is invited into the customer's call at once and
//     the agent leaves it (0/7015, ReasonTransferred); the customer stays
//     in her call, which now rings the target.
//   - consult: the agent places a consult call to the target, which holds
//     the customer's call in the same step (the single-active rule; the
//     customer hears the hold tone, never the agent or the target). Then
//     CompleteTransfer moves the target's leg into the customer's call
//     and ends both of the agent's calls (0/7015), or CancelTransfer ends
//     the consult call and resumes the customer's.
//
// Merge joins two of an agent's live calls into the first: the others of
// the second move into it, it becomes a group call, and the second ends
// (0/7016, ReasonMerged).
//
// The customer's call keeps its id and serverCallId throughout; a target
// moved in by a completed consult keeps its call id and takes the
// customer's serverCallId. Every step is a transferUpdated event, with the
// agent as its actor, in the timelines of the calls it concerns.
//
// A blind transfer to a queue (Config.Queues) leaves the
// customer alone in her call, made a group call, and hands it to the
// queue (queuetransfer.go); a consult transfer to a queue puts the agent's
// consult call in it (queueconsult.go). Transfers across the nodes of a
// cluster: peertransfer.go.

// TransferMode is a transfer's mode.
type TransferMode string

// The transfer modes.
const (
	TransferBlind   TransferMode = "blind"
	TransferConsult TransferMode = "consult"
)

// TransferRequest is POST /api/calls/{id}/transfer: exactly one of Target
// and Queue.
type TransferRequest struct {
	Target *Identifier  `json:"target,omitempty"`
	Queue  string       `json:"queue,omitempty"`
	Mode   TransferMode `json:"mode"`
	// AlternateCallerID is the number shown to a phone-number target, as
	// for any call to a phone number.
	AlternateCallerID *Identifier `json:"alternateCallerId,omitempty"`
}

// MergeRequest is POST /api/calls/{id}/merge.
type MergeRequest struct {
	CallID string `json:"callId"`
}

// Queues is the seam queues plug into: a blind transfer to a queue leaves
// the customer alone in her call (a group call from then on, as a queue
// caller's is) and hands it to the queue, whose agents are offered it.
type Queues interface {
	// Check answers not_found when there is no queue name.
	Check(ctx context.Context, name string) error
	// Enter places the customer's call callID, hers alone now, into the
	// queue, with customer as who acts on it (adds and removes agents).
	Enter(ctx context.Context, name string, customer Principal, callID string) error
}

// EventTransferUpdated is one step of a transfer or a merge.
const EventTransferUpdated EventType = "transferUpdated"

// TransferStep names a step of a transfer.
type TransferStep string

// The steps.
const (
	StepBlind     TransferStep = "blind"     // the agent handed the call to the target
	StepConsult   TransferStep = "consult"   // the agent placed a consult call
	StepCompleted TransferStep = "completed" // the consult transfer joined customer and target
	StepCanceled  TransferStep = "canceled"  // the consult ended; the agent is back
	StepMerged    TransferStep = "merged"    // two calls became one
)

// TransferData is the data of transferUpdated.
type TransferData struct {
	Step TransferStep `json:"step"`
	// Agent is the rawId of the agent who transfers or merges.
	Agent string `json:"agent"`
	// Target is the rawId of the transfer's target.
	Target string `json:"target,omitempty"`
	// Queue is a queue target's name.
	Queue string `json:"queue,omitempty"`
	// CallID is the agent's other call of the step (her consult call, or
	// the call merged), in her own events only.
	CallID string `json:"callId,omitempty"`
	// ServerCallID, on a call moved into another conversation (the target
	// of a completed consult, the others of a merged call), is the call's
	// serverCallId from now on.
	ServerCallID string `json:"serverCallId,omitempty"`
}

// Transfer hands the call id (the agent's Connected 1:1 call) to the
// target. Blind: the answer is the agent's call, ended (0/7015). Consult:
// the answer is the consult call. Errors: invalid_request, the callee
// errors of StartCall, not_found (no such queue), call_not_found,
// invalid_state (not Connected, a consult in progress, the target not
// connected, already in the call), not_implemented (a queue's customer
// on another node whose line carries no requests), draining.
func (s *Switchboard) Transfer(ctx context.Context, p Principal, id string, req TransferRequest) (Call, error) {
	const op = "transfer"
	if req.Mode != TransferBlind && req.Mode != TransferConsult {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "mode must be blind or consult, not %q", req.Mode))
	}
	if (req.Target == nil) == (req.Queue == "") {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a transfer needs exactly one of target and queue"))
	}
	if req.Queue != "" {
		return s.transferToQueue(ctx, p, id, req)
	}
	target := *req.Target
	if err := checkCallee(p.Identifier, target, req.AlternateCallerID); err != nil {
		return Call{}, withOp(op, err)
	}
	located := s.locate(ctx, []Identifier{target})
	var out Call
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		tx.located = located
		if s.draining {
			return errDraining
		}
		if err := transferable(l); err != nil {
			return err
		}
		callee := tx.party(target)
		if slices.ContainsFunc(l.conv.members, func(m *leg) bool { return m.party == callee }) {
			return Errorf(CodeInvalidState, "%s is already in the call", callee.id)
		}
		if !reachable(callee) && located[callee.id] == "" && !tx.dialsOut(&leg{party: callee}) { // a phone number the trunk dials
			return Errorf(CodeInvalidState, "%s is not connected: nobody would answer the transfer", callee.id)
		}
		data := TransferData{Step: StepBlind, Agent: l.party.id, Target: callee.id, Queue: req.Queue}
		if req.Mode == TransferBlind {
			out = tx.blindTransfer(l, callee, target, req, data)
			return nil
		}
		cons, err := tx.consult(p, l, callee, target, req)
		if err != nil {
			return err
		}
		data.Step, data.CallID = StepConsult, cons.id
		tx.emit(l, EventTransferUpdated, data)
		data.CallID = l.id
		tx.emit(cons, EventTransferUpdated, data)
		out = cons.view(false)
		return nil
	})
	return out, withOp(op, err)
}

// transferable says why the call l cannot be transferred, if it cannot.
func transferable(l *leg) error {
	switch {
	case l.monitor != "":
		return Errorf(CodeInvalidState, "a monitor leg is not transferred")
	case live(l.consult) || live(l.consultOf):
		return Errorf(CodeInvalidState, "a consult transfer of call %s is in progress: complete or cancel it first", l.id)
	case l.state() != StateConnected:
		return Errorf(CodeInvalidState, "call %s is %s: only the Connected call is transferred", l.id, l.state())
	case l.conv.kind != OneToOne:
		return Errorf(CodeInvalidState, "call %s is a %s call: transfer takes a 1:1 call (add participants to a group call instead)", l.id, l.conv.kind)
	}
	return nil
}

func live(l *leg) bool { return l != nil && l.phase != phaseEnded }

// others is the members of l's call the agent hands on: all but l and
// monitoring supervisors.
func others(l *leg) []*leg {
	var out []*leg
	for _, m := range l.conv.members {
		if m != l && m.monitor == "" {
			out = append(out, m)
		}
	}
	return out
}

// blindTransfer invites the target into l's call, shown as the customer
// calling, and ends l.
func (tx *txn) blindTransfer(l *leg, callee *party, target Identifier, req TransferRequest, data TransferData) Call {
	info := l.callerInfo
	if cust := others(l); len(cust) > 0 {
		info = CallerInfo{Identifier: cust[0].party.ident, DisplayName: cust[0].displayName()}
	}
	if target.Kind == KindPhoneNumber {
		info.Identifier = *req.AlternateCallerID
	}
	for _, m := range others(l) {
		tx.emit(m, EventTransferUpdated, data)
	}
	tx.emit(l, EventTransferUpdated, data)
	m := tx.invite(callee, l.conv, info)
	tx.ring(m)
	l.handedOff = true
	tx.endLeg(l, ReasonTransferred, ReasonRemoteHungUp)
	tx.repairPairs(l.conv)
	return l.view(false)
}

// consult places the agent's consult call to the target, holding l (her
// active call) in the same step.
func (tx *txn) consult(p Principal, l *leg, callee *party, target Identifier, req TransferRequest) (*leg, error) {
	c := &conversation{id: tx.s.cfg.NewID(), kind: OneToOne}
	self := CallerInfo{Identifier: p.Identifier, DisplayName: l.party.displayName}
	cons := tx.newLeg(l.party, c, Outgoing, self, phaseConnecting)
	if err := tx.plan(cons, holdpolicy.Start); err != nil {
		return nil, err
	}
	info := self
	if target.Kind == KindPhoneNumber {
		info.Identifier = *req.AlternateCallerID
	}
	m := tx.invite(callee, c, info)
	tx.ring(m)
	tx.afterInvite(cons)
	l.consult, cons.consultOf = cons, l
	return cons, nil
}

// consultPair finds the consult transfer the call id takes part in: orig
// is the customer's call, cons the agent's consult call.
func consultPair(l *leg) (orig, cons *leg, err error) {
	orig, cons = l, l.consult
	if l.consultOf != nil {
		orig, cons = l.consultOf, l
	}
	if !live(orig) || !live(cons) {
		return nil, nil, Errorf(CodeInvalidState, "no consult transfer of call %s is in progress", l.id)
	}
	return orig, cons, nil
}

// CompleteTransfer completes the consult transfer of the call id (the
// customer's call or the consult call): the target's leg joins the
// customer's call, and both of the agent's calls end (0/7015). The answer
// is the agent's customer call, ended. Errors: call_not_found,
// invalid_state (no consult in progress, the target has not answered),
// not_implemented (the target is on another node).
func (s *Switchboard) CompleteTransfer(ctx context.Context, p Principal, id string) (Call, error) {
	var out Call
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		orig, cons, err := consultPair(l)
		if err != nil {
			return err
		}
		if cons.phase != phaseLive {
			return Errorf(CodeInvalidState, "the target has not answered consult call %s yet: wait, or cancel the transfer", cons.id)
		}
		targets := others(cons)
		if len(targets) == 0 {
			return Errorf(CodeInvalidState, "nobody is left in consult call %s", cons.id)
		}
		if !slices.ContainsFunc(targets, func(m *leg) bool { return m.phase == phaseLive }) {
			// A consult to a queue: its agent is offered the call still.
			return Errorf(CodeInvalidState, "nobody has answered consult call %s yet: wait, or cancel the transfer", cons.id)
		}
		for _, m := range targets {
			if m.phase != phaseLive {
				tx.endLeg(m, ReasonCanceled, ReasonCanceled) // an offer still ringing stays behind
			}
		}
		targets = slices.DeleteFunc(targets, func(m *leg) bool { return m.phase != phaseLive })
		for _, m := range others(orig) {
			if slices.ContainsFunc(targets, func(t *leg) bool { return t.party == m.party }) {
				return Errorf(CodeInvalidState, "%s is in both calls", m.party.id)
			}
		}
		data := TransferData{Step: StepCompleted, Agent: orig.party.id, Target: targets[0].party.id}
		tx.move(targets, orig.conv)
		if len(targets) > 1 {
			orig.conv.kind = Group // the agent had added others to her consult call
		}
		tx.emitHandOver(orig, cons, targets, data)
		orig.handedOff, cons.handedOff = true, true
		tx.endLeg(cons, ReasonTransferred, ReasonRemoteHungUp)
		tx.endLeg(orig, ReasonTransferred, ReasonRemoteHungUp)
		tx.repairPairs(orig.conv)
		tx.settle(nil)
		out = orig.view(false)
		return nil
	})
	return out, withOp("complete transfer", err)
}

// CancelTransfer ends the consult call of a consult transfer (the target
// is told the agent hung up) and resumes the customer's call, holding any
// other active call of the agent in the same step. The answer is the
// customer's call. Errors: call_not_found, invalid_state (no consult in
// progress).
func (s *Switchboard) CancelTransfer(ctx context.Context, p Principal, id string) (Call, error) {
	var out Call
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		orig, cons, err := consultPair(l)
		if err != nil {
			return err
		}
		data := TransferData{Step: StepCanceled, Agent: orig.party.id, CallID: cons.id}
		if t := others(cons); len(t) > 0 {
			data.Target = t[0].party.id
			for _, m := range t {
				tx.emit(m, EventTransferUpdated, TransferData{Step: StepCanceled, Agent: orig.party.id, Target: m.party.id})
			}
		}
		tx.emit(orig, EventTransferUpdated, data)
		data.CallID = orig.id
		tx.emit(cons, EventTransferUpdated, data)
		tx.endLeg(cons, ReasonHungUp, ReasonRemoteHungUp)
		for _, m := range slices.Clone(cons.conv.members) {
			// A group consult call (to a queue, or the agent added
			// someone) ends with her, as a 1:1 one does.
			tx.endLeg(m, peerReason(ReasonRemoteHungUp, m), ReasonRemoteHungUp)
		}
		if orig.state() != StateConnected {
			if err := tx.plan(orig, holdpolicy.Resume); err != nil {
				return err
			}
		}
		tx.settle(orig)
		out = orig.view(false)
		return nil
	})
	return out, withOp("cancel transfer", err)
}

// Merge joins the agent's call req.CallID into her call id: its others
// join id's call, which becomes a group call, and req.CallID ends
// (0/7016). The merged call is her active call afterwards (the rule holds:
// the call merged is gone). Errors: invalid_request (no callId, the call
// itself), call_not_found (either call), invalid_state (not live, a
// monitor leg, someone in both), not_supported_in_rooms, not_implemented
// (both calls are group calls other nodes run, one of them has another
// party of this node in it, or a group call another node runs would be
// the merged call's second). A call another node runs between its caller
// and her alone is merged here once this node took its anchor over; a
// group call another node runs with others in it, or that she joined
// there by its GUID, is joined to the merged call, which this node runs,
// by a bridge (peermerge.go).
func (s *Switchboard) Merge(ctx context.Context, p Principal, id string, req MergeRequest) (Call, error) {
	const op = "merge"
	switch {
	case req.CallID == "":
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "merge needs callId, the call to merge into this one"))
	case req.CallID == id:
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a call cannot be merged with itself"))
	}
	var out Call
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		b := s.legs[req.CallID]
		if b == nil || b.standIn || b.party != l.party {
			return errCallNotFound(req.CallID)
		}
		plan, err := planMerge(l, b)
		if err != nil {
			return err
		}
		if plan.far == l {
			err = tx.mergeInto(l, b, plan.bridge)
		} else {
			err = tx.merge(l, b, plan.bridge)
		}
		if err != nil {
			return err
		}
		for _, sx := range plan.mirrored {
			tx.anchorHere(sx[0], sx[1]) // last: it tells the far node (peermerge.go)
		}
		tx.settle(l)
		out = l.view(false)
		return nil
	})
	return out, withOp(op, err)
}

// mergePlan is how two of an agent's calls are merged across nodes.
type mergePlan struct {
	// mirrored: the caller's stand-in of a 1:1 call this node mirrors,
	// and the call, whose anchor this node takes over (peermerge.go).
	mirrored [][2]*leg
	// far is the call of the two that is a group call another node runs,
	// bridge its stand-in facing that node (farGroup); nil for none.
	far, bridge *leg
}

// planMerge checks that l and b may be merged and says how.
func planMerge(l, b *leg) (mergePlan, error) {
	var pl mergePlan
	for _, x := range []*leg{l, b} {
		switch {
		case x.phase != phaseLive:
			return pl, Errorf(CodeInvalidState, "call %s is %s: only live calls are merged", x.id, x.state())
		case x.monitor != "":
			return pl, Errorf(CodeInvalidState, "call %s is a monitor leg", x.id)
		case x.conv.kind == Room:
			return pl, Errorf(CodeNotSupportedInRooms, "call %s is a room: rooms are not merged", x.id)
		case bridged(x.conv):
			// Merged already with a group call another node runs: run here.
		case x.conv.joiner != nil || slices.ContainsFunc(x.conv.members, farAnchored):
			if fc := farCaller(x); fc != nil {
				pl.mirrored = append(pl.mirrored, [2]*leg{fc, x})
				continue
			}
			s := farGroup(x)
			if s == nil {
				return pl, Errorf(CodeNotImplemented, "call %s is a group call that another node of the cluster runs, with other parties of this node in it: merging it is not supported", x.id)
			}
			if pl.far != nil {
				return pl, Errorf(CodeNotImplemented, "calls %s and %s are both group calls that other nodes of the cluster run: merging them is not supported", l.id, b.id)
			}
			pl.far, pl.bridge = x, s
		}
	}
	if pl.far != nil {
		near := l
		if pl.far == l {
			near = b
		}
		if bridged(near.conv) || bridged(pl.far.conv) {
			return pl, Errorf(CodeNotImplemented, "call %s is merged with a group call another node of the cluster runs already: merging a second one is not supported", near.id)
		}
	} else if bridged(l.conv) && bridged(b.conv) {
		return pl, Errorf(CodeNotImplemented, "calls %s and %s are each merged with a group call another node of the cluster runs: merging them is not supported", l.id, b.id)
	}
	return pl, nil
}

// merge moves the others of b's call into l's, which becomes a group
// call, and ends b (0/7016); bridge, when b's call is a group call another
// node runs, is its stand-in facing that node, l's call's bridge from now
// on (peermerge.go).
func (tx *txn) merge(l, b, bridge *leg) error {
	moving := others(b)
	if err := inBoth(moving, l.conv); err != nil {
		return err
	}
	carried := b.conv.bridge
	b.conv.bridge = nil // it goes with the others
	tx.move(moving, l.conv)
	if l.conv.kind == OneToOne {
		l.conv.kind = Group
	}
	tx.emitHandOver(l, b, moving, TransferData{Step: StepMerged, Agent: l.party.id})
	b.handedOff = true
	tx.endLeg(b, ReasonMerged, ReasonRemoteHungUp)
	switch {
	case bridge != nil:
		tx.bridgeTo(l.conv, bridge)
	case carried != nil && carried.conv == l.conv:
		tx.bridgeTo(l.conv, carried) // b's call was merged with one before
	}
	return tx.resumeMerged(l, b)
}

// mergeInto merges b's call into l's when l's is a group call another
// node runs (bridge its stand-in facing that node): the merged call is
// b's conversation, which this node runs. l moves into it with the
// stand-in, the ghosts and those monitoring l, taking its serverCallId,
// and b ends (0/7016) as in any merge.
func (tx *txn) mergeInto(l, b, bridge *leg) error {
	c := b.conv
	moving := others(l)
	if err := inBoth(moving, c); err != nil {
		return err
	}
	stay := others(b)
	tx.move(slices.Clone(l.conv.members), c)
	if c.kind == OneToOne {
		c.kind = Group
	}
	tx.bridgeTo(c, bridge)
	data := TransferData{Step: StepMerged, Agent: l.party.id}
	for _, m := range append(stay, moving...) {
		tx.emit(m, EventTransferUpdated, data) // a stand-in's goes to its far node (emitAcross)
	}
	data.CallID, data.ServerCallID = b.id, c.id
	tx.emit(l, EventTransferUpdated, data)
	data.CallID, data.ServerCallID = l.id, ""
	tx.emit(b, EventTransferUpdated, data)
	b.handedOff = true
	tx.endLeg(b, ReasonMerged, ReasonRemoteHungUp)
	return tx.resumeMerged(l, b)
}

// inBoth refuses a merge that would show a party twice in c.
func inBoth(moving []*leg, c *conversation) error {
	for _, m := range moving {
		if m.hidden {
			continue // the agent's own stand-in in a group call another node runs
		}
		if slices.ContainsFunc(c.members, func(o *leg) bool { return o.party == m.party }) {
			return Errorf(CodeInvalidState, "%s is in both calls", m.party.id)
		}
	}
	return nil
}

// resumeMerged makes the merged call l the agent's active call once b
// merged into it.
func (tx *txn) resumeMerged(l, b *leg) error {
	if l.consult == b || l.consultOf == b {
		l.consult, l.consultOf = nil, nil
	}
	if l.state() != StateConnected {
		return tx.plan(l, holdpolicy.Resume)
	}
	return nil
}

// emitHandOver tells of moved, the members of from's call, handed over
// into to's call (a transfer's completion, a merge): each other member of
// to's call gets data, those who moved with the serverCallId they took;
// to and from get it with the other's call id.
func (tx *txn) emitHandOver(to, from *leg, moved []*leg, data TransferData) {
	for _, m := range others(to) {
		d := data
		if slices.Contains(moved, m) {
			d.ServerCallID = to.conv.id
		}
		tx.emit(m, EventTransferUpdated, d)
	}
	data.CallID = from.id
	tx.emit(to, EventTransferUpdated, data)
	data.CallID = to.id
	tx.emit(from, EventTransferUpdated, data)
}

// move takes the legs out of their conversation into c: they keep their
// call ids and take c's serverCallId (their old conversation's history
// still lists them).
func (tx *txn) move(legs []*leg, c *conversation) {
	tx.touch(c)
	for _, m := range legs {
		old := m.conv
		tx.touch(old)
		old.members = slices.DeleteFunc(old.members, func(o *leg) bool { return o == m })
		m.conv = c
		c.members = append(c.members, m)
		c.all = append(c.all, m)
	}
}
