package cluster

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/internal/cluster/lease"
)

// Recoverer ends the live calls a dead node left in the shared history
// (the store's RecoverNode). It must be idempotent: every surviving node
// calls it for the same dead node. It may refuse, with an error, a node
// whose heartbeat it finds fresh after all: the node is looked at again. NodeAlive answers when a node last
// wrote its heartbeat in the shared history (zero: never): a second sign
// of life, apart from NATS, so that a NATS outage is not taken for a
// node's death.
type Recoverer interface {
	RecoverNode(ctx context.Context, node string) (int, error)
	NodeAlive(ctx context.Context, node string) (time.Time, error)
}

// LiveCalls tells which node runs an identity's live calls: the store's
// LiveCallNode. A node about to take a free identity asks it first (see
// Node.Owner).
type LiveCalls interface {
	// LiveCallNode answers another node with a live call of identity, or
	// "" when there is none.
	LiveCallNode(ctx context.Context, identity string) (string, error)
}

// heartbeatFresh reports whether node's heartbeat in the shared history is
// younger than Config.AliveWithin: the node is alive, whatever NATS says.
// An error (the store out of reach, a node that never wrote one) is not
// fresh.
func (n *Node) heartbeatFresh(ctx context.Context, node string) bool {
	ctx, cancel := context.WithTimeout(ctx, n.ttl)
	defer cancel()
	at, err := n.cfg.Recover.NodeAlive(ctx, node)
	return err == nil && !at.IsZero() && time.Since(at) < n.cfg.AliveWithin
}

// nodeBucket is the bucket of node leases beside the identity leases'.
func nodeBucket(leaseBucket string) string { return leaseBucket + "_nodes" }

// watchNodes follows the node leases of every node and recovers the calls
// of each node whose lease expired. A released node lease (a node that
// stopped gracefully, after ending its calls itself) is left alone.
//
// A dead node that comes back (restarted with the same id) ends its
// earlier run's calls at its own start, before it takes its node lease
// again, and its new calls must stay live; a fenced node that takes its
// lease again still runs its calls. So a recovery still running (the
// store out of reach) is cancelled when the node's lease reappears.
func (n *Node) watchNodes(changes <-chan lease.Change) {
	defer n.wg.Done()
	recovering := map[string]context.CancelFunc{}
	defer func() {
		for _, cancel := range recovering {
			cancel()
		}
	}()
	for c := range changes {
		if c.Identity == n.cfg.Node {
			continue // this node's own lease: Lost says when it is gone
		}
		n.setPeer(c.Identity, c.Node != "" && !c.Expired)
		if cancel, ok := recovering[c.Identity]; ok {
			cancel() // a newer change: the node is back, or gone again
			delete(recovering, c.Identity)
		}
		switch {
		case c.Expired:
			n.log.Warn("a node's lease expired: the node is taken for dead", "dead_node", c.Identity)
			ctx, cancel := context.WithCancel(n.ctx)
			recovering[c.Identity] = cancel
			n.wg.Add(1)
			go n.recover(ctx, c.Identity)
		case c.Node == "":
			n.log.Info("a node left the cluster", "left_node", c.Identity)
			n.nodeGone(c.Identity, true)
		default:
			n.log.Debug("a node is in the cluster", "peer", c.Node)
		}
	}
}

// recover ends dead's live calls through Config.Recover, trying again
// every lease TTL while the store cannot be reached, until it succeeds,
// dead is back (watchNodes cancels ctx), or this node closes.
func (n *Node) recover(ctx context.Context, dead string) {
	defer n.wg.Done()
	if n.cfg.Recover == nil {
		n.log.Warn("no store to end a dead node's calls in", "dead_node", dead)
		n.nodeGone(dead, false)
		return
	}
	for attempt, waited, told := 1, false, false; ; attempt++ {
		if n.heartbeatFresh(ctx, dead) {
			// Its lease lapsed but it still writes its heartbeat: it is cut
			// off from NATS (or NATS restarted), not dead. Its calls are
			// live; look again until it is back or its heartbeat stops.
			if !waited {
				n.log.Warn("a node's lease expired but its heartbeat is fresh: taken for alive, cut off from NATS; its calls are left alone",
					"node", dead, "alive_within", n.cfg.AliveWithin)
				waited = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.cfg.AliveWithin / 2):
			}
			continue
		}
		if !told {
			told = true
			n.nodeGone(dead, false)
		}
		began := time.Now()
		attemptCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ended, err := n.cfg.Recover.RecoverNode(attemptCtx, dead)
		cancel()
		if err == nil {
			level := slog.LevelWarn
			if ended == 0 {
				level = slog.LevelInfo // another survivor ended them, or there were none
			}
			n.log.Log(ctx, level, "ended a dead node's live calls", "dead_node", dead, "calls", ended,
				"took", time.Since(began).Round(time.Millisecond))
			return
		}
		if ctx.Err() != nil {
			n.log.Info("stopped ending a dead node's calls: it is back, and its start ends them, or this node stops", "dead_node", dead)
			return
		}
		if n.heartbeatFresh(ctx, dead) {
			continue // it came back as the store ended nothing (see Recoverer): look again
		}
		n.log.Error("ending a dead node's calls failed; trying again", "dead_node", dead, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.ttl):
		}
	}
}

// watchFenced waits for this node's own node lease to be lost: the other
// nodes may have taken this node for dead and ended its calls in the
// history. It says so loudly, calls Config.OnFenced (serve stops taking
// new calls), and takes the node lease again, so that the others do not
// recover this node a second time while it finishes its calls. Once the
// lease is back, it calls Config.OnUnfenced, which decides when taking new
// calls is safe again; a lease lost meanwhile fences the node again.
func (n *Node) watchFenced() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.nodes.Lost():
		}
		fence := true
		if n.cfg.Recover != nil && n.heartbeatFresh(n.ctx, n.cfg.Node) {
			// The others leave a node with a fresh heartbeat alone
			// (recover): NATS was out, this node goes on as it was.
			n.log.Warn("this node's lease expired (NATS out of reach?) but its heartbeat is fresh, so no node ends its calls: taking the lease again")
			fence = false
		} else {
			n.log.Error("this node's lease expired: the other nodes take it for dead and may have ended its calls (503) in the history; it takes no new calls until it holds its lease again and has caught up with the history")
			if n.cfg.OnFenced != nil {
				n.cfg.OnFenced()
			}
		}
		for {
			ctx, cancel := context.WithTimeout(n.ctx, n.ttl)
			err := n.nodes.Acquire(ctx, n.cfg.Node)
			cancel()
			if err == nil {
				break
			}
			if errors.Is(err, lease.ErrClosed) || n.ctx.Err() != nil {
				return
			}
			n.log.Warn("taking this node's lease again failed; retrying", "err", err)
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(n.ttl / 3):
			}
		}
		if fence {
			n.log.Warn("this node holds its node lease again")
			if n.cfg.OnUnfenced != nil {
				n.cfg.OnUnfenced(n.ctx)
			}
		}
	}
}
