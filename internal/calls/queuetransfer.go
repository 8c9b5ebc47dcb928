package calls

import "context"

// transferToQueue is a blind transfer of the agent's 1:1 call id to the
// queue req.Queue: the agent leaves (0/7015, as any blind transfer), the
// customer stays Connected alone in her call, which becomes a group call,
// and Config.Queues puts it in the queue's line. Mode consult is
// consultQueue (queueconsult.go). Errors: not_found (no queues, no such
// queue), the errors of transferable, not_implemented (the customer on
// another node, her stand-in's line no PeerSender), and those of
// Queues.Enter (the customer's call is then ended).
//
// Across the nodes of a cluster (the customer's leg on another node), the
// customer's node queues her: queues work so, the engine of the node that
// holds a caller's leg offers her call. This node asks it over the line of
// the customer's stand-in (PeerChange.Queue, peerQueue there), then ends
// the agent's call (0/7015) and with it its conversation here; the far
// node, which applies the line's messages in order, has made the
// customer's call hers alone by then, so the end that follows finds the
// pair over. The answer cannot wait for the far node: when it cannot
// queue her after all (its queue refuses the call), it ends her call and
// logs why.
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
			out, err = tx.queueAcross(l, req.Queue)
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
	if custCall == "" {
		return out, nil // queued by her node (queueAcross)
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

// queueAcross hands the customer of l, the agent's 1:1 call with a party
// of another node (her stand-in here), to the queue name: her node is
// asked to queue her, and l ends (0/7015), ending this node's
// conversation, the stand-in too. The answer is l, ended.
func (tx *txn) queueAcross(l *leg, name string) (Call, error) {
	cs := others(l)
	if len(cs) != 1 || !cs[0].standIn || cs[0].phase != phaseLive {
		return Call{}, Errorf(CodeInvalidState, "call %s has no customer to queue", l.id)
	}
	ps, ok := cs[0].line.(PeerSender)
	if !ok {
		return Call{}, Errorf(CodeNotImplemented, "the customer of call %s is on another node, out of reach: she is not queued from here", l.id)
	}
	tx.emit(l, EventTransferUpdated, TransferData{Step: StepBlind, Agent: l.party.id, Queue: name})
	ps.Send(PeerChange{Queue: name})
	tx.endLeg(l, ReasonTransferred, ReasonRemoteHungUp)
	return l.view(false), nil
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
		cs := others(l)
		if s.cfg.Queues == nil || l.conv.kind != OneToOne || len(cs) != 1 || cs[0].standIn || cs[0].ghost ||
			cs[0].party.bot || cs[0].phase != phaseLive {
			s.log.Warn("transfer to a queue from another node: no customer of this node to queue; ending the call",
				"queue", name, "call_id", id)
			r := ReasonTransferred
			tx.endStandIn(l, ReasonRemoteHungUp, &r)
			return nil
		}
		customer, custCall = tx.leaveToQueue(l, cs[0], name, false)
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
