package calls

import (
	"context"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// A consult transfer to a queue, as Genesys and Flex agents know it: the
// agent's consult call waits in the queue as a caller would, and the
// queue's next agent is offered it (an incomingCall from the agent). The
// customer's call is held in the step that places the consult call (the
// single-active rule), so she hears the hold tone, never the agent nor
// the queue's agent. Once the queue's agent answered, the two talk; then
// CompleteTransfer moves the queue's agent into the customer's call and
// the agent leaves (0/7015), or CancelTransfer ends the consult call (and
// its offer) and resumes the customer's. Completing before anyone
// answered is invalid_state. The queue counts the consult call as one of
// its calls (waiting, answered or abandoned).
//
// The consult call is a group call of the agent's alone until the queue
// adds its agent: it is Connected from the start, so she may speak into
// it while she waits and hears what the queue plays to a waiting caller.
// If the queue gives up on it (its max wait, no agent), the consult call
// ends and the customer's stays held, as after any ended consult, until
// the agent resumes it.

// consultQueue places the agent's consult call to the queue req.Queue,
// holding the customer's call id in the same step. The answer is the
// consult call. Errors: the errors of transferable, invalid_state (no
// customer), draining, and those of Queues.Enter (the consult then ends
// and the customer's call is resumed).
func (s *Switchboard) consultQueue(ctx context.Context, p Principal, id string, req TransferRequest) (Call, error) {
	const op = "transfer"
	var (
		out   Call
		agent Principal
	)
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		if s.draining {
			return errDraining
		}
		if err := transferable(l); err != nil {
			return err
		}
		if len(others(l)) == 0 {
			return Errorf(CodeInvalidState, "call %s has no customer to transfer", l.id)
		}
		c := &conversation{id: tx.s.cfg.NewID(), kind: Group}
		self := CallerInfo{Identifier: l.party.ident, DisplayName: l.party.displayName}
		cons := tx.newLeg(l.party, c, Outgoing, self, phaseConnecting)
		if err := tx.plan(cons, holdpolicy.Join); err != nil {
			return err
		}
		tx.goLive(cons)
		l.consult, cons.consultOf = cons, l
		data := TransferData{Step: StepConsult, Agent: l.party.id, Queue: req.Queue, CallID: cons.id}
		tx.emit(l, EventTransferUpdated, data)
		data.CallID = l.id
		tx.emit(cons, EventTransferUpdated, data)
		tx.settle(cons)
		agent = Principal{Identifier: l.party.ident, DisplayName: l.party.displayName, Role: p.Role}
		out = cons.view(false)
		return nil
	})
	if err != nil {
		return Call{}, withOp(op, err)
	}
	if err := s.cfg.Queues.Enter(ctx, req.Queue, agent, out.ID); err != nil {
		s.log.Warn("consult transfer to a queue: entering it failed; ending the consult call", "queue", req.Queue, "call_id", out.ID, "err", err)
		if _, cerr := s.CancelTransfer(context.WithoutCancel(ctx), p, out.ID); cerr != nil {
			s.log.Warn("consult transfer to a queue: cancel the consult", "call_id", out.ID, "err", cerr)
		}
		return Call{}, withOp(op, err)
	}
	return out, nil
}
