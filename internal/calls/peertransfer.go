package calls

import "slices"

// Transfers across the nodes of a cluster.
//
// A transfer is done on the agent's node, in the conversation her call to
// the customer is a part of there: the anchor of a 1:1 call between nodes
// or its mirror on the callee's node (peer.go) are both a 1:1
// conversation whose far party is a stand-in. Blind, the target is invited
// into it (a stand-in dialed to its node when it lives on another); a
// completed consult moves the target's leg into it (a stand-in too when
// the target lives on another node: the pair's line goes with it). The
// agent leaves (0/7015), and the conversation on her node goes on, joining
// customer and target: it carries the audio between them even when both
// live on other nodes.
//
// Each stand-in that now faces another party of this node's end is
// re-paired: its line tells the far node (PeerChange.Repair), whose
// stand-in takes the new party's identity (repair), so the customer sees
// the target, and the target the customer, where each of them lives. A
// far node's history of the call shows the new party in place of the
// agent. Each transferUpdated meant for a stand-in goes to its far node
// (PeerChange.Transfer, emitAcross), whose parties of the pair record it
// with the agent as the actor, as on one node: their calls do not move
// there, so it says no serverCallId.
//
// Merge across nodes: when the agent's node runs both calls (their far
// parties are callees' stand-ins, as when she placed the calls), the
// others of the merged call move into the first, a group call from then
// on, as on one node; each stand-in's line then sends the roster, and its
// far node makes its 1:1 call a group call showing everyone, as for a
// participant added to a call across nodes (peerroom.go). A call the
// agent's node only mirrors (the far party called her, or added her to
// its group call) is merged once her node took its anchor over, when
// nobody else is in it, and a group call another node runs with others
// in it (or she joined there) is joined to the merged call by a bridge
// (peermerge.go).

// transferredAway reports whether p, in a 1:1 stand-in's view, is a party
// who transferred the call and left: the pair's party is the other.
func transferredAway(c Call, p *Participant) bool {
	return (c.Kind == "" || c.Kind == OneToOne) && p.CallEndReason != nil && *p.CallEndReason == ReasonTransferred
}

// repairPairs re-pairs the live stand-ins of the 1:1 conversation c, in
// which a transfer just joined two parties: each faces the other party
// now. A ringing stand-in (the target of a blind transfer) was dialed
// with the customer already.
func (tx *txn) repairPairs(c *conversation) {
	if c.kind != OneToOne || len(c.members) != 2 {
		return
	}
	for i, m := range c.members {
		if !m.standIn || m.phase != phaseLive {
			continue
		}
		ps, ok := m.line.(PeerSender)
		if !ok {
			continue
		}
		o := c.members[1-i]
		who := CallerInfo{Identifier: o.party.ident, DisplayName: o.displayName()}
		if m.direction == Incoming {
			// The callee's stand-in: its caller is this node's party of
			// the pair (pairParty).
			tx.touch(c)
			m.callerInfo = who
		}
		ps.Send(PeerChange{Repair: &who})
	}
}

// repair makes the stand-in l stand in for who, whom a transfer on the far
// node joined to this node's party in l's place.
func (tx *txn) repair(l *leg, who CallerInfo) {
	if l.conv.kind == Room || l.hidden || l.phase == phaseEnded || l.party.id == who.Identifier.RawID() || who.Identifier == EchoBot {
		// The echo bot is no party a stand-in stands in for: the far
		// side keeps showing who it showed.
		return
	}
	if err := who.Identifier.Validate(); err != nil {
		return
	}
	pt := tx.party(who.Identifier)
	if pt.displayName == "" {
		pt.displayName = who.DisplayName
	}
	tx.touch(l.conv)
	l.party = pt
	if l.direction == Outgoing {
		l.callerInfo = who // a caller's stand-in is its own caller
	}
}

// emitAcross sends an event meant for the stand-in l to its far node, when
// it is a step of a transfer or merge (transferUpdated): the stand-in is
// nobody's call here, its far party's call there records the step
// (peerTransfer). Other events for a stand-in are nobody's: its far node
// makes its own from the pair's changes.
func (tx *txn) emitAcross(l *leg, typ EventType, data any) {
	d, ok := data.(TransferData)
	if typ != EventTransferUpdated || !ok || l.ghost || l.phase == phaseEnded {
		return
	}
	if ps, ok := l.line.(PeerSender); ok {
		d.CallID, d.ServerCallID = "", "" // her own events' only; the far call keeps its conversation
		ps.Send(PeerChange{Transfer: &d})
	}
}

// peerTransfer records a step of a transfer or merge done on the far node
// of the stand-in l in the calls of this node's parties facing it, with
// the agent who did it as the actor, as on one node (monitoring
// supervisors are not told, as there).
func (tx *txn) peerTransfer(l *leg, data TransferData) {
	agent, err := ParseRawID(data.Agent)
	if err != nil || l.ghost {
		return
	}
	tx.actAs(Principal{Identifier: agent, Role: RoleAgent})
	tx.touch(l.conv)
	for _, m := range l.conv.members {
		if !m.standIn && m.monitor == "" {
			tx.emit(m, EventTransferUpdated, data)
		}
	}
}

// farAnchored reports whether m shows that another node runs m's
// conversation: a caller's stand-in (this conversation mirrors the
// caller's) or a ghost.
func farAnchored(m *leg) bool {
	return m.standIn && (m.direction == Outgoing || m.ghost || m.hidden)
}

// crossNode reports whether the conversation of l has a party on another
// node.
func crossNode(l *leg) bool {
	return slices.ContainsFunc(l.conv.members, func(m *leg) bool { return m.standIn })
}
