package calls

import (
	"context"
	"time"
)

// CallQueue says that a call went through a queue: the waiting caller's
// call entered it (also by overflow or a transfer to it), or the agent's
// own call answered its offer.
type CallQueue struct {
	CallID string
	Queue  string
	At     time.Time
}

// CallQueueLog keeps the queues calls went through, with the history. All
// stores implement it and pass one suite.
type CallQueueLog interface {
	// PutCallQueue keeps that the call went through the queue; putting
	// the same pair again changes nothing. History then finds the call
	// by CallFilter.Queue. Errors: CodeUnavailable (a closed or
	// unreachable store), the context's error wrapped.
	PutCallQueue(ctx context.Context, q CallQueue) error
}

// RecordCallQueue keeps that the call went through the queue (the queue
// engine tells it, see queue.WithStatus), at the switchboard's time.
// Errors: CodeNotImplemented when the store keeps no queues, and
// PutCallQueue's.
func (s *Switchboard) RecordCallQueue(ctx context.Context, callID, queue string) error {
	const op = "record call queue"
	l, ok := s.cfg.Store.(CallQueueLog)
	if !ok {
		return withOp(op, Errorf(CodeNotImplemented, "this store keeps no queues of calls"))
	}
	if callID == "" || queue == "" {
		return withOp(op, Errorf(CodeInvalidRequest, "callId and queue are required"))
	}
	if err := l.PutCallQueue(ctx, CallQueue{CallID: callID, Queue: queue, At: s.cfg.Clock.Now()}); err != nil {
		return withOp(op, err)
	}
	return nil
}
