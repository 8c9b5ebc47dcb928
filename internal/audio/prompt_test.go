package audio

import (
	"math"
	"testing"
)

func TestMutedPrompt(t *testing.T) {
	p := MutedPrompt()
	if p.Len() < 2*FramesPerSec || p.Len() > 6*FramesPerSec {
		t.Fatalf("the muted prompt lasts %d frames, want 2-6 s", p.Len())
	}
	var loud int
	for i := range p.Len() {
		if p.Frame(i).DBov() > -40 {
			loud++
		}
	}
	if loud < p.Len()/2 {
		t.Errorf("only %d of %d frames of the muted prompt are above -40 dBov: is it speech?", loud, p.Len())
	}
}

func TestAnnouncer(t *testing.T) {
	prompt := func(n int, v int16) *Prompt {
		p := &Prompt{frames: make([]Frame, n)}
		for i := range p.frames {
			for j := range p.frames[i] {
				p.frames[i][j] = v
			}
		}
		return p
	}
	call := func(v int16) Output {
		var f Frame
		for j := range f {
			f[j] = v
		}
		return Output{PCM: &f, Source: SourceCall}
	}
	silent := Output{PCM: &silence, Ulaw: ulawSilence[:], Source: SourceSilence}
	tests := []struct {
		name string
		say  []*Prompt
		out  []Output
		want []int16 // the first sample of each frame played
	}{
		{"nothing to say passes the frame on", nil, []Output{call(7), silent}, []int16{7, 0}},
		{"a prompt over silence is the prompt", []*Prompt{prompt(2, 100)}, []Output{silent, silent, silent}, []int16{100, 100, 0}},
		{"a prompt over the call is summed", []*Prompt{prompt(1, 100)}, []Output{call(5), call(5)}, []int16{105, 5}},
		{"summing clips", []*Prompt{prompt(1, math.MaxInt16)}, []Output{call(10)}, []int16{math.MaxInt16}},
		{"prompts play in turn", []*Prompt{prompt(1, 1), prompt(1, 2)}, []Output{silent, silent, silent}, []int16{1, 2, 0}},
		{"only one waits behind the one playing: the newest", []*Prompt{prompt(1, 1), prompt(1, 2), prompt(1, 3)}, []Output{silent, silent, silent}, []int16{1, 3, 0}},
		{"an empty prompt is nothing", []*Prompt{{}, nil}, []Output{call(4)}, []int16{4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Announcer
			for _, p := range tt.say {
				a.Say(p)
			}
			for i, o := range tt.out {
				got := a.Over(o)
				if got.PCM[0] != tt.want[i] || got.PCM[FrameSamples-1] != tt.want[i] {
					t.Errorf("frame %d: %d…%d, want %d", i, got.PCM[0], got.PCM[FrameSamples-1], tt.want[i])
				}
				if got.Source != o.Source {
					t.Errorf("frame %d: source %v, want %v", i, got.Source, o.Source)
				}
			}
			if got := a.Over(Output{PCM: &Frame{}}); got.PCM[0] != 0 {
				t.Errorf("a frame after every prompt played: %d, want the silence it was given", got.PCM[0])
			}
		})
	}
}
