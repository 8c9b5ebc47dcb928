package audio

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// constEndpoint speaks a constant frame and keeps the last frame it heard.
type constEndpoint struct {
	v     int16
	heard Frame
	src   Source
}

func (e *constEndpoint) Capture(f *Frame) bool {
	for i := range f {
		f[i] = e.v
	}
	return true
}
func (e *constEndpoint) Play(out Output) { e.heard, e.src = *out.PCM, out.Source }
func (e *constEndpoint) Close() error    { return nil }

// TestMixerAudienceProperty: in random conversations of two to seven
// members, each sending, receiving and limited to an audience at random,
// every receiver hears exactly the sum of the others who send and whose
// audience takes it in, whichever path mixed it (the 1:1 copy, the shared
// sum, the mix per receiver); a member that does not receive hears no
// call. Member i speaks the constant 1<<i, so a sum names its senders.
func TestMixerAudienceProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 7))
	m := NewMixer(MixerConfig{})
	for round := range 300 {
		n := 2 + r.IntN(6)
		eps := make([]*constEndpoint, n)
		members := make([]calls.MediaMember, n)
		for i := range n {
			raw := "8:r" + strconv.Itoa(round) + "-" + strconv.Itoa(i)
			eps[i] = &constEndpoint{v: 1 << i}
			m.Attach(raw, eps[i])
			members[i] = calls.MediaMember{RawID: raw, CallID: "c" + raw, Send: r.IntN(4) > 0, Receive: r.IntN(4) > 0}
		}
		for i := range n {
			if r.IntN(3) == 0 {
				members[i].Audience = []string{}
				for j := range n {
					if j != i && r.IntN(2) == 0 {
						members[i].Audience = append(members[i].Audience, members[j].CallID)
					}
				}
			}
		}
		kind := calls.Group
		if n == 2 {
			kind = calls.OneToOne
		}
		key := "conv-" + strconv.Itoa(round)
		m.SetRoute(calls.Route{ServerCallID: key, Kind: kind, Members: members})
		m.Tick()
		for i, e := range eps {
			if !members[i].Receive {
				if e.src == SourceCall {
					t.Fatalf("round %d: member %d does not receive but hears the call", round, i)
				}
				continue
			}
			want := int16(0)
			for j, o := range members {
				if j == i || !o.Send {
					continue
				}
				if o.Audience == nil || slices.Contains(o.Audience, members[i].CallID) {
					want += 1 << j
				}
			}
			if e.src != SourceCall || e.heard[0] != want || e.heard[FrameSamples-1] != want {
				t.Fatalf("round %d: member %d of %d hears %d (%s), want %d; members %+v", round, i, n, e.heard[0], e.src, want, members)
			}
		}
		m.SetRoute(calls.Route{ServerCallID: key}) // over
		for i, e := range eps {
			m.Detach(members[i].RawID, e)
		}
		m.Tick()
	}
}
