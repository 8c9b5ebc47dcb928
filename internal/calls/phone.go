package calls

import (
	"context"
	"slices"
	"strings"
	"time"
)

// PhoneLine is the far end of a call with the phone network, as the adapter
// that carries it (package sip) sees the domain: the switchboard tells it
// every change of the phone's own call (its leg), so that the adapter can
// answer the INVITE (180 while it rings, 200 once it is Connected, the end
// reason's code when it ends unanswered) or send BYE when it ends later.
//
// A phone leg takes no part in the single-active-call rule: every call
// from the phone network is a phone of its own, however many share a
// number. The rule applies to the agents it calls exactly as for any
// other caller.
type PhoneLine interface {
	// Update hands over the phone's call as it stands after a change. The
	// switchboard calls it while it holds the live state, in the order of the
	// changes, for every change that touched the call's conversation (the
	// state may be unchanged); it must not block.
	Update(c Call)
}

// PhoneCallRequest is a call from the phone network to one identity.
type PhoneCallRequest struct {
	// Caller is the phone: a phoneNumber identifier (P-Asserted-Identity or
	// From) and the name it gave, if any.
	Caller CallerInfo
	// Callee is who the number is routed to.
	Callee Identifier
	// Line hears of every change of the phone's call.
	Line PhoneLine
}

// StartPhoneCall places a call from the phone network to an identity: the
// phone's call rings the callee as an incomingCall from a phoneNumber
// participant, and ends as the callee's does (603 declined, 480 nobody
// answered or nobody connected). The answer is the phone's call; its Line
// has been told of it already. Errors: invalid_identifier,
// invalid_phone_number, invalid_request, unavailable (shutting down),
// draining.
func (s *Switchboard) StartPhoneCall(ctx context.Context, req PhoneCallRequest) (Call, error) {
	const op = "start phone call"
	if req.Caller.Identifier.Kind != KindPhoneNumber {
		return Call{}, withOp(op, Errorf(CodeInvalidPhoneNumber, "a call from the phone network comes from a phone number"))
	}
	if req.Line == nil {
		return Call{}, withOp(op, Errorf(CodeInvalidRequest, "a phone call needs its line"))
	}
	p := Principal{Identifier: req.Caller.Identifier, DisplayName: req.Caller.DisplayName, Role: RoleCaller}
	alt := req.Caller.Identifier
	return s.startCall(ctx, op, p, StartCallRequest{Participants: []Identifier{req.Callee}, AlternateCallerID: &alt}, placing{line: req.Line})
}

// EndPhoneCall ends a phone's call from the phone network's side: the
// phone hung up (BYE: reason ReasonHungUp, the callee gets 0/5000) or gave
// up before an answer (CANCEL: ReasonCanceled, the ringing callee gets 487
// too). A failure (code 400 and up: 410 media lost, 486 busy, 503) ends
// the other side of a 1:1 call with the same reason. Ending an ended call
// does nothing. For a stand-in (peer.go), reason is the far stand-in's: the
// reason this node's parties end with. Errors: call_not_found (no such
// phone call).
func (s *Switchboard) EndPhoneCall(ctx context.Context, id string, reason EndReason) error {
	const op = "end phone call"
	tx := s.begin(nil)
	defer tx.done()
	l := s.legs[id]
	if l == nil {
		return nil // ended already
	}
	if l.line == nil { // Dial's line is set in the transaction that dials
		return withOp(op, errCallNotFound(id))
	}
	tx.actor = &Principal{Identifier: l.party.ident, Role: RoleCaller}
	if l.standIn {
		tx.endStandIn(l, reason, nil)
		return nil
	}
	peer := ReasonRemoteHungUp
	if l.phase != phaseLive || reason.Code >= 400 {
		// Never answered (busy, declined, canceled), or a failure (media
		// lost, shutdown): the others end for the same reason.
		peer = reason
	}
	tx.endLeg(l, reason, peer)
	return nil
}

