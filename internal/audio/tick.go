package audio

import (
	"github.com/switchboard/switchboard/internal/calls"
)

// Tick runs one frame of the media plane: apply what arrived, capture every
// microphone, mix every conversation, play every endpoint. Run calls it on
// the clock; tests call it directly.
func (m *Mixer) Tick() {
	m.stats.ticks.Add(1)
	m.applyPending()
	m.applyTaps()
	m.applyWaits()

	for _, id := range m.ids {
		id.source, id.wait = SourceSilence, nil
		if id.ep != nil {
			id.hasMic = id.ep.Capture(&id.mic)
		} else {
			id.hasMic = false
		}
		if id.toning = id.dtmf.active(); id.toning {
			id.dtmf.next(&id.mic)
			id.hasMic = true
		}
	}
	var speak []speakChange
	for _, c := range m.convs {
		speak = m.mixConv(c, speak)
	}
	m.markWaiting()
	silent := Output{PCM: &silence, Ulaw: ulawSilence[:], Source: SourceSilence}
	hold := m.hold.frame()
	music := m.music.frame()
	for _, id := range m.ids {
		if id.ep == nil {
			continue
		}
		if id.wait != nil {
			id.ep.Play(id.wait.next(music))
			continue
		}
		switch id.source {
		case SourceCall:
			id.ep.Play(Output{PCM: &id.out, Source: SourceCall})
		case SourceHold:
			id.ep.Play(hold)
		default:
			id.ep.Play(silent)
		}
	}
	m.hold.advance()
	if m.music != m.hold {
		m.music.advance()
	}
	m.tapRest()
	if len(speak) > 0 {
		m.speakMu.Lock()
		for _, s := range speak {
			m.speakNew[s.callID] = s.speaking
		}
		m.speakMu.Unlock()
		m.signal(m.speakWake)
	}
}

type speakChange struct {
	callID   string
	speaking bool
}

// ulawSilence is a frame of silence in µ-law.
var ulawSilence = func() (b [FrameSamples]byte) {
	EncodeUlaw(b[:], &silence)
	return b
}()

// mixConv mixes one conversation: for every receiver, the sum of every
// sender but itself. Most conversations have one or two senders (a 1:1
// call), whose mixes are copies: the sum is made only when a receiver
// hears two others or more.
func (m *Mixer) mixConv(c *conv, speak []speakChange) []speakChange {
	var first, second *member // the first two senders
	senders, toning := 0, false
	for _, mb := range c.members {
		mb.contrib = nil
		var src *Frame
		switch {
		case mb.echo != nil:
			src = mb.echo.out()
		case mb.id != nil && mb.id.hasMic:
			src = &mb.id.mic
		}
		if !mb.send || src == nil {
			if mb.echo == nil && mb.speaking.reset() {
				speak = append(speak, speakChange{mb.callID, false})
			}
			continue
		}
		mb.contrib = src
		toning = toning || mb.id != nil && mb.id.toning
		switch senders {
		case 0:
			first = mb
		case 1:
			second = mb
		}
		senders++
		if mb.echo == nil {
			if s, changed := mb.speaking.update(src.DBov()); changed {
				speak = append(speak, speakChange{mb.callID, s})
			}
		}
	}
	summed := false
	// mixFor writes what mb hears into dst.
	mixFor := func(dst *Frame, mb *member) {
		others := senders
		if mb.contrib != nil {
			others--
		}
		switch {
		case others == 0:
			dst.Clear()
		case others == 1 && first != mb:
			*dst = *first.contrib
		case others == 1:
			*dst = *second.contrib
		default:
			if !summed {
				m.mix = sum{}
				for _, s := range c.members {
					if s.contrib != nil {
						m.mix.add(s.contrib)
					}
				}
				summed = true
			}
			m.mix.mixInto(dst, mb.contrib)
		}
	}
	if c.limited {
		// Someone is heard by some members only: each receiver's own sum.
		mixFor = func(dst *Frame, mb *member) { mixAudience(dst, c, mb) }
	} else if toning {
		// Who takes digits out of band does not hear their tones.
		plain := mixFor
		mixFor = func(dst *Frame, mb *member) {
			if !mb.digitsOutOfBand {
				plain(dst, mb)
				return
			}
			var s sum
			for _, o := range c.members {
				if o != mb && o.contrib != nil && !o.id.isToning() {
					s.add(o.contrib)
				}
			}
			s.mixInto(dst, nil)
		}
	}
	held := false
	for _, mb := range c.members {
		held = held || mb.held
	}
	for _, mb := range c.members {
		m.tapMember(mb, mixFor)
		switch {
		case mb.receive && mb.echo != nil:
			mixFor(&m.tmp, mb)
			mb.echo.push(&m.tmp)
		case mb.receive && mb.id != nil:
			mb.id.source = SourceCall
			mixFor(&mb.id.out, mb)
		case mb.echo != nil:
			mb.echo.push(&silence)
		case held && !mb.held && c.kind == calls.OneToOne && mb.id != nil && mb.id.source == SourceSilence:
			// The other side held this 1:1 call: it hears the hold tone,
			// unless it has an active call of its own to hear.
			mb.id.source = SourceHold
		}
	}
	return speak
}

