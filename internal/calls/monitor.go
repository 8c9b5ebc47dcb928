package calls

import (
	"context"
	"slices"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// Listen, whisper, barge. A supervisor monitors an agent's live call with
// a leg of her own in the agent's conversation (a monitor leg), in one of
// three modes she may change while it lasts:
//
//   - listen: she hears everyone; nobody hears her.
//   - whisper: she hears everyone; the agent alone hears her.
//   - barge: she is a participant like any other.
//
// The monitor leg is her call: it obeys her single-active-call rule
// (starting to monitor holds her active call in the same step, as joining
// a call does; starting another call holds the monitor leg) and it is in
// her snapshot and events like any call she is in. Who is told of it: the
// agent whose call she monitors, and she, always; everyone else (the
// customer) only in barge, so the customer's participants and events never
// show a listening or whispering supervisor. The agent is told in every
// mode, listen too: monitoring is announced to the person monitored.
//
// A monitor leg changes nobody else's call: it never makes the others'
// calls RemoteHold when she holds it, and her leaving never ends a 1:1
// call. It ends when the agent's leg ends (she is monitoring that agent),
// or when no member but monitors is left.
//
// Every start, change and leave is a monitorChanged event in the agent's
// call's timeline (and starts and changes in hers), with the supervisor as
// its actor.

// MonitorMode is how a supervisor takes part in an agent's call.
type MonitorMode string

// The monitor modes.
const (
	MonitorListen  MonitorMode = "listen"
	MonitorWhisper MonitorMode = "whisper"
	MonitorBarge   MonitorMode = "barge"
)

// Valid reports whether m is one of the modes.
func (m MonitorMode) Valid() bool {
	return m == MonitorListen || m == MonitorWhisper || m == MonitorBarge
}

// MonitorRequest is POST /api/calls/{id}/monitor.
type MonitorRequest struct {
	Mode MonitorMode `json:"mode"`
}

// EventMonitorChanged says a supervisor started monitoring a call, changed
// her mode, or left (Mode empty).
const EventMonitorChanged EventType = "monitorChanged"

// MonitorChangedData is the data of monitorChanged.
type MonitorChangedData struct {
	// Supervisor is the monitoring supervisor's rawId.
	Supervisor string `json:"supervisor"`
	// Agent is the rawId of the identity whose call she monitors.
	Agent string `json:"agent"`
	// Mode is her mode now; empty: she left.
	Mode MonitorMode `json:"mode,omitempty"`
	// OldMode is her mode before; empty: she just started.
	OldMode MonitorMode `json:"oldMode,omitempty"`
}

// Monitor has the supervisor monitor the call id (an agent's live call, or
// her own monitor leg of one) in req.Mode: the first request joins her to
// the call with a leg of her own, holding her active call in the same
// step; a later one changes her mode at once, on the same leg. The answer
// is her monitor leg. Errors: invalid_request (mode), forbidden (not a
// supervisor, or not an agent's or supervisor's call), call_not_found,
// invalid_state (the call is not live, she is in it as a participant, or
// she has no event connection on this node), draining.
func (s *Switchboard) Monitor(ctx context.Context, p Principal, id string, req MonitorRequest) (Call, error) {
	const op = "monitor"
	if !req.Mode.Valid() {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "mode must be listen, whisper or barge, not %q", req.Mode))
	}
	var out Call
	err := s.onMonitored(p, id, func(tx *txn, sup *party, target, mon *leg) error {
		if mon != nil {
			tx.setMonitorMode(mon, req.Mode)
			out = mon.view(false)
			return nil
		}
		if target.phase != phaseLive || target.inLobby {
			return Errorf(CodeInvalidState, "call %s is %s: only a live call can be monitored", id, target.state())
		}
		if slices.ContainsFunc(target.conv.members, func(m *leg) bool { return m.party == sup }) {
			return Errorf(CodeInvalidState, "already a participant of this call")
		}
		if sup.conns == 0 {
			return Errorf(CodeInvalidState, "open the event stream (GET /api/events) on this node first: monitoring joins the call as a call of yours")
		}
		if tx.s.draining {
			return errDraining
		}
		refresh(sup, p)
		self := CallerInfo{Identifier: p.Identifier, DisplayName: sup.displayName}
		mon = tx.newLeg(sup, target.conv, Outgoing, self, phaseConnecting)
		mon.monitor, mon.monitored = req.Mode, target
		mon.barged = req.Mode == MonitorBarge
		if err := tx.plan(mon, holdpolicy.Join); err != nil {
			return err
		}
		tx.goLive(mon)
		tx.settle(mon)
		tx.emitMonitor(mon, "")
		out = mon.view(false)
		return nil
	})
	return out, withOp(op, err)
}

