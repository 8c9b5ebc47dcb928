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
	queue []func()
}

// NewPeers returns a cluster with no nodes.
func NewPeers(tb testing.TB) *Peers {
	return &Peers{tb: tb, nodes: map[string]*calls.Switchboard{}, owner: map[string]string{}}
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
