package calls

import "slices"

// Rooms with a lobby across the nodes of a cluster (lobby.go,
// peerroom.go). The lobby lives on the room's anchor alone
// (conversation.lobby, its organizer). A joiner served by another node,
// bob on node B, joins as any remote joiner: on the anchor his stand-in
// enters the lobby (leg.inLobby, so the anchor's mixer neither sends to
// nor takes from it, and the organizer is told in her timeline); the
// stand-in's line tells B (PeerChange.Lobby), whose mirror then shows the
// room's lobby and bob's call InLobby, with lobbyChanged in his timeline
// (stand-ins have no history, so his own node writes it). Until that
// first answer bob's call is Connecting (a room's remote joiner does not
// know whether it has a lobby), so it goes Connecting → InLobby as on one
// node, never Connected before he is admitted. Admitted on the
// anchor, the stand-in goes live and its line tells B who admitted him
// (sent in the admitting step, before the roster that shows the room):
// bob's call becomes Connected. An organizer or supervisor served by
// another node than the anchor admits through her mirror's line to the
// anchor (PeerAct.Admit), as other acts on the anchor's parties go.

// PeerLobby is, from a room's anchor, its lobby as the far joiner stands
// in it: the room has a lobby, the joiner waits in it (or not), is its
// organizer, and, once, who admitted him.
type PeerLobby struct {
	Waiting   bool `json:"waiting,omitempty"`
	Organizer bool `json:"organizer,omitempty"`
	// AdmittedBy and AdmittedRole: who admitted the joiner, sent in the
	// step that admits (from AdmitFromLobby, not from an update).
	AdmittedBy   string `json:"admittedBy,omitempty"`
	AdmittedRole Role   `json:"admittedRole,omitempty"`
	// AdmitterInRoom: who admitted is a party of the room (a supervisor
	// who joined it, not one acting from outside): the joiner's timeline
	// shows her as a party, as one node does (txn.actorFor).
	AdmitterInRoom bool `json:"admitterInRoom,omitempty"`
}

// peerLobbyOf is the lobby part of a stand-in's update: set when the
// stand-in is a joiner's on the anchor of a room with a lobby and its
// waiting or organizing changed since prev (or prev is the first).
func peerLobbyOf(prev *Call, now Call) *PeerLobby {
	if !anchorsRoom(now) || !now.Lobby || now.State == StateDisconnected {
		return nil
	}
	waiting := now.State == StateInLobby
	if prev.ID != "" && prev.Lobby && waiting == (prev.State == StateInLobby) && now.IsOrganizer == prev.IsOrganizer {
		return nil
	}
	return &PeerLobby{Waiting: waiting, Organizer: now.IsOrganizer}
}

// applyPeerLobby shows on a mirror (l its hidden stand-in) what the
// anchor says of its joiner and the lobby: the mirror has one, of which
// its joiner may be the organizer, and its joiner waits in it or was
// admitted (lobbyChanged in the joiner's timeline, with who admitted him
// as the actor).
func (tx *txn) applyPeerLobby(l *leg, pl PeerLobby) {
	c, j := l.conv, l.conv.joiner
	if !l.hidden || j == nil || j.phase != phaseLive && j.phase != phaseConnecting {
		return
	}
	if c.lobby == nil {
		tx.touch(c)
		c.lobby = &roomLobby{}
	}
	if org := pl.Organizer; org != (c.lobby.organizer == j.party) {
		tx.touch(c)
		c.lobby.organizer = nil
		if org {
			c.lobby.organizer = j.party
		}
	}
	if pl.Waiting == j.inLobby {
		return
	}
	tx.touch(c)
	if pl.Waiting {
		j.inLobby, j.lobbyAt = true, tx.now
		tx.emit(j, EventLobbyChanged, LobbyChangedData{Participant: j.party.id, Action: LobbyEntered})
		return
	}
	if pl.AdmittedBy != "" {
		if id, err := ParseRawID(pl.AdmittedBy); err == nil {
			role := pl.AdmittedRole
			if pl.AdmitterInRoom {
				role = RoleCaller // shown as a party of the room, whatever her role
			}
			tx.actAs(Principal{Identifier: id, Role: role})
		}
	}
	tx.emit(j, EventLobbyChanged, LobbyChangedData{
		Participant: j.party.id, Action: LobbyAdmitted, AdmittedBy: pl.AdmittedBy,
		WaitedMs: tx.now.Sub(j.lobbyAt).Milliseconds(),
	})
	j.inLobby = false
	tx.settle(j)
}

