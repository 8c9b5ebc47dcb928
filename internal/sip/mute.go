package sip

import "github.com/switchboard/switchboard/internal/calls"

// mutedTeller is a MediaLeg that tells its phone it was muted by others
// (cmd/switchboard's leg plays the announcement that *6 unmutes). It must
// not block.
type mutedTeller interface {
	MutedByOthers()
}

// muteTracker follows the phone's call's isMuted: a phone cannot mute
// itself, so every change to muted was made by others (a supervisor, or
// the agent in a group call), and the leg tells the phone once per change.
type muteTracker struct{ muted bool }

// follow takes the phone's call as it stands and tells the leg when it has
// just been muted.
func (m *muteTracker) follow(c calls.Call, leg MediaLeg) {
	was := m.muted
	m.muted = c.IsMuted
	if c.IsMuted && !was {
		if t, ok := leg.(mutedTeller); ok {
			t.MutedByOthers()
		}
	}
}
