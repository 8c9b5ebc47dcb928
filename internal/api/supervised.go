package api

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// SupervisedLog reads back the supervisors' stream of a cluster, numbered
// the same on every node (cmd/switchboard wires internal/relay's feed to
// it): what a supervisor reconnecting to a node that did not deliver
// everything it missed (it started since, or its memory let them go)
// replays.
type SupervisedLog interface {
	// SupervisedSince answers the supervised events after seq, oldest
	// first: seq+1, seq+2, … up to the cluster's last, at most limit. It
	// answers an error wrapping ErrGone when the log does not hold every
	// one of them (the client starts from a snapshot).
	SupervisedSince(ctx context.Context, seq uint64, limit int) ([]Entry, error)
}

// seqLog is an EventLog whose streams may be numbered by the caller (as
// MemoryLog's are).
type seqLog interface {
	EventLog
	Restart(stream string, last uint64)
	AppendSeq(stream string, seq uint64, payload []byte) error
}

// supervised is the hub's state of a supervisors' stream numbered by the
// cluster (StartSupervised).
type supervised struct {
	on  atomic.Bool                   // the cluster numbers the supervisors' stream
	log atomic.Pointer[SupervisedLog] // nil: replay from memory only
}

// StartSupervised hands the supervisors' stream's numbering to the
// cluster: from now on its events come only from DeliverSupervised
// (Publish and PublishRecovered leave them to the relay, which hands them
// back through the cluster's feed with its seq), and the next is last+1.
// The hub's EventLog must let its streams be numbered by the caller
// (MemoryLog does).
func (h *Hub) StartSupervised(last uint64) {
	l := h.lockFor(SupervisorStream)
	l.Lock()
	defer l.Unlock()
	sl, ok := h.events.(seqLog)
	if !ok {
		h.log.Error("hub: the event log cannot take the cluster's seqs: supervisors' stream stays this node's")
		return
	}
	sl.Restart(SupervisorStream, last)
	h.supervised.on.Store(true)
	h.closeStream(SupervisorStream, "the supervisors' stream is renumbered: reconnect")
}

// SetSupervisedLog sets where a supervisor's reconnect reads the events
// this node's memory does not hold.
func (h *Hub) SetSupervisedLog(l SupervisedLog) { h.supervised.log.Store(&l) }

// clusterSupervised says whether the cluster numbers the supervisors'
// stream.
func (h *Hub) clusterSupervised() bool { return h.supervised.on.Load() }

// DeliverSupervised delivers a supervised event with its seq in the
// cluster's feed to this node's supervisors: in order, each seq once (one
// already delivered is skipped).
func (h *Hub) DeliverSupervised(seq uint64, body []byte) {
	l := h.lockFor(SupervisorStream)
	l.Lock()
	defer l.Unlock()
	sl, ok := h.events.(seqLog)
	if !ok || !h.clusterSupervised() {
		return
	}
	last, err := sl.Last(SupervisorStream)
	if err != nil || seq <= last {
		return
	}
	if seq != last+1 {
		h.log.Warn("hub: the supervisors' stream skipped seqs", "seq", seq, "want", last+1)
	}
	if err := sl.AppendSeq(SupervisorStream, seq, body); err != nil {
		h.log.Error("hub: append a supervised event", "seq", seq, "err", err)
		h.closeStream(SupervisorStream, "events were lost: reconnect")
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.subs[SupervisorStream] {
		c.enqueue(seq, body)
	}
}

// LostSupervised is told that seq in the cluster's feed marks lost
// supervised events: every supervisor starts over from a snapshot, and no
// replay from memory crosses seq.
func (h *Hub) LostSupervised(seq uint64) {
	l := h.lockFor(SupervisorStream)
	l.Lock()
	defer l.Unlock()
	sl, ok := h.events.(seqLog)
	if !ok || !h.clusterSupervised() {
		return
	}
	if last, err := sl.Last(SupervisorStream); err == nil && seq <= last {
		return
	}
	sl.Restart(SupervisorStream, seq)
	h.closeStream(SupervisorStream, "events of a node were lost: reconnect")
}

// catchUpTimeout bounds how long a supervisor's reconnect waits for this
// node to deliver the seq it gives (supervisedCaughtUp).
const catchUpTimeout = time.Second

// supervisedCaughtUp waits, for a supervisor reconnecting with since,
// until this node has delivered the supervisors' stream up to since, when
// the cluster numbers it: the node the supervisor comes from may have
// delivered it a moment earlier. It gives up after catchUpTimeout (a seq
// never given: the subscribe answers a snapshot). Call it before the
// other nodes' events are held back (Peers.Snapshots).
func (h *Hub) supervisedCaughtUp(ctx context.Context, since uint64) {
	if !h.clusterSupervised() {
		return
	}
	deadline := time.NewTimer(catchUpTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		if last, err := h.events.Last(SupervisorStream); err != nil || since <= last {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// supervisedReplay answers, for a supervisor reconnecting with since, the
// events after it that this node's memory does not hold, read from the
// SupervisedLog (at most limit); nil when memory holds them all, when the
// cluster does not number the stream, or when the log does not hold them
// (then subscribe answers a snapshot). It reads the log without any lock:
// call it before Attach.
func (h *Hub) supervisedReplay(ctx context.Context, since uint64, limit int) []Entry {
	lp := h.supervised.log.Load()
	if !h.clusterSupervised() || lp == nil {
		return nil
	}
	if _, err := h.events.Since(SupervisorStream, since); !errors.Is(err, ErrGone) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	missed, err := (*lp).SupervisedSince(ctx, since, limit)
	if err != nil {
		if !errors.Is(err, ErrGone) {
			h.log.Warn("replay the supervisors' stream from the cluster: starting from a snapshot", "since_seq", since, "err", err)
		}
		return nil
	}
	return missed
}

// withReplayed answers the events after since that a subscribe replays
// from the events read from the cluster (pre, from supervisedReplay) and
// memory (under the stream's lock): pre's events up to the last this node
// delivered, then memory's after them; ErrGone when they do not join up.
func (h *Hub) withReplayed(stream string, since uint64, pre []Entry) ([]Entry, error) {
	last, err := h.events.Last(stream)
	if err != nil {
		return nil, err
	}
	n := 0
	for n < len(pre) && pre[n].Seq <= last {
		if pre[n].Seq != since+1+uint64(n) {
			return nil, ErrGone
		}
		n++
	}
	if n == 0 {
		return nil, ErrGone
	}
	rest, err := h.events.Since(stream, pre[n-1].Seq)
	if err != nil {
		return nil, err
	}
	return append(pre[:n:n], rest...), nil
}
