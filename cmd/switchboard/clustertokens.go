package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
)

// Token revocations in a cluster. Every node verifies tokens from memory,
// so a token revoked on one node must be refused by all: the revoking node
// writes the revocation to the shared store, then publishes it on
// <prefix>.revoked, and every node records what it hears there. A node
// that missed a message (cut off from NATS at the time) catches up from
// the store every revocationReload, and at once when NATS is back.

// revocationReload is how often a cluster node loads the revocations again
// from the shared store.
const revocationReload = 10 * time.Second

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
	log     *slog.Logger
}

// RevokeToken writes the revocation, then tells the other nodes. A failed
// publish is logged, not answered: the revocation is written, and the
// other nodes load it within revocationReload.
func (b broadcastRevocations) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	if err := b.TokenRevocations.RevokeToken(ctx, id, expiresAt); err != nil {
		return err
	}
	data, err := json.Marshal(revocation{ID: id, ExpiresAt: expiresAt})
	if err == nil {
		err = b.conn.Publish(b.subject, data)
	}
	if err == nil {
		err = b.conn.FlushTimeout(time.Second)
	}
	if err != nil {
		b.log.Warn("cannot tell the other nodes of a token revocation: they load it from the store within the reload interval",
			"token_id", id, "reload", revocationReload, "err", err)
	}
	return nil
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
	})
	if err != nil {
		return fmt.Errorf("cluster tokens: subscribe to %s: %w", subject, err)
	}
	if err := tokens.Persist(ctx, broadcastRevocations{TokenRevocations: m.store, conn: nc, subject: subject, log: m.Logger}); err != nil {
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
