package calls

import (
	"context"
	"fmt"
)

// transferToQueue is a blind transfer of the agent's 1:1 call id to the
// queue req.Queue: the agent leaves (0/7015, as any blind transfer), the
// customer stays Connected alone in her call, which becomes a group call,
// and Config.Queues puts it in the queue's line. Mode consult is
// consultQueue (queueconsult.go). Errors: not_found (no queues, no such
// queue), the errors of transferable, not_implemented (the customer on
// another node, her stand-in's line no PeerAsker), those of Queues.Enter
// (the customer's call is then ended), and across nodes her node's
// refusal (queueRefused: not_found, invalid_state, draining, unavailable;
// the call unchanged).
//
// Across the nodes of a cluster (the customer's leg on another node), the
// customer's node queues her: queues work so, the engine of the node that
// holds a caller's leg offers her call. This node first asks it, over the
// line of the customer's stand-in, whether it can (PeerChange.QueueCheck,
// peerQueueCheck there) and waits for the answer: a refusal (no such
// queue there, no queues, the customer no longer in the call, draining,
// the far node out of reach) is the request's error, and nothing
// changed. Once it agreed, this node tells it to queue her
// (PeerChange.Queue, peerQueue there), then ends the agent's call
// (0/7015) and with it its conversation here; the far node, which
// applies the line's messages in order, has made the customer's call
// hers alone by then, so the end that follows finds the pair over. Only
// when her node's queue fails her after it agreed (Queues.Enter: its
// store failed in between) does it end her call and log why: the answer
// did not wait for that.
func (s *Switchboard) transferToQueue(ctx context.Context, p Principal, id string, req TransferRequest) (Call, error) {
	const op = "transfer"
	switch {
	case s.cfg.Queues == nil:
		return Call{}, withOp(op, Errorf(CodeNotFound, "no such queue %q: this switchboard has no queues", req.Queue))
	case req.AlternateCallerID != nil:
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "alternateCallerId goes with a phone-number target, not a queue"))
	}
	if err := s.cfg.Queues.Check(ctx, req.Queue); err != nil {
		return Call{}, withOp(op, err)
	}
	if req.Mode == TransferConsult {
		return s.consultQueue(ctx, p, id, req)
	}
	var (
		out      Call
		customer Principal
		custCall string
		across   *leg // the customer's stand-in: she is on another node
	)
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		if s.draining {
			return errDraining
		}
		if err := transferable(l); err != nil {
			return err
		}
		if crossNode(l) {
			var err error
			across, err = customerStandIn(l)
			return err
		}
		cs := others(l)
		if len(cs) != 1 || cs[0].party.bot || cs[0].phase != phaseLive {
			return Errorf(CodeInvalidState, "call %s has no customer to queue", l.id)
		}
		c := cs[0]
		customer, custCall = tx.leaveToQueue(l, c, req.Queue, true)
		out = l.view(false)
		return nil
	})
	if err != nil {
		return Call{}, withOp(op, err)
	}
	if across != nil {
		return s.queueAcross(ctx, p, id, req.Queue, across)
	}
	if err := s.cfg.Queues.Enter(ctx, req.Queue, customer, custCall); err != nil {
		s.log.Warn("transfer to a queue: entering it failed; ending the customer's call", "queue", req.Queue, "call_id", custCall, "err", err)
		if _, herr := s.HangUp(context.WithoutCancel(ctx), customer, custCall, false); herr != nil {
			s.log.Warn("transfer to a queue: end the customer's call", "call_id", custCall, "err", herr)
		}
		return Call{}, withOp(op, err)
	}
	return out, nil
}

// customerStandIn is the customer of the agent's 1:1 call l when she is
// on another node: her stand-in here, whose line can ask her node. Errors:
// invalid_state (no live customer), not_implemented (her node out of
// reach from the line).
func customerStandIn(l *leg) (*leg, error) {
	cs := others(l)
	if len(cs) != 1 || !cs[0].standIn || cs[0].phase != phaseLive {
		return nil, Errorf(CodeInvalidState, "call %s has no customer to queue", l.id)
	}
	if _, ok := cs[0].line.(PeerAsker); !ok {
		return nil, Errorf(CodeNotImplemented, "the customer of call %s is on another node, out of reach: she is not queued from here", l.id)
	}
	return cs[0], nil
}

// queueAcross hands the customer of the agent's 1:1 call id, on another
// node behind her stand-in c, to the queue name. Her node is asked first
// (PeerChange.QueueCheck), the live state let go meanwhile: its refusal
// is the answer (queueRefused), the call unchanged. Once it agreed, the
// call is looked at again (the agent may have held it, the customer hung
// up meanwhile: invalid_state), her node is told to queue her, and the
// agent's call ends (0/7015), ending this node's conversation, the
// stand-in too. The answer is the agent's call, ended.
func (s *Switchboard) queueAcross(ctx context.Context, p Principal, id, name string, c *leg) (Call, error) {
	const op = "transfer"
	if err := c.line.(PeerAsker).Ask(ctx, PeerChange{QueueCheck: name}); err != nil {
		return Call{}, withOp(op, queueRefused(name, err))
	}
	var out Call
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		if s.draining {
			return errDraining
		}
		if err := transferable(l); err != nil {
			return err
		}
		if cs := others(l); len(cs) != 1 || cs[0] != c || c.phase != phaseLive {
			return Errorf(CodeInvalidState, "call %s changed while the customer's node was asked: it has no customer to queue", l.id)
		}
		tx.emit(l, EventTransferUpdated, TransferData{Step: StepBlind, Agent: l.party.id, Queue: name})
		c.line.(PeerSender).Send(PeerChange{Queue: name})
		tx.endLeg(l, ReasonTransferred, ReasonRemoteHungUp)
		out = l.view(false)
		return nil
	})
	if err != nil {
		return Call{}, withOp(op, err)
	}
	return out, nil
}

