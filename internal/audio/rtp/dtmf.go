package rtp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	pionrtp "github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/audio"
)

// ErrNoDTMF: the peer did not negotiate telephone-event; the SIP layer
// may send the digits as SIP INFO instead.
var ErrNoDTMF = errors.New("rtp: the peer takes no RFC 4733 telephone-events")

// DTMF digits in RFC 4733 event codes: 0-9, then *, #, A-D.
const dtmfDigits = "0123456789*#ABCD"

// Durations of a digit sent.
const (
	DefaultDTMFDuration = 100 * time.Millisecond
	minDTMFDuration     = 40 * time.Millisecond
	maxDTMFDuration     = 5 * time.Second
	dtmfEnds            = 3 // end packets, sent 20 ms apart (RFC 4733 section 2.5.1.4)
	dtmfGap             = 3 // frames of audio between two digits
	dtmfVolume          = 10
)

// SendDTMF sends digit ('0'-'9', '*', '#', 'A'-'D') as RFC 4733
// telephone-events lasting d (DefaultDTMFDuration when zero), after the
// digits queued before it, and returns once its last packet went out. The
// events go out on the mixer's clock, in place of audio frames (Play), so
// the leg must be attached to a running mixer. Errors: ErrNoDTMF, ErrClosed,
// or ctx's (a digit that had not started is dropped).
func (l *Leg) SendDTMF(ctx context.Context, digit rune, d time.Duration) error {
	i := strings.IndexRune(dtmfDigits, digit)
	if digit >= 'a' && digit <= 'd' {
		i = strings.IndexRune(dtmfDigits, digit-'a'+'A')
	}
	if i < 0 {
		return fmt.Errorf("rtp: %q is not a DTMF digit (0-9, *, #, A-D)", digit)
	}
	if d == 0 {
		d = DefaultDTMFDuration
	}
	d = min(max(d, minDTMFDuration), maxDTMFDuration)
	frames := uint32((d + audio.FrameDuration - 1) / audio.FrameDuration)
	l.mu.Lock()
	ended, events := l.ended, l.known && l.remote.eventPT != noPT
	l.mu.Unlock()
	switch {
	case ended:
		return ErrClosed
	case !events:
		return ErrNoDTMF
	}
	req := &dtmfReq{code: byte(i), samples: frames * audio.FrameSamples, done: make(chan struct{})}
	l.sendMu.Lock()
	l.dtmf.queue = append(l.dtmf.queue, req)
	l.sendMu.Unlock()
	select {
	case <-req.done:
		return nil
	case <-l.stop:
		return ErrClosed
	case <-ctx.Done():
		l.sendMu.Lock()
		l.dtmf.queue = slices.DeleteFunc(l.dtmf.queue, func(r *dtmfReq) bool { return r == req })
		l.sendMu.Unlock()
		return fmt.Errorf("rtp: sending DTMF %q: %w", digit, ctx.Err())
	}
}

// QueueDigits queues digits as RFC 4733 telephone-events of
// DefaultDTMFDuration each, after those queued before, and returns at
// once (audio.DigitSink: the mixer hands the leg the digits the others in
// its call send). Digits that are not DTMF are skipped. It reports false,
// queuing nothing, when the peer takes no telephone-events or the leg has
// ended: the mixer then plays the digits to it in band.
func (l *Leg) QueueDigits(digits string) bool {
	l.mu.Lock()
	ended, events := l.ended, l.known && l.remote.eventPT != noPT
	l.mu.Unlock()
	if ended || !events {
		return false
	}
	samples := uint32(DefaultDTMFDuration / audio.FrameDuration * audio.FrameSamples)
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	for _, d := range digits {
		if i := strings.IndexRune(dtmfDigits, d); i >= 0 {
			l.dtmf.queue = append(l.dtmf.queue, &dtmfReq{code: byte(i), samples: samples, done: make(chan struct{})})
		}
	}
	return true
}

type dtmfReq struct {
	code    byte
	samples uint32 // the duration, in timestamp units
	done    chan struct{}
}

// dtmfSender turns queued digits into event packets, one per frame.
type dtmfSender struct {
	queue   []*dtmfReq
	cur     *dtmfReq
	start   uint32 // the event's timestamp: when it began
	elapsed uint32
	ends    int // end packets sent
	gap     int // frames of audio still to send before the next digit
}

type eventPacket struct {
	payload [4]byte
	ts      uint32
	first   bool // the marker bit
}

// next is the event packet to send in the frame at ts, if a digit is
// under way (or starts now).
func (s *dtmfSender) next(ts uint32) (eventPacket, bool) {
	var ev eventPacket
	if s.cur == nil {
		if s.gap > 0 {
			s.gap--
			return ev, false
		}
		if len(s.queue) == 0 {
			return ev, false
		}
		s.cur, s.queue = s.queue[0], s.queue[1:]
		s.start, s.elapsed, s.ends = ts, 0, 0
		ev.first = true
	}
	if s.elapsed < s.cur.samples {
		s.elapsed += audio.FrameSamples
	}
	end := s.elapsed >= s.cur.samples
	dur := min(s.elapsed, s.cur.samples, 0xffff)
	ev.payload = [4]byte{s.cur.code, dtmfVolume, byte(dur >> 8), byte(dur)}
	if end {
		ev.payload[1] |= 0x80
		s.ends++
	}
	ev.ts = s.start
	if s.ends == dtmfEnds {
		close(s.cur.done)
		s.cur, s.gap = nil, dtmfGap
	}
	return ev, true
}

// eventIn tells new events from the updates and redundant end packets
// of one already seen: an event is its timestamp (RFC 4733 section
// 2.5.2.1), and only a later one is new.
type eventIn struct {
	seen bool
	ts   uint32
}

// take reads an event packet, and returns its digit the first time the
// event is seen.
func (e *eventIn) take(p *pionrtp.Packet) (rune, bool) {
	if len(p.Payload) < 4 {
		return 0, false
	}
	if e.seen && int32(p.Timestamp-e.ts) <= 0 {
		return 0, false
	}
	e.seen, e.ts = true, p.Timestamp
	code := p.Payload[0]
	if int(code) >= len(dtmfDigits) {
		return 0, false // flash and the other events are not digits
	}
	return rune(dtmfDigits[code]), true
}
