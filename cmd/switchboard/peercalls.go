package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtp"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
	"github.com/switchboard/switchboard/internal/peercall"
)

// peerCalls carries calls between this node's identities and the other
// nodes' (package peercall), on a NATS connection of its own, so that its
// traffic is counted apart.
type peerCalls struct {
	conn  *nats.Conn
	net   *peercall.Network
	media *peerMedia
	// rooms claims the group calls by GUID and rooms this node anchors
	// (docs/cluster.md, "Group calls by GUID and rooms").
	rooms *cluster.Rooms
}

// peerCallSecret signs the messages of calls between nodes: derived from
// the admin key, as the forwarding secret is, under a label of its own.
func peerCallSecret(adminKey string) []byte {
	return adminKeyDerived(adminKey, "switchboard cluster calls v1")
}

// startPeerCalls readies the network of calls between nodes, with
// --cluster: it must exist before the switchboard (calls.Config.Peers),
// and serves once the switchboard does (servePeerCalls). Without a
// cluster it answers nil.
func (m *Main) startPeerCalls() (calls.PeerNetwork, error) {
	if m.cluster == nil {
		return nil, nil
	}
	c := m.Config.Cluster
	nc, err := nats.Connect(c.URL, nats.Name("switchboard "+c.NodeID+" calls"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("calls between nodes: connect to NATS: %w", err)
	}
	ports := c.RTPPorts
	if ports == "" {
		ports = DefaultClusterRTPPorts
	}
	// The far node sends as long as the call lives, held or not: a leg
	// does not time out on silence. Nodes reach each other directly at
	// the addresses they describe, so a leg takes packets only from its
	// far node's (FixedPeer): a stream still sent to a reused port, by a
	// node that has not yet heard its call ended, cannot take it over.
	engine, err := rtp.NewEngine(rtp.Config{Ports: ports, ListenIP: c.MediaIP, PublicIP: c.MediaIP,
		SilenceTimeout: -1, FixedPeer: true, Logger: m.Logger})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("--cluster-rtp-ports: %w", err)
	}
	media := &peerMedia{engine: engine, mixer: m.mixer, legs: map[string]*rtp.Leg{}}
	net, err := peercall.New(peercall.Config{Conn: nc, Node: c.NodeID, SubjectPrefix: c.SubjectPrefix,
		Secret: peerCallSecret(m.Config.AdminKey), Directory: m.cluster, Media: media, Logger: m.Logger})
	if err != nil {
		nc.Close()
		_ = engine.Close()
		return nil, fmt.Errorf("calls between nodes: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerRoomsOpenWait)
	defer cancel()
	rooms, err := m.cluster.OpenRooms(ctx)
	if err != nil {
		_ = net.Close(ctx)
		nc.Close()
		_ = engine.Close()
		return nil, fmt.Errorf("calls between nodes: %w", err)
	}
	m.cluster.OnNodeGone(net.NodeGone)
	m.peerCalls = &peerCalls{conn: nc, net: net, media: media, rooms: rooms}
	return net, nil
}

// peerRoomsOpenWait bounds the opening of the room claims' bucket.
const peerRoomsOpenWait = 10 * time.Second

// roomClaims is the switchboard's calls.RoomClaims: nil without a cluster.
func (m *Main) roomClaims() calls.RoomClaims {
	if m.peerCalls == nil {
		return nil
	}
	return m.peerCalls.rooms
}

// servePeerCalls starts taking the other nodes' calls.
func (m *Main) servePeerCalls() error {
	if m.peerCalls == nil {
		return nil
	}
	return m.peerCalls.net.Serve(m.switchboard)
}

// stopPeerCalls tells the far nodes what is left to tell (how this node's
// calls ended: call it after the switchboard's Close) and stops.
func (m *Main) stopPeerCalls(ctx context.Context) error {
	if m.peerCalls == nil {
		return nil
	}
	err := m.peerCalls.net.Close(ctx)
	if rerr := m.peerCalls.rooms.Close(ctx); rerr != nil {
		err = errors.Join(err, fmt.Errorf("calls between nodes: release the room claims: %w", rerr))
	}
	if cerr := m.peerCalls.media.engine.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("calls between nodes: close the audio legs: %w", cerr))
	}
	if derr := m.peerCalls.conn.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		err = errors.Join(err, fmt.Errorf("calls between nodes: drain NATS: %w", derr))
	}
	return err
}

// peerMedia is the audio of calls across nodes (docs/cluster.md, "Media
// across nodes"): each stand-in's plain RTP leg, PCMU, to the far node's
// stand-in's, is that stand-in's own endpoint in this node's mixer, as a
// phone call's leg is. So each node mixes for its own parties, and the
// rule that only the active call's audio reaches an agent is kept by the
// agent's own node.
type peerMedia struct {
	engine *rtp.Engine
	mixer  *audio.Mixer

	mu   sync.Mutex
	legs map[string]*rtp.Leg // by stand-in id
}

var _ peercall.Media = (*peerMedia)(nil)

// open opens stand-in id's leg, describes it with describe, and attaches
// it to the mixer.
func (p *peerMedia) open(id string, describe func(*rtp.Leg) ([]byte, error)) ([]byte, error) {
	leg, err := p.engine.NewLeg(rtp.LegOptions{})
	if err != nil {
		return nil, err
	}
	sdp, err := describe(leg)
	if err != nil {
		_ = leg.Close()
		return nil, err
	}
	p.mu.Lock()
	if old := p.legs[id]; old != nil {
		p.mixer.Detach(id, old)
	}
	p.legs[id] = leg
	p.mu.Unlock()
	p.mixer.Attach(id, leg)
	return sdp, nil
}

func (p *peerMedia) Offer(id string) ([]byte, error) {
	return p.open(id, (*rtp.Leg).Offer)
}

func (p *peerMedia) Answer(id string, offer []byte) ([]byte, error) {
	return p.open(id, func(l *rtp.Leg) ([]byte, error) { return l.Answer(offer) })
}

func (p *peerMedia) Apply(id string, answer []byte) error {
	p.mu.Lock()
	leg := p.legs[id]
	p.mu.Unlock()
	if leg == nil {
		return fmt.Errorf("no audio leg for stand-in %s", id)
	}
	return leg.ApplyAnswer(answer)
}

// Close detaches stand-in id's leg from the mixer, which closes it.
func (p *peerMedia) Close(id string) {
	p.mu.Lock()
	leg := p.legs[id]
	delete(p.legs, id)
	p.mu.Unlock()
	if leg != nil {
		p.mixer.Detach(id, leg)
	}
}

// peerJoinWait bounds how long a join on a node that does not anchor the
// group call or room waits for the anchor's roster before it answers
// (calls.Config.JoinWait): the dial's round trip, normally milliseconds.
const peerJoinWait = 2 * time.Second
