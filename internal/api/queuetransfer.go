package api

import (
	"context"
	"sync/atomic"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// QueueTransfers is calls.Queues over a queue engine: a blind transfer to
// a queue puts the customer's call into its line, as POST /api/calls
// {"queue"} does a caller's. The switchboard is made before the engine
// (which acts on it), so it is given to calls.Config empty and Bind
// completes it; until then a queue transfer is not_found.
type QueueTransfers struct {
	ports atomic.Pointer[queueTransferPorts]
}

type queueTransferPorts struct {
	engine *queue.Engine
	sw     *QueueSwitch
}

// Bind gives t the engine and the QueueSwitch its offers go through.
func (t *QueueTransfers) Bind(engine *queue.Engine, sw *QueueSwitch) {
	t.ports.Store(&queueTransferPorts{engine: engine, sw: sw})
}

// Check implements calls.Queues.
func (t *QueueTransfers) Check(ctx context.Context, name string) error {
	p := t.ports.Load()
	if p == nil {
		return calls.Errorf(calls.CodeNotFound, "no such queue %q: this switchboard runs no queues", name)
	}
	if err := queue.ValidateName(name); err != nil {
		return err
	}
	return p.engine.Check(ctx, name)
}

// Enter implements calls.Queues.
func (t *QueueTransfers) Enter(ctx context.Context, name string, customer calls.Principal, callID string) error {
	p := t.ports.Load()
	if p == nil {
		return calls.Errorf(calls.CodeNotFound, "no such queue %q: this switchboard runs no queues", name)
	}
	p.sw.remember(callID, customer)
	if _, err := p.engine.Enter(ctx, name, callID, customer.Identifier.RawID(), nil); err != nil {
		p.sw.forget(callID)
		return err
	}
	return nil
}