// StopMonitor ends the supervisor's monitor leg of the call id (an
// agent's call she monitors, or her monitor leg itself): she leaves (0/0)
// and the call goes on. The answer is her ended monitor leg. Errors:
// forbidden, call_not_found, invalid_state (she is not monitoring it).
func (s *Switchboard) StopMonitor(ctx context.Context, p Principal, id string) (Call, error) {
	var out Call
	err := s.onMonitored(p, id, func(tx *txn, sup *party, target, mon *leg) error {
		if mon == nil {
			return Errorf(CodeInvalidState, "not monitoring call %s", id)
		}
		tx.endLeg(mon, ReasonHungUp, ReasonRemoteHungUp)
		out = mon.view(false)
		return nil
	})
	return out, withOp("stop monitor", err)
}

// onMonitored runs fn in a transaction on the call a monitor request
// names: target is the monitored leg (the agent's), mon the supervisor's
// monitor leg of its conversation if she has one.
func (s *Switchboard) onMonitored(p Principal, id string, fn func(tx *txn, sup *party, target, mon *leg) error) error {
	if p.Role != RoleSupervisor {
		return Errorf(CodeForbidden, "only supervisors may listen to, whisper in or barge into calls")
	}
	tx := s.begin(&p)
	defer tx.done()
	sup, err := tx.identify(p)
	if err != nil {
		return err
	}
	l := s.legs[id]
	if l == nil || l.standIn {
		return errCallNotFound(id)
	}
	target := l
	if l.monitor != "" {
		target = l.monitored // a monitor leg names the call it monitors
	}
	if target.party == sup {
		return Errorf(CodeInvalidState, "a supervisor monitors others' calls, not her own")
	}
	if !target.ghost && (!target.party.supervised() || target.line != nil) { // a ghost: her leg of a call on another node (peermonitor.go)
		return Errorf(CodeForbidden, "only an agent's or a supervisor's call can be monitored")
	}
	var mon *leg
	for _, m := range target.conv.members {
		if m.party == sup && m.monitor != "" {
			mon = m
		}
	}
	return fn(tx, sup, target, mon)
}

// setMonitorMode changes a monitor leg's mode, from the next frame on.
func (tx *txn) setMonitorMode(mon *leg, mode MonitorMode) {
	if mon.monitor == mode {
		return
	}
	tx.touch(mon.conv)
	old := mon.monitor
	mon.monitor = mode
	mon.barged = mon.barged || mode == MonitorBarge
	tx.emitMonitor(mon, old)
	if ps := monitorLine(mon); ps != nil {
		ps.Send(PeerChange{Monitor: mode}) // the call's node applies it (peermonitor.go)
	}
}

// emitMonitor puts a monitor leg's change in the monitored call's timeline
// and, while the leg lasts, in the supervisor's own.
func (tx *txn) emitMonitor(mon *leg, old MonitorMode) {
	data := MonitorChangedData{Supervisor: mon.party.id, Agent: mon.monitored.party.id, OldMode: old}
	if mon.phase != phaseEnded {
		data.Mode = mon.monitor
		tx.emit(mon, EventMonitorChanged, data)
	}
	if t := mon.monitored; t.phase != phaseEnded {
		tx.touch(t.conv)
		tx.emit(t, EventMonitorChanged, data)
	}
}

// sees reports whether the owner of leg v is told of member m now: anyone
// not monitoring, a barging supervisor, and, for the monitored agent and
// for other monitors, every supervisor.
func sees(v, m *leg) bool {
	return (m.monitor == "" || m.monitor == MonitorBarge || m.monitored == v || v.monitor != "") && lobbySees(v, m)
}

// seesInHistory is sees for a call's history: a supervisor who barged at
// any time was a participant for everyone.
func seesInHistory(v, m *leg) bool { return sees(v, m) || m.barged }

// monitorMedia makes mm a monitor leg's part in the conversation's audio:
// she never plays the hold tone to the others, in listen nobody hears her
// and in whisper the agent's call alone does. Her leg of a call on another
// node (its monitored leg a ghost) sends to the stand-in's leg there but
// in listen: that node's mixer keeps her from whom her mode says.
func (l *leg) monitorMedia(mm *MediaMember) {
	mm.Held = false
	switch l.monitor {
	case MonitorListen:
		mm.Send = false
	case MonitorWhisper:
		if !l.monitored.ghost {
			mm.Audience = []string{l.monitored.id}
		}
	}
}

// endMonitors ends the monitor legs left without a call to monitor: those
// of the ended leg l, and all of them once no member but monitors is left.
func (tx *txn) endMonitors(c *conversation, l *leg) {
	if l == c.joiner && l.monitor != "" {
		// Her leg of a call on another node ended: the ghosts of its
		// parties leave as they stand (her history shows the call going
		// on, as one node's does), before her hidden stand-in ends.
		c.members = slices.DeleteFunc(c.members, func(m *leg) bool { return m.ghost })
	}
	alone := !slices.ContainsFunc(c.members, func(m *leg) bool { return m.monitor == "" && !m.party.bot })
	for _, m := range slices.Clone(c.members) {
		if m.monitor != "" && (m.monitored == l || alone) {
			tx.endLeg(m, ReasonRemoteHungUp, ReasonRemoteHungUp)
		}
	}
}
