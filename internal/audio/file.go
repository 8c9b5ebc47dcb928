package audio

import (
	"errors"
	"fmt"
	"os"
	"sync"

	goaudio "github.com/go-audio/audio"
	"github.com/go-audio/wav"
)

// MicSource feeds a file endpoint's microphone one frame at a time.
type MicSource interface {
	Next(f *Frame)
}

// Silence is a microphone that says nothing.
type Silence struct{}

// Next writes silence.
func (Silence) Next(f *Frame) { f.Clear() }

// Loop plays frames over and over (a WAV file read with ReadWAV).
type Loop struct {
	Frames []Frame
	pos    int
}

// Next writes the next frame of the loop.
func (l *Loop) Next(f *Frame) {
	if len(l.Frames) == 0 {
		f.Clear()
		return
	}
	*f = l.Frames[l.pos]
	l.pos = (l.pos + 1) % len(l.Frames)
}

// FileEndpoint is an audio endpoint made of files: its microphone is a
// source (a tone, a WAV loop, silence) and what it hears is recorded to a
// WAV file (8 kHz mono 16-bit), a frame per tick, silence included, so a
// recording's frame n is the mixer's nth tick since the endpoint attached.
// Tests and bots use it; `serve --device alice=file:in.wav:out.wav` too.
type FileEndpoint struct {
	mu     sync.Mutex
	mic    MicSource
	file   *os.File
	enc    *wav.Encoder
	buf    goaudio.IntBuffer
	played int
	closed bool
	err    error
}

// NewFileEndpoint makes an endpoint that speaks mic (nil: silence) and
// records to the WAV file at record ("": records nothing).
func NewFileEndpoint(mic MicSource, record string) (*FileEndpoint, error) {
	if mic == nil {
		mic = Silence{}
	}
	e := &FileEndpoint{mic: mic}
	if record != "" {
		f, err := os.Create(record)
		if err != nil {
			return nil, fmt.Errorf("file endpoint: %w", err)
		}
		e.file = f
		e.enc = wav.NewEncoder(f, SampleRate, 16, 1, 1)
		e.buf = goaudio.IntBuffer{
			Format:         &goaudio.Format{NumChannels: 1, SampleRate: SampleRate},
			Data:           make([]int, FrameSamples),
			SourceBitDepth: 16,
		}
	}
	return e, nil
}

// Capture writes the next frame of the microphone.
func (e *FileEndpoint) Capture(f *Frame) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		f.Clear()
		return false
	}
	e.mic.Next(f)
	return true
}

// Play records one frame.
func (e *FileEndpoint) Play(out Output) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.played++
	if e.enc == nil || e.err != nil {
		return
	}
	for i, s := range out.PCM {
		e.buf.Data[i] = int(s)
	}
	e.err = e.enc.Write(&e.buf)
}

// Played is how many frames it has been handed so far.
func (e *FileEndpoint) Played() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.played
}

// Close finishes the recording.
func (e *FileEndpoint) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if e.enc == nil {
		return nil
	}
	err := errors.Join(e.err, e.enc.Close(), e.file.Close())
	if err != nil {
		return fmt.Errorf("file endpoint %s: %w", e.file.Name(), err)
	}
	return nil
}

// ReadWAV reads a PCM WAV file as 8 kHz mono frames.
func ReadWAV(path string) ([]Frame, error) {
	return readWAVFrames(path)
}
