package audio

import (
	"slices"

	"github.com/switchboard/switchboard/internal/calls"
)

// Who hears whom. By default every member of a conversation hears every
// other member who sends. A member may instead be heard by an audience
// (calls.MediaMember.Audience): a supervisor who whispers is heard by the
// agent alone, and a consult transfer may use the same to keep one party
// out of another's ear. A conversation with such a member is mixed for each
// receiver apart; every other conversation keeps the shared sum and the
// 1:1 copy (mixConv), so an audience costs only the calls that have one.

// setAudiences resolves each member's audience, from the route's call ids
// to the conversation's members (members and rms are in the same order),
// and reports whether any member has one.
func setAudiences(c *conv, rms []calls.MediaMember) bool {
	limited := false
	for i, rm := range rms {
		mb := c.members[i]
		mb.audience = mb.audience[:0]
		mb.limited = rm.Audience != nil
		if !mb.limited {
			continue
		}
		limited = true
		for _, o := range c.members {
			if o != mb && slices.Contains(rm.Audience, o.callID) {
				mb.audience = append(mb.audience, o)
			}
		}
	}
	return limited
}

// heardBy reports whether mb's sound reaches o.
func (mb *member) heardBy(o *member) bool {
	return !mb.limited || slices.Contains(mb.audience, o)
}

// mixAudience writes into dst what mb hears in c, a conversation where
// someone has an audience: the sum of every other sender that mb is in the
// audience of (leaving out DTMF tones for a member that takes digits out
// of band).
func mixAudience(dst *Frame, c *conv, mb *member) {
	var s sum
	n := 0
	var only *Frame
	for _, o := range c.members {
		if o == mb || o.contrib == nil || !o.heardBy(mb) || mb.digitsOutOfBand && o.id.isToning() {
			continue
		}
		s.add(o.contrib)
		only = o.contrib
		n++
	}
	switch n {
	case 0:
		dst.Clear()
	case 1:
		*dst = *only
	default:
		s.mixInto(dst, nil)
	}
}
