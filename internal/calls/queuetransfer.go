package calls

import "context"

// transferToQueue is a blind transfer of the agent's 1:1 call id to the
// queue req.Queue: the agent leaves (0/7015, as any blind transfer), the
// customer stays Connected alone in her call, which becomes a group call,
// and Config.Queues puts it in the queue's line. Mode consult is
// consultQueue (queueconsult.go). Errors: not_found (no queues, no such
// queue), not_implemented (the customer on another node), the errors of
// transferable, and those of Queues.Enter (the customer's call is then
// ended).
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
			return Errorf(CodeNotImplemented, "the customer of call %s is on another node: transferring her to a queue across nodes is not supported yet", l.id)
		}
		cs := others(l)
		if len(cs) != 1 || cs[0].party.bot || cs[0].phase != phaseLive {
			return Errorf(CodeInvalidState, "call %s has no customer to queue", l.id)
		}
		c := cs[0]
		data := TransferData{Step: StepBlind, Agent: l.party.id, Queue: req.Queue}
		tx.emit(c, EventTransferUpdated, data)
		tx.emit(l, EventTransferUpdated, data)
		tx.touch(l.conv)
		l.conv.kind = Group // she waits alone; the queue adds its agent
		l.handedOff = true
		tx.endLeg(l, ReasonTransferred, ReasonRemoteHungUp)
		role := c.party.role
		if !role.Valid() {
			role = RoleCaller
		}
		customer = Principal{Identifier: c.party.ident, DisplayName: c.displayName(), Role: role}
		custCall = c.id
		out = l.view(false)
		return nil
	})
	if err != nil {
		return Call{}, withOp(op, err)
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
