package api

import (
	"github.com/switchboard/switchboard/internal/calls"
)

// HubLimits bound the event connections a Hub takes and what each may
// hold.
type HubLimits struct {
	// PerIdentity is how many connections one identity may hold open;
	// past it the upgrade is refused with 429 too_many_connections
	// (0: no cap).
	PerIdentity int
	// Total is how many connections may be open in all; past it the
	// upgrade is refused with 503 unavailable (0: no cap).
	Total int
	// QueueBytes is how many bytes of events a connection may fall
	// behind by before it is closed with 1013 (0: DefaultQueueBytes). One
	// event larger than it (a big snapshot) still goes to an empty queue.
	QueueBytes int
}

// DefaultQueueBytes is how many bytes of events a client may fall behind
// by.
const DefaultQueueBytes = 256 << 10

// codeTooManyConnections refuses an event connection past the identity's
// cap.
const codeTooManyConnections calls.Code = "too_many_connections"

// SetLimits sets the hub's limits; call it before the hub takes clients.
func (h *Hub) SetLimits(l HubLimits) {
	if l.QueueBytes <= 0 {
		l.QueueBytes = DefaultQueueBytes
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.limits = l
}

// admit counts a new connection of the identity against the caps before
// its upgrade; release uncounts it once it has ended.
func (h *Hub) admit(agentID string) (release func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.limits
	switch {
	case l.PerIdentity > 0 && h.open[agentID] >= l.PerIdentity:
		return nil, calls.Errorf(codeTooManyConnections, "%s already holds %d event connections, the most one identity may", agentID, l.PerIdentity)
	case l.Total > 0 && h.openTotal >= l.Total:
		return nil, calls.Errorf(calls.CodeUnavailable, "the switchboard holds %d event connections, its most: try again later", l.Total)
	}
	h.open[agentID]++
	h.openTotal++
	released := false
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if released {
			return
		}
		released = true
		h.openTotal--
		if h.open[agentID]--; h.open[agentID] <= 0 {
			delete(h.open, agentID)
		}
	}, nil
}

// queueBytes is the byte bound of a client's queue.
func (h *Hub) queueBytes() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.limits.QueueBytes
}
