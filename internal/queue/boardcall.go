package queue

import (
	"context"

	"github.com/switchboard/switchboard/internal/calls"
)

// AgentCalls is what a node does, for the other nodes, with the calls of
// the agents connected to it (package api over calls.Switchboard and the
// recordings). A queue call answered by an agent of another node is a
// conversation on both nodes with one server call id: her node knows her
// call in it by its own id.
type AgentCalls interface {
	// AgentCall answers the id of the agent's own call in the
	// conversation serverCallID.
	AgentCall(ctx context.Context, agent, serverCallID string) (string, error)
	// Record starts recording that call, as the system: her node's mixer
	// mixes her audio, so it alone can record her side.
	Record(ctx context.Context, agent, serverCallID string) error
}

// The call requests between nodes.
const (
	opAgentCall = "agentCall"
	opRecord    = "record"
)

// AgentCallID answers the id of the agent's own call in the conversation
// serverCallID when she is connected to another node (asked there); ok
// is false when she is not.
func (b *Board) AgentCallID(ctx context.Context, agent, serverCallID string) (id string, ok bool, err error) {
	e, ok := b.remote(agent)
	if !ok {
		return "", false, nil
	}
	resp, err := b.request(ctx, e.st.Node, statusRequest{Op: opAgentCall, Agent: agent, ServerCallID: serverCallID})
	return resp.CallID, true, err
}

// Record starts recording the agent's own call in the conversation
// serverCallID on the node she is connected to; ok is false when that is
// not another node.
func (b *Board) Record(ctx context.Context, agent, serverCallID string) (ok bool, err error) {
	e, ok := b.remote(agent)
	if !ok {
		return false, nil
	}
	_, err = b.request(ctx, e.st.Node, statusRequest{Op: opRecord, Agent: agent, ServerCallID: serverCallID})
	return true, err
}

// serveCall runs a call request of another node (serve).
func (b *Board) serveCall(ctx context.Context, req statusRequest) (string, error) {
	if b.cfg.Calls == nil {
		return "", calls.Errorf(calls.CodeNotImplemented, "node %s does not resolve its agents' calls", b.cfg.Node)
	}
	if req.Op == opAgentCall {
		return b.cfg.Calls.AgentCall(ctx, req.Agent, req.ServerCallID)
	}
	return "", b.cfg.Calls.Record(ctx, req.Agent, req.ServerCallID)
}

// The miss requests between nodes.
const (
	opMissed   = "missed"
	opAnswered = "answered"
)

// Misses answers a MissCounter that counts each agent's misses on the
// node she is connected to: the offers of every node count together.
func (b *Board) Misses() MissCounter { return boardMisses{b} }

type boardMisses struct{ b *Board }

func (m boardMisses) Missed(ctx context.Context, agent string, maxMisses int) (bool, error) {
	if e, ok := m.b.remote(agent); ok {
		resp, err := m.b.request(ctx, e.st.Node, statusRequest{Op: opMissed, Agent: agent, MaxMisses: maxMisses})
		return resp.Away, err
	}
	return m.b.countMiss(agent, max(maxMisses, 1)), nil
}

func (m boardMisses) Answered(ctx context.Context, agent string) error {
	if e, ok := m.b.remote(agent); ok {
		_, err := m.b.request(ctx, e.st.Node, statusRequest{Op: opAnswered, Agent: agent})
		return err
	}
	m.b.countMiss(agent, 0)
	return nil
}

// countMiss counts one more miss of the agent (maxMisses 0: none, her
// count starts again) and answers whether she reached maxMisses in a row.
func (b *Board) countMiss(agent string, maxMisses int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if maxMisses <= 0 {
		delete(b.misses, agent)
		return false
	}
	b.misses[agent]++
	if b.misses[agent] < maxMisses {
		return false
	}
	delete(b.misses, agent)
	return true
}
