package peercall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/calls"
)

// Defaults of Config's zero fields.
const (
	DefaultSubjectPrefix = "sb"
	DefaultTimeout       = time.Second
	DefaultGiveUp        = 15 * time.Second
	DefaultDialGiveUp    = 5 * time.Second
	DefaultMaxAge        = 30 * time.Second
	DefaultRetain        = 2 * time.Minute
	// DefaultMaxInFlight bounds the messages a node handles at once.
	DefaultMaxInFlight = 256
)

// Directory tells which node owns an identity (cluster.Node.OwnerOf).
type Directory interface {
	// OwnerOf answers the other node that owns identity (a rawId), or ""
	// when this node or no node does. It must not take the identity.
	OwnerOf(ctx context.Context, identity string) (string, error)
}

// Switchboard is what the network needs of this node's calls.Switchboard.
type Switchboard interface {
	StartPeerCall(ctx context.Context, req calls.PeerCallRequest) (calls.Call, error)
	PeerJoin(ctx context.Context, req calls.PeerJoinRequest) (calls.Call, error)
	ApplyPeerChange(ctx context.Context, id string, ch calls.PeerChange) error
	EndPhoneCall(ctx context.Context, id string, reason calls.EndReason) error
}

// Media opens the node-to-node audio leg of a stand-in (docs/cluster.md,
// "Media across nodes"): the stand-in's own endpoint in this node's mixer,
// its SDP carried in the dial and its answer. Each method must be quick;
// Close must be idempotent and do nothing for a stand-in without a leg.
type Media interface {
	// Offer opens the leg of stand-in id and answers its SDP offer.
	Offer(id string) ([]byte, error)
	// Answer opens the leg of stand-in id for the far node's offer and
	// answers its SDP answer.
	Answer(id string, offer []byte) ([]byte, error)
	// Apply hands the leg of stand-in id the far node's answer.
	Apply(id string, answer []byte) error
	// Close closes the leg of stand-in id.
	Close(id string)
}

// Config is how a node's Network reaches the others.
type Config struct {
	// Conn is the NATS connection; the caller closes it after Close.
	Conn *nats.Conn
	// Node is this node's id.
	Node string
	// SubjectPrefix starts every subject (DefaultSubjectPrefix when empty).
	SubjectPrefix string
	// Secret signs every message sent and is required of every message
	// handled; empty: none (tests only).
	Secret []byte
	// Directory says who owns the callees (Locate).
	Directory Directory
	// Timeout bounds one round trip of a message (DefaultTimeout when 0).
	Timeout time.Duration
	// GiveUp is how long a change is sent again before the far node is
	// taken for lost (DefaultGiveUp); DialGiveUp the same for a dial
	// (DefaultDialGiveUp). Both must be below MaxAge.
	GiveUp     time.Duration
	DialGiveUp time.Duration
	// MaxAge is the age past which a message is refused (DefaultMaxAge);
	// Retain how long a pair is remembered once its stand-in ended
	// (DefaultRetain), which must exceed MaxAge.
	MaxAge time.Duration
	Retain time.Duration
	// MaxInFlight bounds the messages handled at once
	// (DefaultMaxInFlight).
	MaxInFlight int
	// Media, when set, gives each stand-in an audio leg to the far node's;
	// nil: calls across nodes carry no audio.
	Media  Media
	Logger *slog.Logger
}

// Network is one node's calls.PeerNetwork over NATS.
type Network struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{}

	ctx  context.Context // ends at Close: retries and handlers stop
	stop context.CancelFunc
	wg   sync.WaitGroup // senders, handlers, endings, the sweeper

	mu       sync.Mutex
	sb       Switchboard
	sub      *nats.Subscription
	pairs    map[string]*pair
	inFlight int // messages being handled
	ending   int // stand-ins being ended (lose)
	closed   bool
}

var _ calls.PeerNetwork = (*Network)(nil)

