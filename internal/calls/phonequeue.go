package calls

import (
	"context"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// PhoneQueueRequest is a call from the phone network to a number routed
// to a queue.
type PhoneQueueRequest struct {
	// Caller is the phone, as in PhoneCallRequest.
	Caller CallerInfo
	// Queue is the queue the number is routed to.
	Queue string
	// Line hears of every change of the phone's call.
	Line PhoneLine
}

// StartPhoneQueueCall answers a call from the phone network at once and
// puts it in a queue: the phone's call is Connected (its line is told so,
// which answers the INVITE with 200, as an ACD answers to play its queue
// music) alone in a group call of its own, and Config.Queues enters it
// into the queue's line, with the phone as who adds and removes the
// agents offered the call (as POST /api/calls {"queue"} does for a
// browser's caller, and a blind transfer to a queue for its customer).
// The call then ends as the phone hangs up (EndPhoneCall: abandoned while
// it waits) or as the queue ends it (max wait), or goes on with the agent
// who accepts it. The answer is the phone's call. Errors:
// invalid_phone_number, invalid_request, not_found (no queues, no such
// queue), unavailable, draining, and those of Queues.Enter (the phone's
// call is then ended with 503).
func (s *Switchboard) StartPhoneQueueCall(ctx context.Context, req PhoneQueueRequest) (Call, error) {
	const op = "start phone queue call"
	switch {
	case req.Caller.Identifier.Kind != KindPhoneNumber:
		return Call{}, withOp(op, Errorf(CodeInvalidPhoneNumber, "a call from the phone network comes from a phone number"))
	case req.Line == nil:
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a phone call needs its line"))
	case s.cfg.Queues == nil:
		return Call{}, withOp(op, Errorf(CodeNotFound, "no such queue %q: this switchboard runs no queues", req.Queue))
	}
	if err := s.cfg.Queues.Check(ctx, req.Queue); err != nil {
		return Call{}, withOp(op, err)
	}
	p := Principal{Identifier: req.Caller.Identifier, DisplayName: req.Caller.DisplayName, Role: RoleCaller}
	call, err := s.answerPhone(p, req.Line)
	if err != nil {
		return Call{}, withOp(op, err)
	}
	if err := s.cfg.Queues.Enter(ctx, req.Queue, p, call.ID); err != nil {
		s.log.Warn("phone queue call: entering the queue failed; ending the call", "queue", req.Queue, "call_id", call.ID, "err", err)
		_ = s.EndPhoneCall(context.WithoutCancel(ctx), call.ID, ReasonQueueUnavailable)
		return Call{}, withOp(op, err)
	}
	return call, nil
}

// ReasonQueueUnavailable ends a phone's call that was answered for a
// queue the call could not enter after all.
var ReasonQueueUnavailable = EndReason{Code: 503, SubCode: 0, Message: "the queue could not take the call"}

// answerPhone makes the phone's leg, Connected at once, alone in a group
// call of its own.
func (s *Switchboard) answerPhone(p Principal, line PhoneLine) (Call, error) {
	tx := s.begin(&p)
	defer tx.done()
	pt, err := tx.identify(p)
	if err != nil {
		return Call{}, err
	}
	if s.draining {
		return Call{}, errDraining
	}
	refresh(pt, p)
	c := &conversation{id: s.cfg.NewID(), kind: Group}
	l := tx.newLeg(pt, c, Outgoing, CallerInfo{Identifier: p.Identifier, DisplayName: pt.displayName}, phaseConnecting)
	l.line = line
	if err := tx.plan(l, holdpolicy.Join); err != nil {
		return Call{}, err
	}
	tx.goLive(l)
	tx.settle(l)
	return l.view(false), nil
}
