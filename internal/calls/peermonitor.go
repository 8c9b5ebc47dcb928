package calls

import (
	"context"
	"slices"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// Listen, whisper and barge across the nodes of a cluster.
//
// A supervisor's monitor leg is her call, so it lives on the node that
// owns her (her hold rule, her events); the call she monitors lives on the
// node that owns its agent. When they differ, sue on node B monitoring
// alice's call on node A, the monitor leg is split as a join into a room
// anchored elsewhere is (peerroom.go):
//
//   - On B, a mirror: sue's monitor leg (its joiner), a hidden stand-in
//     whose line (PeerNetwork.Join, its view naming the mode and the
//     monitored call) is paired with a stand-in for her on A, and ghosts of
//     the parties of alice's call, the first of them alice's (its id that
//     of alice's call on A: her leg's MonitoredCallID). The stand-in's
//     roster keeps the ghosts current, so sue sees every party.
//   - On A, a stand-in for sue in alice's conversation that is a monitor
//     leg (PeerMonitor): the mixer there applies her mode to what the
//     stand-in's audio leg carries (nobody hears her in listen, alice alone
//     in whisper, everyone in barge), and only those who would see her on
//     one node see her. Her mode changes and her leaving come from B
//     (PeerChange.Monitor, PeerChange.End) and are in alice's timeline with
//     sue, a supervisor, as their actor.
//
// On B sue hears the hidden stand-in's leg (A's mix for her) and, but in
// listen, is sent to it; A decides who hears her. Either side's end ends
// the other: alice's call ending on A ends the stand-in (as one node's
// endMonitors does) and so sue's leg on B; sue leaving on B ends the
// stand-in on A. A node lost ends the other's half (peercall's NodeGone).

// MonitorVia is what the call's node tells the supervisor's node of a
// call she asks to monitor (Switchboard.MonitorVia): where it runs and
// what it is.
type MonitorVia struct {
	// Node is the node that runs the call.
	Node string `json:"node"`
	// ServerCallID and Kind are the monitored call's conversation.
	ServerCallID string `json:"serverCallId"`
	Kind         Kind   `json:"kind,omitempty"`
	// CallID is the monitored (agent's) call's id on Node.
	CallID string `json:"callId"`
	// Agent is whose call it is.
	Agent CallerInfo `json:"agent"`
}

// PeerMonitorRequest is a supervisor on another node monitoring a call of
// this node's.
type PeerMonitorRequest struct {
	// ServerCallID is the monitored call's conversation, as her node was
	// told (MonitorVia).
	ServerCallID string
	// Monitored is the monitored call's id here.
	Monitored string
	// Mode is her mode at first.
	Mode MonitorMode
	// Supervisor is who monitors, with her name.
	Supervisor CallerInfo
	// Line hears every change of her stand-in here.
	Line PhoneLine
}

// nodeNamer is a peer network that knows its own node's id.
type nodeNamer interface {
	Node() string
}

// MonitorVia answers, on the node that runs the call id, what the node of
// the supervisor p needs to monitor it from there (MonitorAcross). It
// checks what Monitor checks of the call. Errors: forbidden,
// call_not_found, invalid_state, not_implemented (no peer network).
func (s *Switchboard) MonitorVia(ctx context.Context, p Principal, id string) (MonitorVia, error) {
	const op = "monitor across nodes"
	nn, ok := s.cfg.Peers.(nodeNamer)
	if !ok || nn.Node() == "" {
		return MonitorVia{}, withOp(op, Errorf(CodeNotImplemented, "this node cannot monitor a call for a supervisor served by another node"))
	}
	if p.Role != RoleSupervisor {
		return MonitorVia{}, withOp(op, Errorf(CodeForbidden, "only supervisors may listen to, whisper in or barge into calls"))
	}
	s.live.Lock()
	defer s.live.Unlock()
	l := s.legs[id]
	if l == nil || l.standIn {
		return MonitorVia{}, withOp(op, errCallNotFound(id))
	}
	target := l
	if l.monitor != "" {
		target = l.monitored
	}
	switch {
	case target.party.id == p.Identifier.RawID():
		return MonitorVia{}, withOp(op, Errorf(CodeInvalidState, "a supervisor monitors others' calls, not her own"))
	case target.ghost || !target.party.supervised() || target.line != nil:
		return MonitorVia{}, withOp(op, Errorf(CodeForbidden, "only an agent's or a supervisor's call can be monitored"))
	}
	return MonitorVia{Node: nn.Node(), ServerCallID: target.conv.id, Kind: target.conv.kind, CallID: target.id,
		Agent: CallerInfo{Identifier: target.party.ident, DisplayName: target.party.displayName}}, nil
}

// MonitorAcross is Monitor on the supervisor's node for a call another
// node runs (via, from MonitorVia there): the first request makes her
// monitor leg here, a mirror whose hidden stand-in joins the call there
// (PeerNetwork.Join, answered by PeerMonitor), holding her active call in
// the same step; a later one changes her mode on the same leg, here and
// there. The answer is her monitor leg, once the call's node sent its
// parties (JoinWait at most). Errors as Monitor's.
func (s *Switchboard) MonitorAcross(ctx context.Context, p Principal, via MonitorVia, req MonitorRequest) (Call, error) {
	const op = "monitor across nodes"
	if !req.Mode.Valid() {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "mode must be listen, whisper or barge, not %q", req.Mode))
	}
	if p.Role != RoleSupervisor {
		return Call{}, withOp(op, Errorf(CodeForbidden, "only supervisors may listen to, whisper in or barge into calls"))
	}
	if s.cfg.Peers == nil || via.Node == "" || via.CallID == "" || via.Agent.Identifier.Validate() != nil {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a call on another node needs its node, its id and its agent"))
	}
	var out Call
	var rostered <-chan struct{}
	err := func() error {
		tx := s.begin(&p)
		defer tx.done()
		sup, err := tx.identify(p)
		if err != nil {
			return err
		}
		if mon := remoteMonitor(sup, via.CallID); mon != nil {
			tx.setMonitorMode(mon, req.Mode)
			out = mon.view(false)
			return nil
		}
		switch {
		case via.Agent.Identifier.RawID() == sup.id:
			return Errorf(CodeInvalidState, "a supervisor monitors others' calls, not her own")
		case sup.conns == 0:
			return Errorf(CodeInvalidState, "open the event stream (GET /api/events) on this node first: monitoring joins the call as a call of yours")
		case s.draining:
			return errDraining
		}
		refresh(sup, p)
		self := CallerInfo{Identifier: p.Identifier, DisplayName: sup.displayName}
		c := &conversation{id: via.ServerCallID, kind: via.Kind}
		if c.kind == "" {
			c.kind = OneToOne
		}
		mon := tx.newLeg(sup, c, Outgoing, self, phaseConnecting)
		c.joiner = mon
		agent := &leg{id: via.CallID, party: tx.party(via.Agent.Identifier), conv: c, direction: Incoming,
			callerInfo: via.Agent, start: tx.now, connectedAt: tx.now, phase: phaseLive, standIn: true, ghost: true}
		if via.Agent.DisplayName != "" {
			agent.party.displayName = via.Agent.DisplayName
		}
		tx.seeNew(agent)
		c.members = append(c.members, agent)
		c.all = append(c.all, agent)
		mon.monitor, mon.monitored = req.Mode, agent
		mon.barged = req.Mode == MonitorBarge
		if s.cfg.JoinWait > 0 {
			c.rostered = make(chan struct{})
			rostered = c.rostered
		}
		if err := tx.plan(mon, holdpolicy.Join); err != nil {
			return err
		}
		tx.goLive(mon)
		si := tx.newLeg(sup, c, Outgoing, self, phaseConnecting)
		tx.standIn(si)
		si.hidden = true
		tx.goLive(si)
		v := si.lineView()
		v.MonitorMode, v.MonitoredCallID = req.Mode, via.CallID
		si.line = s.cfg.Peers.Join(v, p.Role, via.Node)
		tx.settle(mon)
		tx.emitMonitor(mon, "")
		out = mon.view(false)
		return nil
	}()
	if err != nil {
		return Call{}, withOp(op, err)
	}
	if rostered != nil {
		out = s.awaitRoster(ctx, out, rostered)
	}
	return out, nil
}

