package audio

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"
)

// Prompt is a recorded announcement, played once to one identity over
// whatever it hears (the muted phone's "press star six").
type Prompt struct {
	frames []Frame
}

// LoadPromptWAV reads a WAV file (PCM, any rate, mono or stereo) as a
// prompt, resampled to 8 kHz mono.
func LoadPromptWAV(path string) (*Prompt, error) {
	frames, err := readWAVFrames(path)
	if err != nil {
		return nil, fmt.Errorf("prompt: %w", err)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("prompt %s: no audio", path)
	}
	return &Prompt{frames: frames}, nil
}

// TonePrompt is a prompt of a tone of hz at level dBov (for example -12)
// lasting frames frames: the voicemail's built-in beep.
func TonePrompt(hz, dBov float64, frames int) *Prompt {
	p := &Prompt{frames: make([]Frame, frames)}
	t := NewTone(hz, dBov)
	for i := range p.frames {
		t.Next(&p.frames[i])
	}
	return p
}

// Len is how many frames the prompt lasts.
func (p *Prompt) Len() int { return len(p.frames) }

// Frame is the prompt's i-th frame.
func (p *Prompt) Frame(i int) *Frame { return &p.frames[i] }

//go:embed prompts/muted.wav
var mutedWAV []byte

// MutedPrompt is the built-in announcement to a phone that others muted:
// "You are muted. To unmute, press star 6." (3.6 s, spoken by espeak-ng;
// scripts/make-prompts makes it again).
var MutedPrompt = sync.OnceValue(func() *Prompt {
	frames, err := decodeWAVFrames(bytes.NewReader(mutedWAV), "prompts/muted.wav")
	if err != nil || len(frames) == 0 {
		panic(fmt.Sprintf("audio: the built-in muted prompt: %v", err)) // the tests read it
	}
	return &Prompt{frames: frames}
})

// Announcer speaks prompts to one endpoint over what the mixer plays it:
// the endpoint's Play passes each frame through Over. Say may be called
// from any goroutine and never blocks; Over runs on the mixer's clock.
type Announcer struct {
	mu    sync.Mutex
	queue []*Prompt // the first is playing
	pos   int       // the next frame of queue[0]
	mixed Frame
}

// maxQueuedPrompts bounds the prompts waiting behind the one playing: a
// phone muted and unmuted in a loop hears each prompt once, not a backlog.
const maxQueuedPrompts = 1

// Say queues p to play after what is playing. A prompt already waiting
// behind the one playing is replaced, so at most two are ever queued.
func (a *Announcer) Say(p *Prompt) {
	if p == nil || p.Len() == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) > maxQueuedPrompts {
		a.queue[len(a.queue)-1] = p
		return
	}
	a.queue = append(a.queue, p)
}

// Over returns out with the current prompt frame mixed in (summed and
// clipped), and moves the prompt on by a frame; with no prompt it returns
// out as it is. The frame it returns is valid until the next call.
func (a *Announcer) Over(out Output) Output {
	a.mu.Lock()
	if len(a.queue) == 0 {
		a.mu.Unlock()
		return out
	}
	p := a.queue[0]
	f := &p.frames[a.pos]
	if a.pos++; a.pos == len(p.frames) {
		a.queue, a.pos = a.queue[1:], 0
	}
	a.mu.Unlock()
	if out.PCM == nil {
		a.mixed = *f
	} else {
		for i, v := range f {
			a.mixed[i] = clip(int32(v) + int32(out.PCM[i]))
		}
	}
	return Output{PCM: &a.mixed, Source: out.Source}
}
