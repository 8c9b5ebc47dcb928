package audio

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

var (
	ctx   = context.Background()
	alice = callstest.Agent("alice")
	bob   = callstest.Agent("bob")
	carol = callstest.Agent("carol")
)

// The tones each test identity speaks.
var voices = map[string]float64{"alice": 1000, "bob": 400, "carol": 600, "dave": 800}

var allTones = []float64{400, 600, 800, 1000, HoldToneHz}

// last is the last frame an endpoint heard and what it was.
func last(e *MemoryEndpoint) (*Frame, Source) {
	frames, sources := e.Heard(e.Played() - 1)
	return &frames[0], sources[0]
}

type rig struct {
	*callstest.Fixture
	mixer *Mixer
	eps   map[string]*MemoryEndpoint
}

func newRig(t *testing.T, names ...string) *rig {
	t.Helper()
	m := NewMixer(MixerConfig{EchoBot: calls.EchoBot.RawID(), EchoDelay: 5})
	r := &rig{Fixture: callstest.New(t, calls.Config{Media: m}), mixer: m, eps: map[string]*MemoryEndpoint{}}
	for _, n := range names {
		p := callstest.Agent(n)
		r.Connect(t, p)
		ep := NewMemoryEndpoint(NewTone(voices[n], -20))
		r.eps[n] = ep
		m.Attach(p.Identifier.RawID(), ep)
	}
	return r
}

// hears checks what name heard in the last tick: the tone of who (a name),
// "hold", "quiet" for a call nobody speaks in, or "" for no call at all.
func (r *rig) hears(t *testing.T, name, who string) {
	t.Helper()
	f, src := last(r.eps[name])
	tone, ok := Dominant(f, 1e-4, allTones...)
	switch who {
	case "":
		if src != SourceSilence || f.RMS() != 0 {
			t.Errorf("%s hears %s (rms %.0f), want silence", name, src, f.RMS())
		}
	case "quiet": // its call, in which nobody it hears speaks
		if src != SourceCall || f.RMS() != 0 {
			t.Errorf("%s hears %s (rms %.0f), want a quiet call", name, src, f.RMS())
		}
	case "hold":
		if src != SourceHold {
			t.Errorf("%s hears %s, want the hold tone", name, src)
		}
	default:
		if src != SourceCall || !ok || allTones[tone] != voices[who] {
			t.Errorf("%s hears %s (tone %d, %v), want %s's %v Hz", name, src, tone, ok, who, voices[who])
		}
	}
}

func (r *rig) call(t *testing.T, from, to calls.Principal) (calls.Call, calls.Call) {
	t.Helper()
	c := callstest.Must[calls.Call](t)(r.StartCall(ctx, from, calls.StartCallRequest{Participants: []calls.Identifier{to.Identifier}}))
	in, err := r.ListIncoming(ctx, to)
	if err != nil || len(in) == 0 {
		t.Fatalf("no incoming call for %s: %v", to.Identifier, err)
	}
	return c, callstest.Must[calls.Call](t)(r.Accept(ctx, to, in[len(in)-1].ID))
}

