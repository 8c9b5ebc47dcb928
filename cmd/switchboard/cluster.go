package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
	"github.com/switchboard/switchboard/internal/store"
)

// ClusterConfig is the cluster's part of serve's configuration; without a
// URL the switchboard runs alone.
type ClusterConfig struct {
	// URL is the NATS server (--cluster).
	URL string
	// NodeID names this node (--node-id; the hostname by default).
	NodeID string
	// RTPPorts is the UDP port range of the audio legs between nodes
	// (--cluster-rtp-ports), a pair per call across nodes and node;
	// MediaIP the address those legs listen on and name to the other
	// nodes (--cluster-media-ip; empty: every address, and the host's
	// first IPv4 address in their descriptions).
	RTPPorts string
	MediaIP  string

	// Tests only (no flags): the lease bucket, the leases' life, the
	// subjects' prefix and the forwarding timeout; zero is the default.
	LeaseBucket    string
	LeaseTTL       time.Duration
	SubjectPrefix  string
	ForwardTimeout time.Duration
}

// DefaultClusterRTPPorts is --cluster-rtp-ports' default: beside
// --rtp-ports' 41000-41999.
const DefaultClusterRTPPorts = "42000-42999"

// On says whether the switchboard joins a cluster.
func (c ClusterConfig) On() bool { return c.URL != "" }

func clusterFlags(fs *flag.FlagSet, cfg *ClusterConfig, env func(name, def string) string) (finish func() error) {
	fs.StringVar(&cfg.URL, "cluster", env("SWITCHBOARD_CLUSTER", ""), "join a cluster of switchboards through this NATS server (JetStream on), nats://HOST:PORT; they share one Postgres (env SWITCHBOARD_CLUSTER)")
	fs.StringVar(&cfg.NodeID, "node-id", env("SWITCHBOARD_NODE_ID", ""), "this node's id in the cluster, unique among its nodes; default: the hostname (env SWITCHBOARD_NODE_ID)")
	fs.StringVar(&cfg.RTPPorts, "cluster-rtp-ports", env("SWITCHBOARD_CLUSTER_RTP_PORTS", DefaultClusterRTPPorts), "the UDP port range of the audio legs between the nodes of a cluster, a pair per call across nodes (env SWITCHBOARD_CLUSTER_RTP_PORTS)")
	fs.StringVar(&cfg.MediaIP, "cluster-media-ip", env("SWITCHBOARD_CLUSTER_MEDIA_IP", ""), "the address of this node the other nodes send a call's audio to, on the cluster's private network; default: the host's first IPv4 address (env SWITCHBOARD_CLUSTER_MEDIA_IP)")
	return func() error {
		if !cfg.On() {
			if cfg.NodeID != "" {
				return errors.New("--node-id needs --cluster")
			}
			return nil
		}
		if err := cluster.ValidateURL(cfg.URL); err != nil {
			return fmt.Errorf("--cluster %q: %w", cfg.URL, err)
		}
		if cfg.NodeID == "" {
			host, err := os.Hostname()
			if err != nil || host == "" {
				return fmt.Errorf("--node-id is empty and the hostname cannot stand in for it (%v): set --node-id", err)
			}
			cfg.NodeID = host
		}
		if err := cluster.ValidateNodeID(cfg.NodeID); err != nil {
			return fmt.Errorf("--node-id %q: %w", cfg.NodeID, err)
		}
		return nil
	}
}

