package calls

import (
	"context"
	"strings"
)

// DTMFDigits are the digits SendDTMF takes: the keypad's 0-9, * and #,
// and the A-D column.
const DTMFDigits = "0123456789*#ABCD"

// maxDTMF bounds the digits of one SendDTMF.
const maxDTMF = 32

// EventDTMF says DTMF tones were keyed in a call: sent by the agent
// (SendDTMF, SendTones) or keyed by a phone (PhoneTones). It is in the
// keyer's call's timeline and in those of the others in the conversation
// who hear it, with the keyer as the actor.
const EventDTMF EventType = "dtmf"

// DTMFData is the data of dtmf. It says who keyed tones and how many,
// never which: callers key card numbers and PINs, and an agent keys them
// into another party's menu on a caller's behalf, so the event stream and
// history (kept for good, read by supervisors) carry no digits at all.
type DTMFData struct {
	// Participant is the rawId of who keyed the tones.
	Participant string `json:"participant"`
	// Count is how many tones were keyed.
	Count int `json:"count"`
}

// emitTones puts n tones keyed by the owner of leg from in its call's
// timeline and in those of the others in the conversation who hear it
// (live, not waiting in a lobby, seeing the keyer), on this node and on
// the others that hold a part of the conversation (tonesHeard).
func (tx *txn) emitTones(from *leg, n int) {
	tx.touch(from.conv)
	data := DTMFData{Participant: from.party.id, Count: n}
	tx.emit(from, EventDTMF, data)
	tx.tonesHeard(from, nil, data)
}

// tonesHeard puts tones keyed by from (a leg of this node's party, or
// the stand-in or ghost of a keyer on another node) in the timelines of
// the others in its conversation who hear it, and sends them on, as
// PeerChange.Tones, over the lines of the stand-ins among those (their
// far nodes do the same), but via's: the stand-in they came in by. The
// nodes of a conversation form a tree (an anchor and its mirrors, or two
// ends of a pair), so each node hears the tones once.
func (tx *txn) tonesHeard(from, via *leg, data DTMFData) {
	for _, m := range from.conv.members {
		if m == from || m == via || m.ghost || m.phase != phaseLive || m.inLobby || !sees(m, from) {
			continue
		}
		if !m.standIn {
			tx.emit(m, EventDTMF, data)
			continue
		}
		if ps, ok := m.line.(PeerSender); ok {
			ps.Send(PeerChange{Tones: &data})
		}
	}
}

// peerTones is tones keyed on the far node of the stand-in l (who and how
// many: never the digits), in the timelines here of those who hear the
// keyer, with the keyer as the actor, as on one node; they go on to the
// conversation's other nodes. The keyer is l's party, or a ghost of a
// mirror or of an invitee's conversation; tones of a keyer this node
// does not show are not recorded here.
func (tx *txn) peerTones(l *leg, data DTMFData) {
	from := keyerOf(l, data.Participant)
	if from == nil || data.Count <= 0 || l.phase != phaseLive {
		return
	}
	tx.actAs(Principal{Identifier: from.party.ident, Role: RoleCaller})
	tx.touch(l.conv)
	tx.tonesHeard(from, l, data)
}

// keyerOf is the leg that shows the party rawID, who keyed tones on the
// far node of the stand-in l: l itself, or a live ghost beside it.
func keyerOf(l *leg, rawID string) *leg {
	if l.party.id == rawID && !l.hidden {
		return l
	}
	for _, m := range l.conv.members {
		if m.ghost && m.party.id == rawID && m.phase == phaseLive {
			return m
		}
	}
	return nil
}

// Tones is the media plane's way to play DTMF into a conversation; the
// Media of Config implements it to carry SendDTMF's digits.
type Tones interface {
	// SendTones plays digits from the member fromRawID to the others in
	// the conversation serverCallID. Called while the switchboard holds
	// its live state; it must not block.
	SendTones(serverCallID, fromRawID, digits string)
}

// ValidDTMF reports whether s is one to 32 DTMF digits.
func ValidDTMF(s string) bool {
	if s == "" || len(s) > maxDTMF {
		return false
	}
	for i := range len(s) {
		if !strings.ContainsRune(DTMFDigits, rune(s[i])) {
			return false
		}
	}
	return true
}

// SendDTMF sends digits on the principal's active call: the others in it
// hear them (a phone as RFC 4733 telephone-events, the rest as tones).
// Lowercase a-d are taken as A-D. Errors: invalid_request for anything but
// one to 32 of DTMFDigits; call_not_found; invalid_state unless the call
// is the agent's active (Connected) one; not_implemented without a media
// plane that plays tones. The call's timeline, and those of the others
// who hear them, get a dtmf event with the count of tones, not the tones.
func (s *Switchboard) SendDTMF(ctx context.Context, p Principal, id, digits string) (Call, error) {
	digits = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'd' {
			return r - 'a' + 'A'
		}
		return r
	}, digits)
	if !ValidDTMF(digits) {
		return Call{}, withOp("send dtmf", Errorf(CodeInvalidRequest, "tones must be 1 to %d of %s", maxDTMF, DTMFDigits))
	}
	tones, ok := s.cfg.Media.(Tones)
	if !ok {
		return Call{}, withOp("send dtmf", Errorf(CodeNotImplemented, "this switchboard has no media plane to send tones"))
	}
	return s.callOp("send dtmf", p, id, ownOnly, func(tx *txn, l *leg) error {
		if st := l.state(); st != StateConnected {
			return Errorf(CodeInvalidState, "call %s is %s; tones go on the active call only", id, st)
		}
		tones.SendTones(l.conv.id, l.party.id, digits)
		tx.emitTones(l, len(digits))
		return nil
	})
}
