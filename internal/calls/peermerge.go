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
// A group call another node runs with others than its caller in it (her
// mirror shows them as ghosts), or one she joined there by its GUID, is
// merged by a bridge, since that node's conversation has parties of its
// own and cannot become a mirror: the merged call is the conversation of
// her other call, on her node (either way round: when the call kept is
// the far group call, her leg of it moves into that conversation and
// takes its serverCallId), and the far call's stand-in facing its anchor
// (the caller's stand-in, or the mirror's hidden stand-in) moves into it
// with the ghosts. That stand-in stays paired with her stand-in on the
// anchor: the audio crosses in that pair's media leg both ways (the
// anchor's mix to her node's merged call, her node's mix of the merged
// call to the anchor), the anchor's roster keeps the ghosts current, and
// acts on the ghosts (mute, remove) go to the anchor on its line
// (peeract.go). The bridge carries nobody's hold or mute: her hold of the
// merged call is hers alone, as on one node, and the others keep hearing
// each other. An end from the anchor ends the bridge and its ghosts only,
// unless the call was ended for everyone (then everyone here too); once
// nobody of her node is left in the merged call, the bridge ends, and the
// anchor ends her stand-in. Limits: the anchor's parties keep seeing her
// alone of her node's parties (they hear them all); a merged call joins
// one such call (a second, or two far group calls together, or one with
// another party of her node in it: not_implemented).

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

// farGroup is the stand-in of x's call facing the node that runs it, when
// that call is a group call another node runs with others than its caller
// in it (x an invitee: its caller's stand-in) or one x's party joined
// there by its GUID (x the mirror's joiner: its hidden stand-in), and
// nobody else of this node is in it; nil otherwise. Such a call is merged
// by a bridge (bridgeTo).
func farGroup(x *leg) *leg {
	c := x.conv
	if c.kind != Group || bridged(c) {
		return nil
	}
	var s *leg
	for _, m := range c.members {
		switch {
		case m == x, m.ghost, m.monitor != "":
		case s == nil && m.standIn && m.line != nil && m.phase == phaseLive &&
			(m.hidden && c.joiner == x || !m.hidden && c.joiner == nil && m.direction == Outgoing):
			s = m
		default:
			return nil
		}
	}
	return s
}

// bridgeTo makes s, the stand-in of a group call another node runs that a
// merge just moved into c with its ghosts, c's bridge: it stays paired with
// the agent's stand-in there, carrying the audio both ways, and the
// anchor's roster keeps the ghosts current. It takes no part in the pair's
// hold and mute any more (its line shows the pair's party live and
// unmuted, lineView, taking back a hold sent before the merge): the merged
// call's parties hold and mute as in any group call, and an end on either
// side ends only the pair, unless the call was ended for everyone.
func (tx *txn) bridgeTo(c *conversation, s *leg) {
	tx.touch(c)
	c.bridge = s
	s.direction = Incoming
}

// endBridge ends what a bridge leaves behind: once the bridge itself ended,
// its ghosts leave the members as they stand (the history keeps them); once
// nobody of this node is left beside it, the bridge ends (its line tells
// the anchor, which ends the agent's stand-in there).
func (tx *txn) endBridge(c *conversation, ended *leg) {
	s := c.bridge
	switch {
	case s == nil || s.conv != c:
		return
	case s == ended:
		c.members = slices.DeleteFunc(c.members, func(m *leg) bool { return m.ghost })
		return
	}
	if s.phase != phaseEnded && !slices.ContainsFunc(c.members, func(m *leg) bool { return m != s && !m.ghost && m.monitor == "" }) {
		tx.endLeg(s, ReasonHungUp, ReasonHungUp)
	}
}

// bridged reports whether c is a merged call joined to a group call
// another node runs by a live bridge.
func bridged(c *conversation) bool {
	return c.bridge != nil && c.bridge.phase != phaseEnded
}
