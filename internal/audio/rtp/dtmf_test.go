package rtp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
)

// event is one telephone-event packet a peer sends: the event code, which
// event it belongs to (its start, in frames from the first), its duration
// in frames, and the end bit.
type event struct {
	code       byte
	start, dur uint32
	end        bool
}

// digitPackets is what a phone sends for one digit: an update every 20 ms
// and three end packets.
func digitPackets(code byte, start uint32) []event {
	var evs []event
	for d := uint32(1); d <= 5; d++ {
		evs = append(evs, event{code: code, start: start, dur: d})
	}
	for range 3 {
		evs = append(evs, event{code: code, start: start, dur: 5, end: true})
	}
	return evs
}

func (p *peer) sendEvent(to *Leg, base uint32, ev event) {
	flags := byte(10)
	if ev.end {
		flags |= 0x80
	}
	dur := ev.dur * audio.FrameSamples
	b := p.packet(101, base+ev.start*audio.FrameSamples, []byte{ev.code, flags, byte(dur >> 8), byte(dur)})
	if _, err := p.rtp.WriteToUDPAddrPort(b, legAddr(to)); err != nil {
		p.t.Error(err)
	}
}

func TestDTMFIn(t *testing.T) {
	concat := slices.Concat[[]event]
	tests := []struct {
		name    string
		packets []event
		want    string
	}{
		{name: "one digit", packets: digitPackets(1, 0), want: "1"},
		{name: "star and pound", packets: concat(digitPackets(10, 0), digitPackets(11, 10)), want: "*#"},
		{name: "the same digit twice", packets: concat(digitPackets(5, 0), digitPackets(5, 10)), want: "55"},
		{name: "A to D", packets: concat(digitPackets(12, 0), digitPackets(13, 10), digitPackets(14, 20), digitPackets(15, 30)), want: "ABCD"},
		{name: "end packets only", packets: digitPackets(7, 0)[5:], want: "7"},
		{name: "a late end packet of the digit before", packets: concat(digitPackets(2, 0), digitPackets(3, 10)[:2], digitPackets(2, 0)[7:], digitPackets(3, 10)[2:]), want: "23"},
		{name: "flash is not a digit", packets: digitPackets(16, 0), want: ""},
		{name: "short payloads are ignored", packets: nil, want: ""},
	}
	e := testEngine(t, Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t)
			l := p.answered(e)
			base := p.ts
			for _, ev := range tt.packets {
				p.sendEvent(l, base, ev)
			}
			if _, err := p.rtp.WriteToUDPAddrPort(p.packet(101, base+900*audio.FrameSamples, []byte{1, 2}), legAddr(l)); err != nil {
				t.Fatal(err)
			}
			// A last digit, 9, after which nothing more of the ones
			// before can come: the leg reads its port in order.
			for _, ev := range digitPackets(9, 1000) {
				p.sendEvent(l, base, ev)
			}
			var got strings.Builder
			for {
				select {
				case d := <-l.DTMF():
					if d == '9' {
						if got.String() != tt.want {
							t.Errorf("digits %q, want %q", got.String(), tt.want)
						}
						return
					}
					got.WriteRune(d)
				case <-time.After(waitFor):
					t.Fatalf("digits %q and no 9 after %v", got.String(), waitFor)
				}
			}
		})
	}
}

// player calls Play every 20 ms until the test ends, as the mixer would.
func player(t *testing.T, l *Leg) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(audio.FrameDuration)
		defer tick.Stop()
		var f audio.Frame
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				l.Play(audio.Output{PCM: &f})
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// sentEvent is what the peer saw of one event the leg sent.
type sentEvent struct {
	code     byte
	marker   bool // on its first packet
	packets  int
	ends     int
	duration uint32 // the last one, in samples
	shrank   bool   // a duration smaller than the one before
}

