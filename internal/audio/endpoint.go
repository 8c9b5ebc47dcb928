package audio

// Endpoint is an identity's audio device: a WebRTC leg, a host sound card,
// a file. The mixer calls it on its clock, once per 20 ms frame, from one
// goroutine; Close may come from another while a call is in progress.
type Endpoint interface {
	// Capture writes the next 20 ms of the identity's microphone into f and
	// reports whether it had any (false: f is silence). It must not block.
	Capture(f *Frame) bool
	// Play hands over the next 20 ms of what the identity hears. It must
	// not block, and must not keep out past the call.
	Play(out Output)
	// Close releases the device; after it, Capture and Play do nothing.
	Close() error
}

// Output is one frame of what an identity hears.
type Output struct {
	PCM *Frame
	// Ulaw is the same frame as µ-law when the mixer has it encoded
	// already (silence and the hold tone), else nil.
	Ulaw []byte
	// Source says what the frame is.
	Source Source
}

// Source is what an identity hears in a frame.
type Source uint8

// What an identity may hear.
const (
	SourceSilence Source = iota // no active call
	SourceCall                  // the mix of its active call
	SourceHold                  // the hold tone: the other side held a 1:1 call
)

func (s Source) String() string {
	switch s {
	case SourceCall:
		return "call"
	case SourceHold:
		return "hold"
	}
	return "silence"
}