// New returns a Network that sends, and handles nothing until Serve.
func New(cfg Config) (*Network, error) {
	if cfg.Conn == nil || cfg.Node == "" || cfg.Directory == nil {
		return nil, errors.New("peercall: a connection, a node id and a directory are required")
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.GiveUp <= 0 {
		cfg.GiveUp = DefaultGiveUp
	}
	if cfg.DialGiveUp <= 0 {
		cfg.DialGiveUp = DefaultDialGiveUp
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Retain <= 0 {
		cfg.Retain = DefaultRetain
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.GiveUp >= cfg.MaxAge || cfg.DialGiveUp >= cfg.MaxAge || cfg.Retain <= cfg.MaxAge {
		return nil, fmt.Errorf("peercall: want GiveUp (%s) and DialGiveUp (%s) < MaxAge (%s) < Retain (%s)",
			cfg.GiveUp, cfg.DialGiveUp, cfg.MaxAge, cfg.Retain)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	n := &Network{cfg: cfg, log: cfg.Logger.With("component", "peercall", "node", cfg.Node),
		slots: make(chan struct{}, cfg.MaxInFlight), ctx: ctx, stop: stop, pairs: map[string]*pair{}}
	n.wg.Add(1)
	go n.sweep()
	return n, nil
}

// subject is node's subject for calls between nodes.
func (n *Network) subject(node string) string {
	return n.cfg.SubjectPrefix + ".node." + node + ".peercall"
}

// Serve starts handling the other nodes' messages with sb.
func (n *Network) Serve(sb Switchboard) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.sub != nil {
		return errors.New("peercall: closed or serving already")
	}
	n.sb = sb
	sub, err := n.cfg.Conn.Subscribe(n.subject(n.cfg.Node), n.take)
	if err != nil {
		return fmt.Errorf("peercall: subscribe %s: %w", n.subject(n.cfg.Node), err)
	}
	n.sub = sub
	if err := n.cfg.Conn.Flush(); err != nil {
		return fmt.Errorf("peercall: subscribe %s: %w", n.subject(n.cfg.Node), err)
	}
	return nil
}

// Locate answers the callees another node owns, through the Directory,
// within Timeout: with NATS out of reach, a call starts (its callees on
// other nodes as if connected nowhere) after that long, not JetStream's.
func (n *Network) Locate(ctx context.Context, rawIDs []string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	out := map[string]string{}
	for _, id := range rawIDs {
		node, err := n.cfg.Directory.OwnerOf(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("peercall: locate %s: %w", id, err)
		}
		if node != "" && node != n.cfg.Node {
			out[id] = node
		}
	}
	return out, nil
}

// Dial starts a call to c's callee on node: the dial is the pair's first
// message, sent once the switchboard lets go of its live state.
func (n *Network) Dial(c calls.Call, node string) calls.PhoneLine {
	p := n.newPair(n.cfg.Node+"/"+c.ID, node, c.ID)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		p.lost = true
		return p
	}
	n.pairs[p.id] = p
	n.enqueue(p, message{Dial: &dial{ServerCallID: c.ServerCallID, Kind: c.Kind, Caller: c.CallerInfo, Callee: c.AgentID,
		Roster: calls.DialRoster(c)}})
	return p
}

// Join joins the group call or room node anchors for c's joiner (a
// mirror's hidden stand-in): the dial, marked as a join, is the pair's
// first message, and the far node runs PeerJoin.
func (n *Network) Join(c calls.Call, role calls.Role, node string) calls.PhoneLine {
	p := n.newPair(n.cfg.Node+"/"+c.ID, node, c.ID)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		p.lost = true
		return p
	}
	n.pairs[p.id] = p
	n.enqueue(p, message{Dial: &dial{ServerCallID: c.ServerCallID, Kind: c.Kind, Caller: c.CallerInfo, Role: role,
		Join: true, GroupID: c.GroupID, RoomID: c.RoomID, Monitor: c.MonitorMode, Monitored: c.MonitoredCallID}})
	return p
}

// NodeGone ends every live stand-in whose far node left the cluster: 503/0
// when it died, 503/1 when it stopped (its own ends should have come
// before; one that did not was lost). It does not block.
func (n *Network) NodeGone(node string, graceful bool) {
	reason := calls.ReasonSwitchboardDied
	if graceful {
		reason = calls.ReasonShutdown
	}
	n.mu.Lock()
	var lost []*pair
	for _, p := range n.pairs {
		if p.far == node && !p.lost && p.ended.IsZero() {
			lost = append(lost, p)
		}
	}
	n.mu.Unlock()
	if len(lost) > 0 {
		n.log.Warn("a node with calls to this one left the cluster: ending their stand-ins here", "far_node", node,
			"graceful", graceful, "stand_ins", len(lost))
	}
	for _, p := range lost {
		n.lose(p, reason)
	}
}

// lose gives up on p's far node: nothing more is sent, and this node's
// stand-in, when live, ends with reason (on a goroutine of its own).
func (n *Network) lose(p *pair, reason calls.EndReason) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p.lost {
		return
	}
	p.lost = true
	for _, m := range p.queue {
		m.tell(calls.Errorf(calls.CodeUnavailable, "node %s is out of reach", p.far))
	}
	p.queue = nil
	p.cancel()
	live := p.ended.IsZero()
	if live {
		p.ended = time.Now() // forgotten after Retain, as an ended one
	}
	if !live || p.standIn == "" || n.closed || n.sb == nil {
		return
	}
	sb, id := n.sb, p.standIn
	n.wg.Add(1)
	n.ending++
	go func() {
		defer func() {
			n.mu.Lock()
			n.ending--
			n.mu.Unlock()
			n.wg.Done()
		}()
		if err := sb.EndPhoneCall(n.ctx, id, reason); err != nil && calls.ErrorCode(err) != calls.CodeCallNotFound {
			n.log.Warn("could not end a stand-in whose far node is lost", "call_id", id, "err", err)
		}
	}()
}

