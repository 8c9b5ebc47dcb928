package api

import (
	"sync/atomic"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// QueueWake is a calls.Publisher that hands every event on and tells the
// queue engine of the events that may move a queue call on. An event on
// a call (it ended, a participant came, went, accepted or declined) goes
// to queue.Engine.Changed, which marks the call for the next step and
// wakes the engine only when it is the caller's call of one of its waiting
// or answered queue calls; this is how the engine learns of a caller who
// hangs up while waiting without asking after every call (its
// EngineConfig.Sweep). A call's end or an agent's status change (she may
// be free: her own call ended, she became Available, a wrap-up ended)
// wakes it too, naming her (queue.Engine.WakeFor, a no-op while no call
// waits), so that an engine with AgentWakes looks again at her alone. Without
// it a freed agent waits for the engine's next tick. Wakes are coalesced
// by the engine and never block, as Publish must not.
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
	e := w.engine.Load()
	if e == nil {
		return
	}
	switch ev.Type {
	case calls.EventParticipantStateChanged, calls.EventRemoteParticipantsUpdated:
		if ev.CallID != "" {
			e.Changed(ev.CallID)
		}
	case calls.EventCallEnded:
		if ev.CallID == "" || !e.Changed(ev.CallID) {
			e.WakeFor(ev.AgentID) // her call ended: she may be free
		}
	case calls.EventAgentStatusChanged:
		e.WakeFor(ev.AgentID)
	}
}
