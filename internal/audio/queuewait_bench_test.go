package audio

import (
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// BenchmarkMixerQueueWait is one tick of 1,000 two-party calls and, apart,
// waiting callers alone in calls of their own: none (the baseline: the
// cost of the check), 10 and 100 of them hearing the queue music.
func BenchmarkMixerQueueWait(b *testing.B) {
	var tone Frame
	NewTone(440, -20).Next(&tone)
	for _, waiting := range []int{0, 10, 100} {
		b.Run("waiting="+strconv.Itoa(waiting), func(b *testing.B) {
			m := NewMixer(MixerConfig{})
			for i := range 1000 {
				n := strconv.Itoa(i)
				members := []calls.MediaMember{
					{RawID: "8:c" + n, CallID: "c" + n, Send: true, Receive: true},
					{RawID: "8:a" + n, CallID: "a" + n, Send: true, Receive: true},
				}
				for _, mb := range members {
					m.Attach(mb.RawID, benchEndpoint{&tone})
				}
				m.SetRoute(calls.Route{ServerCallID: n, Kind: calls.OneToOne, Members: members})
			}
			for i := range waiting {
				n := strconv.Itoa(i)
				m.Attach("8:w"+n, benchEndpoint{&tone})
				m.SetRoute(calls.Route{ServerCallID: "g" + n, Kind: calls.Group, Members: []calls.MediaMember{
					{RawID: "8:w" + n, CallID: "w" + n, Send: true, Receive: true}}})
				m.SetQueueWait("w"+n, &QueueWait{})
			}
			m.Tick()
			for b.Loop() {
				m.Tick()
			}
		})
	}
}
