package audio

import "sync"

// MemoryEndpoint is an endpoint that speaks a microphone source and keeps
// every frame it hears, with what the mixer said it was, so a test can
// look at the audio while a call goes on. It keeps everything: use it for
// tests and short runs, and FileEndpoint to record long ones.
type MemoryEndpoint struct {
	mic MicSource // used by the mixer's clock only

	mu      sync.Mutex
	frames  []Frame
	sources []Source
	closed  bool
}

// NewMemoryEndpoint makes an endpoint that speaks mic (nil: silence).
func NewMemoryEndpoint(mic MicSource) *MemoryEndpoint {
	if mic == nil {
		mic = Silence{}
	}
	return &MemoryEndpoint{mic: mic}
}

// Capture writes the next frame of the microphone.
func (e *MemoryEndpoint) Capture(f *Frame) bool {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		f.Clear()
		return false
	}
	e.mic.Next(f)
	return true
}

// Play keeps a frame.
func (e *MemoryEndpoint) Play(out Output) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.frames = append(e.frames, *out.PCM)
	e.sources = append(e.sources, out.Source)
}

// Close stops keeping frames; those kept stay readable.
func (e *MemoryEndpoint) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}

// Played is how many frames it has been handed so far.
func (e *MemoryEndpoint) Played() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.frames)
}

// Heard returns copies of the frames handed to it from frame from on, and
// their sources.
func (e *MemoryEndpoint) Heard(from int) ([]Frame, []Source) {
	e.mu.Lock()
	defer e.mu.Unlock()
	from = min(max(from, 0), len(e.frames))
	return append([]Frame(nil), e.frames[from:]...), append([]Source(nil), e.sources[from:]...)
}
