package api

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"

	"github.com/switchboard/switchboard/internal/calls"
)

// Hub delivers events to websocket clients: each identity's events to its
// own connections, and supervised events to every supervisor. It
// implements calls.Publisher: Publish encodes an event once and never
// blocks; a client whose queue is full (in events or in bytes) is closed
// with 1013, and reconnects. It also counts the open connections against
// HubLimits.
//
// Every event goes to streams: its identity's (AgentStream) and, when
// supervised, the one all supervisors share (SupervisorStream). An
// EventLog gives each event its seq in the stream and holds the recent
// ones, so that a client that reconnects with the last seq it saw is sent
// what it missed (see subscribe). An agent's connection follows its
// identity's stream, a supervisor's the supervisors' stream.
type Hub struct {
	log       *slog.Logger
	queueSize int
	events    EventLog
	relay     Relay    // nil: events stay on this node
	seqRelay  SeqRelay // relay, when it takes seqs
	// supervised is set when the cluster numbers the supervisors' stream
	// (StartSupervised).
	supervised supervised
	// locks serialize each stream's appends with the subscribes to it, so
	// that a client subscribing gets every event exactly once: from the
	// log or live. Streams share them by a hash of their names.
	locks [streamLocks]sync.Mutex

	mu        sync.RWMutex
	subs      map[string]map[*client]struct{} // by stream
	closed    bool
	limits    HubLimits
	open      map[string]int // admitted connections by identity
	openTotal int
	followed  map[string]*remoteFollow // identities another node owns that connections here follow (FollowRemote)
}

var _ calls.Publisher = (*Hub)(nil)

// DefaultQueueSize is how many events a client may fall behind by.
const DefaultQueueSize = 1024

const streamLocks = 64

// NewHub returns a Hub; queueSize bounds each client's queue (0: default).
// It keeps events in a MemoryLog with DefaultRetention until SetEventLog.
func NewHub(log *slog.Logger, queueSize int) *Hub {
	if queueSize <= 0 {
		queueSize = DefaultQueueSize
	}
	if log == nil {
		log = slog.Default()
	}
	return &Hub{
		log: log, queueSize: queueSize, events: NewMemoryLog(DefaultRetention, nil),
		subs:   map[string]map[*client]struct{}{},
		limits: HubLimits{QueueBytes: DefaultQueueBytes}, open: map[string]int{},
	}
}

// SetEventLog sets where the hub keeps recent events; call it before the
// hub takes events.
func (h *Hub) SetEventLog(l EventLog) { h.events = l }

// Relay carries this node's events to the other nodes of a cluster.
type Relay interface {
	// Relay takes an encoded event of identity (Publish's encoding,
	// without a seq), supervised when supervisors see it. It must not
	// block: Publish runs under the switchboard's lock.
	Relay(identity string, supervised bool, body []byte)
}

// SeqRelay is a Relay that also carries each event's seq in its
// identity's stream here, so that the other nodes number the identity's
// events as this node does (a console moves between nodes with its last
// seq: RemoteLog). The hub hands the identity's events to RelaySeq when
// its Relay has it, under the stream's lock, so in the order of their
// seqs; RelaySeq must not block either.
type SeqRelay interface {
	Relay
	RelaySeq(identity string, seq uint64, supervised bool, body []byte)
}

// SetRelay sets where the hub hands every event it publishes, for other
// nodes; call it before the hub takes events.
func (h *Hub) SetRelay(r Relay) {
	h.relay = r
	h.seqRelay, _ = r.(SeqRelay)
}

// DeliverRemote delivers an event another node published (see Relay), seq
// being its seq in the identity's stream there: to this node's supervisors
// when it is supervised, and to the identity's remote stream with that seq
// while a connection here follows it (FollowRemote); an event with no seq
// (0) was not in the identity's stream there and is not in it here.
func (h *Hub) DeliverRemote(identity string, seq uint64, supervised bool, body []byte) {
	if supervised {
		h.deliver(SupervisorStream, body)
	}
	h.deliverRemote(identity, seq, body)
}

// LostRemote closes the supervisors' connections, and those following
// another node's identity, with 1013: another node's events were lost on
// their way here, and they start over from a snapshot.
func (h *Hub) LostRemote() {
	h.closeStream(SupervisorStream, "events of another node were lost: reconnect")
	h.mu.RLock()
	var remote []string
	for id := range h.followed {
		remote = append(remote, remoteStream(id))
	}
	h.mu.RUnlock()
	for _, stream := range remote {
		h.closeStream(stream, "events of another node were lost: reconnect")
	}
}

// encodeEvent encodes ev as it goes on the wire, without its seq, which
// each stream adds. It runs once per event: the result is shared by every
// stream and connection that gets it and never changed.
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

// Publish appends ev to its streams and sends it to their connections. It
// encodes the event once.
func (h *Hub) Publish(ev calls.Event) {
	body, err := encodeEvent(ev)
	if err != nil {
		h.log.Error("hub: encode event", "type", ev.Type, "call_id", ev.CallID, "err", err)
		return
	}
	h.deliverAgent(ev.AgentID, ev.Supervised, body)
	if ev.Supervised && !h.clusterSupervised() { // else it comes back numbered (DeliverSupervised)
		h.deliver(SupervisorStream, body)
	}
}

