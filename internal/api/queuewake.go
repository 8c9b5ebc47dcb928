package api

import (
	"sync/atomic"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// QueueWake is a calls.Publisher that hands every event on and wakes the
// queue engine (queue.Engine.Wake) on the events after which an offer may
// be due at once: a call ended (an agent hung up her queue call, or
// another call of hers), a participant's state changed (an offer was
// accepted or declined), the roster changed, an agent's status changed
// (she became Available, a wrap-up ended). Without it a freed agent waits
// for the engine's next tick. Wakes are coalesced by the engine and never
// block, as Publish must not.
//
// On a cluster it also tells the queue board (BindBoard) whose state an
// event may have changed, so that the other nodes see it.
type QueueWake struct {
	next   calls.Publisher
	engine atomic.Pointer[queue.Engine]
	board  atomic.Pointer[queue.Board]
}

// BindBoard sets the board to touch with each event's identity; nil
// stops it.
func (w *QueueWake) BindBoard(b *queue.Board) { w.board.Store(b) }

// NewQueueWake answers a QueueWake handing events on to next; Bind gives
// it the engine once the queues run (until then it only hands on).
func NewQueueWake(next calls.Publisher) *QueueWake {
	return &QueueWake{next: next}
}

// Bind sets the engine to wake; nil stops waking.
func (w *QueueWake) Bind(e *queue.Engine) { w.engine.Store(e) }

// Publish implements calls.Publisher.
func (w *QueueWake) Publish(ev calls.Event) {
	w.next.Publish(ev)
	if b := w.board.Load(); b != nil && ev.AgentID != "" {
		b.Touch(ev.AgentID)
	}
	switch ev.Type {
	case calls.EventCallEnded, calls.EventParticipantStateChanged,
		calls.EventRemoteParticipantsUpdated, calls.EventAgentStatusChanged:
		if e := w.engine.Load(); e != nil {
			e.Wake()
		}
	}
}
