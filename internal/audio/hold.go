package audio

import (
	"fmt"
	"io"
	"os"

	"github.com/go-audio/wav"
)

// HoldSource is what the remote side of a held 1:1 call hears: a loop of
// frames, kept as PCM and, encoded once, as µ-law.
type HoldSource struct {
	pcm  []Frame
	ulaw [][]byte
	pos  int
}

// Default hold tone: two short 1,200 Hz beeps every two seconds, quiet.
const (
	HoldToneHz   = 1200
	holdToneDBov = -20
)

// DefaultHold is the built-in hold tone.
func DefaultHold() *HoldSource {
	// 2 s: beep 300 ms, gap 200 ms, beep 300 ms, quiet 1.2 s.
	pattern := []struct {
		on     bool
		frames int
	}{{true, 15}, {false, 10}, {true, 15}, {false, 60}}
	tone := NewTone(HoldToneHz, holdToneDBov)
	var frames []Frame
	for _, p := range pattern {
		for range p.frames {
			var f Frame
			if p.on {
				tone.Next(&f)
			}
			frames = append(frames, f)
		}
	}
	return newHoldSource(frames)
}

// LoadHoldWAV reads a WAV file (PCM, any rate, mono or stereo) as the hold
// music, resampled to 8 kHz mono.
func LoadHoldWAV(path string) (*HoldSource, error) {
	frames, err := readWAVFrames(path)
	if err != nil {
		return nil, fmt.Errorf("hold music: %w", err)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("hold music %s: no audio", path)
	}
	return newHoldSource(frames), nil
}

func newHoldSource(frames []Frame) *HoldSource {
	h := &HoldSource{pcm: frames, ulaw: make([][]byte, len(frames))}
	for i := range frames {
		h.ulaw[i] = EncodeUlaw(make([]byte, FrameSamples), &h.pcm[i])
	}
	return h
}

// frame returns the current frame of the loop.
func (h *HoldSource) frame() Output {
	return Output{PCM: &h.pcm[h.pos], Ulaw: h.ulaw[h.pos], Source: SourceHold}
}

// advance moves the loop on by a frame.
func (h *HoldSource) advance() { h.pos = (h.pos + 1) % len(h.pcm) }

// readWAVFrames decodes a whole PCM WAV file into 8 kHz mono frames, the
// last one padded with silence.
func readWAVFrames(path string) ([]Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decodeWAVFrames(f, path)
}

// decodeWAVFrames decodes a whole PCM WAV file (named path in errors) into
// 8 kHz mono frames, the last one padded with silence.
func decodeWAVFrames(r io.ReadSeeker, path string) ([]Frame, error) {
	d := wav.NewDecoder(r)
	if !d.IsValidFile() {
		return nil, fmt.Errorf("%s: not a PCM WAV file", path)
	}
	buf, err := d.FullPCMBuffer()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ch := buf.Format.NumChannels
	if ch < 1 || buf.SourceBitDepth != 16 {
		return nil, fmt.Errorf("%s: %d channels of %d bits; want 16-bit PCM", path, ch, buf.SourceBitDepth)
	}
	mono := make([]int16, 0, len(buf.Data)/ch)
	for i := 0; i+ch <= len(buf.Data); i += ch {
		var s int
		for c := range ch {
			s += buf.Data[i+c]
		}
		mono = append(mono, int16(s/ch))
	}
	mono = Resample(mono, buf.Format.SampleRate, SampleRate)
	frames := make([]Frame, (len(mono)+FrameSamples-1)/FrameSamples)
	for i := range frames {
		copy(frames[i][:], mono[i*FrameSamples:])
	}
	return frames, nil
}
