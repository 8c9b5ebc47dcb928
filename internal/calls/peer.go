package calls

import (
	"context"
	"slices"
	"time"
)

// Calls between the nodes of a cluster.
//
// Each identity is owned by one node, whose Switchboard alone decides its
// hold rule. A call from alice (owned by node A) to bob (owned by node B)
// is two conversations that mirror each other, one per node, joined by a
// line as a call with the phone network is:
//
//   - On A, the anchor, alice's call is an ordinary call and bob is a
//     stand-in: a leg with a line (PeerNetwork.Dial), whose state is what B
//     reports (PhoneAnswered, PhoneHold, PeerMuted, EndPhoneCall).
//   - On B, bob's call is an ordinary incoming call (StartPeerCall) from a
//     stand-in for alice, whose line reports to A what bob does.
//
// A stand-in is nobody's call: it has no history and no events and is in
// no identity's calls (alice's calls on A and bob's on B are the history).
// It takes no part in the single-active-call rule, as a phone's leg takes
// none: each party's rule is applied on its own node. It only makes the real
// legs' views right (the participant's state, RemoteHold, the end reason)
// and carries the far party's audio (calls.MediaMember.OwnEndpoint).

// PeerNetwork carries calls to identities owned by other nodes of a
// cluster (package peercall).
type PeerNetwork interface {
	// Locate answers, for those of rawIDs owned by another node, that
	// node's id; identities owned by this node or by none are left out. It
	// is called before the live state is taken and may block (bounded by
	// ctx).
	Locate(ctx context.Context, rawIDs []string) (map[string]string, error)
	// Dial starts a call to an identity on node. c is the stand-in's call:
	// the callee's leg on this node (its AgentID the callee, ServerCallID
	// the conversation, CallerInfo the caller, ID what the network reports
	// on). The switchboard calls it while it holds the live state; it must
	// not block. The answer hears every change of the stand-in.
	Dial(c Call, node string) PhoneLine
	// Join joins a group call or room that node anchors (peerroom.go): c
	// is the joiner's mirror's hidden stand-in (its AgentID and
	// CallerInfo the joiner; its ServerCallID, Kind, GroupID or RoomID the
	// anchor's conversation), role the joiner's (a supervisor passes a
	// room's lobby and admits from it). The far node runs PeerJoin. Like
	// Dial, it must not block.
	Join(c Call, role Role, node string) PhoneLine
}

// PeerCallRequest is a call from an identity on another node to one of
// this node's.
type PeerCallRequest struct {
	// ServerCallID is the calling node's conversation: both nodes' legs
	// share it.
	ServerCallID string
	// Kind is the conversation's kind on the calling node (OneToOne when
	// empty). In a group call the callee sees the caller among its
	// participants, not the others.
	Kind Kind
	// Caller is who calls: an identity of any kind, with its name.
	Caller CallerInfo
	// Callee is this node's identity to ring.
	Callee Identifier
	// Line hears every change of the caller's stand-in on this node.
	Line PhoneLine
	// Roster: in a group call, its other parties as the callee sees them
	// on the caller's node (DialRoster): the callee's call shows them
	// from its first ring, and PeerChange.Roster keeps them current.
	Roster []Participant
}

// DialRoster is the roster a dial carries: the parties of the group call
// c (the callee's stand-in as the dial is given it) but the caller; none
// for a 1:1 call.
func DialRoster(c Call) []Participant {
	if !sendsRoster(c) {
		return nil
	}
	return rosterOf(c)
}

// peerRingGrace is how much longer than the ring timeout a stand-in callee
// rings before its own timer ends it: the callee's node times the ringing
// out and says so, so this timer only fires when that node went silent.
const peerRingGrace = 5 * time.Second

// StartPeerCall rings an identity of this node for a caller on another
// node. The answer is the caller's stand-in (its ID is what the network
// reports on); it is already Disconnected when nobody can answer here (the
// callee not connected: 480). Errors: invalid_identifier,
// invalid_request, operation_not_supported_for_identity, unavailable
// (shutting down), draining.
func (s *Switchboard) StartPeerCall(ctx context.Context, req PeerCallRequest) (Call, error) {
	const op = "start peer call"
	if err := req.Caller.Identifier.Validate(); err != nil {
		return Call{}, withOp(op, err)
	}
	if req.Line == nil {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a call from another node needs its line"))
	}
	switch req.Kind {
	case "", OneToOne, Group, Room: // Room: a participant added to a room (its callee's conversation is no room of this node's)
	default:
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a call from another node is 1:1, a group call or a room, not %q", req.Kind))
	}
	if err := ValidateRoomID(req.ServerCallID); req.ServerCallID != "" && err != nil {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "serverCallId %q is not a conversation id", req.ServerCallID))
	}
	p := Principal{Identifier: req.Caller.Identifier, DisplayName: req.Caller.DisplayName}
	return s.startCall(ctx, op, p, StartCallRequest{Participants: []Identifier{req.Callee}},
		placing{line: req.Line, standIn: true, serverCallID: req.ServerCallID, kind: req.Kind, roster: req.Roster})
}