func TestDTMFOut(t *testing.T) {
	e := testEngine(t, Config{})
	p := newPeer(t)
	l := p.answered(e)
	player(t, l)

	digits := []struct {
		digit rune
		d     time.Duration
		code  byte
		want  uint32 // duration in samples
	}{
		{'5', 100 * time.Millisecond, 5, 800},
		{'#', 0, 11, 800},                     // DefaultDTMFDuration
		{'a', 10 * time.Millisecond, 12, 320}, // at least 40 ms
	}
	errs := make(chan error, 1)
	go func() {
		for _, d := range digits {
			if err := l.SendDTMF(context.Background(), d.digit, d.d); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()

	var events []*sentEvent
	byTS := map[uint32]*sentEvent{}
	var lastSeq uint16
	first := true
	for done := 0; done < len(digits); {
		pkt, ok := readRTP(t, p.rtp)
		if !ok {
			t.Fatalf("%d of %d digits ended in %v", done, len(digits), waitFor)
		}
		if !first && pkt.SequenceNumber != lastSeq+1 {
			t.Errorf("sequence number %d after %d", pkt.SequenceNumber, lastSeq)
		}
		first, lastSeq = false, pkt.SequenceNumber
		if pkt.PayloadType != 101 {
			continue
		}
		if len(pkt.Payload) != 4 {
			t.Fatalf("an event payload of %d bytes", len(pkt.Payload))
		}
		ev := byTS[pkt.Timestamp]
		if ev == nil {
			ev = &sentEvent{code: pkt.Payload[0], marker: pkt.Marker}
			byTS[pkt.Timestamp] = ev
			events = append(events, ev)
		} else if pkt.Marker {
			t.Error("a marker bit after an event's first packet")
		}
		dur := uint32(pkt.Payload[2])<<8 | uint32(pkt.Payload[3])
		ev.shrank = ev.shrank || dur < ev.duration
		ev.packets++
		ev.duration = dur
		if pkt.Payload[1]&0x80 != 0 {
			ev.ends++
			if ev.ends == dtmfEnds {
				done++
			}
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if len(events) != len(digits) {
		t.Fatalf("%d events, want %d", len(events), len(digits))
	}
	for i, d := range digits {
		ev := events[i]
		if ev.code != d.code || !ev.marker || ev.ends != dtmfEnds || ev.duration != d.want || ev.shrank {
			t.Errorf("digit %q: %+v; want code %d, a marker, %d end packets, duration %d never shrinking", d.digit, *ev, d.code, dtmfEnds, d.want)
		}
	}
}

func TestSendDTMFErrors(t *testing.T) {
	e := testEngine(t, Config{})
	noEvents := strings.NewReplacer(" 0 8 101", " 0 8", "a=rtpmap:101 telephone-event/8000\r\n", "", "a=fmtp:101 0-16\r\n", "")
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name  string
		setup func(t *testing.T) *Leg
		ctx   context.Context
		digit rune
		want  error
	}{
		{name: "not a digit", setup: func(t *testing.T) *Leg { return newPeer(t).answered(e) }, ctx: ctx, digit: 'x'},
		{name: "no telephone-event", setup: func(t *testing.T) *Leg {
			l := mustLeg(t, e)
			if _, err := l.Answer([]byte(noEvents.Replace(phoneOffer(30000)))); err != nil {
				t.Fatal(err)
			}
			return l
		}, ctx: ctx, digit: '1', want: ErrNoDTMF},
		{name: "no description yet", setup: func(t *testing.T) *Leg { return mustLeg(t, e) }, ctx: ctx, digit: '1', want: ErrNoDTMF},
		{name: "closed", setup: func(t *testing.T) *Leg {
			l := newPeer(t).answered(e)
			l.Close()
			return l
		}, ctx: ctx, digit: '1', want: ErrClosed},
		{name: "canceled before it starts (no clock)", setup: func(t *testing.T) *Leg { return newPeer(t).answered(e) }, ctx: canceled, digit: '1', want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.setup(t)
			err := l.SendDTMF(tt.ctx, tt.digit, 0)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("SendDTMF: %v, want %v", err, tt.want)
			}
			l.sendMu.Lock()
			queued := len(l.dtmf.queue)
			l.sendMu.Unlock()
			if queued != 0 {
				t.Errorf("%d digits left queued", queued)
			}
		})
	}
}

// TestQueueDigits: the mixer's way in (audio.DigitSink) queues the digits
// without waiting, and refuses, queuing nothing, when the peer took no
// telephone-events or the leg has ended.
func TestQueueDigits(t *testing.T) {
	e := testEngine(t, Config{})
	noEvents := strings.NewReplacer(" 0 8 101", " 0 8", "a=rtpmap:101 telephone-event/8000\r\n", "", "a=fmtp:101 0-16\r\n", "")
	tests := []struct {
		name       string
		setup      func(t *testing.T) *Leg
		digits     string
		want       bool
		wantQueued int
	}{
		{"digits", func(t *testing.T) *Leg { return newPeer(t).answered(e) }, "1#x9", true, 3},
		{"no telephone-event", func(t *testing.T) *Leg {
			l := mustLeg(t, e)
			if _, err := l.Answer([]byte(noEvents.Replace(phoneOffer(30002)))); err != nil {
				t.Fatal(err)
			}
			return l
		}, "1", false, 0},
		{"closed", func(t *testing.T) *Leg {
			l := newPeer(t).answered(e)
			l.Close()
			return l
		}, "1", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.setup(t)
			if got := l.QueueDigits(tt.digits); got != tt.want {
				t.Errorf("QueueDigits(%q) = %v, want %v", tt.digits, got, tt.want)
			}
			l.sendMu.Lock()
			queued := len(l.dtmf.queue)
			l.sendMu.Unlock()
			if queued != tt.wantQueued {
				t.Errorf("%d digits queued, want %d", queued, tt.wantQueued)
			}
		})
	}
}