// adminKeyDerived is a secret derived from the admin key under label, one
// per use: every node of a cluster shares the admin key (its tokens must
// verify anywhere), and so every secret derived from it, and a restart
// with the same key keeps them.
func adminKeyDerived(adminKey, label string) []byte {
	mac := hmac.New(sha256.New, []byte(adminKey))
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// clusterSecret signs forwarded requests and attachments.
func clusterSecret(adminKey string) []byte {
	return adminKeyDerived(adminKey, "switchboard cluster forwarding v1")
}

// joinCluster connects this node to the cluster, with --cluster.
func (m *Main) joinCluster(ctx context.Context) error {
	c := m.Config.Cluster
	if !c.On() {
		return nil
	}
	if m.Config.DatabaseURL == "" && m.Store == nil {
		m.Logger.Warn("a cluster's nodes should share one Postgres (DATABASE_URL): this node keeps its own call history")
	}
	var recoverer cluster.Recoverer
	var liveCalls cluster.LiveCalls
	if pg, ok := m.store.(*store.Postgres); ok {
		recoverer, liveCalls = m.recoverer(pg), pg
	} else {
		m.Logger.Warn("without a shared Postgres, a dead node's calls are not ended by the others")
	}
	node, err := cluster.Join(ctx, cluster.Config{
		URL: c.URL, Node: c.NodeID, Secret: clusterSecret(m.Config.AdminKey),
		LeaseBucket: c.LeaseBucket, LeaseTTL: c.LeaseTTL, SubjectPrefix: c.SubjectPrefix,
		ForwardTimeout: c.ForwardTimeout, Recover: recoverer, LiveCalls: liveCalls, AliveWithin: clusterAliveWithin, OnFenced: m.fenced, OnUnfenced: m.unfence, Logger: m.Logger,
	})
	if err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	m.cluster = node
	return nil
}

// fenced is called when this node's own node lease was lost while it ran
// and its heartbeat was not fresh: the other nodes may be ending its calls
// in the history. It takes no new calls (as in a drain; /readyz answers
// 503, so a load balancer sends new work elsewhere) until unfence finds it
// safe again; its live calls go on meanwhile.
func (m *Main) fenced() {
	if m.switchboard == nil {
		m.Logger.Error("fenced while starting: this node's lease expired")
		return
	}
	n := m.switchboard.Fence()
	m.Logger.Error("fenced: this node's lease expired, so the cluster takes it for dead; it takes no new calls until it is safe again", "calls", n)
}

// unfence is called once a fenced node holds its node lease again. It
// takes new calls again when no other node can still end its calls:
//
//   - Without a shared Postgres no other node ends them (nothing to
//     recover in): at once.
//   - With one, the others end nothing while its heartbeat is fresh: a
//     recovery checks it again in its transaction, holding the heartbeat
//     row (store.PostgresOptions.AliveWithin), so this node's heartbeat
//     write waits for a recovery under way. So once its own heartbeat is
//     fresh again in Postgres, every recovery that will ever end its calls
//     has committed, and it reconciles: the calls the others ended in the
//     history (503/0) end here too (Switchboard.Unfence).
//
// It gives up when ctx ends (the node closes) and tries again every
// second while Postgres cannot be read. A drain to stop (SIGTERM) is never
// undone: Unfence refuses it.
func (m *Main) unfence(ctx context.Context) {
	if m.switchboard == nil {
		return
	}
	pg, _ := m.store.(*store.Postgres)
	for attempt := 1; ; attempt++ {
		err := m.unfenceOnce(ctx, pg)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if calls.ErrorCode(err) == calls.CodeDraining {
			m.Logger.Info("not unfenced: the node drains to stop", "err", err)
			return
		}
		m.Logger.Warn("unfencing failed; trying again", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (m *Main) unfenceOnce(ctx context.Context, pg *store.Postgres) error {
	began := time.Now()
	if pg != nil {
		if err := m.waitHeartbeat(ctx, pg); err != nil {
			return err
		}
	}
	ended, err := m.switchboard.Unfence(ctx)
	if err != nil {
		if ended > 0 {
			m.Logger.Warn("ended here the calls the other nodes ended while this node was fenced", "calls", ended)
		}
		return fmt.Errorf("unfence: %w", err)
	}
	m.Logger.Warn("unfenced: this node holds its lease again and has caught up with the history; it takes new calls again",
		"ended_calls", ended, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// waitHeartbeat waits until this node's own heartbeat in Postgres is
// fresh: written and committed again since the fence.
func (m *Main) waitHeartbeat(ctx context.Context, pg *store.Postgres) error {
	for {
		at, err := pg.NodeAlive(ctx, m.Config.Cluster.NodeID)
		if err == nil && !at.IsZero() && time.Since(at) < clusterAliveWithin {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(clusterHeartbeat / 2):
		}
	}
}

// clusterHeartbeat is how often a cluster node's store writes its
// heartbeat. A survivor dates a dead node's calls by the later of that
// heartbeat and each call's last event (store.RecoverNode), so the recorded
// end is at most this long (plus one write's latency) before the kill. It
// costs each node two one-row UPDATEs a second.
const clusterHeartbeat = 500 * time.Millisecond

// clusterAliveWithin is how young a node's heartbeat must be for the
// others to take it for alive (cluster.Config.AliveWithin): three
// heartbeats.
const clusterAliveWithin = 3 * clusterHeartbeat

// forwarder is the API's Forwarder on the cluster, or nil without one.
func (m *Main) forwarder() api.Forwarder {
	if m.cluster == nil {
		return nil
	}
	f := clusterForwarder{node: m.cluster}
	if pg, ok := m.store.(*store.Postgres); ok {
		f.calls = pg
	}
	return f
}

// serveForwarded starts answering the requests other nodes forward here.
func (m *Main) serveForwarded() error {
	if m.cluster == nil {
		return nil
	}
	return m.cluster.Serve(func(ctx context.Context, req cluster.Request) cluster.Response {
		var sess api.Session
		if err := json.Unmarshal(req.Principal, &sess); err != nil {
			return cluster.Response{Refused: "malformed principal: " + err.Error()}
		}
		resp := m.api.ServeForwarded(ctx, api.ForwardRequest{Method: req.Method, Target: req.Target,
			Header: req.Header, Body: req.Body, Client: req.Client, Session: sess, Call: req.Call, Agent: req.Agent})
		return cluster.Response{Status: resp.Status, Header: resp.Header, Body: resp.Body, NotOwner: resp.NotOwner}
	})
}

// clusterForwarder adapts the cluster node to the API's Forwarder.
type clusterForwarder struct {
	node *cluster.Node
	// calls finds a live call's node in the shared history; nil without
	// a shared Postgres (every other node is then asked in turn).
	calls callNodes
}

// callNodes finds the node that runs a live call: *store.Postgres.
type callNodes interface {
	CallNode(ctx context.Context, id string) (string, error)
}

func (f clusterForwarder) CallNodes(ctx context.Context, id string) ([]string, error) {
	if f.calls != nil {
		node, err := f.calls.CallNode(ctx, id)
		if err != nil {
			return nil, err
		}
		if node == f.node.ID() {
			return nil, nil // here by the history, but not live here: ended, or a stand-in
		}
		if node != "" {
			return []string{node}, nil
		}
	}
	// Not in the history (not written yet, or no shared Postgres): any
	// other node may run it.
	return f.node.Peers(), nil
}

func (f clusterForwarder) AgentNode(ctx context.Context, identity string) (string, error) {
	return f.node.OwnerOf(ctx, identity)
}

func (f clusterForwarder) Owner(ctx context.Context, identity string) (string, error) {
	return f.node.Owner(ctx, identity)
}

func (f clusterForwarder) Forward(ctx context.Context, node string, req api.ForwardRequest) (api.ForwardResponse, error) {
	principal, err := json.Marshal(req.Session)
	if err != nil {
		return api.ForwardResponse{}, fmt.Errorf("encode the principal: %w", err)
	}
	resp, err := f.node.Forward(ctx, node, cluster.Request{Method: req.Method, Target: req.Target,
		Header: req.Header, Body: req.Body, Client: req.Client, Principal: principal, Call: req.Call, Agent: req.Agent})
	if req.Call == "" && req.Agent == "" && (err != nil || resp.NotOwner != "") {
		// The remembered owner was wrong, or did not answer: ask the
		// bucket next time.
		f.node.Forget(req.Session.Identifier.RawID())
	}
	if errors.Is(err, cluster.ErrNoListener) {
		// It ran nothing, and cannot serve the identity: as good as
		// not the owner (the API asks the bucket again, once).
		return api.ForwardResponse{NotOwner: node}, nil
	}
	if err != nil {
		return api.ForwardResponse{}, err
	}
	return api.ForwardResponse{Status: resp.Status, Header: http.Header(resp.Header), Body: resp.Body, NotOwner: resp.NotOwner}, nil
}