// PeerMute says that someone on the far node muted this node's party of
// the pair the stand-in id belongs to: the callee, on the callee's node;
// the caller, on the caller's. It is muted and told so (mutedByOthers), as
// by the far party. Errors: call_not_found.
func (s *Switchboard) PeerMute(ctx context.Context, id string) error {
	return s.onStandIn("peer mute", id, func(tx *txn, l *leg) error {
		tx.peerMute(l)
		return nil
	})
}

func (tx *txn) peerMute(l *leg) {
	for _, m := range slices.Clone(l.conv.members) {
		mine := l.direction == Outgoing || m.party.id == l.callerInfo.Identifier.RawID()
		if mine && m.line == nil && !m.ghost && m.phase == phaseLive {
			tx.muteOther(*tx.actor, m)
		}
	}
}

// PeerMuted says the far party muted or unmuted itself: its stand-in shows
// it to this node's parties. Errors: call_not_found.
func (s *Switchboard) PeerMuted(ctx context.Context, id string, muted bool) error {
	return s.onStandIn("peer muted", id, func(tx *txn, l *leg) error {
		if l.muted != muted {
			tx.touch(l.conv)
			l.muted = muted
		}
		return nil
	})
}

// onStandIn runs fn on a stand-in in a transaction, with the party it
// stands in for as the actor. Errors: call_not_found.
func (s *Switchboard) onStandIn(op, id string, fn func(tx *txn, l *leg) error) error {
	return s.onPhone(op, id, func(tx *txn, l *leg) error {
		if !l.standIn {
			return errCallNotFound(id)
		}
		return fn(tx, l)
	})
}

// locate asks the peer network which callees other nodes own; without one,
// or when it cannot answer (NATS out of reach), none: a callee connected
// nowhere here then ends 480 as on one node.
func (s *Switchboard) locate(ctx context.Context, callees []Identifier) map[string]string {
	if s.cfg.Peers == nil {
		return nil
	}
	var ids []string
	for _, c := range callees {
		if c.Kind != KindPhoneNumber && c != EchoBot {
			ids = append(ids, c.RawID())
		}
	}
	if len(ids) == 0 {
		return nil
	}
	nodes, err := s.cfg.Peers.Locate(ctx, ids)
	if err != nil {
		s.log.Warn("cannot tell which node owns a callee: calling it as if it were nowhere", "callees", ids, "err", err)
		return nil
	}
	return nodes
}

// peerNode is the node an invited leg's callee lives on when it is not
// here: "" when it is reachable here or on no other node.
func (tx *txn) peerNode(l *leg) string {
	if tx.s.cfg.Peers == nil || reachable(l.party) {
		return ""
	}
	return tx.located[l.party.id]
}

// standIn makes l a stand-in: it leaves its party's calls.
func (tx *txn) standIn(l *leg) {
	l.standIn = true
	l.party.legs = slices.DeleteFunc(l.party.legs, func(m *leg) bool { return m == l })
}

// endStandIn ends a stand-in because its far side ended: reason is what
// this node's parties end with (the far stand-in's reason). The stand-in
// itself ends as its party did (partyEnd) when the far node said so, else
// as it most likely did: it hung up, unless the reason is a failure or an
// answer refused, which both sides share.
func (tx *txn) endStandIn(l *leg, reason EndReason, partyEnd *EndReason) {
	own := ReasonHungUp
	switch {
	case partyEnd != nil:
		own = *partyEnd
	case reason.Code >= 400 && reason != ReasonCanceled:
		own = reason
	}
	c := l.conv
	tx.endLeg(l, own, reason)
	if l.direction == Incoming {
		if reason == ReasonEndedForAll && (tx.anchors(c) || c.kind == Group) {
			// A joiner or callee on another node ended its group call for
			// everyone.
			for _, m := range slices.Clone(c.members) {
				tx.endLeg(m, ReasonEndedForAll, ReasonEndedForAll)
			}
		}
		return // the anchor's conversation goes on without the far party
	}
	// This node's conversation mirrors the caller's: without it, nothing
	// is left.
	for _, m := range slices.Clone(c.members) {
		tx.endLeg(m, peerReason(reason, m), ReasonRemoteHungUp)
	}
}