// StopMonitorAcross is StopMonitor on the supervisor's node for the call
// callID another node runs: her monitor leg of it ends. Errors:
// forbidden, invalid_state (she is not monitoring it).
func (s *Switchboard) StopMonitorAcross(ctx context.Context, p Principal, callID string) (Call, error) {
	if p.Role != RoleSupervisor {
		return Call{}, withOp("stop monitor", Errorf(CodeForbidden, "only supervisors may listen to, whisper in or barge into calls"))
	}
	tx := s.begin(&p)
	defer tx.done()
	sup, err := tx.identify(p)
	if err != nil {
		return Call{}, withOp("stop monitor", err)
	}
	mon := remoteMonitor(sup, callID)
	if mon == nil {
		return Call{}, withOp("stop monitor", Errorf(CodeInvalidState, "not monitoring call %s", callID))
	}
	tx.endLeg(mon, ReasonHungUp, ReasonRemoteHungUp)
	return mon.view(false), nil
}

// remoteMonitor is sup's live monitor leg of the call callID on another
// node, or nil.
func remoteMonitor(sup *party, callID string) *leg {
	for _, l := range sup.legs {
		if l.monitor != "" && l.monitored != nil && l.monitored.ghost && l.monitored.id == callID && l.phase != phaseEnded {
			return l
		}
	}
	return nil
}

