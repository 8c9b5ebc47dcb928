package queue

import "context"

// MissCounter counts, per agent, the offers she let ring out in a row,
// wherever they were made (Board.Misses: on the node she is connected
// to). Without one an engine counts its own offers alone.
type MissCounter interface {
	// Missed counts one more offer rung out; it answers whether she
	// reached maxMisses in a row (her count then starts again).
	Missed(ctx context.Context, agent string, maxMisses int) (away bool, err error)
	// Answered starts her count again: she answered an offer.
	Answered(ctx context.Context, agent string) error
}

// missed counts an offer the agent let ring out, in the MissCounter when
// set (here when it fails), and answers whether she is to be marked Away.
func (e *Engine) missed(ctx context.Context, agent string, maxMisses int) bool {
	if e.cfg.MissCounter != nil {
		away, err := e.cfg.MissCounter.Missed(ctx, agent, maxMisses)
		if err == nil {
			return away
		}
		e.cfg.Logger.Warn("queue: count a missed offer where the agent is: counted here", "agent", agent, "err", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.misses[agent]++
	if e.misses[agent] < maxMisses {
		return false
	}
	e.misses[agent] = 0
	return true
}

// answeredMisses starts the agent's count of misses again.
func (e *Engine) answeredMisses(ctx context.Context, agent string) {
	e.mu.Lock()
	e.misses[agent] = 0
	e.mu.Unlock()
	if e.cfg.MissCounter == nil {
		return
	}
	if err := e.cfg.MissCounter.Answered(ctx, agent); err != nil {
		e.cfg.Logger.Warn("queue: reset the agent's missed offers where she is", "agent", agent, "err", err)
	}
}
