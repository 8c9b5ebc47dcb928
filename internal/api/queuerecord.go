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

// QueueRecorder answers the engine's Record hook (queue.EngineConfig):
// the answered call of a queue with "record": true is recorded from then
// on, as the agent's call (she is told as when she starts it herself),
// started by the system. A failure is logged; the call goes on.
func QueueRecorder(sw *QueueSwitch, rec QueueStarter, log *slog.Logger) func(ctx context.Context, w queue.Waiting, agent string) {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, w queue.Waiting, agent string) {
		c, err := sw.agentCall(ctx, w, agent)
		if err == nil {
			_, err = rec.StartFor(ctx, c, calls.Actor{Kind: calls.ActorSystem})
		}
		if err != nil {
			log.Warn("queue: record an answered queue call", "queue", w.Queue, "call_id", w.CallID, "agent", agent, "err", err)
		}
	}
}

// agentCall answers the agent's own call of the waiting call w: hers in
// the same conversation as the caller's.
func (q *QueueSwitch) agentCall(ctx context.Context, w queue.Waiting, agent string) (calls.Call, error) {
	p, err := q.caller(w)
	if err != nil {
		return calls.Call{}, err
	}
	caller, err := q.sb.GetCall(ctx, p, w.CallID)
	if err != nil {
		return calls.Call{}, err
	}
	id, err := calls.ParseRawID(agent)
	if err != nil {
		return calls.Call{}, err
	}
	own, err := q.sb.ListCalls(ctx, calls.Principal{Identifier: id, Role: calls.RoleAgent}, "")
	if err != nil {
		return calls.Call{}, err
	}
	for _, c := range own {
		if c.ServerCallID == caller.ServerCallID {
			return c, nil
		}
	}
	return calls.Call{}, calls.Errorf(calls.CodeCallNotFound, "%s has no call in the conversation of %s", agent, w.CallID)
}

// AgentCallID implements queue.AgentCaller: the agent's wrap-up after a
// queue call names her own call, to which she may give a wrap-up code.
func (q *QueueSwitch) AgentCallID(ctx context.Context, w queue.Waiting, agent string) (string, error) {
	c, err := q.agentCall(ctx, w, agent)
	return c.ID, err
}