// isToning reports whether the identity (nil: the echo bot) sends DTMF
// tones this tick.
func (id *identity) isToning() bool { return id != nil && id.toning }

// applyPending takes the routes, endpoints and tones other goroutines
// handed over.
func (m *Mixer) applyPending() {
	m.mu.Lock()
	if len(m.routes) == 0 && len(m.attach) == 0 && len(m.tones) == 0 {
		m.mu.Unlock()
		return
	}
	routes, attach, tones := m.routes, m.attach, m.tones
	m.routes, m.attach, m.tones = make(map[string]calls.Route, len(routes)), nil, nil
	var retired []Endpoint
	for _, a := range attach {
		id := m.identity(a.rawID)
		switch {
		case a.ep != nil:
			if id.ep != nil && id.ep != a.ep {
				retired = append(retired, id.ep)
			}
			id.ep = a.ep
		case id.ep == a.only:
			retired = append(retired, id.ep)
			id.ep = nil
			m.forget(a.rawID, id)
		default:
			retired = append(retired, a.only) // replaced already: close it
		}
	}
	if len(retired) > 0 {
		m.retired = append(m.retired, retired...)
		m.signal(m.wake)
	}
	m.mu.Unlock()
	for key, r := range routes {
		m.applyRoute(key, r)
	}
	for _, t := range tones {
		m.applyTones(t)
	}
}

// applyTones starts playing a SendTones request's digits, and hands them
// to the conversation's other members that take digits out of band.
func (m *Mixer) applyTones(t toneRequest) {
	c := m.convs[t.serverCallID]
	if c == nil {
		return
	}
	var from *identity
	for _, mb := range c.members {
		if mb.rawID == t.rawID {
			from = mb.id
		}
	}
	if from == nil {
		return
	}
	from.dtmf.add(t.digits)
	for _, mb := range c.members {
		if mb.id == nil || mb.id == from {
			continue
		}
		sink, ok := mb.id.ep.(DigitSink)
		mb.digitsOutOfBand = ok && sink.QueueDigits(t.digits)
	}
}

// applyRoute replaces a conversation's members, keeping the state of those
// who stay (speaking detectors, echo lines).
func (m *Mixer) applyRoute(key string, r calls.Route) {
	old := m.convs[key]
	if len(r.Members) == 0 {
		if old != nil {
			for _, mb := range old.members {
				m.leave(mb)
			}
			delete(m.convs, key)
		}
		return
	}
	prev := map[string]*member{}
	if old != nil {
		for _, mb := range old.members {
			prev[mb.callID] = mb
		}
	}
	c := &conv{kind: r.Kind, members: make([]*member, 0, len(r.Members))}
	for _, rm := range r.Members {
		mb := prev[rm.CallID]
		if mb == nil {
			mb = &member{rawID: rm.RawID, callID: rm.CallID, key: rm.RawID}
			if rm.OwnEndpoint {
				mb.key = rm.CallID
			}
			if rm.RawID == m.cfg.EchoBot && m.cfg.EchoBot != "" {
				mb.echo = newEchoLine(m.cfg.EchoDelay)
			} else {
				mb.id = m.identity(mb.key)
				mb.id.members++
			}
		}
		delete(prev, rm.CallID)
		mb.send, mb.receive, mb.held = rm.Send, rm.Receive, rm.Held
		c.members = append(c.members, mb)
	}
	for _, mb := range prev {
		m.leave(mb)
	}
	c.limited = setAudiences(c, r.Members)
	m.convs[key] = c
}

// identity returns the state of the endpoint attached under key (a raw
// id, or a call's id for a call with its own endpoint), creating it.
func (m *Mixer) identity(key string) *identity {
	id := m.ids[key]
	if id == nil {
		id = &identity{}
		m.ids[key] = id
	}
	return id
}

// leave drops a member's hold on its identity.
func (m *Mixer) leave(mb *member) {
	if mb.id == nil {
		return
	}
	mb.id.members--
	m.forget(mb.key, mb.id)
}

// forget drops an identity with neither endpoint nor calls.
func (m *Mixer) forget(key string, id *identity) {
	if id.ep == nil && id.members <= 0 {
		delete(m.ids, key)
	}
}

// echoLine is one echo bot leg: it plays back what it hears, delayed. It
// keeps the delay in µ-law, half the memory of PCM and exact for what came
// from a WebRTC leg (µ-law already).
type echoLine struct {
	frames [][FrameSamples]byte
	pos    int
	out1   Frame // the frame out returned, decoded
}

func newEchoLine(delay int) *echoLine {
	e := &echoLine{frames: make([][FrameSamples]byte, delay)}
	for i := range e.frames {
		e.frames[i] = ulawSilence
	}
	return e
}

// out is the frame heard delay ticks ago.
func (e *echoLine) out() *Frame {
	DecodeUlaw(&e.out1, e.frames[e.pos][:])
	return &e.out1
}

// push stores this tick's frame in place of the one out returned.
func (e *echoLine) push(f *Frame) {
	EncodeUlaw(e.frames[e.pos][:], f)
	e.pos = (e.pos + 1) % len(e.frames)
}
