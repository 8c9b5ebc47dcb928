package calls

import (
	"context"
	"slices"
)

// What a party or supervisor on a mirror's node (or on the node of a
// group call's or room's invitee) does to the parties of the anchor's
// conversation (peerroom.go): that node holds only ghosts of them, so the
// act goes to the anchor over the line of the stand-in facing it (the
// mirror's hidden stand-in, the invitee's caller's stand-in), as
// PeerChange.Act, and the anchor does it as on one node; the roster
// brings the result back. The near node answers at once as the anchor
// will (a muted or removed ghost, an invitee ringing or, connected
// nowhere, 480).

// PeerSender is a line that also carries acts to its far node: a
// stand-in's line facing the anchor. Send must not block (the switchboard calls it
// while it holds the live state) and keeps the order of Send and Update.
type PeerSender interface {
	Send(ch PeerChange)
}

// PeerAsker is a stand-in's line that also puts a question to its far
// node and waits for the answer (PeerChange.QueueCheck).
type PeerAsker interface {
	// Ask sends ch in order after what the line sent before and waits,
	// bounded by ctx, until the far node applied it: nil, or the far
	// node's error as an *Error with its code and message; unavailable
	// when the far node is out of reach or did not answer. It must not
	// be called with the live state held.
	Ask(ctx context.Context, ch PeerChange) error
}

// PeerAct is an act on the anchor's conversation from a joiner's node. It
// names parties by their calls' ids on the anchor (a roster's
// participantId), so applying it twice changes nothing more: a muted
// party stays muted, a removed one stays gone.
type PeerAct struct {
	// By is who acted, with their role (a supervisor overseeing the
	// joiner's call, or the joiner).
	By   CallerInfo `json:"by"`
	Role Role       `json:"role,omitempty"`
	// Oversee: By acts as a supervisor on the joiner's call.
	Oversee bool `json:"oversee,omitempty"`
	// Mute mutes these participants.
	Mute []string `json:"mute,omitempty"`
	// MuteAll mutes every participant the joiner sees.
	MuteAll bool `json:"muteAll,omitempty"`
	// Remove removes this participant.
	Remove string `json:"remove,omitempty"`
	// Add invites an identity; AddID is the invitee's call's id on the
	// anchor, chosen by the joiner's node so that its answer names it.
	Add   *AddParticipantRequest `json:"add,omitempty"`
	AddID string                 `json:"addId,omitempty"`
	// Admit admits from the anchor's lobby (peerlobby.go).
	Admit *LobbyAdmitRequest `json:"admit,omitempty"`
}

// mirrorLine is the line to the anchor of l's conversation, when it
// carries acts: a mirror's hidden stand-in's, l its joiner, or in a group
// call's or room's invitee's conversation, its caller's stand-in's, l the
// invitee.
func mirrorLine(l *leg) PeerSender {
	c := l.conv
	switch {
	case c.joiner == l:
	case c.joiner == nil && c.kind != OneToOne && l == calleeOf(c):
	default:
		return nil
	}
	for _, m := range c.members {
		if m.standIn && !m.ghost && m.line != nil && m.direction == Outgoing && m.phase != phaseEnded {
			if ps, ok := m.line.(PeerSender); ok {
				return ps
			}
		}
	}
	return nil
}

// actLine is the line that carries acts on the ghosts of l's
// conversation: its mirror's (mirrorLine), or, l a party of a merged call
// joined to a group call another node runs, its bridge's (peermerge.go).
func actLine(l *leg) PeerSender {
	if ps := mirrorLine(l); ps != nil {
		return ps
	}
	if !bridged(l.conv) || l.standIn || l.line != nil {
		return nil
	}
	ps, _ := l.conv.bridge.line.(PeerSender)
	return ps
}

// ghostFor finds the live ghost rawID in l's mirror, when l is a joiner
// whose node can reach the anchor.
func ghostFor(l *leg, rawID string) *leg {
	if actLine(l) == nil {
		return nil
	}
	for _, m := range l.conv.members {
		if m.ghost && m.party.id == rawID && m.phase != phaseEnded {
			return m
		}
	}
	return nil
}

// sendAct sends act on l's mirror's line, with p as who acted.
func (tx *txn) sendAct(p Principal, l *leg, act PeerAct) {
	act.By = CallerInfo{Identifier: p.Identifier, DisplayName: p.DisplayName}
	act.Role, act.Oversee = p.Role, overseeing(p, l)
	if ps := actLine(l); ps != nil {
		ps.Send(PeerChange{Act: &act})
	}
}

// muteGhost shows a ghost muted, as the anchor will once it muted the
// party.
func (tx *txn) muteGhost(g *leg) {
	if !g.muted {
		tx.touch(g.conv)
		g.muted = true
	}
}

// endGhost ends a ghost with reason: it leaves the mirror's members and
// stays in its history.
func (tx *txn) endGhost(g *leg, reason EndReason) {
	tx.touch(g.conv)
	g.phase, g.endAt, g.endReason = phaseEnded, tx.now, reason
	g.conv.members = slices.DeleteFunc(g.conv.members, func(m *leg) bool { return m == g })
}

// forwardMute mutes the ghost rawID of l's mirror on the anchor. ok is
// false when rawID is no ghost there.
func (tx *txn) forwardMute(p Principal, l *leg, rawID string) (Participant, bool) {
	g := ghostFor(l, rawID)
	if g == nil {
		return Participant{}, false
	}
	tx.sendAct(p, l, PeerAct{Mute: []string{g.id}})
	tx.muteGhost(g)
	return g.participant(), true
}