// PeerChange is what a change of a stand-in means for the far node: what
// this node's party of the pair did (the callee on the callee's node, the
// caller on the caller's). The line of a stand-in turns each update into
// one (PeerChangeOf); the far node applies it to its own stand-in
// (ApplyPeerChange). Its fields are states, not steps, so applying one
// twice changes nothing.
type PeerChange struct {
	// Answered: the callee answered (from the callee's node).
	Answered bool `json:"answered,omitempty"`
	// Held: this node's party holds the call (true) or took it off hold.
	Held *bool `json:"held,omitempty"`
	// Muted: this node's party is muted (by itself or by others) or not.
	Muted *bool `json:"muted,omitempty"`
	// Mute: someone here muted the far party.
	Mute bool `json:"mute,omitempty"`
	// End: the call ended here; the reason the far node's parties end with.
	End *EndReason `json:"end,omitempty"`
	// PartyEnd: the reason this node's party ended with, when it did: the
	// far stand-in ends with it (its participant's end reason there).
	PartyEnd *EndReason `json:"partyEnd,omitempty"`
	// Roster: from the anchor of a group call or room, every other party
	// of it as the far joiner sees them (the ended ones with their end
	// reasons); the far node's mirror shows them (peerroom.go).
	Roster *[]Participant `json:"roster,omitempty"`
	// Act: from a joiner's node, what someone there did to the anchor's
	// parties (peeract.go); sent on its own (PeerSender), never from an
	// update.
	Act *PeerAct `json:"act,omitempty"`
	// Monitor: from a monitoring supervisor's node, her new mode
	// (peermonitor.go); sent on its own (PeerSender).
	Monitor MonitorMode `json:"monitor,omitempty"`
	// Lobby: from the anchor of a room with a lobby, the far joiner in it
	// (peerlobby.go).
	Lobby *PeerLobby `json:"lobby,omitempty"`
	// Repair: a transfer joined another party to this node's end of the
	// pair, who stands in its place from now on (peertransfer.go); sent
	// on its own (PeerSender), never from an update.
	Repair *CallerInfo `json:"repair,omitempty"`
	// Queue: the agent of this 1:1 call transferred its far party (the
	// customer) to this queue, blind (queuetransfer.go): the customer's
	// node puts her own call in the queue's line; sent on its own
	// (PeerSender), never from an update.
	Queue string `json:"queue,omitempty"`
	// QueueCheck: a question before Queue (PeerAsker.Ask, never an
	// update or a Send): can the customer's node queue her in this
	// queue? It changes nothing; the answer is its refusal, if any
	// (queuetransfer.go).
	QueueCheck string `json:"queueCheck,omitempty"`
	// Reanchor: from a node that mirrored a 1:1 call, that it took the
	// anchor over to merge the call there; this node's end mirrors it
	// from now on (peermerge.go). Sent on its own (PeerSender), before
	// the update that carries the merged call's roster.
	Reanchor bool `json:"reanchor,omitempty"`
	// Tones: someone keyed DTMF tones in this node's part of the
	// conversation (who and how many, never the digits: dtmf.go); the far
	// node records them for those who hear them there. Sent on its own
	// (PeerSender), never from an update.
	Tones *DTMFData `json:"tones,omitempty"`
	// Transfer: a step of a transfer or merge the agent of this node's
	// end did, for the far node's parties of the pair to record
	// (peertransfer.go); sent on its own (PeerSender).
	Transfer *TransferData `json:"transfer,omitempty"`
}

// IsZero reports whether the change says nothing.
func (ch PeerChange) IsZero() bool {
	return !ch.Answered && ch.Held == nil && ch.Muted == nil && !ch.Mute && ch.End == nil && ch.Roster == nil && ch.Act == nil &&
		ch.Lobby == nil && ch.Repair == nil && !ch.Reanchor && ch.Monitor == "" && ch.Queue == "" && ch.Tones == nil && ch.Transfer == nil &&
		ch.QueueCheck == ""
}

