package callstest

import (
	"context"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// Peers joins Switchboards as the nodes of one cluster, for calls between
// them: a fake of calls.PeerNetwork (package peercall is the real one).
// What the stand-ins' lines say waits in one queue until Flush delivers
// it, in order, outside every Switchboard's live state.
type Peers struct {
	tb testing.TB

	mu    sync.Mutex
	nodes map[string]*calls.Switchboard
	owner map[string]string // rawId → node
	rooms map[string]roomClaim
	queue []func()

	refusal error // what Ask answers, when set (Refuse)
}

// roomClaim is a node's claim on a group call or room.
type roomClaim struct{ node, id string }

// NewPeers returns a cluster with no nodes.
func NewPeers(tb testing.TB) *Peers {
	return &Peers{tb: tb, nodes: map[string]*calls.Switchboard{}, owner: map[string]string{}, rooms: map[string]roomClaim{}}
}

// Network is node's calls.PeerNetwork, for its Config.
func (p *Peers) Network(node string) calls.PeerNetwork { return peerNet{p: p, node: node} }

// Join makes sb the switchboard of node, the owner of the identities
// rawIDs.
func (p *Peers) Join(node string, sb *calls.Switchboard, rawIDs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodes[node] = sb
	for _, id := range rawIDs {
		p.owner[id] = node
	}
}

// Flush delivers everything queued, and what that queues in turn, until
// nothing is left.
func (p *Peers) Flush() {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			return
		}
		next := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		next()
	}
}

func (p *Peers) enqueue(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, f)
}

func (p *Peers) node(name string) *calls.Switchboard {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nodes[name]
}

// peerNet is one node's view of the cluster.
type peerNet struct {
	p    *Peers
	node string
}

func (n peerNet) Locate(_ context.Context, rawIDs []string) (map[string]string, error) {
	n.p.mu.Lock()
	defer n.p.mu.Unlock()
	out := map[string]string{}
	for _, id := range rawIDs {
		if o := n.p.owner[id]; o != "" && o != n.node {
			out[id] = o
		}
	}
	return out, nil
}

// Dial rings the callee on its node once flushed.
func (n peerNet) Dial(c calls.Call, node string) calls.PhoneLine {
	near := &peerLine{p: n.p, far: node}
	n.p.enqueue(func() {
		callee, err := calls.ParseRawID(c.AgentID)
		if err != nil {
			n.p.tb.Errorf("dial %s: %v", c.AgentID, err)
			return
		}
		far := &peerLine{p: n.p, far: n.node}
		far.setFarID(c.ID)
		sc, err := n.p.node(node).StartPeerCall(context.Background(), calls.PeerCallRequest{
			ServerCallID: c.ServerCallID, Kind: c.Kind, Caller: c.CallerInfo, Callee: callee, Line: far,
			Roster: calls.DialRoster(c),
		})
		if err != nil {
			n.p.tb.Errorf("StartPeerCall on %s: %v", node, err)
			return
		}
		near.setFarID(sc.ID)
	})
	return near
}

// peerLine is a stand-in's line: each update becomes a change applied to
// the far stand-in.
type peerLine struct {
	p   *Peers
	far string

	mu    sync.Mutex
	farID string
	prev  *calls.Call
}

func (l *peerLine) setFarID(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.farID = id
}

func (l *peerLine) Update(c calls.Call) {
	l.mu.Lock()
	ch := calls.PeerChangeOf(l.prev, c)
	l.prev = &c
	l.mu.Unlock()
	if ch.IsZero() {
		return
	}
	l.p.enqueue(func() {
		l.mu.Lock()
		id := l.farID
		l.mu.Unlock()
		err := l.p.node(l.far).ApplyPeerChange(context.Background(), id, ch)
		if err != nil && calls.ErrorCode(err) != calls.CodeCallNotFound { // an end that crossed the far side's own
			l.p.tb.Errorf("apply %+v to %s on %s: %v", ch, id, l.far, err)
		}
	})
}

