package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
	"github.com/switchboard/switchboard/internal/eventlog"
	"github.com/switchboard/switchboard/internal/relay"
	"github.com/switchboard/switchboard/internal/store"
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
	return streamName(prefix) + "_EVENTS", prefix + ".events", prefix + ".snapshot"
}

// feedNames are the supervised feed's stream and subject for a cluster's
// subject prefix: SB_SUPERVISED and sb.supervised by default.
func feedNames(prefix string) (stream, subject string) {
	if prefix == "" {
		prefix = cluster.DefaultSubjectPrefix
	}
	return streamName(prefix) + "_SUPERVISED", prefix + ".supervised"
}

// streamName is a subject prefix as a stream's name begins.
func streamName(prefix string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToUpper(prefix))
}

// startClusterEvents relays this node's events to the other nodes and
// theirs to this node's supervisors, with --cluster.
func (m *Main) startClusterEvents(ctx context.Context) error {
	c := m.Config.Cluster
	if m.cluster == nil {
		return nil
	}
	// Reconnecting every 100 ms: an append has relay.DefaultAppendTimeout
	// (5 s) in all, and the client's default wait (2 s) would spend much
	// of it after NATS is back.
	nc, err := nats.Connect(c.URL, nats.Name("switchboard "+c.NodeID+" events"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
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
	feedStream, feedSubject := feedNames(c.SubjectPrefix)
	feed, err := eventlog.OpenFeed(ctx, js, eventlog.FeedConfig{Stream: feedStream, Subject: feedSubject, MaxAge: m.Config.Limits.EventRetention.MaxAge})
	if err != nil {
		nc.Close()
		return fmt.Errorf("cluster events: %w", err)
	}
	r, err := relay.Start(relay.Config{
		Node: c.NodeID, Log: log, Conn: nc, SnapshotSubject: snapshots, Feed: feed,
		Sink: m.hub, Snapshot: m.switchboard.SupervisedSnapshot, Logger: m.Logger,
	})
	if err != nil {
		nc.Close()
		return fmt.Errorf("cluster events: %w", err)
	}
	m.hub.SetRelay(r)
	m.hub.SetSupervisedLog(relayLog{r})
	m.events = &clusterEvents{conn: nc, relay: r}
	if m.ends != nil {
		m.ends.start()
	}
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
	return relayEntries(l.r.EventsSince(ctx, identity, seq, limit))
}

func (l relayLog) SupervisedSince(ctx context.Context, seq uint64, limit int) ([]api.Entry, error) {
	return relayEntries(l.r.SupervisedSince(ctx, seq, limit))
}

// relayEntries answers the relay's events as the hub's entries, and its
// ErrBehind and ErrGone as the hub's.
func relayEntries(events []relay.Event, err error) ([]api.Entry, error) {
	if errors.Is(err, relay.ErrBehind) {
		return nil, fmt.Errorf("%w: %w", api.ErrBehind, err)
	}
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
	m.endRuns(ctx)
	if err2 := m.events.conn.Drain(); err2 != nil && err == nil {
		err = fmt.Errorf("cluster events: drain NATS: %w", err2)
	}
	return err
}

// endRuns tells the event log where the streams of the identities this
// node still holds end (relay.EndRuns), once its relay appended what it
// held and before it gives up their leases: their next owners continue
// them (continuingForwarder). An identity another node holds now gets no
// end marker.
func (m *Main) endRuns(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, endRunsTimeout)
	defer cancel()
	runs := m.hub.AgentRuns()
	for identity := range runs {
		if m.cluster == nil {
			break
		}
		if owner, err := m.cluster.OwnerOf(ctx, identity); err != nil || owner != "" {
			delete(runs, identity)
		}
	}
	n, err := m.events.relay.EndRuns(ctx, runs)
	if err != nil {
		m.Logger.Warn("cluster events: end the identities' streams in the event log", "ended", n, "err", err)
	}
}

// apiForwarder is the API's Forwarder: the cluster's, continuing the
// streams of the identities this node takes over; nil without a cluster.
func (m *Main) apiForwarder() api.Forwarder {
	f := m.forwarder()
	if f == nil {
		return nil
	}
	return continuingForwarder{Forwarder: f, m: m, checked: &sync.Map{}}
}

// endRunsTimeout bounds endRuns: two or three JetStream requests per
// identity; those not ended by then begin afresh on their next owner.
const endRunsTimeout = 5 * time.Second

// continuingForwarder continues an identity's stream from where her
// earlier owner's ended (relay.RunEnd) when this node takes her over: the
// first time Owner answers that this node serves her while her stream is
// not held here, it reads her last event in the event log (one request)
// before answering, so before any event of hers here. It reads once per
// identity while the node runs: one it takes over again later begins
// afresh (a snapshot for her console's old seq, never a wrong replay).
type continuingForwarder struct {
	api.Forwarder
	m       *Main
	checked *sync.Map // identities whose last event was read
}

func (f continuingForwarder) Owner(ctx context.Context, identity string) (string, error) {
	owner, err := f.Forwarder.Owner(ctx, identity)
	if err != nil || owner != "" || f.m.events == nil {
		return owner, err
	}
	if f.m.hub.AgentHeld(identity) {
		return owner, nil
	}
	if _, done := f.checked.LoadOrStore(identity, struct{}{}); done {
		return owner, nil
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	end, ok, rerr := f.m.events.relay.RunEnd(rctx, identity)
	switch {
	case rerr != nil:
		f.m.Logger.Warn("cluster events: read where the identity's stream ended: it begins afresh", "agent_id", identity, "err", rerr)
	case ok:
		f.m.hub.ContinueAgent(identity, end)
	}
	return owner, nil
}

// announcingRecoverer ends a dead node's calls in the shared history
// (store.RecoverNodeEvents) and publishes the callEnded event of each call
// this node ended to the supervisors, its own and, through the relay,
// every other node's. Postgres decides which survivor ended a call, so
// each end is published once however many survivors race. An end this
// node committed but could not relay (NATS out for the relay's append
// timeout) is counted by the relay, and the other nodes' supervisors
// start over from a snapshot, which no longer has the call.
type announcingRecoverer struct {
	*store.Postgres
	ends *recoveredEnds
}

var _ cluster.Recoverer = announcingRecoverer{}

func (r announcingRecoverer) RecoverNode(ctx context.Context, node string) (int, error) {
	ended, err := r.RecoverNodeEvents(ctx, node)
	if err != nil {
		return 0, err
	}
	r.ends.publish(ended)
	return len(ended), nil
}

// recoverer is what ends a dead node's calls: pg, announcing the ends.
func (m *Main) recoverer(pg *store.Postgres) cluster.Recoverer {
	m.ends = &recoveredEnds{hub: m.hub}
	return announcingRecoverer{Postgres: pg, ends: m.ends}
}

// recoveredEnds publishes the ends a recovery made (Hub.PublishRecovered).
// A recovery may run as soon as the node joins the cluster, before its
// relay runs: those ends wait for start, so that the other nodes'
// supervisors get them too (and the hub's relay is set before any
// recovery reads it).
type recoveredEnds struct {
	hub *api.Hub

	mu      sync.Mutex
	started bool
	pending []calls.Event
}

func (e *recoveredEnds) publish(evs []calls.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		e.pending = append(e.pending, evs...)
		return
	}
	for _, ev := range evs {
		e.hub.PublishRecovered(ev)
	}
}

// start publishes what waited and, from then on, each end at once; call it
// once the hub's relay is set.
func (e *recoveredEnds) start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started = true
	for _, ev := range e.pending {
		e.hub.PublishRecovered(ev)
	}
	e.pending = nil
}
