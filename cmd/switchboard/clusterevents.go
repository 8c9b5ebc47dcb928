package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/cluster"
	"github.com/switchboard/switchboard/internal/eventlog"
	"github.com/switchboard/switchboard/internal/relay"
)

// clusterEvents is the relay of this node's events to the other nodes, and
// its own NATS connection (so that its traffic is counted apart).
type clusterEvents struct {
	conn  *nats.Conn
	relay *relay.Relay
}

// eventNames are the event log's stream, its subjects' prefix and the
// snapshot requests' subject for a cluster's subject prefix: SB_EVENTS,
// sb.events and sb.snapshot by default.
func eventNames(prefix string) (stream, subject, snapshots string) {
	if prefix == "" {
		prefix = cluster.DefaultSubjectPrefix
	}
	stream = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToUpper(prefix)) + "_EVENTS"
	return stream, prefix + ".events", prefix + ".snapshot"
}

// startClusterEvents relays this node's events to the other nodes and
// theirs to this node's supervisors, with --cluster.
func (m *Main) startClusterEvents(ctx context.Context) error {
	c := m.Config.Cluster
	if m.cluster == nil {
		return nil
	}
	nc, err := nats.Connect(c.URL, nats.Name("switchboard "+c.NodeID+" events"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("cluster events: connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("cluster events: %w", err)
	}
	stream, subject, snapshots := eventNames(c.SubjectPrefix)
	log, err := eventlog.Open(ctx, js, eventlog.Config{Stream: stream, Subject: subject, MaxAge: m.Config.Limits.EventRetention.MaxAge})
	if err != nil {
		nc.Close()
		return fmt.Errorf("cluster events: %w", err)
	}
	r, err := relay.Start(relay.Config{
		Node: c.NodeID, Log: log, Conn: nc, SnapshotSubject: snapshots,
		Sink: m.hub, Snapshot: m.switchboard.SupervisedSnapshot, Logger: m.Logger,
	})
	if err != nil {
		nc.Close()
		return fmt.Errorf("cluster events: %w", err)
	}
	m.hub.SetRelay(r)
	m.events = &clusterEvents{conn: nc, relay: r}
	return nil
}

// peers is the API's Peers on the cluster, or nil without one.
func (m *Main) peers() api.Peers {
	if m.events == nil {
		return nil
	}
	return m.events.relay
}

// remoteLog is the API's RemoteLog on the cluster's event log, or nil
// without a cluster.
func (m *Main) remoteLog() api.RemoteLog {
	if m.events == nil {
		return nil
	}
	return relayLog{m.events.relay}
}

// relayLog adapts the relay to the API's RemoteLog.
type relayLog struct{ r *relay.Relay }

func (l relayLog) EventsSince(ctx context.Context, identity string, seq uint64, limit int) ([]api.Entry, error) {
	events, err := l.r.EventsSince(ctx, identity, seq, limit)
	if errors.Is(err, relay.ErrGone) {
		return nil, fmt.Errorf("%w: %w", api.ErrGone, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]api.Entry, len(events))
	for i, e := range events {
		out[i] = api.Entry{Seq: e.Seq, Payload: e.Body}
	}
	return out, nil
}

// stopClusterEvents sends what is queued and stops relaying.
func (m *Main) stopClusterEvents(ctx context.Context) error {
	if m.events == nil {
		return nil
	}
	err := m.events.relay.Close(ctx)
	if err2 := m.events.conn.Drain(); err2 != nil && err == nil {
		err = fmt.Errorf("cluster events: drain NATS: %w", err2)
	}
	return err
}
