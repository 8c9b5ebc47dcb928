package audio

import (
	"math"
	"time"
)

// The format every part of the media plane speaks.
const (
	SampleRate    = 8000                  // samples per second
	FrameSamples  = 160                   // samples per frame
	FrameDuration = 20 * time.Millisecond // one frame
	FramesPerSec  = int(time.Second / FrameDuration)
)

// Frame is 20 ms of 8 kHz mono PCM16.
type Frame [FrameSamples]int16

// silence is a frame of zeros, to copy from.
var silence Frame

// Clear makes f silent.
func (f *Frame) Clear() { *f = silence }

// RMS is the frame's root mean square level, 0 (silence) to 32768.
func (f *Frame) RMS() float64 {
	var sum float64
	for _, s := range f {
		v := float64(s)
		sum += v * v
	}
	return math.Sqrt(sum / FrameSamples)
}

// DBov is the frame's level in dB relative to a full-scale square wave: 0
// is the loudest, silence is -inf.
func (f *Frame) DBov() float64 { return 20 * math.Log10(f.RMS()/32768) }

// sum accumulates frames for a mix without clipping midway.
type sum [FrameSamples]int32

func (s *sum) add(f *Frame) {
	for i, v := range f {
		s[i] += int32(v)
	}
}

// mixInto writes s minus own (nil: nothing) into dst, clipped to int16.
func (s *sum) mixInto(dst *Frame, own *Frame) {
	if own == nil {
		for i, v := range s {
			dst[i] = clip(v)
		}
		return
	}
	for i, v := range s {
		dst[i] = clip(v - int32(own[i]))
	}
}

func clip(v int32) int16 {
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}
