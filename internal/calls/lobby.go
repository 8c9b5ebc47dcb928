package calls

import "context"

// Rooms with a lobby. The first joiner of a room who asks for a lobby
// (JoinRequest.Lobby) opens it with one and is its organizer. Every later
// joiner but the organizer (again, after leaving) and supervisors waits in
// the lobby: their call is InLobby, they hear nobody and nobody hears them,
// and they see nobody. The organizer, and supervisors in the room, see
// them as participants InLobby; the other members do not see them until
// they are admitted.
//
// The organizer (or a supervisor) admits one of them (AdmitFromLobby) or
// all at once; their call becomes Connected and everyone sees them. A
// waiting joiner who hangs up leaves as from any call; the organizer or a
// supervisor turns one away by removing the participant
// (RemoveParticipant, 0/5300).
//
// The single-active rule: a lobby call is its owner's current call, as
// the Calling SDK has it. Joining holds the joiner's active call in the
// same step, and starting or resuming another call holds the lobby call
// (then it is LocalHold, still waiting; resumed, InLobby again). The hold
// policy sees it as a live call like any other: it does not know lobbies.
// A lobby call is not isActive (that is Connected alone), so admission
// changes no other call: the admitted call was already the current one.
//
// Every entry and admission is a lobbyChanged event in the joiner's call's
// timeline and the organizer's, with who admitted and how long the joiner
// waited.
//
// On a cluster the lobby lives on the room's anchor; joiners served by
// other nodes wait there as stand-ins (peerlobby.go).

// roomLobby is a room's lobby: who organizes it.
type roomLobby struct {
	organizer *party
}

// EventLobbyChanged says a joiner entered a room's lobby or was admitted.
const EventLobbyChanged EventType = "lobbyChanged"

// The lobby actions.
const (
	LobbyEntered  = "entered"
	LobbyAdmitted = "admitted"
)

// LobbyChangedData is the data of lobbyChanged.
type LobbyChangedData struct {
	// Participant is the joiner's rawId.
	Participant string `json:"participant"`
	// Action is entered or admitted.
	Action string `json:"action"`
	// AdmittedBy is the rawId of who admitted the joiner.
	AdmittedBy string `json:"admittedBy,omitempty"`
	// WaitedMs is how long the joiner waited in the lobby, on admission.
	WaitedMs int64 `json:"waitedMs,omitempty"`
}

// LobbyAdmitRequest is POST /api/calls/{id}/lobby/admit: one joiner by
// rawId, or everyone waiting (All).
type LobbyAdmitRequest struct {
	RawID string `json:"rawId,omitempty"`
	All   bool   `json:"all,omitempty"`
}

// openLobby opens the room c with a lobby when the request asks for one
// and pt is its first joiner. A lobby on a group call is invalid_request;
// on a room already open without one, invalid_state: its first joiner
// decided.
func (tx *txn) openLobby(c *conversation, pt *party, req JoinRequest) error {
	if !req.Lobby {
		return nil
	}
	if c.kind != Room {
		return Errorf(CodeInvalidRequest, "a lobby is for rooms (roomId), not group calls")
	}
	switch {
	case c.lobby != nil:
		return nil // a later joiner asking too: the lobby is there
	case len(c.members) > 0:
		return Errorf(CodeInvalidState, "room %s is already open without a lobby: only its first joiner opens it with one", c.roomID)
	}
	c.lobby = &roomLobby{organizer: pt}
	return nil
}

// enterLobby puts a new joiner's leg l in its room's lobby, unless it
// bypasses it (the organizer, a supervisor).
func (tx *txn) enterLobby(l *leg) {
	lb := l.conv.lobby
	if lb == nil || l.party == lb.organizer || l.party.role == RoleSupervisor {
		return
	}
	l.inLobby, l.lobbyAt = true, tx.now
	tx.emitLobby(l, LobbyChangedData{Participant: l.party.id, Action: LobbyEntered})
}

// admitsLobby reports whether the owner of leg v may see and admit the
// room's waiting joiners: the organizer and supervisors not waiting
// themselves.
func admitsLobby(v *leg) bool {
	lb := v.conv.lobby
	return lb != nil && !v.inLobby && (v.party == lb.organizer || v.party.role == RoleSupervisor)
}

// lobbySees is the lobby's part of sees: a waiting joiner sees nobody, and
// is seen by those who admit.
func lobbySees(v, m *leg) bool {
	switch {
	case v.inLobby:
		return false
	case m.inLobby:
		// A ghost the anchor showed (peerlobby.go): it decided.
		return admitsLobby(v) || m.ghost
	}
	return true
}

// emitLobby puts a lobby change in the joiner's timeline and in the
// organizer's live calls in the room.
func (tx *txn) emitLobby(l *leg, data LobbyChangedData) {
	tx.emit(l, EventLobbyChanged, data)
	for _, m := range l.conv.members {
		if m != l && m.party == l.conv.lobby.organizer && m.phase == phaseLive {
			tx.emit(m, EventLobbyChanged, data)
		}
	}
}

// AdmitFromLobby admits the joiner req.RawID (or, with req.All, everyone
// waiting) from the lobby of the room of call id, one of the organizer's
// calls or, for a supervisor, any call in the room. The answer is the call
// id as it stands after. Errors: invalid_request (neither or both of rawId
// and all), invalid_identifier, call_not_found, forbidden (not the
// organizer or a supervisor), invalid_state (the room has no lobby, the
// call is not live, or the joiner is not waiting), participant_not_found.
func (s *Switchboard) AdmitFromLobby(ctx context.Context, p Principal, id string, req LobbyAdmitRequest) (Call, error) {
	const op = "admit from lobby"
	if req.All == (req.RawID != "") {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "admit needs exactly one of rawId and all"))
	}
	if req.RawID != "" {
		if _, err := ParseRawID(req.RawID); err != nil {
			return Call{}, withOp(op, err)
		}
	}
	return s.callOp(op, p, id, ownOrOversee, func(tx *txn, l *leg) error {
		if l.conv.lobby == nil {
			return Errorf(CodeInvalidState, "call %s is not in a room with a lobby", id)
		}
		if !admitsLobby(l) && p.Role != RoleSupervisor {
			return Errorf(CodeForbidden, "only the room's organizer or a supervisor admits from its lobby")
		}
		if l.phase != phaseLive {
			return Errorf(CodeInvalidState, "call %s is %s", id, l.state())
		}
		if l.conv.joiner == l {
			return tx.forwardAdmit(p, l, req) // the lobby is the anchor's (peerlobby.go)
		}
		var waiting []*leg
		for _, m := range l.conv.members {
			if req.All && m.inLobby || m.party.id == req.RawID {
				waiting = append(waiting, m)
			}
		}
		if req.RawID != "" {
			if len(waiting) == 0 {
				return Errorf(CodeParticipantNotFound, "%s is not in room %s", req.RawID, l.conv.roomID)
			}
			if !waiting[0].inLobby {
				return Errorf(CodeInvalidState, "%s is not waiting in the lobby", req.RawID)
			}
		}
		tx.admit(p, l.conv, waiting)
		return nil
	})
}
