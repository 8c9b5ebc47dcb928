package calls

import (
	"context"
	"slices"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// Group calls by GUID and rooms across the nodes of a cluster.
//
// One node anchors each such conversation: the node of its first joiner,
// which claims its key (RoomClaims, a lease in the cluster's key-value
// store naming the node and the conversation's id). Its joiners owned by
// the anchor are members there as on one node. A joiner owned by another
// node, bob on node B, joins on B (his own node applies his hold rule, in
// the step that joins), into a mirror: a conversation of B's with bob's
// call, a hidden stand-in whose line (PeerNetwork.Join) is paired with a
// stand-in for bob in the anchor's conversation, and ghosts, B's copies of
// the anchor's other parties, which the anchor's stand-in's line keeps up
// to date (PeerChange.Roster). So bob sees every party, the anchor's
// parties see bob, and the pair's own changes (hold, mute, leaving) go both
// ways as for a 1:1 call between nodes. Audio: the hidden stand-in's leg is
// a member of bob's mirror (its own endpoint), so bob hears the anchor's
// mix of everyone but him, and is heard in it.

// RoomClaims says which node anchors a group call by GUID or a room
// (package cluster's Rooms). Keys are "g:"+groupId and "r:"+roomId.
type RoomClaims interface {
	// Claim answers the node anchoring key and its conversation: ""
	// (this node) and serverCallID when no node did and this node now
	// does. It is called before the live state is taken and may block
	// (bounded by ctx).
	Claim(ctx context.Context, key, serverCallID string) (node, anchorID string, err error)
	// Holds reports whether this node claimed key for serverCallID. It
	// must not block.
	Holds(key, serverCallID string) bool
	// Release gives the claim on key up once its conversation
	// serverCallID ended. It must not block.
	Release(key, serverCallID string)
}

// PeerJoinRequest is a joiner on another node joining a group call or room
// this node anchors.
type PeerJoinRequest struct {
	// ServerCallID is the anchored conversation the joiner's node was told
	// of (RoomClaims.Claim).
	ServerCallID string
	// GroupID or RoomID names it.
	GroupID, RoomID string
	// Joiner is who joins, with its name, and Role its role on its own
	// node (RoleCaller when empty): the anchor records it for the joiner,
	// so a supervisor passes the room's lobby and admits from it there, as
	// on one node.
	Joiner CallerInfo
	Role   Role
	// Line hears every change of the joiner's stand-in here.
	Line PhoneLine
}

// anchorOf answers the node anchoring key ("" for this node or no
// cluster) and the conversation's id there ("" for a new one here).
func (s *Switchboard) anchorOf(ctx context.Context, key string) (string, string) {
	if s.cfg.Rooms == nil || s.cfg.Peers == nil {
		return "", ""
	}
	s.live.Lock()
	c := s.rooms[key]
	refuse := s.closed || s.draining
	id := s.cfg.NewID()
	s.live.Unlock()
	if c != nil {
		return "", c.id
	}
	if refuse {
		return "", "" // refused in the transaction, without a claim
	}
	node, anchorID, err := s.cfg.Rooms.Claim(ctx, key, id)
	if err != nil {
		s.log.Warn("cannot tell which node runs a group call or room: running it here", "key", key, "err", err)
		return "", ""
	}
	return node, anchorID
}

// releaseClaim gives up this node's claim on the conversation c, which
// ended (or was never used).
func (tx *txn) releaseClaim(key string, c *conversation) {
	if rooms := tx.s.cfg.Rooms; rooms != nil {
		id := c.id
		tx.after = append(tx.after, func() { rooms.Release(key, id) })
	}
}

// joinRemote joins pt to the conversation node anchors as anchorID: a
// mirror here, with pt's call, holding pt's active call in the same step.
func (tx *txn) joinRemote(pt *party, p Principal, key string, req JoinRequest, node, anchorID string) (Call, error) {
	if slices.ContainsFunc(pt.legs, func(m *leg) bool { return m.conv.registryKey() == key }) {
		return Call{}, Errorf(CodeInvalidState, "already in this call")
	}
	c := &conversation{id: anchorID, kind: Group, groupID: req.GroupID, roomID: req.RoomID}
	if req.RoomID != "" {
		c.kind = Room
	}
	self := CallerInfo{Identifier: p.Identifier, DisplayName: pt.displayName}
	l := tx.newLeg(pt, c, Outgoing, self, phaseConnecting)
	c.joiner = l
	if tx.s.cfg.JoinWait > 0 {
		c.rostered = make(chan struct{})
	}
	if err := tx.plan(l, holdpolicy.Join); err != nil {
		return Call{}, err
	}
	if c.kind != Room {
		tx.goLive(l)
	}
	// A room's joiner is Connecting until the anchor's first answer says
	// whether he waits in its lobby (anchorAnswered): never Connected
	// before he is admitted, as on one node.
	si := tx.newLeg(pt, c, Outgoing, self, phaseConnecting)
	tx.standIn(si)
	si.hidden = true
	tx.goLive(si)
	si.line = tx.s.cfg.Peers.Join(si.lineView(), p.Role, node)
	tx.settle(l)
	return l.view(false), nil
}

// PeerJoin adds a joiner owned by another node to a group call or room
// this node anchors: a stand-in, live at once, whose line reports the
// conversation to the joiner's node (PeerChange.Roster). In a room with a
// lobby the stand-in waits there as a joiner on this node would
// (peerlobby.go). The answer is the stand-in. Errors: invalid_identifier,
// invalid_request, call_not_found (the conversation ended here),
// unavailable, draining.
func (s *Switchboard) PeerJoin(ctx context.Context, req PeerJoinRequest) (Call, error) {
	const op = "peer join"
	if err := req.Joiner.Identifier.Validate(); err != nil {
		return Call{}, withOp(op, err)
	}
	if req.Line == nil || (req.GroupID == "") == (req.RoomID == "") {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a join from another node needs its line and one of groupId and roomId"))
	}
	key, kind := "g:"+req.GroupID, Group
	if req.RoomID != "" {
		key, kind = "r:"+req.RoomID, Room
	}
	role := req.Role
	if !role.Valid() {
		role = RoleCaller
	}
	tx := s.begin(&Principal{Identifier: req.Joiner.Identifier, DisplayName: req.Joiner.DisplayName, Role: role})
	defer tx.done()
	if s.closed {
		return Call{}, withOp(op, errClosed)
	}
	c := s.rooms[key]
	if c != nil && c.id != req.ServerCallID {
		c = nil
	}
	if c == nil {
		switch {
		case s.rooms[key] != nil || s.cfg.Rooms == nil || !s.cfg.Rooms.Holds(key, req.ServerCallID):
			return Call{}, withOp(op, errCallNotFound(req.ServerCallID))
		case s.draining:
			return Call{}, withOp(op, errDraining)
		}
		// The joiner's node read the claim before this node's own joiner
		// made the conversation.
		c = &conversation{id: req.ServerCallID, kind: kind, groupID: req.GroupID, roomID: req.RoomID}
		s.rooms[key] = c
	}
	pt := tx.party(req.Joiner.Identifier)
	if req.Joiner.DisplayName != "" {
		pt.displayName = req.Joiner.DisplayName
	}
	if req.Role.Valid() {
		pt.role = req.Role // as a request of the joiner's here would (refresh)
	}
	l := tx.newLeg(pt, c, Incoming, req.Joiner, phaseLive)
	tx.standIn(l)
	l.line = req.Line
	tx.enterLobby(l) // waits there when the room has a lobby (peerlobby.go)
	tx.goLive(l)
	return l.view(false), nil
}

// endAnchoredStandIns ends the stand-ins of other nodes' joiners in the
// group calls and rooms this node anchors (no party's calls here end them
// once the anchor's own joiners left): their lines tell the joiners' nodes.
func (tx *txn) endAnchoredStandIns(reason EndReason) {
	var ids []string
	for id, l := range tx.s.legs {
		if l.standIn && l.direction == Incoming && tx.anchors(l.conv) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if l := tx.s.legs[id]; l != nil {
			tx.endLeg(l, reason, reason)
		}
	}
}

// anchors reports whether c is a group call by GUID or a room this node
// runs.
func (tx *txn) anchors(c *conversation) bool {
	key := c.registryKey()
	return key != "" && tx.s.rooms[key] == c
}

// mediaKey is the conversation's key in the media plane: its id, or for a
// mirror its id and joiner (two joiners on one node have a mirror each).
func (c *conversation) mediaKey() string {
	if c.joiner != nil {
		return c.id + "/" + c.joiner.party.id
	}
	return c.id
}

// lineView is what a leg's line is told: a stand-in's the history view
// (every participant, the ended ones with their end reasons), so that
// PeerChangeOf sees how its party ended; a mirror's hidden stand-in's
// shows its joiner only, the pair's party.
func (l *leg) lineView() Call {
	v := l.view(l.standIn)
	switch {
	case l.conv.bridge == l:
		// A bridge carries nobody's hold or mute (peermerge.go): the
		// pair's party shows live and unmuted, which also takes back a
		// hold the merged-away call had sent.
		id := v.CallerInfo.Identifier
		v.RemoteParticipants = []Participant{{Identifier: id, RawID: id.RawID(), DisplayName: v.CallerInfo.DisplayName, State: ParticipantConnected}}
	case l.hidden && l.conv.joiner != nil:
		v.RemoteParticipants = []Participant{l.conv.joiner.participant()}
	}
	return v
}

// endMirror ends what is left of a mirror once its joiner or its hidden
// stand-in ended: the other with it. The ghosts leave the members as they
// stand, so the joiner's history keeps them as they were, unless the
// joiner ended the call for everyone: then they end 0/4097 with it.
func (tx *txn) endMirror(c *conversation, ended *leg, peer EndReason) {
	switch {
	case ended == c.joiner:
		for _, m := range slices.Clone(c.members) {
			if m.ghost && peer == ReasonEndedForAll {
				// Ended for everyone: the anchor ends them so, and on one
				// node the joiner's history shows it in the same step.
				tx.endGhost(m, ReasonEndedForAll)
			}
			if m.hidden {
				// It ends as the others would (its line tells the anchor
				// so: 0/4097 ends the call for everyone there), the
				// joiner's own reason beside (PeerChange.PartyEnd).
				tx.endLeg(m, peer, peer)
			}
		}
	case ended.hidden:
		if j := c.joiner; j.phase != phaseEnded {
			tx.endLeg(j, peerReason(peer, j), peer)
		}
	default:
		return
	}
	c.members = slices.DeleteFunc(c.members, func(m *leg) bool { return m.ghost })
}

// setRoster brings a mirror's ghosts up to what the anchor shows its
// joiner: one per party there, by its call's id on the anchor. A callee's
// conversation (a group call's or room's invitee on another node) gets
// them too, but for its caller's stand-in, which shows the inviter.
func (tx *txn) setRoster(c *conversation, roster []Participant) {
	self := c.joiner
	if self == nil && c.bridge != nil {
		self = c.bridge // a merged call's ghosts of a group call another node runs (peermerge.go)
	}
	if self == nil {
		self = calleeOf(c)
	}
	if self == nil || self.phase == phaseEnded {
		return
	}
	if c.kind == OneToOne && (c.joiner == nil || c.joiner.monitor == "") { // a monitor's mirror shows the call's parties (peermonitor.go)
		// A 1:1 call across nodes that its caller's node made a group
		// call (a participant added): so is the callee's.
		if c.joiner != nil || !slices.ContainsFunc(roster, func(p Participant) bool {
			return p.RawID != self.party.id && !slices.ContainsFunc(c.members, func(m *leg) bool { return m.line != nil && m.party.id == p.RawID })
		}) {
			return
		}
		tx.touch(c)
		c.kind = Group
	}
	tx.touch(c)
	if c.rostered != nil {
		close(c.rostered)
		c.rostered = nil
	}
	me := self.party.id
	for _, p := range roster {
		if p.RawID == me || len(p.EndpointDetails) == 0 || p.Identifier.Validate() != nil ||
			slices.ContainsFunc(c.members, func(m *leg) bool { return m.line != nil && !m.hidden && m.party.id == p.RawID }) {
			continue
		}
		id := p.EndpointDetails[0].ParticipantID
		i := slices.IndexFunc(c.all, func(m *leg) bool { return m.ghost && m.id == id })
		ended := p.State == ParticipantDisconnected
		var g *leg
		switch {
		case i >= 0:
			g = c.all[i]
		default: // an ended one too: the history shows who came and went

			g = &leg{id: id, party: tx.party(p.Identifier), conv: c, direction: Incoming,
				callerInfo: CallerInfo{Identifier: p.Identifier, DisplayName: p.DisplayName},
				start:      tx.now, connectedAt: tx.now, standIn: true, ghost: true}
			tx.seeNew(g)
			c.members = append(c.members, g)
			c.all = append(c.all, g)
		}
		if g.phase == phaseEnded {
			continue
		}
		if p.DisplayName != "" {
			g.party.displayName = p.DisplayName
		}
		if ended {
			var reason EndReason
			if p.CallEndReason != nil {
				reason = *p.CallEndReason
			}
			tx.endGhost(g, reason)
			continue
		}
		switch p.State {
		case ParticipantRinging, ParticipantEarlyMedia:
			g.phase, g.early = phaseIncoming, p.State == ParticipantEarlyMedia
		case ParticipantConnecting:
			g.phase = phaseConnecting
		default:
			g.phase, g.early = phaseLive, false
		}
		g.holding = p.State == ParticipantHold
		g.inLobby = p.State == ParticipantInLobby
		g.muted = p.IsMuted
	}
}

// calleeOf is the callee's leg of a conversation a caller on another node
// started here (its one leg that is this node's party's call).
func calleeOf(c *conversation) *leg {
	for _, m := range c.all {
		if !m.standIn && !m.ghost && m.line == nil {
			return m
		}
	}
	return nil
}

// inviterLive reports whether a dial's roster shows its caller in the
// call already (an invitee added to a live call), not waiting for it.
func inviterLive(roster []Participant, caller string) bool {
	return slices.ContainsFunc(roster, func(p Participant) bool {
		return p.RawID == caller && (p.State == ParticipantConnected || p.State == ParticipantHold)
	})
}

// endCallee ends what is left of a group call's callee's conversation (a
// caller on another node started it here) once the callee's call ended:
// the caller's stand-in, which tells the caller's node (peer: how the
// others end there, 0/4097 when ended for everyone), and its ghosts leave
// the members as they stand, as a mirror's do.
func (tx *txn) endCallee(c *conversation, ended *leg, peer EndReason) {
	if c.kind == OneToOne || ended.standIn || ended.ghost || ended.line != nil || ended.handedOff || // the others were handed on: they stay
		!slices.ContainsFunc(c.all, func(m *leg) bool { return m.standIn && m.line != nil && m.direction == Outgoing }) {
		return
	}
	for _, m := range slices.Clone(c.members) {
		if m.ghost && peer == ReasonEndedForAll {
			tx.endGhost(m, ReasonEndedForAll) // as the caller's node will
		}
	}
	c.members = slices.DeleteFunc(c.members, func(m *leg) bool { return m.ghost })
	// In a step of its own: the callee's history keeps the caller as it
	// was, as one node's does.
	s := tx.s
	for _, m := range c.members {
		if m.standIn && m.line != nil && m.direction == Outgoing {
			id := m.id
			tx.after = append(tx.after, func() { s.endCallerStandIn(id, peer) })
		}
	}
}

// endCallerStandIn ends a group call's caller's stand-in left without its
// callee (endCallee).
func (s *Switchboard) endCallerStandIn(id string, peer EndReason) {
	tx := s.begin(nil)
	defer tx.done()
	if l := s.legs[id]; l != nil && !s.closed && l.phase != phaseEnded {
		tx.endLeg(l, peer, peer)
	}
}

// rosterOf is a view's participants as a roster: without who speaks (the
// mixer's business on each node).
func rosterOf(c Call) []Participant {
	out := make([]Participant, len(c.RemoteParticipants))
	for i, p := range c.RemoteParticipants {
		p.IsSpeaking = false
		out[i] = p
	}
	return out
}

// sameRoster reports whether two rosters show the same.
func sameRoster(a, b []Participant) bool {
	return slices.EqualFunc(a, b, func(x, y Participant) bool {
		return x.RawID == y.RawID && x.State == y.State && x.IsMuted == y.IsMuted && x.DisplayName == y.DisplayName &&
			slices.Equal(x.EndpointDetails, y.EndpointDetails) &&
			(x.CallEndReason == nil) == (y.CallEndReason == nil) && (x.CallEndReason == nil || *x.CallEndReason == *y.CallEndReason)
	})
}

// sendsRoster reports whether a stand-in's line sends the roster: a
// joiner's stand-in in a group call or room this node anchors, an
// invitee's in a group call or room (the callee's node shows the others
// beside the inviter), or a monitoring supervisor's (peermonitor.go).
func sendsRoster(c Call) bool {
	return anchorsRoom(c) || c.Direction == Incoming && (c.Kind == Group || c.Kind == Room || c.MonitorMode != "")
}

// anchorsRoom reports whether a stand-in's view is of a joiner's stand-in
// in a group call or room this node anchors (its caller is itself, where
// an invitee's is who invited it): its line sends the roster.
func anchorsRoom(c Call) bool {
	return c.Direction == Incoming && (c.GroupID != "" || c.RoomID != "") && c.CallerInfo.Identifier.RawID() == c.AgentID
}
