package calls

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/switchboard/switchboard/internal/holdpolicy"
)

// StartCallRequest is POST /api/calls.
type StartCallRequest struct {
	Participants      []Identifier `json:"participants"`
	AlternateCallerID *Identifier  `json:"alternateCallerId,omitempty"`
}

// JoinRequest is POST /api/calls/join: exactly one of GroupID and RoomID.
type JoinRequest struct {
	GroupID string `json:"groupId,omitempty"`
	RoomID  string `json:"roomId,omitempty"`
	// Lobby opens the room with a lobby (lobby.go): the first joiner is
	// its organizer and later joiners wait InLobby until admitted.
	Lobby bool `json:"lobby,omitempty"`
	// hasGroupID and hasRoomID say the JSON named them, empty or not:
	// "groupId": "" is a malformed groupId, not a missing one.
	hasGroupID, hasRoomID bool
}

// UnmarshalJSON decodes the request, noting which ids it names.
func (r *JoinRequest) UnmarshalJSON(b []byte) error {
	var j struct {
		GroupID *string `json:"groupId"`
		RoomID  *string `json:"roomId"`
		Lobby   bool    `json:"lobby"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = JoinRequest{Lobby: j.Lobby}
	if j.GroupID != nil {
		r.GroupID, r.hasGroupID = *j.GroupID, true
	}
	if j.RoomID != nil {
		r.RoomID, r.hasRoomID = *j.RoomID, true
	}
	return nil
}

// AddParticipantRequest is POST /api/calls/{id}/participants.
type AddParticipantRequest struct {
	Identifier        Identifier  `json:"identifier"`
	AlternateCallerID *Identifier `json:"alternateCallerId,omitempty"`
}

// identify returns the principal's party, creating it.
func (tx *txn) identify(p Principal) (*party, error) {
	if tx.s.closed {
		return nil, errClosed
	}
	if err := p.Identifier.Validate(); err != nil {
		return nil, err
	}
	return tx.party(p.Identifier), nil
}

// refresh records the principal's name and role on its party.
func refresh(pt *party, p Principal) {
	if p.DisplayName != "" {
		pt.displayName = p.DisplayName
	}
	if p.Role.Valid() {
		pt.role = p.Role
	}
}

// checkCallee applies the Calling SDK's rules to one callee.
func checkCallee(caller Identifier, callee Identifier, alt *Identifier) error {
	if err := callee.Validate(); err != nil {
		return err
	}
	if callee.RawID() == caller.RawID() {
		return Errorf(CodeInvalidIdentifier, "an identity cannot call itself")
	}
	if caller.Kind == KindTeamsUser && callee.Kind == KindCommunicationUser {
		return Errorf(CodeOperationNotSupportedForIdentity, "a Teams user cannot call or add a Communication Services user")
	}
	if callee.Kind == KindPhoneNumber {
		if alt == nil {
			return Errorf(CodeAlternateCallerIDRequired, "calling a phone number needs alternateCallerId, the phone number to show")
		}
		if alt.Kind != KindPhoneNumber {
			return Errorf(CodeInvalidPhoneNumber, "alternateCallerId must be a phone number")
		}
		if err := alt.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// reachable reports whether a call to the party can ring: a bot, or an
// identity with an open event connection.
func reachable(p *party) bool { return p.bot || p.conns > 0 }

// newLeg creates a leg of party in conversation c and registers it.
func (tx *txn) newLeg(pt *party, c *conversation, dir Direction, info CallerInfo, ph phase) *leg {
	l := &leg{
		id: tx.s.cfg.NewID(), party: pt, conv: c, direction: dir,
		callerInfo: info, start: tx.now, phase: ph, listed: dir == Outgoing,
	}
	tx.touch(c)
	tx.seeNew(l)
	c.members = append(c.members, l)
	c.all = append(c.all, l)
	if !pt.bot {
		pt.legs = append(pt.legs, l)
	}
	tx.s.legs[l.id] = l
	return l
}

// invite adds an invited identity's leg to c, ringing; call ring on it
// once every invitation of the step exists.
func (tx *txn) invite(callee *party, c *conversation, info CallerInfo) *leg {
	return tx.newLeg(callee, c, Incoming, info, phaseIncoming)
}

// ring makes an invited leg ring, answers it (a bot) or ends it at once
// (nobody there to answer).
func (tx *txn) ring(l *leg) {
	dial := tx.dialsOut(l)
	node := tx.peerNode(l)
	switch {
	case l.party.bot:
		tx.goLive(l)
	case !reachable(l.party) && !dial && node == "":
		tx.endLeg(l, ReasonNotConnected, ReasonNotConnected)
	default:
		timeout := tx.s.cfg.RingTimeout
		switch {
		case dial:
			l.line = tx.s.cfg.Phones.Dial(l.view(false))
		case node != "":
			tx.standIn(l)
			l.line = tx.s.cfg.Peers.Dial(l.view(false), node)
			// The callee's node times the ringing out; this timer only
			// ends a call whose node stopped answering.
			timeout += peerRingGrace
		}
		id, s := l.id, tx.s
		s.work.Add(1)
		l.ringTimer = s.cfg.Clock.AfterFunc(timeout, func() {
			defer s.work.Done()
			s.ringTimeout(id)
		})
	}
}

// StartCall places a 1:1 call (one participant) or a group call (several).
// It holds the caller's active call in the same step. A callee nobody
// answers for ends with 480. Errors: invalid_request, invalid_identifier,
// invalid_phone_number, alternate_caller_id_required,
// operation_not_supported_for_identity, draining.
func (s *Switchboard) StartCall(ctx context.Context, p Principal, req StartCallRequest) (Call, error) {
	return s.startCall(ctx, "start call", p, req, placing{})
}

// placing is how a call is placed when its caller is not an identity of
// this switchboard: a phone (StartPhoneCall) or an identity on another node
// (StartPeerCall).
type placing struct {
	line         PhoneLine     // the caller's line: its leg is a phone's, or a stand-in
	standIn      bool          // the caller is on another node (a stand-in leg)
	serverCallID string        // the conversation's id, when another node chose it
	kind         Kind          // the conversation's kind, when another node chose it
	roster       []Participant // the other parties of a group call from another node (peerroom.go)
}

// startCall places the call.
func (s *Switchboard) startCall(ctx context.Context, op string, p Principal, req StartCallRequest, how placing) (Call, error) {
	if len(req.Participants) == 0 || len(req.Participants) > maxParticipants {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a call needs 1 to %d participants", maxParticipants))
	}
	seen := map[string]bool{}
	for _, callee := range req.Participants {
		if err := checkCallee(p.Identifier, callee, req.AlternateCallerID); err != nil {
			return Call{}, withOp(op, err)
		}
		if seen[callee.RawID()] {
			return Call{}, withOp(op, Errorf(CodeInvalidRequest, "%s is named twice", callee.RawID()))
		}
		seen[callee.RawID()] = true
	}
	located := s.locate(ctx, req.Participants)
	tx := s.begin(&p)
	defer tx.done()
	tx.located = located
	caller, err := tx.identify(p)
	if err != nil {
		return Call{}, withOp(op, err)
	}
	if s.draining {
		return Call{}, withOp(op, errDraining)
	}
	callees := make([]*party, 0, len(req.Participants))
	for _, id := range req.Participants {
		callees = append(callees, tx.party(id))
	}
	refresh(caller, p)
	kind := OneToOne
	if len(callees) > 1 {
		kind = Group
	}
	if how.kind != "" {
		kind = how.kind
	}
	c := &conversation{id: how.serverCallID, kind: kind}
	if c.id == "" {
		c.id = s.cfg.NewID()
	}

	self := CallerInfo{Identifier: p.Identifier, DisplayName: caller.displayName}
	l := tx.newLeg(caller, c, Outgoing, self, phaseConnecting)
	l.line = how.line
	if how.standIn {
		tx.standIn(l)
	}
	if err := tx.plan(l, holdpolicy.Start); err != nil {
		return Call{}, withOp(op, err)
	}
	invited := make([]*leg, 0, len(callees))
	for i, callee := range callees {
		info := self
		if req.Participants[i].Kind == KindPhoneNumber {
			info.Identifier = *req.AlternateCallerID
		}
		invited = append(invited, tx.invite(callee, c, info))
	}
	if how.roster != nil {
		tx.setRoster(c, how.roster)
		l.inviterLive = inviterLive(how.roster, p.Identifier.RawID())
	}
	for _, m := range invited {
		tx.ring(m)
	}
	tx.afterInvite(l)
	return l.view(false), nil
}

// afterInvite moves a placing caller along once its callees were invited.
func (tx *txn) afterInvite(caller *leg) {
	if caller.phase == phaseEnded {
		return
	}
	for _, m := range caller.conv.members {
		switch {
		case m == caller, m.ghost: // a ghost's call is on another node
		case m.phase == phaseLive:
			tx.goLive(caller)
			tx.settle(caller)
			return
		case m.phase == phaseIncoming && caller.phase == phaseConnecting:
			caller.phase = phaseRinging
		}
	}
}

// JoinCall starts or joins a group call (by GUID) or a room, holding the
// agent's active call in the same step; a room opened with a lobby holds
// later joiners InLobby (lobby.go). Errors: invalid_request (also a lobby
// on a group call), invalid_group_id, invalid_identifier, invalid_state
// (already in it, or a lobby asked of a room open without one),
// operation_not_supported_for_identity, draining (a group call or room
// nobody is in).
func (s *Switchboard) JoinCall(ctx context.Context, p Principal, req JoinRequest) (call Call, err error) {
	const op = "join call"
	var key string
	group, room := req.hasGroupID || req.GroupID != "", req.hasRoomID || req.RoomID != ""
	switch {
	case group == room:
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "join needs exactly one of groupId and roomId"))
	case group:
		if err := ValidateGroupID(req.GroupID); err != nil {
			return Call{}, withOp(op, err)
		}
		key = "g:" + req.GroupID
	default:
		if err := ValidateRoomID(req.RoomID); err != nil {
			return Call{}, withOp(op, err)
		}
		key = "r:" + req.RoomID
	}
	if p.Identifier.Kind == KindTeamsUser {
		return Call{}, withOp(op, Errorf(CodeOperationNotSupportedForIdentity, "a Teams user cannot join a room or a group call by groupId"))
	}
	anchor, anchorID := s.anchorOf(ctx, key)
	var rostered <-chan struct{} // a mirror's: answer once the others are known (peerjoin.go)
	defer func() {
		if err == nil && rostered != nil {
			call = s.awaitRoster(ctx, call, rostered)
		}
	}()
	tx := s.begin(&p)
	defer tx.done()
	pt, err := tx.identify(p)
	if err != nil {
		return Call{}, withOp(op, err)
	}
	if s.draining && s.rooms[key] == nil {
		if anchor == "" && anchorID != "" && s.cfg.Rooms != nil {
			s.cfg.Rooms.Release(key, anchorID) // claimed for this join, refused
		}
		return Call{}, withOp(op, errDraining) // a join that would start a call
	}
	refresh(pt, p)
	if anchor != "" && s.rooms[key] == nil {
		call, err := tx.joinRemote(pt, p, key, req, anchor, anchorID)
		if err == nil {
			rostered = tx.s.legs[call.ID].conv.rostered
		}
		return call, withOp(op, err)
	}
	c := tx.findOrCreateRoom(key, req, anchorID)
	if err := tx.openLobby(c, pt, req); err != nil {
		if len(c.members) == 0 && s.rooms[key] == c {
			delete(s.rooms, key)
		}
		return Call{}, withOp(op, err)
	}
	call, err = tx.join(pt, c, p)
	if err != nil && len(c.members) == 0 && s.rooms[key] == c {
		delete(s.rooms, key) // made for this join, which failed
		tx.releaseClaim(key, c)
	}
	return call, withOp(op, err)
}

func (tx *txn) join(pt *party, c *conversation, p Principal) (Call, error) {
	if slices.ContainsFunc(c.members, func(m *leg) bool { return m.party == pt }) {
		return Call{}, Errorf(CodeInvalidState, "already in this call")
	}
	l := tx.newLeg(pt, c, Outgoing, CallerInfo{Identifier: p.Identifier, DisplayName: pt.displayName}, phaseConnecting)
	tx.enterLobby(l)
	if err := tx.plan(l, holdpolicy.Join); err != nil {
		return Call{}, err
	}
	tx.goLive(l)
	tx.settle(l)
	return l.view(false), nil
}

// findOrCreateRoom answers the conversation of key here, making it (with
// id, when this node claimed it so, else a fresh one) when there is none.
func (tx *txn) findOrCreateRoom(key string, req JoinRequest, id string) *conversation {
	s := tx.s
	if c := s.rooms[key]; c != nil {
		return c
	}
	if id == "" {
		id = s.cfg.NewID()
	}
	c := &conversation{id: id, kind: Group, groupID: req.GroupID, roomID: req.RoomID}
	if req.RoomID != "" {
		c.kind = Room
	}
	s.rooms[key] = c
	return c
}

// access is what a principal may do to a call it names.
type access int

const (
	ownOnly      access = iota // the call's own identity
	ownOrOversee               // also a supervisor
)

// onCall runs fn on the leg id in a transaction, after checking the
// principal may touch it. Another identity's call is call_not_found, unless
// the principal is a supervisor and the operation is one supervisors may do
// (else forbidden).
func (s *Switchboard) onCall(p Principal, id string, acc access, fn func(tx *txn, l *leg) error) error {
	tx := s.begin(&p)
	defer tx.done()
	pt, err := tx.identify(p)
	if err != nil {
		return err
	}
	l := s.legs[id]
	if l == nil || l.standIn {
		return errCallNotFound(id)
	}
	own := l.party == pt
	if !own {
		switch {
		case p.Role != RoleSupervisor:
			return errCallNotFound(id)
		case acc == ownOnly:
			return Errorf(CodeForbidden, "supervisors may mute or remove participants and end calls, not operate another identity's call")
		}
	}
	refresh(pt, p)
	return fn(tx, l)
}

// callOp runs an operation that answers the call as it stands after it.
func (s *Switchboard) callOp(op string, p Principal, id string, acc access, fn func(tx *txn, l *leg) error) (Call, error) {
	var out Call
	err := s.onCall(p, id, acc, func(tx *txn, l *leg) error {
		if err := fn(tx, l); err != nil {
			return err
		}
		out = l.view(false)
		return nil
	})
	return out, withOp(op, err)
}

// Accept answers a ringing incoming call, holding the agent's active call
// in the same step; the call keeps its id. Errors: call_not_found,
// invalid_state.
func (s *Switchboard) Accept(ctx context.Context, p Principal, id string) (Call, error) {
	return s.callOp("accept", p, id, ownOnly, func(tx *txn, l *leg) error {
		if l.phase != phaseIncoming {
			return Errorf(CodeInvalidState, "call %s is %s, not ringing", id, l.state())
		}
		if err := tx.plan(l, holdpolicy.Accept); err != nil {
			return err
		}
		tx.goLive(l)
		for _, m := range l.conv.members {
			if m.direction == Outgoing && m.phase != phaseLive {
				tx.goLive(m)
			}
		}
		tx.settle(l)
		return nil
	})
}

// Reject declines a ringing incoming call (603). Errors: call_not_found,
// invalid_state.
func (s *Switchboard) Reject(ctx context.Context, p Principal, id string) (Call, error) {
	return s.callOp("reject", p, id, ownOnly, func(tx *txn, l *leg) error {
		if l.phase != phaseIncoming {
			return Errorf(CodeInvalidState, "call %s is %s, not ringing", id, l.state())
		}
		tx.endLeg(l, ReasonDeclined, ReasonDeclined)
		return nil
	})
}

// Hold puts the call on hold. Errors: call_not_found, invalid_state.
func (s *Switchboard) Hold(ctx context.Context, p Principal, id string) (Call, error) {
	return s.callOp("hold", p, id, ownOnly, func(tx *txn, l *leg) error {
		return tx.plan(l, holdpolicy.Hold)
	})
}

// Resume takes the call off hold, holding the agent's active call in the
// same step. Errors: call_not_found, invalid_state.
func (s *Switchboard) Resume(ctx context.Context, p Principal, id string) (Call, error) {
	return s.callOp("resume", p, id, ownOnly, func(tx *txn, l *leg) error {
		if err := tx.plan(l, holdpolicy.Resume); err != nil {
			return err
		}
		tx.settle(l)
		return nil
	})
}

// SetMuted mutes or unmutes the agent's own microphone on the call.
// Errors: call_not_found.
func (s *Switchboard) SetMuted(ctx context.Context, p Principal, id string, muted bool) (Call, error) {
	return s.callOp("mute", p, id, ownOnly, func(tx *txn, l *leg) error {
		tx.touch(l.conv)
		l.muted = muted
		return nil
	})
}

// SetIncomingAudioMuted mutes or unmutes the agent's speaker for the call.
// Errors: call_not_found.
func (s *Switchboard) SetIncomingAudioMuted(ctx context.Context, p Principal, id string, muted bool) (Call, error) {
	return s.callOp("mute incoming audio", p, id, ownOnly, func(tx *txn, l *leg) error {
		tx.touch(l.conv)
		l.incomingMuted = muted
		return nil
	})
}

// memberFor finds the participant rawID in the conversation of l, as the
// principal may name it: a remote participant of l, or, for a supervisor,
// l's own identity too.
func memberFor(p Principal, l *leg, rawID string) (*leg, error) {
	if _, err := ParseRawID(rawID); err != nil {
		return nil, err
	}
	for _, m := range l.conv.members {
		if m.hidden || m.ghost {
			continue // on another node
		}
		if m.party.id == rawID && sees(l, m) && (m != l || p.Role == RoleSupervisor && l.party.id != p.Identifier.RawID()) {
			if m.monitor != "" && p.Role != RoleSupervisor {
				return nil, Errorf(CodeForbidden, "only a supervisor may mute or remove a supervisor who monitors the call")
			}
			return m, nil
		}
	}
	return nil, Errorf(CodeParticipantNotFound, "%s is not a participant of call %s", rawID, l.id)
}

// overseeing reports whether the principal acts on someone else's call as a
// supervisor.
func overseeing(p Principal, l *leg) bool {
	return p.Role == RoleSupervisor && p.Identifier.RawID() != l.party.id
}

func (tx *txn) muteOther(p Principal, m *leg) {
	if m.muted || m.hidden || m.ghost {
		return
	}
	tx.touch(m.conv)
	m.muted = true
	if !m.party.bot {
		tx.emit(m, EventMutedByOthers, MutedByOthersData{By: p.Identifier.RawID()})
	}
}

// MuteParticipant mutes one remote participant, who is told so
// (mutedByOthers). Errors: call_not_found, participant_not_found,
// invalid_identifier, not_supported_in_one_to_one (an agent in a 1:1 call;
// supervisors may), invalid_state.
func (s *Switchboard) MuteParticipant(ctx context.Context, p Principal, id, rawID string) (Participant, error) {
	var out Participant
	err := s.onCall(p, id, ownOrOversee, func(tx *txn, l *leg) error {
		if l.conv.kind == OneToOne && !overseeing(p, l) {
			return Errorf(CodeNotSupportedInOneToOne, "muting the other side of a 1:1 call is not supported")
		}
		if l.phase != phaseLive && !overseeing(p, l) {
			return Errorf(CodeInvalidState, "call %s is %s", id, l.state())
		}
		m, err := memberFor(p, l, rawID)
		if err != nil {
			var ok bool
			if out, ok = tx.forwardMute(p, l, rawID); ok {
				return nil // a party of the anchor's (peeract.go)
			}
			return err
		}
		tx.muteOther(p, m)
		out = m.participant()
		return nil
	})
	return out, withOp("mute participant", err)
}

// MuteAll mutes every remote participant. Errors: call_not_found,
// not_supported_in_one_to_one (agents), invalid_state.
func (s *Switchboard) MuteAll(ctx context.Context, p Principal, id string) (Call, error) {
	return s.callOp("mute all", p, id, ownOrOversee, func(tx *txn, l *leg) error {
		if l.conv.kind == OneToOne && !overseeing(p, l) {
			return Errorf(CodeNotSupportedInOneToOne, "muting the other side of a 1:1 call is not supported")
		}
		if l.phase != phaseLive && !overseeing(p, l) {
			return Errorf(CodeInvalidState, "call %s is %s", id, l.state())
		}
		for _, m := range slices.Clone(l.conv.members) {
			// A monitoring supervisor is muted by a supervisor only.
			if m != l && sees(l, m) && (m.monitor == "" || p.Role == RoleSupervisor) {
				tx.muteOther(p, m)
			}
		}
		tx.forwardMuteAll(p, l) // the anchor's parties (peeract.go)
		return nil
	})
}

// AddParticipant invites an identity into the call; a 1:1 call becomes a
// group call. The answer is the participant as it stands (Disconnected with
// 480 when nobody is there to answer). Errors: call_not_found,
// invalid_identifier, invalid_phone_number, alternate_caller_id_required,
// operation_not_supported_for_identity, invalid_state, draining.
func (s *Switchboard) AddParticipant(ctx context.Context, p Principal, id string, req AddParticipantRequest) (Participant, error) {
	const op = "add participant"
	if err := checkCallee(p.Identifier, req.Identifier, req.AlternateCallerID); err != nil {
		return Participant{}, withOp(op, err)
	}
	var out Participant
	located := s.locate(ctx, []Identifier{req.Identifier})
	err := s.onCall(p, id, ownOnly, func(tx *txn, l *leg) error {
		tx.located = located
		if s.draining {
			return errDraining // the invitee's call would be a new one
		}
		callee := tx.party(req.Identifier)
		if l.phase != phaseLive || l.inLobby {
			return Errorf(CodeInvalidState, "call %s is %s: participants are added to a live call", id, l.state())
		}
		if l.conv.joiner != nil || mirrorLine(l) != nil {
			if mirrorLine(l) == nil {
				return Errorf(CodeInvalidState, "call %s is a group call or room another node of the cluster runs, out of reach", id)
			}
			var err error
			out, err = tx.forwardAdd(p, l, req) // invited on the anchor (peeract.go)
			return err
		}
		if slices.ContainsFunc(l.conv.members, func(m *leg) bool { return m.party == callee }) {
			return Errorf(CodeInvalidState, "%s is already in the call", callee.id)
		}
		if l.conv.kind == OneToOne {
			tx.touch(l.conv)
			l.conv.kind = Group
		}
		info := CallerInfo{Identifier: p.Identifier, DisplayName: l.party.displayName}
		if req.Identifier.Kind == KindPhoneNumber {
			info.Identifier = *req.AlternateCallerID
		}
		m := tx.invite(callee, l.conv, info)
		tx.ring(m)
		out = m.participant()
		return nil
	})
	return out, withOp(op, err)
}

// RemoveParticipant ends a participant's part in the call (0/5300). The
// answer is the removed participant. Errors: call_not_found,
// participant_not_found, invalid_identifier.
func (s *Switchboard) RemoveParticipant(ctx context.Context, p Principal, id, rawID string) (Participant, error) {
	var out Participant
	err := s.onCall(p, id, ownOrOversee, func(tx *txn, l *leg) error {
		m, err := memberFor(p, l, rawID)
		if err != nil {
			var ok bool
			if out, ok = tx.forwardRemove(p, l, rawID); ok {
				return nil // a party of the anchor's (peeract.go)
			}
			return err
		}
		reason, peer := ReasonRemoved, ReasonRemoteHungUp
		if m.phase == phaseIncoming {
			reason = ReasonCanceled
		}
		if !overseeing(p, l) {
			peer = ReasonHungUp // the remover itself, left alone in a 1:1 call
		}
		tx.endLeg(m, reason, peer)
		out = m.participant()
		return nil
	})
	return out, withOp("remove participant", err)
}

// WithdrawOffer stops ringing rawID in call id (canceled), as
// RemoveParticipant does, unless she answered already: a queue that
// withdraws an offer that rang out must not take away the call she has
// just accepted. Errors: those of RemoveParticipant, and invalid_state
// when she is in the call.
func (s *Switchboard) WithdrawOffer(ctx context.Context, p Principal, id, rawID string) error {
	err := s.onCall(p, id, ownOrOversee, func(tx *txn, l *leg) error {
		m, err := memberFor(p, l, rawID)
		if err != nil {
			return err
		}
		if m.phase == phaseLive {
			return Errorf(CodeInvalidState, "%s answered call %s: the offer is no longer hers to withdraw", rawID, id)
		}
		tx.endLeg(m, ReasonCanceled, ReasonHungUp)
		return nil
	})
	return withOp("withdraw offer", err)
}

// HangUp leaves the call (0/0), or with forEveryone ends it for everyone
// (the others get 0/4097). A supervisor hanging up another identity's call
// removes that identity (0/5300), or ends it for everyone. Errors:
// call_not_found, not_supported_in_rooms.
func (s *Switchboard) HangUp(ctx context.Context, p Principal, id string, forEveryone bool) (Call, error) {
	return s.callOp("hang up", p, id, ownOrOversee, func(tx *txn, l *leg) error {
		if forEveryone && l.conv.kind == Room {
			return Errorf(CodeNotSupportedInRooms, "ending a room for everyone is not supported")
		}
		own := !overseeing(p, l)
		if own {
			peer := ReasonRemoteHungUp
			if forEveryone {
				peer = ReasonEndedForAll
			}
			tx.endLeg(l, ReasonHungUp, peer)
		} else if !forEveryone {
			tx.endLeg(l, ReasonRemoved, ReasonRemoteHungUp)
		}
		if forEveryone {
			for _, m := range slices.Clone(l.conv.members) {
				tx.endLeg(m, ReasonEndedForAll, ReasonEndedForAll)
			}
		}
		return nil
	})
}

// ringTimeout ends a call nobody answered (480).
func (s *Switchboard) ringTimeout(id string) {
	tx := s.begin(nil)
	defer tx.done()
	if l := s.legs[id]; l != nil && !s.closed && l.phase == phaseIncoming {
		tx.endLeg(l, ReasonNoAnswer, ReasonNoAnswer)
	}
}

// resumeAfterEnd resumes the call an identity held last, when its policy
// says so and it has no active call by now.
func (s *Switchboard) resumeAfterEnd(pt *party, id string) {
	tx := s.begin(nil)
	defer tx.done()
	l := s.legs[id]
	if l == nil || l.party != pt || s.closed || slices.ContainsFunc(pt.legs, func(m *leg) bool { return m.state() == StateConnected }) {
		return
	}
	if err := tx.plan(l, holdpolicy.Resume); err == nil {
		tx.settle(l)
	}
}

// ReportSpeaking is how the media plane says an identity started or stopped
// speaking in a call (isSpeakingChanged to the others).
func (s *Switchboard) ReportSpeaking(callID string, speaking bool) {
	tx := s.begin(nil)
	defer tx.done()
	if l := s.legs[callID]; l != nil && l.speaking != speaking {
		tx.touch(l.conv)
		l.speaking = speaking
	}
}
