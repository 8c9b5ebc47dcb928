package audio

import "math"

// Tone generates a sine wave frame by frame, keeping its phase across
// frames so the wave is continuous.
type Tone struct {
	step, phase float64
	amp         float64
}

// NewTone makes a tone of hz at level dBov (for example -12).
func NewTone(hz, dBov float64) *Tone {
	return &Tone{
		step: 2 * math.Pi * hz / SampleRate,
		amp:  32767 * math.Pow(10, dBov/20) * math.Sqrt2, // a sine's RMS is amp/√2
	}
}

// Next writes the next frame of the tone into f.
func (t *Tone) Next(f *Frame) {
	for i := range f {
		f[i] = int16(t.amp * math.Sin(t.phase))
		t.phase += t.step
	}
	t.phase = math.Mod(t.phase, 2*math.Pi)
}

// ToneLevel is the Goertzel power of the frequency hz in f, normalised so
// that a pure full-scale sine at hz gives about 1 and silence 0. Tests and
// the softphone use it to tell which tone a frame carries.
func ToneLevel(f *Frame, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/SampleRate)
	var s1, s2 float64
	for _, x := range f {
		s0 := float64(x)/32768 + k*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - k*s1*s2
	return power / (FrameSamples * FrameSamples / 4)
}

// Dominant returns which of the frequencies carries the most power in f, and
// whether that one stands out: at least minLevel, and at least 10 times the
// power of every other one. It answers -1, false for none.
func Dominant(f *Frame, minLevel float64, hz ...float64) (int, bool) {
	best, bestLevel, second := -1, 0.0, 0.0
	for i, h := range hz {
		l := ToneLevel(f, h)
		switch {
		case l > bestLevel:
			second, best, bestLevel = bestLevel, i, l
		case l > second:
			second = l
		}
	}
	if best < 0 || bestLevel < minLevel || bestLevel < 10*second {
		return -1, false
	}
	return best, true
}
