package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/lease"
)

// Defaults of Config's zero fields.
const (
	DefaultLeaseBucket    = "switchboard_leases"
	DefaultSubjectPrefix  = "sb"
	DefaultForwardTimeout = 5 * time.Second
	// DefaultMaxInFlight bounds the forwarded requests a node runs at once.
	DefaultMaxInFlight = 256
	// DefaultAliveWithin is Config.AliveWithin's default: three of the
	// heartbeats a cluster node's store writes every 500 ms.
	DefaultAliveWithin = 1500 * time.Millisecond
)

// Config is how a node joins the cluster.
type Config struct {
	// URL is the NATS server, nats://HOST:PORT (several, comma-separated,
	// for a NATS cluster).
	URL string
	// Node is this node's id, unique among live nodes.
	Node string
	// Secret, when set, signs the requests this node forwards and is
	// required of the requests it serves (see the package doc).
	Secret []byte
	// LeaseBucket is the key-value bucket of identity leases
	// (DefaultLeaseBucket when empty); LeaseTTL their life (lease.DefaultTTL).
	LeaseBucket string
	LeaseTTL    time.Duration
	// SubjectPrefix starts every subject (DefaultSubjectPrefix when empty).
	SubjectPrefix string
	// ForwardTimeout bounds a forwarded request's round trip
	// (DefaultForwardTimeout when 0).
	ForwardTimeout time.Duration
	// MaxInFlight bounds the forwarded requests served at once
	// (DefaultMaxInFlight when 0); more wait for a slot.
	MaxInFlight int
	// OwnerCacheFor is how long Owner remembers another node's lease
	// (a third of LeaseTTL when 0; negative: not at all).
	OwnerCacheFor time.Duration
	// ReconnectWait is the first wait before reconnecting to NATS; it
	// doubles up to 5 s (250 ms when 0).
	ReconnectWait time.Duration
	// Recover ends a dead node's live calls (see the package doc,
	// "Failover"); nil: a dead node is only logged.
	Recover Recoverer
	// LiveCalls, when set, keeps an identity on the node that runs its
	// live calls: before taking a free identity, a node asks it, and
	// forwards to that node when it is alive (Owner).
	LiveCalls LiveCalls
	// AliveWithin is how young a node's heartbeat in the shared history
	// must be for the node to count as alive although its node lease
	// lapsed (DefaultAliveWithin when 0). It must exceed the store's
	// heartbeat interval, a write's latency and the nodes' clock skew (the
	// heartbeat carries its writer's clock).
	AliveWithin time.Duration
	// AttachKeepalive is how often a node holding an identity's event
	// stream for its owner tells the owner it still does
	// (DefaultAttachKeepalive when 0); AttachExpiry, how long the owner
	// keeps an attachment without a keepalive (DefaultAttachExpiry when
	// 0). See Attach.
	AttachKeepalive time.Duration
	AttachExpiry    time.Duration
	// OnFenced is called when this node's own node lease is lost while
	// it runs and its heartbeat is not fresh (see the package doc); nil:
	// only logged. OnUnfenced is called, on the same goroutine, once the
	// node holds its node lease again after that, with a context ended
	// when the node closes: it decides when the node takes new calls
	// again, and may wait for it. A lease lost while it runs is handled
	// (OnFenced again) once it returns.
	OnFenced   func()
	OnUnfenced func(ctx context.Context)
	Logger     *slog.Logger
}

// ErrInvalid is answered for a bad Config.
var ErrInvalid = errors.New("cluster: invalid configuration")

// ValidateURL checks a --cluster value: one or more nats:// (or tls://)
// URLs with a host, comma-separated.
func ValidateURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return fmt.Errorf("cluster: empty NATS URL: %w", ErrInvalid)
	}
	for _, part := range strings.Split(raw, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("cluster: NATS URL %q: want nats://HOST:PORT: %w", part, ErrInvalid)
		}
		switch u.Scheme {
		case "nats", "tls":
		default:
			return fmt.Errorf("cluster: NATS URL %q: the scheme must be nats:// or tls://: %w", part, ErrInvalid)
		}
		if u.Hostname() == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("cluster: NATS URL %q: want nats://HOST:PORT: %w", part, ErrInvalid)
		}
	}
	return nil
}

