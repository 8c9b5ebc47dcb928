package calls

import "slices"

// Merge across nodes when the agent's node only mirrors a call.
//
// A call whose far party called the agent from another node (a 1:1 call,
// or a group call that party added her to, as a queue adds its agent) is,
// on her node, a mirror: her leg and the caller's stand-in (peer.go,
// peerroom.go), while the caller's node anchors the conversation. When
// nobody else is in it, her node takes the anchor over before such a call
// is merged (either of the two): its stand-in becomes the callee's
// stand-in of a call her node placed (direction Incoming, its caller her),
// and its line tells the far node (PeerChange.Reanchor), whose stand-in of
// her becomes a caller's stand-in (reanchor): the far conversation is a
// mirror of hers from then on, as if she had placed the call. Then the
// merge goes on as when her node runs both calls (peertransfer.go): the
// stand-in moves into the merged call, its line sends the roster, and the
// far node makes its call a group call showing everyone; the audio goes
// on in the pair's media leg, mixed now in the merged call on her node.
//
// The far node flips its end only when it is the conversation of one of
// its parties with her stand-in alone, and no room (a group call by GUID
// is one: a queue's caller's call is such a call, to which the queue
// added her; it keeps its claim, so a later join by its GUID still lands
// there and hears the merged call through the pair). Otherwise (that conversation relays two nodes
// after a transfer there, or someone joined it meanwhile) it keeps it as
// it is: both nodes then treat the pair as a callee's (an end on either
// side reaches the other, the audio flows both ways), and the far parties
// keep seeing the agent as their only party of the merged call.
//
// A call another node runs with others than its caller in it (her mirror
// shows them), and a group call or room she joined on another node, are
// not merged: not_implemented.

// farCaller is the caller's stand-in of the mirror x belongs to (a call
// from another node's party to x's party, nobody else in it), when x's
// node may take its anchor over for a merge; nil when it may not.
func farCaller(x *leg) *leg {
	c := x.conv
	if c.kind == Room || c.joiner != nil {
		return nil
	}
	var s *leg
	for _, m := range c.members {
		switch {
		case m == x, m.monitor != "" && !m.standIn:
		case s == nil && m.standIn && m.direction == Outgoing && !m.ghost && !m.hidden && m.phase == phaseLive:
			s = m
		default:
			return nil
		}
	}
	if s == nil {
		return nil
	}
	if _, ok := s.line.(PeerSender); !ok {
		return nil
	}
	return s
}

// anchorHere makes the caller's stand-in s of a 1:1 mirror the callee's
// stand-in of a call x (the mirror's leg of this node's party) placed, and
// tells the far node to mirror this node's conversation.
func (tx *txn) anchorHere(s, x *leg) {
	tx.touch(s.conv)
	s.direction = Incoming
	s.callerInfo = CallerInfo{Identifier: x.party.ident, DisplayName: x.displayName()}
	s.line.(PeerSender).Send(PeerChange{Reanchor: true})
}

// reanchor makes the callee's stand-in l a caller's stand-in: the far node
// took its conversation's anchor over (anchorHere). Only the
// conversation of one party of this node with l alone (1:1 or a group
// call, no room) is turned into a mirror; any other is left as it is.
func (tx *txn) reanchor(l *leg) {
	c := l.conv
	if l.direction != Incoming || l.hidden || l.ghost || l.phase != phaseLive || l.monitor != "" ||
		c.kind == Room || c.joiner != nil {
		return
	}
	parties := 0
	for _, m := range c.members {
		switch {
		case m == l, m.monitor != "" && !m.standIn:
		case !m.standIn && !m.ghost && m.line == nil:
			parties++
		default:
			return
		}
	}
	if parties != 1 || !slices.Contains(c.members, l) {
		return
	}
	tx.touch(c)
	l.direction = Outgoing
	l.callerInfo = CallerInfo{Identifier: l.party.ident, DisplayName: l.displayName()}
}
