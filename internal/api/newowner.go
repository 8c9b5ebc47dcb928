package api

import (
	"context"
	"errors"
)

// runLog is an EventLog whose identity streams may continue an earlier
// owner's (MemoryLog).
type runLog interface {
	Begin(name string, last uint64) bool
	Continued(name string) (base uint64, ok bool)
	Held(name string) bool
	Lasts(prefix string) map[string]uint64
}

// AgentRuns answers the last seq of each identity's stream held here, by
// identity: what a node that stops tells the cluster's event log
// (relay.EndRuns), so that the identities' next owners continue them.
func (h *Hub) AgentRuns() map[string]uint64 {
	rl, ok := h.events.(runLog)
	if !ok {
		return nil
	}
	return rl.Lasts(agentStreamPrefix)
}

// ContinueAgent begins identity's stream here at last, where it ended on
// her earlier owner (her next event here is last+1), unless it is held
// here already (an event of hers came first): it answers whether it did.
// Call it when this node has just taken her over, before her first event
// here.
func (h *Hub) ContinueAgent(identity string, last uint64) bool {
	stream := AgentStream(identity)
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	rl, ok := h.events.(runLog)
	return ok && rl.Begin(stream, last)
}

// AgentHeld says whether identity's stream is held here.
func (h *Hub) AgentHeld(identity string) bool {
	rl, ok := h.events.(runLog)
	return ok && rl.Held(AgentStream(identity))
}

// continuedBefore says whether stream was continued from an earlier
// owner's at a seq past since: the seqs after since up to it are that
// owner's, in the cluster's event log. Under the stream's lock.
func (h *Hub) continuedBefore(stream string, since uint64) bool {
	rl, ok := h.events.(runLog)
	if !ok {
		return false
	}
	base, ok := rl.Continued(stream)
	return ok && since < base
}

// agentReplay answers, for an agent reconnecting with since to her owner,
// the events after since that her stream here does not hold because her
// earlier owner gave them (ContinueAgent), read from the RemoteLog: nil
// when memory holds them all, when her stream here was not continued past
// since, or when the log does not hold them all (then subscribe answers a
// snapshot). Call it before Attach: it reads without any lock.
func (s *Server) agentReplay(ctx context.Context, identity string, since uint64, limit int) []Entry {
	h := s.cfg.Hub
	stream := AgentStream(identity)
	if s.cfg.RemoteLog == nil {
		return nil
	}
	if _, err := h.events.Since(stream, since); !errors.Is(err, ErrGone) {
		return nil
	}
	l := h.lockFor(stream)
	l.Lock()
	continued := h.continuedBefore(stream, since)
	l.Unlock()
	if !continued {
		return nil
	}
	missed, err := s.eventsSince(ctx, identity, since, limit)
	if err != nil {
		if !errors.Is(err, ErrGone) {
			s.log.Warn("replay from the cluster's event log: starting from a snapshot", "agent_id", identity, "since_seq", since, "err", err)
		}
		return nil
	}
	return missed
}
