package queue

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/routing"
)

// AgentStatus is agent status as the engine uses it: who may be offered,
// marking an agent Away after misses, wrap-up after a queue call.
// calls.Switchboard implements it.
type AgentStatus interface {
	Availability
	SetStatusBySystem(ctx context.Context, agent string, req calls.SetStatusRequest) (calls.AgentStatusData, error)
	EnterWrapUp(ctx context.Context, agent, callID string, seconds int) (calls.AgentStatusData, error)
}

// CallQueueRecorder keeps the queues calls went through, for history;
// calls.Switchboard implements it.
type CallQueueRecorder interface {
	RecordCallQueue(ctx context.Context, callID, queue string) error
}

// statusTimeout bounds a status change the engine asks for.
const statusTimeout = 5 * time.Second

// WithStatus answers cfg with its Availability, Misses and WrapUp on st:
// offers go to Available agents under maxConcurrentCalls; MaxMisses
// offers in a row rung out set her Away as the system (told as
// agentStatusChanged, kept in the history); an answered queue call that
// ends puts her in WrapUp for the queue's wrapUpSeconds. When st is a
// CallQueueRecorder too, history keeps the queues calls went through
// (Queued).
func WithStatus(cfg EngineConfig, st AgentStatus) EngineConfig {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg.Availability = st
	cfg.Misses = func(agent string) {
		ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
		defer cancel()
		if _, err := st.SetStatusBySystem(ctx, agent, calls.SetStatusRequest{Status: routing.Away}); err != nil {
			log.Warn("queue: mark an agent Away after missed offers", "agent", agent, "err", err)
		}
	}
	cfg.WrapUp = func(ctx context.Context, agent, callID string, seconds int) {
		if seconds <= 0 {
			return
		}
		if _, err := st.EnterWrapUp(ctx, agent, callID, seconds); err != nil {
			log.Warn("queue: wrap-up after a queue call", "agent", agent, "call_id", callID, "err", err)
		}
	}
	if r, ok := st.(CallQueueRecorder); ok {
		cfg.Queued = func(ctx context.Context, callID, queue string) {
			err := r.RecordCallQueue(ctx, callID, queue)
			if ce, ok := errors.AsType[*calls.Error](err); ok && ce.Code == calls.CodeNotImplemented {
				return
			}
			if err != nil {
				log.Warn("queue: keep the queue of a call in history", "queue", queue, "call_id", callID, "err", err)
			}
		}
	}
	return cfg
}
