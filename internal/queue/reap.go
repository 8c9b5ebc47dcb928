package queue

import (
	"context"
	"errors"
)

// Reap takes out of the store the waiting calls of node, which is gone
// (its callers' calls ended with it), counting each abandoned once
// however many nodes reap it at once, and frees the agents they rang. It
// answers how many this engine took. A node reaps its own id at start:
// what an earlier run left.
func (e *Engine) Reap(ctx context.Context, node string) (int, error) {
	defs, err := e.cfg.Store.Queues(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for i := range defs {
		d := &defs[i]
		ws, err := e.cfg.Store.Waiting(ctx, d.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		took := false
		for _, w := range ws {
			if w.Node != node {
				continue
			}
			ok, err := e.cfg.Store.TakeWaiting(ctx, w.Queue, w.CallID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue // another node took it
			}
			if w.Offer != nil {
				errs = append(errs, e.cfg.Store.ReleaseAgent(ctx, w.Offer.Agent, w.CallID))
			}
			if _, err := e.cfg.Store.AddCounters(ctx, w.Queue, Counters{Abandoned: 1}); err != nil {
				errs = append(errs, err)
			}
			n++
			took = true
		}
		if took {
			e.cfg.Logger.Info("queue: took out the waiting calls of a node gone", "queue", d.Name, "node", node)
			e.publishStats(ctx, d)
		}
	}
	return n, errors.Join(errs...)
}