// PeerMonitor adds a supervisor owned by another node to a live call of
// this node's as a monitor leg in req.Mode: a stand-in, live at once,
// whose line carries her audio and the call's parties to her node. The
// answer is the stand-in. Errors: invalid_identifier, invalid_request,
// call_not_found (the call is not here or not live), forbidden,
// invalid_state, unavailable, draining.
func (s *Switchboard) PeerMonitor(ctx context.Context, req PeerMonitorRequest) (Call, error) {
	const op = "peer monitor"
	if err := req.Supervisor.Identifier.Validate(); err != nil {
		return Call{}, withOp(op, err)
	}
	if req.Line == nil || !req.Mode.Valid() {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a monitor from another node needs its line and a mode"))
	}
	p := Principal{Identifier: req.Supervisor.Identifier, DisplayName: req.Supervisor.DisplayName, Role: RoleSupervisor}
	tx := s.begin(&p)
	defer tx.done()
	if s.closed {
		return Call{}, withOp(op, errClosed)
	}
	target := s.legs[req.Monitored]
	switch {
	case target == nil || target.standIn || target.monitor != "" || target.conv.id != req.ServerCallID:
		return Call{}, withOp(op, errCallNotFound(req.Monitored))
	case target.phase != phaseLive || target.inLobby:
		return Call{}, withOp(op, Errorf(CodeInvalidState, "call %s is %s: only a live call can be monitored", target.id, target.state()))
	case !target.party.supervised() || target.line != nil:
		return Call{}, withOp(op, Errorf(CodeForbidden, "only an agent's or a supervisor's call can be monitored"))
	case s.draining:
		return Call{}, withOp(op, errDraining)
	}
	sup := tx.party(req.Supervisor.Identifier)
	if target.party == sup || slices.ContainsFunc(target.conv.members, func(m *leg) bool { return m.party == sup }) {
		return Call{}, withOp(op, Errorf(CodeInvalidState, "already a participant of this call"))
	}
	if req.Supervisor.DisplayName != "" {
		sup.displayName = req.Supervisor.DisplayName
	}
	l := tx.newLeg(sup, target.conv, Incoming, req.Supervisor, phaseLive)
	tx.standIn(l)
	l.line = req.Line
	l.monitor, l.monitored = req.Mode, target
	l.barged = req.Mode == MonitorBarge
	tx.goLive(l)
	tx.emitMonitor(l, "")
	return l.view(false), nil
}

// peerMonitorChange applies the part of a change from the supervisor's
// node that is hers alone to her stand-in l (a monitor leg): she, a
// supervisor, is its actor, and her new mode, if any, applies from the
// next frame on.
func (tx *txn) peerMonitorChange(l *leg, ch PeerChange) {
	if l.monitor == "" || l.hidden {
		return
	}
	tx.actor.Role, tx.actor.DisplayName = RoleSupervisor, l.callerInfo.DisplayName
	tx.actorOwner, tx.actorLast = nil, nil
	if ch.Monitor.Valid() && l.phase != phaseEnded {
		tx.setMonitorMode(l, ch.Monitor)
	}
}

// monitorLine is the line to the call's node of a supervisor's monitor
// leg of a call on another node (her mirror's hidden stand-in's), or nil.
func monitorLine(mon *leg) PeerSender {
	if mon.monitored == nil || !mon.monitored.ghost {
		return nil
	}
	return mirrorLine(mon)
}
