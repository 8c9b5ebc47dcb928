package audio

import "github.com/switchboard/switchboard/internal/calls"

// DigitSink is an endpoint that carries DTMF out of band (RFC 4733
// telephone-events, a SIP phone's leg). The mixer hands it the digits the
// others in its call send, and leaves their in-band tones out of what it
// hears, so that the far end does not count each digit twice.
type DigitSink interface {
	// QueueDigits sends digits (of calls.DTMFDigits) in order, one after the
	// other, and reports whether it can (a SIP peer may have taken no
	// telephone-events: then it hears them in band). It must not block.
	QueueDigits(digits string) bool
}

var _ calls.Tones = (*Mixer)(nil)

// Frames a digit's tones last, and the silence after each.
const (
	dtmfToneFrames = 5 // 100 ms
	dtmfGapFrames  = 3 // 60 ms
)

// dtmfPairs are each digit's low and high frequency (ITU-T Q.23).
var dtmfPairs = map[byte][2]float64{
	'1': {697, 1209}, '2': {697, 1336}, '3': {697, 1477}, 'A': {697, 1633},
	'4': {770, 1209}, '5': {770, 1336}, '6': {770, 1477}, 'B': {770, 1633},
	'7': {852, 1209}, '8': {852, 1336}, '9': {852, 1477}, 'C': {852, 1633},
	'*': {941, 1209}, '0': {941, 1336}, '#': {941, 1477}, 'D': {941, 1633},
}

// dtmfPlayer plays digits in band, frame by frame: each digit's two tones
// (each at -10 dBov) for 100 ms, then 60 ms of silence.
type dtmfPlayer struct {
	digits    []byte
	frame     int // of the current digit, tone then gap
	low, high *Tone
	tmp       Frame
}

// add queues more digits.
func (p *dtmfPlayer) add(digits string) {
	for i := range len(digits) {
		if _, ok := dtmfPairs[digits[i]]; ok {
			p.digits = append(p.digits, digits[i])
		}
	}
}

// active reports whether digits are left to play.
func (p *dtmfPlayer) active() bool { return len(p.digits) > 0 }

// next writes the next frame into f.
func (p *dtmfPlayer) next(f *Frame) {
	if p.frame == 0 {
		pair := dtmfPairs[p.digits[0]]
		p.low, p.high = NewTone(pair[0], -10), NewTone(pair[1], -10)
	}
	if p.frame < dtmfToneFrames {
		p.low.Next(f)
		p.high.Next(&p.tmp)
		for i := range f {
			f[i] = clip(int32(f[i]) + int32(p.tmp[i]))
		}
	} else {
		f.Clear()
	}
	p.frame++
	if p.frame == dtmfToneFrames+dtmfGapFrames {
		p.digits, p.frame = p.digits[1:], 0
	}
}

// HeardDTMF reads the DTMF digits played in band in frames: each run of
// frames whose strongest low and high keypad frequencies stand out and
// make a digit counts once. Tests use it to check what a side heard.
func HeardDTMF(frames []Frame) string {
	lows, highs := []float64{697, 770, 852, 941}, []float64{1209, 1336, 1477, 1633}
	var out []byte
	prev := byte(0)
	for i := range frames {
		var d byte
		lo, okLow := Dominant(&frames[i], 0.01, lows...)
		hi, okHigh := Dominant(&frames[i], 0.01, highs...)
		if okLow && okHigh {
			for digit, pair := range dtmfPairs {
				if pair[0] == lows[lo] && pair[1] == highs[hi] {
					d = digit
				}
			}
		}
		if d != 0 && d != prev {
			out = append(out, d)
		}
		prev = d
	}
	return string(out)
}