// ValidateNodeID checks a node id: not empty, and usable as one NATS
// subject token (no whitespace, '.', '*' or '>').
func ValidateNodeID(id string) error {
	if id == "" {
		return fmt.Errorf("cluster: empty node id: %w", ErrInvalid)
	}
	if strings.ContainsAny(id, ".*> \t\r\n") {
		return fmt.Errorf("cluster: node id %q may not contain whitespace, '.', '*' or '>': %w", id, ErrInvalid)
	}
	return nil
}

// Node is this process's membership of the cluster: its NATS connection,
// its leases and the forwarded requests it serves.
type Node struct {
	cfg    Config
	log    *slog.Logger
	nc     *nats.Conn
	leases *lease.Leases
	nodes  *lease.Leases // this node's node lease, and the watch of every node's
	owners *ownerCache
	ttl    time.Duration

	stop context.CancelFunc // ends the lost-lease logger, the node watch, recoveries and served requests
	ctx  context.Context
	wg   sync.WaitGroup // the lost-lease logger, the node watch, recoveries, the fence watch

	served sync.WaitGroup // the forwarded requests and attaches being served
	att    attachments    // the other nodes' attachments this node holds

	mu      sync.Mutex
	sub     *nats.Subscription
	slots   chan struct{}
	stopped bool
	closed  bool
	peers   map[string]bool // the other nodes whose node lease is live, as the node watch saw last
	gone    []func(node string, graceful bool)
}

