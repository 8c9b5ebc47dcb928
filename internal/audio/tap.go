package audio

// Tap hears one call's audio, one frame per tick of the mixer's clock:
// what the call's identity sends into the call (its microphone as the
// others hear it; silence while muted, held or not yet mixed) and what the
// others in the call send, mixed (what it hears, whether or not its
// incoming audio is muted). A recorder is one.
//
// TapFrame runs on the mixer's clock: it must not block, and must copy the
// frames (they are reused at the next tick).
type Tap interface {
	TapFrame(send, others *Frame)
}

// tapRequest is SetTap's request, for the clock.
type tapRequest struct {
	callID string
	tap    Tap // nil: remove
}

// tapSet is the clock's taps, by call id.
type tapSet struct {
	taps   map[string]Tap
	fed    map[string]bool // fed this tick
	tmp    Frame
	others Frame
}

// SetTap makes t hear the call callID from the next tick on (replacing
// the tap it had); a nil t removes it. After SetTap(callID, nil) returns
// the old tap may still hear one more tick: a tap stops on its own.
func (m *Mixer) SetTap(callID string, t Tap) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tapReqs = append(m.tapReqs, tapRequest{callID: callID, tap: t})
}

// applyTaps takes the taps other goroutines handed over; on the clock.
func (m *Mixer) applyTaps() {
	m.mu.Lock()
	reqs := m.tapReqs
	m.tapReqs = nil
	m.mu.Unlock()
	if len(reqs) == 0 {
		return
	}
	if m.taps.taps == nil {
		m.taps.taps, m.taps.fed = map[string]Tap{}, map[string]bool{}
	}
	for _, r := range reqs {
		if r.tap == nil {
			delete(m.taps.taps, r.callID)
			continue
		}
		m.taps.taps[r.callID] = r.tap
	}
}

// tapMember feeds mb's tap, if its call has one: mixFor writes what mb
// hears. On the clock, from mixConv.
func (m *Mixer) tapMember(mb *member, mixFor func(dst *Frame, mb *member)) {
	t := m.taps.taps[mb.callID]
	if t == nil {
		return
	}
	send := &silence
	if mb.contrib != nil {
		send = mb.contrib
	}
	mixFor(&m.taps.others, mb)
	t.TapFrame(send, &m.taps.others)
	m.taps.fed[mb.callID] = true
}

// tapRest feeds silence to the taps whose call was not mixed this tick
// (ringing, or between routes), so that a recording keeps the call's
// time; on the clock, at the end of a tick.
func (m *Mixer) tapRest() {
	if len(m.taps.taps) == 0 {
		return
	}
	for id, t := range m.taps.taps {
		if !m.taps.fed[id] {
			m.taps.tmp.Clear()
			t.TapFrame(&silence, &m.taps.tmp)
		}
	}
	clear(m.taps.fed)
}
