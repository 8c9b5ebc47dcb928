package audio

import (
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// benchEndpoint speaks a fixed frame and forgets what it hears.
type benchEndpoint struct{ mic *Frame }

func (e benchEndpoint) Capture(f *Frame) bool { *f = *e.mic; return true }
func (benchEndpoint) Play(Output)             {}
func (benchEndpoint) Close() error            { return nil }

// BenchmarkMixerAudience is one tick of 1,000 conversations of three
// (customer, agent, supervisor), all sending: "everyone" is a plain group
// of three, "whisper" the same with the supervisor heard by the agent
// alone (mixed per receiver, audience.go), "listen" with the supervisor
// not sending; "1:1" is 1,000 two-party calls, the common case, for the
// cost of the check on the fast path.
func BenchmarkMixerAudience(b *testing.B) {
	var tone Frame
	NewTone(440, -20).Next(&tone)
	for _, mode := range []string{"1:1", "everyone", "listen", "whisper"} {
		b.Run(mode, func(b *testing.B) {
			m := NewMixer(MixerConfig{})
			for i := range 1000 {
				n := strconv.Itoa(i)
				members := []calls.MediaMember{
					{RawID: "8:c" + n, CallID: "c" + n, Send: true, Receive: true},
					{RawID: "8:a" + n, CallID: "a" + n, Send: true, Receive: true},
				}
				sup := calls.MediaMember{RawID: "8:s" + n, CallID: "s" + n, Send: true, Receive: true}
				switch mode {
				case "listen":
					sup.Send = false
				case "whisper":
					sup.Audience = []string{"a" + n}
				}
				if mode != "1:1" {
					members = append(members, sup)
				}
				for _, mb := range members {
					m.Attach(mb.RawID, benchEndpoint{&tone})
				}
				m.SetRoute(calls.Route{ServerCallID: n, Kind: calls.OneToOne, Members: members})
			}
			m.Tick()
			for b.Loop() {
				m.Tick()
			}
		})
	}
}