// PeerChangeOf is what a stand-in's update means for the far node: now is
// the stand-in as its line was just told, prev as it was told before (nil
// for the first update).
func PeerChangeOf(prev *Call, now Call) PeerChange {
	var ch PeerChange
	if prev == nil {
		prev = &Call{}
	}
	if now.Direction == Outgoing && now.ConnectedTime != nil && prev.ConnectedTime == nil {
		ch.Answered = true
	}
	before, after := pairParty(*prev), pairParty(now)
	if after != nil && now.State != StateDisconnected && !anchorsRoom(now) {
		if held := after.State == ParticipantHold; before == nil && held || before != nil && held != (before.State == ParticipantHold) {
			ch.Held = &held
		}
		if muted := after.IsMuted; before == nil && muted || before != nil && muted != before.IsMuted {
			ch.Muted = &muted
		}
	}
	if now.IsMuted && !prev.IsMuted && now.State != StateDisconnected {
		ch.Mute = true
	}
	if sendsRoster(now) && (now.State != StateDisconnected || prev.State != StateDisconnected) {
		// With its end too: the others' ends in the same step (the call
		// ended for everyone) show in the joiner's history.
		if r := rosterOf(now); prev.ID == "" || !sameRoster(rosterOf(*prev), r) {
			ch.Roster = &r
		}
	}
	ch.Lobby = peerLobbyOf(prev, now)
	if now.State == StateDisconnected && prev.State != StateDisconnected {
		r := ReasonHungUp
		if now.CallEndReason != nil {
			r = *now.CallEndReason
		}
		ch.End = &r
		if after != nil && after.CallEndReason != nil {
			own := *after.CallEndReason
			ch.PartyEnd = &own
		}
	}
	return ch
}

// pairParty is this node's party of the pair in a stand-in's view: the
// callee facing a caller's stand-in, the caller facing a callee's.
func pairParty(c Call) *Participant {
	for i := range c.RemoteParticipants {
		p := &c.RemoteParticipants[i]
		if c.Direction == Outgoing && transferredAway(c, p) {
			continue // a 1:1 call's party who transferred it (peertransfer.go)
		}
		if c.Direction == Outgoing || p.RawID == c.CallerInfo.Identifier.RawID() {
			return p
		}
	}
	return nil
}

// ApplyPeerChange applies what the far node's party did to the stand-in
// id, in one step: answered, held, muted, mute, then the end. A part that
// no longer applies (an answer to a call answered already, a hold of a
// call not yet answered) is skipped. Errors: call_not_found.
func (s *Switchboard) ApplyPeerChange(ctx context.Context, id string, ch PeerChange) error {
	if ch.QueueCheck != "" {
		return s.peerQueueCheck(ctx, id, ch.QueueCheck)
	}
	if ch.Queue != "" {
		return s.peerQueue(ctx, id, ch.Queue)
	}
	located := s.locateAct(ctx, ch)
	return s.onStandIn("apply peer change", id, func(tx *txn, l *leg) error {
		if ch.Act != nil {
			return tx.applyAct(l, *ch.Act, located)
		}
		if ch.Repair != nil {
			tx.repair(l, *ch.Repair)
			return nil
		}
		if ch.Reanchor {
			tx.reanchor(l)
			return nil
		}
		if ch.Tones != nil {
			tx.peerTones(l, *ch.Tones)
			return nil
		}
		if ch.Transfer != nil {
			tx.peerTransfer(l, *ch.Transfer)
			return nil
		}
		tx.peerMonitorChange(l, ch)
		if ch.Answered && l.phase == phaseIncoming {
			tx.answerLine(l)
		}
		if ch.Held != nil && l.phase == phaseLive && l.holding != *ch.Held && !l.hidden {
			tx.touch(l.conv)
			tx.holdLine(l, *ch.Held)
		}
		if ch.Lobby != nil {
			tx.applyPeerLobby(l, *ch.Lobby)
		}
		if ch.Roster != nil && (l.hidden || l.direction == Outgoing && l.conv.joiner == nil || l.conv.bridge == l) {
			tx.setRoster(l.conv, *ch.Roster)
		}
		if ch.Lobby != nil || ch.Roster != nil {
			tx.anchorAnswered(l)
		}
		if ch.Muted != nil && l.muted != *ch.Muted && !l.hidden {
			tx.touch(l.conv)
			l.muted = *ch.Muted
		}
		if ch.Mute {
			tx.peerMute(l)
		}
		if ch.End != nil {
			tx.endStandIn(l, *ch.End, ch.PartyEnd)
		}
		return nil
	})
}