// Join connects to NATS (reconnecting forever, with backoff, once
// connected) and opens the lease bucket.
func Join(ctx context.Context, cfg Config) (*Node, error) {
	if err := ValidateURL(cfg.URL); err != nil {
		return nil, err
	}
	if err := ValidateNodeID(cfg.Node); err != nil {
		return nil, err
	}
	if cfg.LeaseBucket == "" {
		cfg.LeaseBucket = DefaultLeaseBucket
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.AliveWithin <= 0 {
		cfg.AliveWithin = DefaultAliveWithin
	}
	if cfg.AttachKeepalive <= 0 {
		cfg.AttachKeepalive = DefaultAttachKeepalive
	}
	if cfg.AttachExpiry <= 0 {
		cfg.AttachExpiry = DefaultAttachExpiry
	}
	if cfg.ReconnectWait <= 0 {
		cfg.ReconnectWait = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("node", cfg.Node)
	first := cfg.ReconnectWait
	nc, err := nats.Connect(cfg.URL,
		nats.Name("switchboard "+cfg.Node),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := first
			for range min(attempts, 8) {
				d *= 2
			}
			return min(d, 5*time.Second)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("reconnected to NATS", "server", c.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Debug("NATS connection closed") }),
	)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS at %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	leases, err := lease.New(ctx, js, lease.Config{Bucket: cfg.LeaseBucket, Node: cfg.Node, TTL: cfg.LeaseTTL, Logger: cfg.Logger})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	fail := func(err error) (*Node, error) {
		_ = leases.Close(context.Background())
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	nodes, err := lease.New(ctx, js, lease.Config{Bucket: nodeBucket(cfg.LeaseBucket), Node: cfg.Node, TTL: cfg.LeaseTTL, Logger: cfg.Logger})
	if err != nil {
		return fail(err)
	}
	// This node's lease on its own id; a process that restarts with the
	// same id takes over its earlier run's.
	if err := nodes.Acquire(ctx, cfg.Node); err != nil {
		_ = nodes.Close(context.Background())
		return fail(fmt.Errorf("take the node lease: %w", err))
	}
	runCtx, stop := context.WithCancel(context.Background())
	changes, err := nodes.Watch(runCtx)
	if err != nil {
		stop()
		_ = nodes.Close(context.Background())
		return fail(fmt.Errorf("watch the node leases: %w", err))
	}
	ttl := cfg.LeaseTTL
	if ttl == 0 {
		ttl = lease.DefaultTTL
	}
	if cfg.OwnerCacheFor == 0 {
		cfg.OwnerCacheFor = ttl / 3
	}
	owners := &ownerCache{ttl: cfg.OwnerCacheFor, entries: map[string]cachedOwner{}, now: time.Now}
	n := &Node{cfg: cfg, log: log, nc: nc, leases: leases, nodes: nodes, owners: owners, ttl: ttl,
		ctx: runCtx, stop: stop, slots: make(chan struct{}, cfg.MaxInFlight)}
	n.wg.Add(3)
	go n.reclaimLost()
	go n.watchNodes(changes)
	go n.watchFenced()
	log.Info("joined the cluster", "nats", nc.ConnectedUrlRedacted(), "lease_bucket", cfg.LeaseBucket,
		"node_bucket", nodeBucket(cfg.LeaseBucket))
	return n, nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.Node }

// Owner answers the node that handles identity's requests: "" for this
// node, which then holds the lease (acquired now if no node held it), else
// the owning node's id.
//
// An identity another node owns costs one read of the bucket, remembered
// for a third of the lease's life (OwnerCacheFor) unless Forget is called;
// a free one, a read and a create. A remembered owner can be stale: a
// forward to it then answers that it is not the owner (or times out, when
// it died, as it would until its lease expired anyway), and the caller
// Forgets and asks again.
func (n *Node) Owner(ctx context.Context, identity string) (string, error) {
	if n.leases.Held(identity) {
		return "", nil
	}
	if owner, ok := n.owners.get(identity); ok {
		return owner, nil
	}
	owner, err := n.leases.Owner(ctx, identity)
	switch {
	case err == nil && owner != n.cfg.Node:
		n.owners.put(identity, owner)
		return owner, nil
	case err != nil && !errors.Is(err, lease.ErrNoOwner):
		return "", fmt.Errorf("cluster: owner of %q: %w", identity, err)
	}
	// Free, or held by this node's earlier run: take it, unless another
	// node that is alive still runs its calls (its lease lapsed while
	// NATS was out of reach, and that node has not taken it back yet).
	if node := n.liveCallsElsewhere(ctx, identity); node != "" {
		return node, nil
	}
	err = n.leases.Acquire(ctx, identity)
	if err == nil {
		n.log.Debug("acquired an identity", "identity", identity)
		return "", nil
	}
	if he, ok := errors.AsType[*lease.HeldError](err); ok {
		return he.Node, nil
	}
	return "", fmt.Errorf("cluster: owner of %q: %w", identity, err)
}

// OwnerOf answers the other node that holds identity's lease, or "" when
// this node holds it or no node does. Unlike Owner it never takes the
// lease, nor remembers the answer: it reads the bucket each time.
func (n *Node) OwnerOf(ctx context.Context, identity string) (string, error) {
	if n.leases.Held(identity) {
		return "", nil
	}
	owner, err := n.leases.Owner(ctx, identity)
	switch {
	case errors.Is(err, lease.ErrNoOwner):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("cluster: owner of %q: %w", identity, err)
	case owner == n.cfg.Node:
		return "", nil // this node's earlier run: nobody serves it now
	}
	return owner, nil
}

// OnNodeGone registers f, called from the node watch when another node
// leaves the cluster: graceful when it released its node lease (it stopped
// and ended its calls itself), else once it is taken for dead (its lease
// expired and, with a Recoverer, its heartbeat is stale too). f must not
// block.
func (n *Node) OnNodeGone(f func(node string, graceful bool)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gone = append(n.gone, f)
}

// nodeGone tells the OnNodeGone functions that node left.
func (n *Node) nodeGone(node string, graceful bool) {
	n.mu.Lock()
	fs := slices.Clone(n.gone)
	n.mu.Unlock()
	for _, f := range fs {
		f(node, graceful)
	}
}

// liveCallsElsewhere answers the node that runs identity's live calls when
// it is another node and alive (a fresh heartbeat), else "". Without
// LiveCalls and a Recoverer, or when the store cannot answer, "".
func (n *Node) liveCallsElsewhere(ctx context.Context, identity string) string {
	if n.cfg.LiveCalls == nil || n.cfg.Recover == nil {
		return ""
	}
	lctx, cancel := context.WithTimeout(ctx, n.ttl)
	defer cancel()
	node, err := n.cfg.LiveCalls.LiveCallNode(lctx, identity)
	if err != nil {
		n.log.Warn("cannot tell whether another node runs an identity's calls: taking it", "identity", identity, "err", err)
		return ""
	}
	if node == "" || node == n.cfg.Node || !n.heartbeatFresh(ctx, node) {
		return ""
	}
	n.log.Info("an identity whose lease lapsed has live calls on another node: sending it there", "identity", identity, "node", node)
	return node
}

// Peers answers the other nodes in the cluster now: those whose node
// lease is live, as this node's watch of the node leases saw last.
func (n *Node) Peers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.peers))
	for p := range n.peers {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// setPeer records that node is in the cluster (in) or not.
func (n *Node) setPeer(node string, in bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers == nil {
		n.peers = map[string]bool{}
	}
	if in {
		n.peers[node] = true
	} else {
		delete(n.peers, node)
	}
}

// Forget drops the owner Owner remembers for identity.
func (n *Node) Forget(identity string) { n.owners.forget(identity) }

// ownerCache remembers which node owns identities this node does not,
// briefly.
type ownerCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]cachedOwner
	now     func() time.Time
}