// anchorAnswered brings a room's joiner on this node (l the mirror's
// hidden stand-in) live once the anchor's first answer came: InLobby when
// it put him in the room's lobby (applyPeerLobby, in the same step),
// else Connected, the rule settling who is active as when he joined.
func (tx *txn) anchorAnswered(l *leg) {
	j := l.conv.joiner
	if !l.hidden || j == nil || j.phase != phaseConnecting {
		return
	}
	tx.goLive(j)
	tx.settle(j)
}

// tellAdmitted tells the node of the joiner whose stand-in m was just
// admitted who admitted him, in the admitting step.
func (tx *txn) tellAdmitted(m *leg, by Principal) {
	if !m.standIn {
		return
	}
	if ps, ok := m.line.(PeerSender); ok {
		in := slices.ContainsFunc(m.conv.all, func(l *leg) bool { return l.party.id == by.Identifier.RawID() && l.monitor == "" })
		ps.Send(PeerChange{Lobby: &PeerLobby{AdmittedBy: by.Identifier.RawID(), AdmittedRole: by.Role, AdmitterInRoom: in}})
	}
}

// forwardAdmit admits from the anchor's lobby, for an organizer or
// supervisor whose call l is a mirror's joiner: the act goes to the
// anchor, and the ghosts it names show admitted at once, as the anchor
// will show them. Errors as AdmitFromLobby's.
func (tx *txn) forwardAdmit(p Principal, l *leg, req LobbyAdmitRequest) error {
	var waiting []*leg
	for _, m := range l.conv.members {
		if m.ghost && (req.All && m.inLobby || m.party.id == req.RawID) {
			waiting = append(waiting, m)
		}
	}
	if req.RawID != "" && l.conv.lobby.organizer == l.party {
		// The anchor shows the organizer its lobby: answered here as the
		// anchor will. (A supervisor's request is checked on the anchor,
		// which knows her role from her join: PeerJoinRequest.Role.)
		if len(waiting) == 0 {
			return Errorf(CodeParticipantNotFound, "%s is not in room %s", req.RawID, l.conv.roomID)
		}
		if !waiting[0].inLobby {
			return Errorf(CodeInvalidState, "%s is not waiting in the lobby", req.RawID)
		}
	}
	tx.sendAct(p, l, PeerAct{Admit: &req})
	for _, m := range waiting {
		tx.touch(m.conv)
		m.inLobby = false
	}
	return nil
}

// applyAdmit admits on the anchor what an organizer or supervisor on a
// joiner's node asked through the joiner's stand-in l (PeerAct.Admit).
func (tx *txn) applyAdmit(l *leg, p Principal, req LobbyAdmitRequest) error {
	c := l.conv
	organizer := c.lobby != nil && !l.inLobby && c.lobby.organizer == l.party && p.Identifier.hasRawID(l.party.id)
	if c.lobby == nil || !organizer && p.Role != RoleSupervisor {
		return Errorf(CodeForbidden, "only the room's organizer or a supervisor admits from its lobby")
	}
	var waiting []*leg
	for _, m := range c.members {
		if m.inLobby && (req.All || m.party.id == req.RawID) {
			waiting = append(waiting, m)
		}
	}
	tx.admit(p, c, waiting)
	return nil
}

// admit lets the waiting legs in from their room's lobby, as p.
func (tx *txn) admit(p Principal, c *conversation, waiting []*leg) {
	tx.touch(c)
	for _, m := range waiting {
		tx.emitLobby(m, LobbyChangedData{
			Participant: m.party.id, Action: LobbyAdmitted, AdmittedBy: p.Identifier.RawID(),
			WaitedMs: tx.now.Sub(m.lobbyAt).Milliseconds(),
		})
		m.inLobby = false
		tx.tellAdmitted(m, p)
	}
	for _, m := range waiting {
		if !m.standIn {
			tx.settle(m)
		}
	}
}
