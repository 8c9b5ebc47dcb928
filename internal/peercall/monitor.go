package peercall

import (
	"context"

	"github.com/switchboard/switchboard/internal/calls"
)

// A supervisor's monitor leg of a call on another node (calls,
// peermonitor.go) is a join whose dial names the monitored call and her
// mode: her node's mirror's hidden stand-in dials, and this node, which
// runs the call, answers with calls.Switchboard.PeerMonitor.

// monitorSwitchboard is a switchboard that takes monitors from other
// nodes.
type monitorSwitchboard interface {
	PeerMonitor(ctx context.Context, req calls.PeerMonitorRequest) (calls.Call, error)
}

// Node answers this node's id (calls.MonitorVia names it to the
// supervisor's node).
func (n *Network) Node() string { return n.cfg.Node }

// peerMonitor runs a monitor dial d of the pair p on sb.
func (n *Network) peerMonitor(sb Switchboard, p *pair, d *dial) (calls.Call, error) {
	ms, ok := sb.(monitorSwitchboard)
	if !ok {
		return calls.Call{}, calls.Errorf(calls.CodeNotImplemented, "this node takes no monitors from other nodes")
	}
	return ms.PeerMonitor(p.ctx, calls.PeerMonitorRequest{ServerCallID: d.ServerCallID, Monitored: d.Monitored,
		Mode: d.Monitor, Supervisor: d.Caller, Line: p})
}
