package audio

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// levels is what one frame carries of each voice.
func heardVoices(f *Frame) map[string]bool {
	out := map[string]bool{}
	for name, hz := range voices {
		if ToneLevel(f, hz) > 1e-3 {
			out[name] = true
		}
	}
	return out
}

// TestMixerAudience: a member with an audience is heard by that audience
// alone, in every tick, and the others hear as before; changing the
// audience acts at the next tick. alice is the customer, bob the agent,
// carol the supervisor (call ids c-alice, c-bob, c-carol).
func TestMixerAudience(t *testing.T) {
	m := NewMixer(MixerConfig{})
	eps := map[string]*MemoryEndpoint{}
	for _, n := range []string{"alice", "bob", "carol", "dave"} {
		eps[n] = NewMemoryEndpoint(NewTone(voices[n], -20))
		m.Attach("8:acs:"+n, eps[n])
	}
	member := func(n string, send bool, audience []string) calls.MediaMember {
		return calls.MediaMember{RawID: "8:acs:" + n, CallID: "c-" + n, Send: send, Receive: true, Audience: audience}
	}
	// Another conversation, without an audience, mixed alongside.
	m.SetRoute(calls.Route{ServerCallID: "other", Kind: calls.OneToOne, Members: []calls.MediaMember{
		{RawID: "8:acs:dave", CallID: "c-dave", Send: true, Receive: true},
		{RawID: calls.EchoBot.RawID(), CallID: "c-echo", Send: true, Receive: true},
	}})
	tests := []struct {
		name       string
		supervisor calls.MediaMember
		want       map[string][]string // who hears which voices
	}{
		{"listen", member("carol", false, nil), map[string][]string{
			"alice": {"bob"}, "bob": {"alice"}, "carol": {"alice", "bob"}}},
		{"whisper", member("carol", true, []string{"c-bob"}), map[string][]string{
			"alice": {"bob"}, "bob": {"alice", "carol"}, "carol": {"alice", "bob"}}},
		{"barge", member("carol", true, nil), map[string][]string{
			"alice": {"bob", "carol"}, "bob": {"alice", "carol"}, "carol": {"alice", "bob"}}},
		{"nobody", member("carol", true, []string{}), map[string][]string{
			"alice": {"bob"}, "bob": {"alice"}, "carol": {"alice", "bob"}}},
		{"whisper to the customer", member("carol", true, []string{"c-alice"}), map[string][]string{
			"alice": {"bob", "carol"}, "bob": {"alice"}, "carol": {"alice", "bob"}}},
	}
	// Every case follows the one before in the same conversation: the
	// change acts at the next tick.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.SetRoute(calls.Route{ServerCallID: "monitored", Kind: calls.OneToOne, Members: []calls.MediaMember{
				member("alice", true, nil), member("bob", true, nil), tt.supervisor,
			}})
			for tick := range 3 {
				m.Tick()
				for name, want := range tt.want {
					f, src := last(eps[name])
					got := heardVoices(f)
					if src != SourceCall || len(got) != len(want) {
						t.Fatalf("tick %d: %s hears %v (%s), want %v", tick, name, got, src, want)
					}
					for _, w := range want {
						if !got[w] {
							t.Fatalf("tick %d: %s hears %v, want %v", tick, name, got, want)
						}
					}
				}
				if got := heardVoices(func() *Frame { f, _ := last(eps["dave"]); return f }()); got["alice"] || got["bob"] || got["carol"] {
					t.Fatalf("tick %d: dave, in another call, hears %v", tick, got)
				}
			}
		})
	}
}
