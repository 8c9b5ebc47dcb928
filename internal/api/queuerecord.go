package api

import (
	"context"
	"log/slog"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// QueueStarter starts a call's recording without asking who may:
// recording.Service.StartFor.
type QueueStarter interface {
	StartFor(ctx context.Context, c calls.Call, by calls.Actor) (calls.Recording, error)
}

// QueueRemote reaches the agents connected to other nodes (queue.Board):
// ok is false when the agent is not one of them.
type QueueRemote interface {
	AgentCallID(ctx context.Context, agent, serverCallID string) (id string, ok bool, err error)
	Record(ctx context.Context, agent, serverCallID string) (ok bool, err error)
}

// SetRemote makes the agent's call of an answered queue call, when she
// is connected to another node, resolved (AgentCallID) and recorded
// (QueueRecorder) there. Set it before the engine runs.
func (q *QueueSwitch) SetRemote(r QueueRemote) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.remote = r
}

func (q *QueueSwitch) remoteAgents() QueueRemote {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.remote
}

// QueueRecorder answers the engine's Record hook (queue.EngineConfig):
// the answered call of a queue with "record": true is recorded from then
// on, as the agent's call (she is told as when she starts it herself),
// started by the system, on the node she is connected to (its mixer
// mixes her audio). A failure is logged; the call goes on.
func QueueRecorder(sw *QueueSwitch, rec QueueStarter, log *slog.Logger) func(ctx context.Context, w queue.Waiting, agent string) {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, w queue.Waiting, agent string) {
		c, conv, err := sw.agentCall(ctx, w, agent)
		if err == nil {
			_, err = rec.StartFor(ctx, c, calls.Actor{Kind: calls.ActorSystem})
		} else if r := sw.remoteAgents(); conv != "" && r != nil {
			var ok bool
			if ok, err = r.Record(ctx, agent, conv); !ok {
				err = calls.Errorf(calls.CodeCallNotFound, "%s has no call in the conversation of %s on any node", agent, w.CallID)
			}
		}
		if err != nil {
			log.Warn("queue: record an answered queue call", "queue", w.Queue, "call_id", w.CallID, "agent", agent, "err", err)
		}
	}
}

// agentCall answers the agent's own call of the waiting call w: hers in
// the same conversation as the caller's, on this node. It answers the
// conversation's server call id too, once known (also with an error
// when she has no call here).
func (q *QueueSwitch) agentCall(ctx context.Context, w queue.Waiting, agent string) (calls.Call, string, error) {
	p, err := q.caller(w)
	if err != nil {
		return calls.Call{}, "", err
	}
	caller, err := q.sb.GetCall(ctx, p, w.CallID)
	if err != nil {
		return calls.Call{}, "", err
	}
	c, err := agentCallIn(ctx, q.sb, agent, caller.ServerCallID)
	return c, caller.ServerCallID, err
}

// agentCallIn answers the agent's own call on sb in the conversation
// serverCallID.
func agentCallIn(ctx context.Context, sb *calls.Switchboard, agent, serverCallID string) (calls.Call, error) {
	id, err := calls.ParseRawID(agent)
	if err != nil {
		return calls.Call{}, err
	}
	own, err := sb.ListCalls(ctx, calls.Principal{Identifier: id, Role: calls.RoleAgent}, "")
	if err != nil {
		return calls.Call{}, err
	}
	for _, c := range own {
		if c.ServerCallID == serverCallID {
			return c, nil
		}
	}
	return calls.Call{}, calls.Errorf(calls.CodeCallNotFound, "%s has no call in the conversation %s here", agent, serverCallID)
}

// AgentCallID implements queue.AgentCaller: the agent's wrap-up after a
// queue call names her own call, to which she may give a wrap-up code;
// that of an agent connected to another node is asked there.
func (q *QueueSwitch) AgentCallID(ctx context.Context, w queue.Waiting, agent string) (string, error) {
	c, conv, err := q.agentCall(ctx, w, agent)
	if err == nil {
		return c.ID, nil
	}
	if r := q.remoteAgents(); conv != "" && r != nil {
		if id, ok, rerr := r.AgentCallID(ctx, agent, conv); ok {
			return id, rerr
		}
	}
	return "", err
}

// QueueAgentCalls answers queue.AgentCalls for the agents connected to
// this node: the other nodes ask it for their calls in the queue calls
// of those nodes they answered. Recorder may be nil (no recordings
// here).
type QueueAgentCalls struct {
	Switchboard *calls.Switchboard
	Recorder    QueueStarter
}

// AgentCall implements queue.AgentCalls.
func (a QueueAgentCalls) AgentCall(ctx context.Context, agent, serverCallID string) (string, error) {
	c, err := agentCallIn(ctx, a.Switchboard, agent, serverCallID)
	return c.ID, err
}

// Record implements queue.AgentCalls: recorded as QueueRecorder records
// an agent's call of this node.
func (a QueueAgentCalls) Record(ctx context.Context, agent, serverCallID string) error {
	if a.Recorder == nil {
		return calls.Errorf(calls.CodeNotImplemented, "this node records no calls")
	}
	c, err := agentCallIn(ctx, a.Switchboard, agent, serverCallID)
	if err != nil {
		return err
	}
	_, err = a.Recorder.StartFor(ctx, c, calls.Actor{Kind: calls.ActorSystem})
	return err
}
