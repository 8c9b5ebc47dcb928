package audio

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// toneLoop is a queue music of one tone.
func toneLoop(hz float64, frames int) *HoldSource {
	tone := NewTone(hz, -20)
	fs := make([]Frame, frames)
	for i := range fs {
		tone.Next(&fs[i])
	}
	return newHoldSource(fs)
}

func TestPositionPrompt(t *testing.T) {
	caller := len(queuePieces()["caller"])
	for _, tc := range []struct {
		n      int
		pieces []string
	}{{1, []string{"1"}}, {7, []string{"7"}}, {20, []string{"20"}}, {25, []string{"2", "5"}}, {101, []string{"1", "0", "1"}}} {
		want := caller
		for _, p := range tc.pieces {
			want += len(queuePieces()[p])
		}
		if got := PositionPrompt(tc.n).Len(); got != want {
			t.Errorf("PositionPrompt(%d): %d frames, want %d", tc.n, got, want)
		}
	}
	if PositionPrompt(0) != nil {
		t.Error("PositionPrompt(0) is not nil")
	}
}

// TestMixerQueueWait: a waiting caller alone in its call hears the queue
// music, a prompt in its place, the music again, and from the tick the
// agent is live the agent only.
func TestMixerQueueWait(t *testing.T) {
	const musicHz, agentHz = 440, 1000
	m := NewMixer(MixerConfig{QueueMusic: toneLoop(musicHz, 50)})
	cust := NewMemoryEndpoint(nil)
	agent := NewMemoryEndpoint(NewTone(agentHz, -20))
	m.Attach("8:acs:cust", cust)
	m.Attach("8:acs:amy", agent)
	alone := calls.Route{ServerCallID: "g", Kind: calls.Group, Members: []calls.MediaMember{
		{RawID: "8:acs:cust", CallID: "c1", Send: true, Receive: true},
		{RawID: "8:acs:amy", CallID: "a1"}, // ringing
	}}
	m.SetRoute(alone)
	w := &QueueWait{}
	m.SetQueueWait("c1", w)
	hears := func(n int) []Frame {
		from := cust.Played()
		for range n {
			m.Tick()
		}
		frames, _ := cust.Heard(from)
		return frames
	}
	for i, f := range hears(10) {
		if who, ok := Dominant(&f, 1e-3, musicHz, agentHz); !ok || who != 0 {
			t.Fatalf("frame %d of the wait: no music (%.2g)", i, ToneLevel(&f, musicHz))
		}
	}
	p := PositionPrompt(3)
	w.Say(p)
	for i, f := range hears(p.Len()) {
		if f != p.frames[i] {
			t.Fatalf("prompt frame %d is not the prompt's", i)
		}
	}
	if w.Speaking() {
		t.Fatal("the prompt still speaks after its last frame")
	}
	for i, f := range hears(5) {
		if who, ok := Dominant(&f, 1e-3, musicHz, agentHz); !ok || who != 0 {
			t.Fatalf("frame %d after the prompt: no music", i)
		}
	}
	answered := alone
	answered.Members = []calls.MediaMember{
		{RawID: "8:acs:cust", CallID: "c1", Send: true, Receive: true},
		{RawID: "8:acs:amy", CallID: "a1", Send: true, Receive: true},
	}
	m.SetRoute(answered)
	w.Say(p) // a late prompt is not heard either
	for i, f := range hears(100) {
		if who, ok := Dominant(&f, 1e-3, musicHz, agentHz); !ok || who != 1 || ToneLevel(&f, musicHz) > 1e-5 {
			t.Fatalf("frame %d after the answer: music %.2g, agent %.2g", i, ToneLevel(&f, musicHz), ToneLevel(&f, agentHz))
		}
	}
}

// TestMixerSilentWait: a silent wait (a voicemail) plays its prompt (a
// beep), then silence, never the queue music.
func TestMixerSilentWait(t *testing.T) {
	const musicHz, beepHz = 440, 1000
	m := NewMixer(MixerConfig{QueueMusic: toneLoop(musicHz, 50)})
	cust := NewMemoryEndpoint(nil)
	m.Attach("8:acs:cust", cust)
	m.SetRoute(calls.Route{ServerCallID: "g", Kind: calls.Group, Members: []calls.MediaMember{
		{RawID: "8:acs:cust", CallID: "c1", Send: true, Receive: true},
	}})
	w := &QueueWait{Silent: true}
	w.Say(TonePrompt(beepHz, -12, 10))
	m.SetQueueWait("c1", w)
	for range 30 {
		m.Tick()
	}
	frames, _ := cust.Heard(0)
	if len(frames) != 30 {
		t.Fatalf("heard %d frames, want 30", len(frames))
	}
	for i := range frames {
		beep, music := ToneLevel(&frames[i], beepHz), ToneLevel(&frames[i], musicHz)
		switch {
		case music > 0.001:
			t.Errorf("frame %d: the music at %.4f", i, music)
		case i < 10 && beep < 0.05:
			t.Errorf("frame %d: no beep (%.4f)", i, beep)
		case i >= 10 && frames[i].RMS() != 0:
			t.Errorf("frame %d: RMS %.1f after the beep; want silence", i, frames[i].RMS())
		}
	}
}