func TestMixerOnlyTheActiveCallIsHeard(t *testing.T) {
	r := newRig(t, "alice", "bob", "carol")
	must := callstest.Must[calls.Call](t)

	_, ab := r.call(t, bob, alice)
	r.mixer.Tick()
	r.hears(t, "alice", "bob")
	r.hears(t, "bob", "alice")
	r.hears(t, "carol", "")

	// Accepting carol holds bob's call in the same step, and in the same
	// frame bob hears the hold tone and alice hears carol.
	cc, _ := r.call(t, carol, alice)
	r.mixer.Tick()
	r.hears(t, "alice", "carol")
	r.hears(t, "carol", "alice")
	r.hears(t, "bob", "hold")

	// One-click swap back.
	must(r.Resume(ctx, alice, ab.ID))
	r.mixer.Tick()
	r.hears(t, "alice", "bob")
	r.hears(t, "bob", "alice")
	r.hears(t, "carol", "hold")

	// Mute: bob stops hearing alice at the next frame; alice still hears bob.
	must(r.SetMuted(ctx, alice, ab.ID, true))
	r.mixer.Tick()
	r.hears(t, "bob", "quiet")
	r.hears(t, "alice", "bob")
	must(r.SetMuted(ctx, alice, ab.ID, false))
	must(r.SetIncomingAudioMuted(ctx, alice, ab.ID, true))
	r.mixer.Tick()
	r.hears(t, "bob", "alice")
	if f, _ := last(r.eps["alice"]); f.RMS() != 0 {
		t.Errorf("alice muted incoming audio and still hears rms %.0f", f.RMS())
	}
	must(r.SetIncomingAudioMuted(ctx, alice, ab.ID, false))

	// Alice holds her active call: she hears nothing, both callers hold.
	must(r.Hold(ctx, alice, ab.ID))
	r.mixer.Tick()
	r.hears(t, "alice", "")
	r.hears(t, "bob", "hold")
	r.hears(t, "carol", "hold")

	// Carol hangs up: she hears nothing; alice still has bob on hold.
	must(r.HangUp(ctx, carol, cc.ID, false))
	r.mixer.Tick()
	r.hears(t, "carol", "")
	r.hears(t, "bob", "hold")
}

func TestMixerGroupCall(t *testing.T) {
	r := newRig(t, "alice", "bob", "carol", "dave")
	must := callstest.Must[calls.Call](t)
	gid := calls.JoinRequest{GroupID: "0b1f4a9e-3333-4e2a-9a43-7c1c64b1c0de"}
	ag := must(r.JoinCall(ctx, alice, gid))
	must(r.JoinCall(ctx, bob, gid))
	must(r.JoinCall(ctx, carol, gid))
	r.mixer.Tick()
	for name, others := range map[string][]string{"alice": {"bob", "carol"}, "bob": {"alice", "carol"}, "carol": {"alice", "bob"}} {
		f, _ := last(r.eps[name])
		for _, o := range others {
			if ToneLevel(f, voices[o]) < 1e-3 {
				t.Errorf("%s does not hear %s in the group", name, o)
			}
		}
		if ToneLevel(f, voices[name]) > 1e-5 {
			t.Errorf("%s hears itself in the group", name)
		}
	}
	r.hears(t, "dave", "")

	// A supervisor mutes bob: from the next frame nobody hears him.
	if _, err := r.MuteParticipant(ctx, callstest.Supervisor("sue"), ag.ID, bob.Identifier.RawID()); err != nil {
		t.Fatal(err)
	}
	r.mixer.Tick()
	if f, _ := last(r.eps["alice"]); ToneLevel(f, voices["bob"]) > 1e-5 {
		t.Error("alice still hears bob in the frame after a supervisor muted him")
	}
}

func TestMixerEchoBot(t *testing.T) {
	r := newRig(t, "alice")
	callstest.Must[calls.Call](t)(r.StartCall(ctx, alice, calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}}))
	for i := range 5 {
		r.mixer.Tick()
		if f, _ := last(r.eps["alice"]); f.RMS() != 0 {
			t.Fatalf("alice hears the echo after %d frames, want 5", i+1)
		}
	}
	r.mixer.Tick()
	r.hears(t, "alice", "alice")
}

func TestMixerSpeaking(t *testing.T) {
	var mu sync.Mutex
	got := map[string]bool{}
	m := NewMixer(MixerConfig{OnSpeaking: func(id string, s bool) {
		mu.Lock()
		defer mu.Unlock()
		got[id] = s
	}})
	f := callstest.New(t, calls.Config{Media: m})
	f.Connect(t, alice)
	f.Connect(t, bob)
	m.Attach(alice.Identifier.RawID(), NewMemoryEndpoint(NewTone(1000, -20)))
	m.Attach(bob.Identifier.RawID(), NewMemoryEndpoint(nil)) // silent
	r := &rig{Fixture: f, mixer: m}
	ac, bc := r.call(t, alice, bob)
	for range speakOnFrames {
		m.Tick()
	}
	m.flushSpeaking()
	if !got[ac.ID] || got[bc.ID] {
		t.Errorf("speaking = %v; want alice's call %s true, bob's %s false", got, ac.ID, bc.ID)
	}
	// Muting stops it at once, without the hangover.
	callstest.Must[calls.Call](t)(f.SetMuted(ctx, alice, ac.ID, true))
	m.Tick()
	m.flushSpeaking()
	if got[ac.ID] {
		t.Error("alice still speaking after she muted")
	}
}

