package api

import (
	"log/slog"
	"strconv"
	"sync"

	"github.com/switchboard/switchboard/internal/calls"
)

// Hub delivers events to websocket clients: each identity's events to its
// own connections, and supervised events to every supervisor. It
// implements calls.Publisher: Publish encodes an event once and never
// blocks; a client whose queue is full (in events or in bytes) is closed
// with 1013, and reconnects to a fresh snapshot. It also counts the open
// connections against HubLimits.
type Hub struct {
	log       *slog.Logger
	queueSize int

	mu          sync.RWMutex
	byAgent     map[string]map[*client]struct{}
	supervisors map[*client]struct{}
	closed      bool
	limits      HubLimits
	open        map[string]int // admitted connections by identity
	openTotal   int
}

var _ calls.Publisher = (*Hub)(nil)

// DefaultQueueSize is how many events a client may fall behind by.
const DefaultQueueSize = 1024

// NewHub returns a Hub; queueSize bounds each client's queue (0: default).
func NewHub(log *slog.Logger, queueSize int) *Hub {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	if log == nil {
		log = slog.Default()
	}
	return &Hub{
		log: log, queueSize: queueSize, byAgent: map[string]map[*client]struct{}{}, supervisors: map[*client]struct{}{},
		limits: HubLimits{QueueBytes: DefaultQueueBytes}, open: map[string]int{},
	}
}

// encodeEvent encodes ev as it goes on the wire, without its seq, which
// each connection adds. It runs once per event: the result is shared by
// every connection that gets it and never changed.
func encodeEvent(ev calls.Event) ([]byte, error) {
	buf := getBuf()
	defer putBuf(buf)
	b, err := appendEvent(*buf, &ev)
	*buf = b
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}

// Publish sends ev to the connections that may see it. It encodes the
// event once, and not at all when nobody may see it.
func (h *Hub) Publish(ev calls.Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	own := h.byAgent[ev.AgentID]
	if len(own) == 0 && (!ev.Supervised || len(h.supervisors) == 0) {
		return
	}
	body, err := encodeEvent(ev)
	if err != nil {
		h.log.Error("hub: encode event", "type", ev.Type, "call_id", ev.CallID, "err", err)
		return
	}
	for c := range own {
		c.enqueue(body)
	}
	if ev.Supervised {
		for c := range h.supervisors {
			if c.agentID != ev.AgentID {
				c.enqueue(body)
			}
		}
	}
}

// add subscribes c; it reports false once the hub is closed.
func (h *Hub) add(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	set := h.byAgent[c.agentID]
	if set == nil {
		set = map[*client]struct{}{}
		h.byAgent[c.agentID] = set
	}
	set[c] = struct{}{}
	if c.supervisor {
		h.supervisors[c] = struct{}{}
	}
	return true
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.byAgent[c.agentID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.byAgent, c.agentID)
		}
	}
	delete(h.supervisors, c)
}

// closeToken ends every connection that uses the token id, telling it the
// token is no longer valid.
func (h *Hub) closeToken(tokenID string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.byAgent {
		for c := range set {
			if c.tokenID == tokenID {
				c.expire()
			}
		}
	}
}

// Close stops taking clients and closes every connection after what is
// queued for it was written (bounded by each client's write deadline).
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	var all []*client
	for _, set := range h.byAgent {
		for c := range set {
			all = append(all, c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.finish(closeGoingAway, "the switchboard is shutting down")
	}
	for _, c := range all {
		<-c.stopped
	}
}

// Clients counts the open connections that take events: one being closed
// is not counted.
func (h *Hub) Clients() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, set := range h.byAgent {
		for c := range set {
			if !c.isClosing() {
				n++
			}
		}
	}
	return n
}

// frame prepends a connection's seq to an encoded event.
func frame(seq uint64, body []byte) []byte {
	buf := make([]byte, 0, len(body)+24)
	buf = appendSeq(buf, seq, len(body) > 2)
	return append(buf, body[1:]...)
}

// appendSeq appends the start of a framed event, {"seq":N and, when the
// event has fields (more follows), a comma; the event's body follows
// without its opening brace.
func appendSeq(buf []byte, seq uint64, more bool) []byte {
	buf = append(buf, `{"seq":`...)
	buf = strconv.AppendUint(buf, seq, 10)
	if more {
		buf = append(buf, ',')
	}
	return buf
}