// PhoneNetwork places calls to phone numbers (package sip, through a
// trunk).
type PhoneNetwork interface {
	// Dial starts a call to a phone: c is the phone's call (its AgentID
	// the number's rawId, its CallerInfo the caller id to present, the
	// caller's alternateCallerId). The switchboard calls it while it holds
	// the live state; it must not block. It answers the line that hears
	// the call's changes from then on (its end: the caller gave up, the
	// ring timeout, a hang-up); the network reports back with
	// PhoneProgress, PhoneAnswered and EndPhoneCall (the SIP status as
	// the end reason's code: 486, 404, 408, 480, 487, 603, 503).
	Dial(c Call) PhoneLine
}

// dialsOut reports whether an invited leg is a phone the phone network
// calls: a phone number no connected identity holds, with a network to
// call it through.
func (tx *txn) dialsOut(l *leg) bool {
	return tx.s.cfg.Phones != nil && l.party.ident.Kind == KindPhoneNumber && !reachable(l.party)
}

// onPhone runs fn on a phone call's leg in a transaction, with the phone
// as the actor. Errors: call_not_found.
func (s *Switchboard) onPhone(op, id string, fn func(tx *txn, l *leg) error) error {
	tx := s.begin(nil)
	defer tx.done()
	l := s.legs[id]
	if l == nil || l.line == nil {
		return withOp(op, errCallNotFound(id))
	}
	tx.actor = &Principal{Identifier: l.party.ident, Role: RoleCaller}
	return withOp(op, fn(tx, l))
}

// PhoneProgress says a phone called out rings (180: early false) or plays
// early media (183 with SDP: early true); the caller's call is then
// EarlyMedia and the phone an EarlyMedia participant. Errors:
// call_not_found, invalid_state (answered already).
func (s *Switchboard) PhoneProgress(ctx context.Context, id string, early bool) error {
	return s.onPhone("phone progress", id, func(tx *txn, l *leg) error {
		if l.phase != phaseIncoming {
			return Errorf(CodeInvalidState, "call %s is %s, not ringing", id, l.state())
		}
		if early && !l.early {
			tx.touch(l.conv)
			l.early = true
		}
		return nil
	})
}

// PhoneAnswered says a phone called out answered (200): the phone and its
// caller are Connected, and the caller's active call is held as the
// single-active-call rule says. Errors: call_not_found, invalid_state
// (answered already).
func (s *Switchboard) PhoneAnswered(ctx context.Context, id string) error {
	return s.onPhone("phone answered", id, func(tx *txn, l *leg) error {
		if l.phase != phaseIncoming {
			return Errorf(CodeInvalidState, "call %s is %s, not ringing", id, l.state())
		}
		tx.answerLine(l)
		return nil
	})
}

// answerLine records that a line's far party answered: it and its caller
// are Connected, and the rule settles who is active.
func (tx *txn) answerLine(l *leg) {
	tx.touch(l.conv)
	l.early = false
	tx.goLive(l)
	for _, m := range l.conv.members {
		if m.direction == Outgoing && m.phase != phaseLive {
			tx.goLive(m)
		}
	}
	tx.settle(l)
}

// updateLines tells every phone line whose call the transaction touched
// how that call stands now. A stand-in's line is told the history view
// (every participant, the ended ones with their end reasons), so that
// PeerChangeOf sees how its party ended.
func (tx *txn) updateLines() {
	for i := range tx.seen {
		if l := tx.seen[i].leg; l.line != nil {
			l.line.Update(l.lineView())
		}
	}
}

// policyLegs is a party's calls that take part in the single-active-call
// rule: all but phone legs.
func policyLegs(legs []*leg) []*leg {
	if !slices.ContainsFunc(legs, func(l *leg) bool { return l.line != nil }) {
		return legs
	}
	return slices.DeleteFunc(slices.Clone(legs), func(l *leg) bool { return l.line != nil })
}