func TestMixerEndpoints(t *testing.T) {
	m := NewMixer(MixerConfig{})
	first, second := NewMemoryEndpoint(nil), NewMemoryEndpoint(nil)
	m.Attach("8:acs:alice", first)
	m.Tick()
	m.Attach("8:acs:alice", second) // replaces: the first is closed
	m.Detach("8:acs:alice", first)  // late: must not remove the second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for m.Stats().Ticks < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if second.Played() == 0 {
		t.Error("the replacing endpoint was not played")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var f Frame
	if first.Capture(&f) || second.Capture(&f) {
		t.Error("an endpoint still open after Run: want both closed")
	}
	// After Run, an endpoint attached is closed, not kept.
	third := NewMemoryEndpoint(nil)
	m.Attach("8:acs:bob", third)
	if s := m.Stats(); s.Ticks < 3 {
		t.Errorf("stats %+v", s)
	}
}

// Two calls from one phone number are two phones: each call with its own
// endpoint (a phone line) is heard and hears on its own, though both
// carry the same raw id.
func TestMixerCallsWithTheirOwnEndpoints(t *testing.T) {
	m := NewMixer(MixerConfig{})
	const phone = "4:+15550100"
	agents := map[string]*MemoryEndpoint{"alice": NewMemoryEndpoint(NewTone(voices["alice"], -20)), "bob": NewMemoryEndpoint(NewTone(voices["bob"], -20))}
	phones := map[string]*MemoryEndpoint{"phone-a": NewMemoryEndpoint(NewTone(voices["carol"], -20)), "phone-b": NewMemoryEndpoint(NewTone(voices["dave"], -20))}
	for agent, line := range map[string]string{"alice": "phone-a", "bob": "phone-b"} {
		m.Attach(callstest.Agent(agent).Identifier.RawID(), agents[agent])
		m.Attach(line, phones[line])
		m.SetRoute(calls.Route{ServerCallID: "conv-" + agent, Kind: calls.OneToOne, Members: []calls.MediaMember{
			{RawID: callstest.Agent(agent).Identifier.RawID(), CallID: agent + "-call", Send: true, Receive: true},
			{RawID: phone, CallID: line, Send: true, Receive: true, OwnEndpoint: true},
		}})
	}
	m.Tick()
	tests := []struct {
		name string
		ep   *MemoryEndpoint
		want string // whose voice
	}{
		{"alice", agents["alice"], "carol"},
		{"bob", agents["bob"], "dave"},
		{"phone-a", phones["phone-a"], "alice"},
		{"phone-b", phones["phone-b"], "bob"},
	}
	for _, tt := range tests {
		f, src := last(tt.ep)
		tone, ok := Dominant(f, 1e-4, allTones...)
		if src != SourceCall || !ok || allTones[tone] != voices[tt.want] {
			t.Errorf("%s hears %s (tone %d, %v), want %v Hz", tt.name, src, tone, ok, voices[tt.want])
		}
	}
	// One phone hangs up: the other's call goes on.
	m.SetRoute(calls.Route{ServerCallID: "conv-alice"})
	m.Detach("phone-a", phones["phone-a"])
	m.Tick()
	if f, src := last(phones["phone-b"]); src != SourceCall || f.RMS() == 0 {
		t.Errorf("phone-b hears %s (rms %.0f) once phone-a is gone, want bob", src, f.RMS())
	}
}
