package audio

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// digitSink is a memory endpoint that takes DTMF out of band, or refuses
// to (a SIP peer without telephone-events).
type digitSink struct {
	*MemoryEndpoint
	takes bool
	got   string
}

func (d *digitSink) QueueDigits(digits string) bool {
	if d.takes {
		d.got += digits
	}
	return d.takes
}

// TestSendTones: digits sent into a call reach the others in band, as
// two tones for 100 ms then 60 ms of silence each, but for a member that
// takes them out of band: it gets the digits and not their tones.
func TestSendTones(t *testing.T) {
	tests := []struct {
		name        string
		sink        *digitSink // bob's endpoint; nil: a plain one
		wantInBand  string
		wantOutBand string
	}{
		{"plain endpoint hears the tones", nil, "1#9", ""},
		{"a digit sink gets the digits, not the tones", &digitSink{takes: true}, "", "1#9"},
		{"a sink that cannot take them hears the tones", &digitSink{takes: false}, "1#9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMixer(MixerConfig{})
			a, b := "8:acs:alice", "8:acs:bob"
			bobEp := NewMemoryEndpoint(nil)
			var ep Endpoint = bobEp
			if tt.sink != nil {
				tt.sink.MemoryEndpoint = bobEp
				ep = tt.sink
			}
			m.Attach(a, NewMemoryEndpoint(nil))
			m.Attach(b, ep)
			m.SetRoute(calls.Route{ServerCallID: "conv", Kind: calls.OneToOne, Members: []calls.MediaMember{
				{RawID: a, CallID: "ca", Send: true, Receive: true},
				{RawID: b, CallID: "cb", Send: true, Receive: true},
			}})
			m.Tick()
			from := bobEp.Played()
			m.SendTones("conv", a, "1#9")
			m.SendTones("no such call", a, "5")
			for range 3*(dtmfToneFrames+dtmfGapFrames) + 2 {
				m.Tick()
			}
			frames, _ := bobEp.Heard(from)
			if got := HeardDTMF(frames); got != tt.wantInBand {
				t.Errorf("bob heard %q in band, want %q", got, tt.wantInBand)
			}
			if tt.sink != nil && tt.sink.got != tt.wantOutBand {
				t.Errorf("bob's endpoint got %q out of band, want %q", tt.sink.got, tt.wantOutBand)
			}
			// A digit's tone lasts 5 frames, then 3 of silence.
			if tt.wantInBand != "" {
				var on int
				for i := range frames[:dtmfToneFrames+dtmfGapFrames] {
					if frames[i].RMS() > 0 {
						on++
					}
				}
				if on != dtmfToneFrames {
					t.Errorf("the first digit sounded for %d frames of %d, want %d", on, dtmfToneFrames+dtmfGapFrames, dtmfToneFrames)
				}
			}
		})
	}
}