// deliverAgent delivers body to identity's stream and hands it to the
// relay, with its seq there when the relay takes seqs (SeqRelay), under
// the stream's lock, so that the relay takes the identity's events in the
// order of their seqs.
func (h *Hub) deliverAgent(identity string, supervised bool, body []byte) {
	stream := AgentStream(identity)
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	seq := h.deliverLocked(stream, body)
	switch {
	case h.seqRelay != nil:
		h.seqRelay.RelaySeq(identity, seq, supervised, body)
	case h.relay != nil:
		h.relay.Relay(identity, supervised, body)
	}
}

// PublishRecovered publishes an event about a call this node does not
// run: the callEnded of a dead node's call that this node ended in the
// shared history (failover). Only supervisors see it, on this node and,
// through the relay, on the others; the identity's own stream is not fed,
// since its connections here never had the call. An event supervisors do
// not see is dropped.
func (h *Hub) PublishRecovered(ev calls.Event) {
	if !ev.Supervised {
		return
	}
	body, err := encodeEvent(ev)
	if err != nil {
		h.log.Error("hub: encode event", "type", ev.Type, "call_id", ev.CallID, "err", err)
		return
	}
	if !h.clusterSupervised() { // else it comes back numbered (DeliverSupervised)
		h.deliver(SupervisorStream, body)
	}
	if h.relay != nil {
		h.relay.Relay(ev.AgentID, true, body)
	}
}

// deliver appends body to the stream and queues it, with its seq, for the
// stream's connections.
func (h *Hub) deliver(stream string, body []byte) {
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	h.deliverLocked(stream, body)
}

// deliverLocked is deliver under the stream's lock; it answers the
// event's seq, 0 when it has none (the log failed).
func (h *Hub) deliverLocked(stream string, body []byte) uint64 {
	seq, err := h.events.Append(stream, body)
	if err != nil {
		// The event cannot be given a seq, so no connection may have it:
		// each will find the gap when it reconnects.
		h.log.Error("hub: append event", "stream", stream, "err", err)
		h.closeStream(stream, "events were lost: reconnect")
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.subs[stream] {
		c.enqueue(seq, body)
	}
	return seq
}

func (h *Hub) lockFor(stream string) *sync.Mutex {
	f := fnv.New32a()
	_, _ = f.Write([]byte(stream))
	return &h.locks[f.Sum32()%streamLocks]
}

// closeStream closes the stream's connections with 1013.
func (h *Hub) closeStream(stream, why string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.subs[stream] {
		c.finish(closeTryAgainLater, why)
	}
}

// streamOf is the stream a connection follows.
func streamOf(c *client) string {
	switch {
	case c.supervisor:
		return SupervisorStream
	case c.remote:
		return remoteStream(c.agentID)
	}
	return AgentStream(c.agentID)
}

// subscribe starts c on its stream: with the events after since when
// resume is set and the log still holds all of them (and they fit c's
// queue), else with the snapshot made by snapshot, which carries the
// stream's last seq. A supervisor's events the log no longer holds may be
// given as pre, read from the cluster (supervisedReplay). The stream's appends wait meanwhile, so c gets each
// later event exactly once. It reports whether c resumed; c is finished
// when the hub is closed or the log fails.
func (h *Hub) subscribe(c *client, resume bool, since uint64, pre []Entry, snapshot func() ([]byte, error)) (resumed bool, err error) {
	stream := streamOf(c)
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	if resume && since == 0 && stream == SupervisorStream && h.clusterSupervised() {
		resume = false // the cluster's feed begins at 1: 0 is no event's seq
	}
	if resume {
		missed, err := h.events.Since(stream, since)
		if errors.Is(err, ErrGone) && len(pre) > 0 {
			missed, err = h.withReplayed(stream, since, pre)
		}
		switch {
		case errors.Is(err, ErrGone):
		case err != nil:
			return false, fmt.Errorf("replay %s after %d: %w", stream, since, err)
		case c.fits(missed):
			c.start(since)
			for _, e := range missed {
				c.enqueue(e.Seq, e.Payload)
			}
			resumed = true
		}
	}
	if !resumed {
		last, err := h.events.Last(stream)
		if err != nil {
			return false, fmt.Errorf("last seq of %s: %w", stream, err)
		}
		body, err := snapshot()
		if err != nil {
			return false, err
		}
		c.start(last - 1)
		c.enqueue(last, body)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		c.finish(closeGoingAway, "the switchboard is shutting down")
		return resumed, nil
	}
	set := h.subs[stream]
	if set == nil {
		set = map[*client]struct{}{}
		h.subs[stream] = set
	}
	set[c] = struct{}{}
	return resumed, nil
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	stream := streamOf(c)
	if set := h.subs[stream]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.subs, stream)
		}
	}
}

// closeToken ends every connection that uses the token id, telling it the
// token is no longer valid.
func (h *Hub) closeToken(tokenID string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.subs {
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
	for _, set := range h.subs {
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
	for _, set := range h.subs {
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