// queueRefused is the agent's error when the customer's node refused to
// queue her: its code (not_found: no such queue there; invalid_state: the
// customer is no longer in the call; draining), with what it said;
// unavailable when it did not answer or failed (its internal error is
// its own).
func queueRefused(name string, err error) error {
	code := ErrorCode(err)
	switch code {
	case CodeCallNotFound:
		code = CodeInvalidState // her call there ended meanwhile
	case CodeInternal:
		code = CodeUnavailable
	}
	return &Error{Code: code, Message: fmt.Sprintf("the customer's node did not queue her in %q: %s", name, ErrorMessage(err)), Err: err}
}

// peerQueue is, on the customer's node, the blind transfer to the queue
// name that the agent's node asked over the line of the stand-in id (the
// agent's here, facing the customer in a 1:1 call): the stand-in leaves as
// the agent did (0/7015), the customer stays Connected alone in her call,
// a group call from then on, and enters the queue here, whose engine
// offers it; the queue acts as the customer on it, as on one node. When
// she cannot be queued here (no queues, no customer of this node's facing
// the stand-in), the call ends as the agent left it; when the queue
// refuses her (Queues.Enter), her call ends. Errors: call_not_found.
func (s *Switchboard) peerQueue(ctx context.Context, id, name string) error {
	const op = "peer transfer to a queue"
	var (
		customer Principal
		custCall string
	)
	err := s.onStandIn(op, id, func(tx *txn, l *leg) error {
		if l.phase != phaseLive {
			return errCallNotFound(id) // ended here already: the far node hears it
		}
		c := queueableCustomer(l)
		if s.cfg.Queues == nil || c == nil {
			s.log.Warn("transfer to a queue from another node: no customer of this node to queue; ending the call",
				"queue", name, "call_id", id)
			r := ReasonTransferred
			tx.endStandIn(l, ReasonRemoteHungUp, &r)
			return nil
		}
		customer, custCall = tx.leaveToQueue(l, c, name, false)
		return nil
	})
	if err != nil || custCall == "" {
		return withOp(op, err)
	}
	if err := s.cfg.Queues.Enter(ctx, name, customer, custCall); err != nil {
		s.log.Warn("transfer to a queue from another node: entering it failed; ending the customer's call",
			"queue", name, "call_id", custCall, "err", err)
		if _, herr := s.HangUp(context.WithoutCancel(ctx), customer, custCall, false); herr != nil {
			s.log.Warn("transfer to a queue from another node: end the customer's call", "call_id", custCall, "err", herr)
		}
	}
	return nil
}

// peerQueueCheck answers, on the customer's node, whether the stand-in id
// (the agent's here, facing the customer in a 1:1 call) can hand her to
// the queue name (PeerChange.QueueCheck): it changes nothing, and the
// agent's node, which asked, answers the agent with its refusal. Errors:
// not_found (no queues here, no such queue), invalid_state (no customer
// of this node's facing the stand-in), draining, call_not_found, and
// Queues.Check's.
func (s *Switchboard) peerQueueCheck(ctx context.Context, id, name string) error {
	const op = "peer queue check"
	if s.cfg.Queues == nil {
		return withOp(op, Errorf(CodeNotFound, "no such queue %q: the customer's node runs no queues", name))
	}
	if err := s.cfg.Queues.Check(ctx, name); err != nil {
		return withOp(op, err)
	}
	return s.onStandIn(op, id, func(tx *txn, l *leg) error {
		switch {
		case s.draining:
			return errDraining
		case l.phase != phaseLive:
			return errCallNotFound(id)
		case queueableCustomer(l) == nil:
			return Errorf(CodeInvalidState, "the call has no customer of this node to queue")
		}
		return nil
	})
}

// queueableCustomer is the customer facing the stand-in l in a live 1:1
// call of this node's, whom a blind transfer from the far node can
// queue here; nil when there is none.
func queueableCustomer(l *leg) *leg {
	cs := others(l)
	if l.conv.kind != OneToOne || len(cs) != 1 || cs[0].standIn || cs[0].ghost || cs[0].party.bot || cs[0].phase != phaseLive {
		return nil
	}
	return cs[0]
}

// leaveToQueue hands customer c of the agent's leg l over to the queue
// (a blind transfer): c is told (and l, when tellAgent: not a stand-in),
// her call becomes a group call she waits in alone, and l ends (0/7015).
// It answers her as the queue's caller and her call's id, for
// Queues.Enter once the live state is let go.
func (tx *txn) leaveToQueue(l, c *leg, queue string, tellAgent bool) (Principal, string) {
	data := TransferData{Step: StepBlind, Agent: l.party.id, Queue: queue}
	tx.emit(c, EventTransferUpdated, data)
	if tellAgent {
		tx.emit(l, EventTransferUpdated, data)
	}
	tx.touch(l.conv)
	l.conv.kind = Group // she waits alone; the queue adds its agent
	l.handedOff = true
	tx.endLeg(l, ReasonTransferred, ReasonRemoteHungUp)
	role := c.party.role
	if !role.Valid() {
		role = RoleCaller
	}
	return Principal{Identifier: c.party.ident, DisplayName: c.displayName(), Role: role}, c.id
}