// PhoneHold says the phone put the call on hold (a re-INVITE with
// sendonly or inactive: held true) or took it off hold (sendrecv). The
// other side of a 1:1 call is then RemoteHold; when the phone resumes
// while that agent has another active call, the agent's call goes to
// LocalHold, exactly as when a WebRTC caller resumes. Errors:
// call_not_found, invalid_state (not answered).
func (s *Switchboard) PhoneHold(ctx context.Context, id string, held bool) error {
	return s.onPhone("phone hold", id, func(tx *txn, l *leg) error {
		if l.phase != phaseLive {
			return Errorf(CodeInvalidState, "call %s is %s, not answered", id, l.state())
		}
		if l.holding == held {
			return nil
		}
		tx.touch(l.conv)
		tx.holdLine(l, held)
		return nil
	})
}

// holdLine records that a line's far party held the call or resumed it;
// on a resume, the rule settles who is active.
func (tx *txn) holdLine(l *leg, held bool) {
	l.holding = held
	if held {
		tx.s.heldSeq++
		l.heldSeq = tx.s.heldSeq
		l.heldAt = tx.now
	} else {
		l.heldAt = time.Time{}
		tx.settle(nil)
	}
}

// UnmuteTones is what a muted phone keys to unmute itself.
const UnmuteTones = "*6"

// maxToneMemory bounds the tones kept of a phone call, to find UnmuteTones.
const maxToneMemory = 8

// PhoneTones hands over DTMF tones a phone keyed (RFC 4733 or SIP INFO),
// in order. When its last tones are *6 and it is muted, it is unmuted, and
// the others see isMutedChanged with the phone as the actor. Tones keyed
// on an answered call are a dtmf event with their count (never the
// digits: EventDTMF) in the timelines of the phone's call and of those
// who hear it. Errors: call_not_found.
func (s *Switchboard) PhoneTones(ctx context.Context, id, tones string) error {
	return s.onPhone("phone tones", id, func(tx *txn, l *leg) error {
		n := 0
		for _, t := range tones {
			if !strings.ContainsRune(DTMFDigits, t) {
				continue
			}
			n++
			l.tones = append(l.tones, byte(t))
			if len(l.tones) > maxToneMemory {
				l.tones = l.tones[len(l.tones)-maxToneMemory:]
			}
			if strings.HasSuffix(string(l.tones), UnmuteTones) {
				l.tones = l.tones[:0]
				if l.muted && l.phase == phaseLive {
					tx.touch(l.conv)
					l.muted = false
				}
			}
		}
		if n > 0 && l.phase == phaseLive {
			tx.emitTones(l, n)
		}
		return nil
	})
}

// ToneLine is a PhoneLine that can send DTMF tones to its phone (RFC 4733
// on its RTP leg, or SIP INFO).
type ToneLine interface {
	PhoneLine
	// SendTones queues tones for the phone; it must not block.
	SendTones(tones string)
}

// maxTones bounds the tones one request may send.
const maxTones = 64

// SendTones sends DTMF tones on the agent's active call to the phones in
// its conversation only, by their lines (RFC 4733 on the RTP leg, else SIP
// INFO). The API's POST /api/calls/{id}/dtmf uses SendDTMF instead, which
// plays them through the media plane to every other party (phones get
// RFC 4733 there too); this way is kept for a SIP peer that takes
// neither events nor in-band tones, and is to be folded into SendDTMF.
// Its timeline gets a dtmf event as SendDTMF's does. The answer is the
// call. Errors: invalid_request (no tones, more than 64, or one not of 0-9 * # A-D),
// call_not_found, invalid_state (not the active call).
func (s *Switchboard) SendTones(ctx context.Context, p Principal, id, tones string) (Call, error) {
	tones = strings.ToUpper(tones)
	if tones == "" || len(tones) > maxTones || strings.Trim(tones, DTMFDigits) != "" {
		return Call{}, withOp("send tones", Errorf(CodeInvalidRequest, "tones are 1 to %d of 0-9 * # A-D", maxTones))
	}
	return s.callOp("send tones", p, id, ownOnly, func(tx *txn, l *leg) error {
		if l.state() != StateConnected {
			return Errorf(CodeInvalidState, "call %s is %s: tones go on the active call", id, l.state())
		}
		for _, m := range l.conv.members {
			if tl, ok := m.line.(ToneLine); ok && m != l && m.phase == phaseLive {
				tl.SendTones(tones)
			}
		}
		tx.emitTones(l, len(tones))
		return nil
	})
}