type cachedOwner struct {
	node  string
	until time.Time
}

func (c *ownerCache) get(identity string) (string, bool) {
	if c.ttl <= 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[identity]
	if !ok || c.now().After(e.until) {
		return "", false
	}
	return e.node, true
}

func (c *ownerCache) put(identity, node string) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedOwners {
		for id, e := range c.entries { // drop what expired; if nothing did, start over
			if now.After(e.until) {
				delete(c.entries, id)
			}
		}
		if len(c.entries) >= maxCachedOwners {
			clear(c.entries)
		}
	}
	c.entries[identity] = cachedOwner{node: node, until: now.Add(c.ttl)}
}

func (c *ownerCache) forget(identity string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, identity)
}

// maxCachedOwners bounds the owner cache.
const maxCachedOwners = 100_000

// reclaimLost takes back the identity leases this node lost while no
// other node took them: a lease expires when its renewals fail for a TTL,
// as they all do while NATS is out of reach or restarting, and this node
// still holds those identities' calls. Each lost identity is tried again
// every third of the TTL until this node holds it again, or another node
// does (its next requests then go there; the calls it had here stay here
// until they end).
func (n *Node) reclaimLost() {
	defer n.wg.Done()
	lost := map[string]bool{}
	tick := time.NewTicker(n.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case id := <-n.leases.Lost():
			if !lost[id] {
				n.log.Warn("lost the lease on an identity; taking it back unless another node took it", "identity", id)
			}
			lost[id] = true
			continue
		case <-tick.C:
		case <-n.ctx.Done():
			return
		}
		for id := range lost {
			ctx, cancel := context.WithTimeout(n.ctx, n.ttl)
			err := n.leases.Acquire(ctx, id)
			cancel()
			var held *lease.HeldError
			switch {
			case err == nil:
				n.log.Info("took back the lease on an identity", "identity", id)
				delete(lost, id)
			case errors.As(err, &held):
				n.log.Warn("another node took the lease on an identity; its next requests go there", "identity", id, "owner", held.Node)
				delete(lost, id)
			case n.ctx.Err() != nil || errors.Is(err, lease.ErrClosed):
				return
			}
		}
	}
}

// subject is the subject of node's forwarded HTTP requests.
func (n *Node) subject(node string) string {
	return n.cfg.SubjectPrefix + ".node." + node + ".http"
}

// StopServing stops taking forwarded requests and attaches, waits for
// those being served (or ctx) and detaches the attachments held. Close
// calls it.
func (n *Node) StopServing(ctx context.Context) error {
	n.mu.Lock()
	sub := n.sub
	n.sub, n.stopped = nil, true
	n.mu.Unlock()
	var err error
	if sub != nil {
		if uerr := sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("cluster: stop serving: %w", uerr)
		}
	}
	if aerr := n.stopAttachments(); aerr != nil {
		err = errors.Join(err, aerr)
	}
	done := make(chan struct{})
	go func() { n.served.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.stop() // cancel what is still running
		err = errors.Join(err, fmt.Errorf("cluster: forwarded requests still running: %w", ctx.Err()))
	}
	return err
}

// Close stops serving, releases every lease (the identities are free for
// other nodes at once), then the node lease (a release, not an expiry: no
// other node recovers this node's calls, which its caller ended) and
// closes the NATS connection. Calling it again does nothing.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	err := n.StopServing(ctx)
	// A release that takes longer than a TTL is moot (the lease expired
	// by then): each is bounded, so that a node with NATS out of reach
	// stops without waiting for JetStream's timeouts.
	idCtx, cancel := context.WithTimeout(ctx, n.ttl)
	defer cancel()
	if lerr := n.leases.Close(idCtx); lerr != nil {
		err = errors.Join(err, fmt.Errorf("cluster: release leases: %w", lerr))
	}
	n.stop()
	n.wg.Wait()
	n.att.stopWG.Wait()
	nodeCtx, cancelNode := context.WithTimeout(ctx, n.ttl)
	defer cancelNode()
	if lerr := n.nodes.Close(nodeCtx); lerr != nil {
		err = errors.Join(err, fmt.Errorf("cluster: release the node lease: %w", lerr))
	}
	n.nc.Close()
	n.log.Info("left the cluster")
	return err
}
