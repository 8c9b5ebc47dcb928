package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/peercall"
)

// peerCalls carries calls between this node's identities and the other
// nodes' (package peercall), on a NATS connection of its own, so that its
// traffic is counted apart.
type peerCalls struct {
	conn *nats.Conn
	net  *peercall.Network
}

// peerCallSecret signs the messages of calls between nodes: derived from
// the admin key, as the forwarding secret is, under a label of its own.
func peerCallSecret(adminKey string) []byte {
	mac := hmac.New(sha256.New, []byte(adminKey))
	mac.Write([]byte("switchboard cluster calls v1"))
	return mac.Sum(nil)
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
	net, err := peercall.New(peercall.Config{Conn: nc, Node: c.NodeID, SubjectPrefix: c.SubjectPrefix,
		Secret: peerCallSecret(m.Config.AdminKey), Directory: m.cluster, Logger: m.Logger})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("calls between nodes: %w", err)
	}
	m.cluster.OnNodeGone(net.NodeGone)
	m.peerCalls = &peerCalls{conn: nc, net: net}
	return net, nil
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
	if derr := m.peerCalls.conn.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		err = errors.Join(err, fmt.Errorf("calls between nodes: drain NATS: %w", derr))
	}
	return err
}