// Send applies an act to the far stand-in once flushed, in order with the
// updates (calls.PeerSender).
func (l *peerLine) Send(ch calls.PeerChange) {
	l.p.enqueue(func() {
		l.mu.Lock()
		id := l.farID
		l.mu.Unlock()
		if err := l.p.node(l.far).ApplyPeerChange(context.Background(), id, ch); err != nil && calls.ErrorCode(err) != calls.CodeCallNotFound {
			l.p.tb.Errorf("apply %+v to %s on %s: %v", ch, id, l.far, err)
		}
	})
}

// Ask delivers everything queued, then applies the question to the far
// stand-in and answers its error, as the far node would
// (calls.PeerAsker). A question that fails lets the test make it do so:
// see Refuse.
func (l *peerLine) Ask(ctx context.Context, ch calls.PeerChange) error {
	l.p.Flush()
	l.p.mu.Lock()
	refusal := l.p.refusal
	l.p.mu.Unlock()
	if refusal != nil {
		return refusal
	}
	l.mu.Lock()
	id := l.farID
	l.mu.Unlock()
	return l.p.node(l.far).ApplyPeerChange(ctx, id, ch)
}

// Refuse makes every question (Ask) answer err without reaching the far
// node, as when it is out of reach; nil undoes it.
func (p *Peers) Refuse(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusal = err
}

// Node answers the node's name (calls.MonitorVia names it).
func (n peerNet) Node() string { return n.node }

// Join joins the group call or room node anchors once flushed, or with
// c's MonitorMode set, monitors the call c.MonitoredCallID there.
func (n peerNet) Join(c calls.Call, role calls.Role, node string) calls.PhoneLine {
	near := &peerLine{p: n.p, far: node}
	n.p.enqueue(func() {
		far := &peerLine{p: n.p, far: n.node}
		far.setFarID(c.ID)
		var sc calls.Call
		var err error
		if c.MonitorMode != "" { // a supervisor's monitor leg (calls/peermonitor.go)
			sc, err = n.p.node(node).PeerMonitor(context.Background(), calls.PeerMonitorRequest{
				ServerCallID: c.ServerCallID, Monitored: c.MonitoredCallID, Mode: c.MonitorMode, Supervisor: c.CallerInfo, Line: far,
			})
		} else {
			sc, err = n.p.node(node).PeerJoin(context.Background(), calls.PeerJoinRequest{
				ServerCallID: c.ServerCallID, GroupID: c.GroupID, RoomID: c.RoomID, Joiner: c.CallerInfo, Role: role, Line: far,
			})
		}
		if err != nil {
			// Refused, as peercall's network does: the stand-in ends
			// with the callee's node's refusal.
			n.p.tb.Logf("PeerJoin on %s: %v", node, err)
			if err := n.p.node(n.node).EndPhoneCall(context.Background(), c.ID, calls.ReasonNotConnected); err != nil {
				n.p.tb.Errorf("end the refused joiner's stand-in %s: %v", c.ID, err)
			}
			return
		}
		near.setFarID(sc.ID)
	})
	return near
}

// Rooms is node's calls.RoomClaims, for its Config: one map of claims for
// the cluster.
func (p *Peers) Rooms(node string) calls.RoomClaims { return roomNet{p: p, node: node} }

// Claimed answers the node claiming key and its conversation ("" when
// none does).
func (p *Peers) Claimed(key string) (node, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.rooms[key]
	return c.node, c.id
}

type roomNet struct {
	p    *Peers
	node string
}

func (r roomNet) Claim(_ context.Context, key, serverCallID string) (string, string, error) {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	c, ok := r.p.rooms[key]
	if !ok {
		c = roomClaim{node: r.node, id: serverCallID}
		r.p.rooms[key] = c
	}
	if c.node == r.node {
		return "", c.id, nil
	}
	return c.node, c.id, nil
}

func (r roomNet) Holds(key, serverCallID string) bool {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	c := r.p.rooms[key]
	return c.node == r.node && c.id == serverCallID
}

func (r roomNet) Release(key, serverCallID string) {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	if c := r.p.rooms[key]; c.node == r.node && c.id == serverCallID {
		delete(r.p.rooms, key)
	}
}