// closeMedia closes stand-in id's audio leg off the caller's path
// (Update runs under the switchboard's live state). Network.mu is held.
func (n *Network) closeMedia(id string) {
	if n.cfg.Media == nil || id == "" {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.cfg.Media.Close(id)
	}()
}

// mediaEnded closes stand-in id's leg just opened when p ended meanwhile
// (its Update's closeMedia may have come first).
func (n *Network) mediaEnded(p *pair, id string) {
	n.mu.Lock()
	ended := !p.ended.IsZero()
	n.mu.Unlock()
	if ended {
		n.cfg.Media.Close(id)
	}
}

// idle reports whether nothing is being sent or handled (tests).
func (n *Network) idle() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inFlight > 0 || n.ending > 0 {
		return false
	}
	for _, p := range n.pairs {
		if p.sending {
			return false
		}
	}
	return true
}

// flushWait bounds how long Close waits for the far nodes to answer what
// is queued for them.
const flushWait = 3 * time.Second

// Close sends what is queued (for flushWait at most, until ctx ends), then
// stops handling messages and waits for its goroutines. Call it after the
// switchboard's Close, so that the far nodes hear how its calls ended.
func (n *Network) Close(ctx context.Context) error {
	var err error
	ctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	for !n.idle() {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("peercall: close with messages unsent: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	sub := n.sub
	n.mu.Unlock()
	if sub != nil {
		if uerr := sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) {
			err = errors.Join(err, fmt.Errorf("peercall: unsubscribe: %w", uerr))
		}
	}
	n.stop()
	n.wg.Wait()
	return err
}

// sweep forgets the pairs whose stand-in ended longer than Retain ago.
func (n *Network) sweep() {
	defer n.wg.Done()
	tick := time.NewTicker(min(n.cfg.Retain/4, 30*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-tick.C:
			n.mu.Lock()
			for id, p := range n.pairs {
				if !p.sending && !p.ended.IsZero() && now.Sub(p.ended) > n.cfg.Retain {
					p.cancel() // its context leaves the network's
					delete(n.pairs, id)
				}
			}
			n.mu.Unlock()
		}
	}
}
