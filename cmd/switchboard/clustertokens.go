package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
)

// Token revocations in a cluster. Every node verifies tokens from memory,
// so a token revoked on one node must be refused by all: the revoking node
// writes the revocation to the shared store, then publishes it on
// <prefix>.revoked, and every node records what it hears there and
// confirms. The revoking node answers once every node in the cluster
// confirmed (or revocationAckWait passed), so a token revoked is refused
// everywhere from then on. A node that missed a message (cut off from
// NATS at the time) catches up from the store every revocationReload, and
// at once when NATS is back.

// revocationReload is how often a cluster node loads the revocations again
// from the shared store.
const revocationReload = 10 * time.Second

// revocationAckWait bounds how long a revocation waits for the other
// nodes' confirmations.
const revocationAckWait = 2 * time.Second

// revocation is the message a node publishes for each token it revokes.
type revocation struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// revocationSubject is where a cluster's nodes tell each other of
// revocations.
func revocationSubject(prefix string) string {
	if prefix == "" {
		prefix = cluster.DefaultSubjectPrefix
	}
	return prefix + ".revoked"
}

// broadcastRevocations is the store's revocations, with each new one told
// to the other nodes once written.
type broadcastRevocations struct {
	calls.TokenRevocations
	conn    *nats.Conn
	subject string
	peers   func() []string // the other nodes in the cluster now
	log     *slog.Logger
}

// RevokeToken writes the revocation, then tells every node and waits for
// their confirmations. A failed publish or a node that does not confirm
// is logged, not answered: the revocation is written, and such a node
// loads it within revocationReload.
func (b broadcastRevocations) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	if err := b.TokenRevocations.RevokeToken(ctx, id, expiresAt); err != nil {
		return err
	}
	if missing, err := b.tell(ctx, id, expiresAt); err != nil {
		b.log.Warn("not every node confirmed a token revocation: those load it from the store within the reload interval",
			"token_id", id, "unconfirmed", missing, "reload", revocationReload, "err", err)
	}
	return nil
}

// tell publishes the revocation and waits until every peer confirmed it;
// it answers the peers that did not.
func (b broadcastRevocations) tell(ctx context.Context, id string, expiresAt time.Time) ([]string, error) {
	want := map[string]bool{}
	for _, p := range b.peers() {
		want[p] = true
	}
	missing := func() []string { return slices.Sorted(maps.Keys(want)) }
	data, err := json.Marshal(revocation{ID: id, ExpiresAt: expiresAt})
	if err != nil {
		return missing(), err
	}
	inbox := b.conn.NewRespInbox()
	acks, err := b.conn.SubscribeSync(inbox)
	if err != nil {
		return missing(), fmt.Errorf("subscribe to the confirmations: %w", err)
	}
	defer func() { _ = acks.Unsubscribe() }()
	if err := b.conn.PublishMsg(&nats.Msg{Subject: b.subject, Reply: inbox, Data: data}); err != nil {
		return missing(), fmt.Errorf("publish: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, revocationAckWait)
	defer cancel()
	for len(want) > 0 {
		msg, err := acks.NextMsgWithContext(ctx)
		if err != nil {
			return missing(), fmt.Errorf("wait for the confirmations: %w", err)
		}
		delete(want, string(msg.Data))
	}
	return nil, nil
}

// clusterTokens keeps this node's revocations in step with the cluster's.
type clusterTokens struct {
	sub    *nats.Subscription
	cancel context.CancelFunc
	done   chan struct{}
}

// startClusterTokens shares token revocations with the other nodes, with
// --cluster (after startClusterEvents, whose connection it uses).
func (m *Main) startClusterTokens(ctx context.Context, tokens *api.Tokens) error {
	if m.events == nil {
		return nil
	}
	nc := m.events.conn
	subject := revocationSubject(m.Config.Cluster.SubjectPrefix)
	sub, err := nc.Subscribe(subject, func(msg *nats.Msg) {
		var r revocation
		if err := json.Unmarshal(msg.Data, &r); err != nil || r.ID == "" {
			m.Logger.Warn("a malformed token revocation on the cluster's subject: ignored", "subject", subject, "err", err)
			return
		}
		tokens.Learn(r.ID, r.ExpiresAt)
		if msg.Reply != "" {
			if err := msg.Respond([]byte(m.Config.Cluster.NodeID)); err != nil {
				m.Logger.Warn("cannot confirm a token revocation to the node that made it", "err", err)
			}
		}
	})
	if err != nil {
		return fmt.Errorf("cluster tokens: subscribe to %s: %w", subject, err)
	}
	if err := tokens.Persist(ctx, broadcastRevocations{TokenRevocations: m.store, conn: nc, subject: subject, peers: m.cluster.Peers, log: m.Logger}); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("cluster tokens: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	ct := &clusterTokens{sub: sub, cancel: cancel, done: make(chan struct{})}
	reconnected := make(chan struct{}, 1)
	nc.SetReconnectHandler(func(*nats.Conn) {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})
	go func() {
		defer close(ct.done)
		tick := time.NewTicker(revocationReload)
		defer tick.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
			case <-reconnected:
			}
			lctx, cancel := context.WithTimeout(rctx, revocationReload)
			if err := tokens.Reload(lctx); err != nil && rctx.Err() == nil {
				m.Logger.Warn("cannot load token revocations from the store: trying again", "in", revocationReload, "err", err)
			}
			cancel()
		}
	}()
	m.tokens = ct
	return nil
}

// stopClusterTokens stops listening for revocations; a no-op without a
// cluster.
func (m *Main) stopClusterTokens() error {
	if m.tokens == nil {
		return nil
	}
	m.tokens.cancel()
	<-m.tokens.done
	if err := m.tokens.sub.Unsubscribe(); err != nil && err != nats.ErrConnectionClosed {
		return fmt.Errorf("cluster tokens: unsubscribe: %w", err)
	}
	return nil
}