// forwardRemove removes the ghost rawID of l's mirror on the anchor.
func (tx *txn) forwardRemove(p Principal, l *leg, rawID string) (Participant, bool) {
	g := ghostFor(l, rawID)
	if g == nil {
		return Participant{}, false
	}
	tx.sendAct(p, l, PeerAct{Remove: g.id})
	reason := ReasonRemoved
	if g.phase == phaseIncoming {
		reason = ReasonCanceled
	}
	tx.endGhost(g, reason)
	return g.participant(), true
}

// forwardMuteAll mutes, on the anchor, every party l's mirror shows.
func (tx *txn) forwardMuteAll(p Principal, l *leg) {
	if actLine(l) == nil {
		return
	}
	tx.sendAct(p, l, PeerAct{MuteAll: true})
	for _, m := range slices.Clone(l.conv.members) {
		if m.ghost && m.phase == phaseLive {
			tx.muteGhost(m)
		}
	}
}

// forwardAdd invites callee into the anchor's conversation of l's mirror.
// The answer is the invitee as the anchor shows it at first (ringing); the
// roster brings it as it goes on.
func (tx *txn) forwardAdd(p Principal, l *leg, req AddParticipantRequest) (Participant, error) {
	if slices.ContainsFunc(l.conv.members, func(m *leg) bool { return m.party.id == req.Identifier.RawID() }) {
		return Participant{}, Errorf(CodeInvalidState, "%s is already in the call", req.Identifier.RawID())
	}
	id := tx.s.cfg.NewID()
	tx.sendAct(p, l, PeerAct{Add: &req, AddID: id})
	out := Participant{Identifier: req.Identifier, RawID: req.Identifier.RawID(), State: ParticipantRinging,
		EndpointDetails: []EndpointDetail{{ParticipantID: id}}}
	if callee := tx.party(req.Identifier); req.Identifier.Kind != KindPhoneNumber && !callee.bot && !reachable(callee) && tx.located[callee.id] == "" {
		// Connected nowhere: the anchor ends it 480 at once, as one node.
		r := ReasonNotConnected
		out.State, out.CallEndReason = ParticipantDisconnected, &r
	}
	return out, nil
}

// locateAct locates an act's invitee before the anchor applies it.
func (s *Switchboard) locateAct(ctx context.Context, ch PeerChange) map[string]string {
	if ch.Act == nil || ch.Act.Add == nil {
		return nil
	}
	return s.locate(ctx, []Identifier{ch.Act.Add.Identifier})
}

// applyAct does on the anchor what a joiner's node asked through the
// joiner's stand-in l, as the act's author would on one node.
func (tx *txn) applyAct(l *leg, act PeerAct, located map[string]string) error {
	if l.direction != Incoming || l.conv.kind == OneToOne || l.phase == phaseEnded {
		return errCallNotFound(l.id)
	}
	p := Principal{Identifier: act.By.Identifier, DisplayName: act.By.DisplayName, Role: act.Role}
	tx.actAs(p)
	if act.Admit != nil {
		return tx.applyAdmit(l, p, *act.Admit)
	}
	c := l.conv
	allowed := func(m *leg) bool {
		return m != l && !m.hidden && !m.ghost && sees(l, m) && (m.monitor == "" || act.Role == RoleSupervisor)
	}
	for _, id := range act.Mute {
		if i := slices.IndexFunc(c.members, func(m *leg) bool { return m.id == id }); i >= 0 && allowed(c.members[i]) {
			tx.muteOther(p, c.members[i])
		}
	}
	if act.MuteAll {
		for _, m := range slices.Clone(c.members) {
			if allowed(m) {
				tx.muteOther(p, m)
			}
		}
	}
	if act.Remove != "" {
		if i := slices.IndexFunc(c.members, func(m *leg) bool { return m.id == act.Remove }); i >= 0 && allowed(c.members[i]) {
			m := c.members[i]
			reason, peer := ReasonRemoved, ReasonRemoteHungUp
			if m.phase == phaseIncoming {
				reason = ReasonCanceled
			}
			if !act.Oversee {
				peer = ReasonHungUp
			}
			tx.endLeg(m, reason, peer)
		}
	}
	if act.Add != nil {
		if err := checkCallee(p.Identifier, act.Add.Identifier, act.Add.AlternateCallerID); err != nil {
			return err
		}
		if tx.s.draining {
			return errDraining
		}
		if slices.ContainsFunc(c.all, func(m *leg) bool { return m.id == act.AddID }) {
			return nil // invited already: this act again
		}
		if err := ValidateRoomID(act.AddID); err != nil || tx.s.legs[act.AddID] != nil {
			return Errorf(CodeInvalidRequest, "an invitee's id %q is taken or no call id", act.AddID)
		}
		callee := tx.party(act.Add.Identifier)
		if slices.ContainsFunc(c.members, func(m *leg) bool { return m.party == callee }) {
			return Errorf(CodeInvalidState, "%s is already in the call", callee.id)
		}
		tx.located = located
		info := act.By
		if act.Add.Identifier.Kind == KindPhoneNumber {
			info = CallerInfo{Identifier: *act.Add.AlternateCallerID}
		}
		m := tx.invite(callee, c, info)
		delete(tx.s.legs, m.id) // named by the joiner's node
		m.id = act.AddID
		tx.s.legs[m.id] = m
		tx.ring(m)
	}
	return nil
}
