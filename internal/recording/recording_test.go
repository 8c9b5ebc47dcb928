package recording

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-audio/wav"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/store"
)

// The tones: the agent sends toneA, the customer toneB (whole 50 Hz bins
// of a 20 ms frame, so neither leaks into the other's Goertzel bin).
const (
	toneA = 600.0
	toneB = 1400.0
)

var (
	alice    = calls.CommunicationUser("alice")
	bob      = calls.CommunicationUser("bob")
	customer = calls.CommunicationUser("customer")
	boss     = calls.CommunicationUser("boss")

	asAlice    = calls.Principal{Identifier: alice, Role: calls.RoleAgent}
	asBob      = calls.Principal{Identifier: bob, Role: calls.RoleAgent}
	asCustomer = calls.Principal{Identifier: customer, Role: calls.RoleCaller}
	asBoss     = calls.Principal{Identifier: boss, DisplayName: "Boss", Role: calls.RoleSupervisor}
)

// liveCalls is the switchboard's GetCall for the test's calls: an agent
// finds its own, a supervisor every one.
type liveCalls struct {
	mu    sync.Mutex
	calls map[string]calls.Call
}

func (l *liveCalls) GetCall(_ context.Context, p calls.Principal, id string) (calls.Call, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.calls[id]
	if !ok || p.Role != calls.RoleSupervisor && c.AgentID != p.Identifier.RawID() {
		return calls.Call{}, calls.Errorf(calls.CodeCallNotFound, "no call %q", id)
	}
	return c, nil
}

// recordingStates is the states of the recordingStateChanged events p
// recorded, in order.
func recordingStates(p *callstest.Publisher) []calls.RecordingState {
	var out []calls.RecordingState
	for _, ev := range p.Events("") {
		if ev.Type == calls.EventRecordingStateChanged {
			out = append(out, ev.Data.(calls.Recording).State)
		}
	}
	return out
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a 1:1 call between alice (agent, call "call-a") and the
// customer (call "call-c"), on a real mixer the test ticks by hand, each
// side's microphone a tone.
type fixture struct {
	mixer  *audio.Mixer
	svc    *Service
	store  *store.Memory
	events *callstest.Publisher
	clock  *fakeClock
	dir    string
	calls  *liveCalls
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{
		mixer:  audio.NewMixer(audio.MixerConfig{}),
		store:  store.NewMemory(),
		events: &callstest.Publisher{},
		clock:  &fakeClock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)},
		dir:    cfg.Dir,
		calls: &liveCalls{calls: map[string]calls.Call{
			"call-a": {ID: "call-a", ServerCallID: "srv", AgentID: alice.RawID(), State: calls.StateConnected},
			"call-c": {ID: "call-c", ServerCallID: "srv", AgentID: customer.RawID(), State: calls.StateConnected},
		}},
	}
	if f.dir == "" {
		f.dir = t.TempDir()
	}
	f.mixer.Attach(alice.RawID(), audio.NewMemoryEndpoint(audio.NewTone(toneA, -12)))
	f.mixer.Attach(customer.RawID(), audio.NewMemoryEndpoint(audio.NewTone(toneB, -12)))
	f.mixer.SetRoute(calls.Route{ServerCallID: "srv", Kind: calls.OneToOne, Members: []calls.MediaMember{
		{RawID: alice.RawID(), CallID: "call-a", Send: true, Receive: true},
		{RawID: customer.RawID(), CallID: "call-c", Send: true, Receive: true},
	}})
	n := 0
	cfg.Dir, cfg.Calls, cfg.Media, cfg.Store, cfg.Publisher = f.dir, f.calls, f.mixer, f.store, f.events
	cfg.Now, cfg.Logger = f.clock.Now, quiet
	cfg.NewID = func() string { n++; return fmt.Sprintf("rec-%d", n) }
	svc, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	t.Cleanup(func() {
		if err := svc.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// tick runs n frames of the media plane, the clock moving with them.
func (f *fixture) tick(n int) {
	for range n {
		f.mixer.Tick()
		f.clock.advance(audio.FrameDuration)
	}
}

// readWAV decodes a recording with go-audio/wav into frames of each
// channel.
func readWAV(t *testing.T, path string) (left, right []audio.Frame) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	d := wav.NewDecoder(file)
	buf, err := d.FullPCMBuffer()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if d.NumChans != 2 || d.SampleRate != audio.SampleRate || d.BitDepth != 16 || d.WavAudioFormat != 1 {
		t.Fatalf("%s: %d channels, %d Hz, %d bits, format %d; want stereo 8000 Hz 16-bit PCM",
			path, d.NumChans, d.SampleRate, d.BitDepth, d.WavAudioFormat)
	}
	per := 2 * audio.FrameSamples
	if len(buf.Data)%per != 0 {
		t.Fatalf("%s holds %d samples, not whole 20 ms frames", path, len(buf.Data))
	}
	for i := 0; i < len(buf.Data); i += per {
		var l, r audio.Frame
		for j := range audio.FrameSamples {
			l[j], r[j] = int16(buf.Data[i+2*j]), int16(buf.Data[i+2*j+1])
		}
		left, right = append(left, l), append(right, r)
	}
	return left, right
}

// TestRecordingChannels is the proof: the agent sends tone A, the customer
// tone B; the recording's left channel carries A and never B, the right B
// and never A, frame by frame (Goertzel), and the paused second is silent
// in both.
func TestRecordingChannels(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := t.Context()
	f.tick(5) // the call goes on before the recording
	rec, err := f.svc.Start(ctx, asAlice, "call-a")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != calls.RecordingActive || rec.StartedBy.Kind != calls.ActorAgent || rec.StartedBy.RawID != alice.RawID() {
		t.Errorf("started: %+v", rec)
	}
	f.tick(50)
	if _, err := f.svc.Pause(ctx, asBoss, "call-a"); err != nil {
		t.Fatal(err)
	}
	f.tick(50)
	if _, err := f.svc.Resume(ctx, asAlice, "call-a"); err != nil {
		t.Fatal(err)
	}
	f.tick(50)
	rec, err = f.svc.Stop(ctx, asAlice, "call-a")
	if err != nil {
		t.Fatal(err)
	}
	f.tick(5) // no longer recorded

	if rec.State != calls.RecordingStopped || rec.DurationMs != 3000 || len(rec.Paused) != 1 || rec.Paused[0].End == nil ||
		rec.Paused[0].End.Sub(rec.Paused[0].Start) != time.Second || rec.StoppedAt == nil {
		t.Fatalf("stopped: %+v", rec)
	}
	if s := rec.Paused[0]; s.PausedBy == nil || s.PausedBy.Kind != calls.ActorSupervisor || s.PausedBy.DisplayName != "Boss" ||
		s.ResumedBy == nil || s.ResumedBy.Kind != calls.ActorAgent || rec.StoppedBy == nil || rec.StoppedBy.RawID != alice.RawID() {
		t.Errorf("who paused, resumed and stopped: %+v, %+v, %+v", s.PausedBy, s.ResumedBy, rec.StoppedBy)
	}
	left, right := readWAV(t, filepath.Join(f.dir, rec.File))
	if len(left) != 150 {
		t.Fatalf("the recording holds %d frames, want 150 (3 s)", len(left))
	}
	const heard, leak = 0.05, 0.001 // -12 dBov gives about 0.13
	for i := range left {
		paused := i >= 50 && i < 100
		la, lb := audio.ToneLevel(&left[i], toneA), audio.ToneLevel(&left[i], toneB)
		ra, rb := audio.ToneLevel(&right[i], toneA), audio.ToneLevel(&right[i], toneB)
		switch {
		case paused && (left[i].RMS() != 0 || right[i].RMS() != 0):
			t.Errorf("frame %d, paused: left RMS %.1f, right RMS %.1f; want silence", i, left[i].RMS(), right[i].RMS())
		case !paused && (la < heard || lb > leak):
			t.Errorf("frame %d: left carries A at %.4f and B at %.4f; want the agent's A only", i, la, lb)
		case !paused && (rb < heard || ra > leak):
			t.Errorf("frame %d: right carries A at %.4f and B at %.4f; want the customer's B only", i, ra, rb)
		}
	}
	want := []calls.RecordingState{calls.RecordingActive, calls.RecordingPaused, calls.RecordingActive, calls.RecordingStopped}
	if got := recordingStates(f.events); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("recordingStateChanged states %v, want %v", got, want)
	}
	stored, err := f.svc.Recordings(ctx, "call-a")
	if err != nil || len(stored) != 1 || stored[0].State != calls.RecordingStopped || stored[0].DurationMs != 3000 {
		t.Errorf("stored recordings %+v, %v", stored, err)
	}
}

// TestRecordingRules: who may record, and which changes each state takes.
func TestRecordingRules(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := t.Context()
	tests := []struct {
		name string
		op   func(context.Context, calls.Principal, string) (calls.Recording, error)
		as   calls.Principal
		call string
		want calls.Code
	}{
		{"pause before start", f.svc.Pause, asAlice, "call-a", calls.CodeInvalidState},
		{"stop before start", f.svc.Stop, asAlice, "call-a", calls.CodeInvalidState},
		{"a caller may not", f.svc.Start, asCustomer, "call-c", calls.CodeForbidden},
		{"another agent's call", f.svc.Start, asBob, "call-a", calls.CodeCallNotFound},
		{"no such call", f.svc.Start, asBoss, "call-x", calls.CodeCallNotFound},
		{"a supervisor starts", f.svc.Start, asBoss, "call-a", ""},
		{"start twice", f.svc.Start, asAlice, "call-a", calls.CodeInvalidState},
		{"resume while recording", f.svc.Resume, asAlice, "call-a", calls.CodeInvalidState},
		{"another agent pauses", f.svc.Pause, asBob, "call-a", calls.CodeCallNotFound},
		{"pause", f.svc.Pause, asAlice, "call-a", ""},
		{"pause twice", f.svc.Pause, asAlice, "call-a", calls.CodeInvalidState},
		{"stop while paused", f.svc.Stop, asAlice, "call-a", ""},
		{"start again: a second recording", f.svc.Start, asAlice, "call-a", ""},
	}
	for _, tt := range tests {
		f.tick(1)
		_, err := tt.op(ctx, tt.as, tt.call)
		if got := codeOf(err); got != tt.want {
			t.Errorf("%s: %v, want code %q", tt.name, err, tt.want)
		}
	}
	recs, err := f.svc.Recordings(ctx, "call-a")
	if err != nil || len(recs) != 2 || recs[0].StartedBy.Kind != calls.ActorSupervisor || recs[0].StartedBy.RawID != boss.RawID() {
		t.Errorf("recordings %+v, %v; want two, the first started by the supervisor", recs, err)
	}
	for _, tt := range []struct {
		name string
		as   calls.Principal
		want calls.Code
	}{
		{"the agent", asAlice, ""},
		{"a supervisor", asBoss, ""},
		{"another agent", asBob, calls.CodeCallNotFound},
		{"a caller", asCustomer, calls.CodeForbidden},
	} {
		file, _, err := f.svc.Open(ctx, tt.as, "call-a", "")
		if got := codeOf(err); got != tt.want {
			t.Errorf("Open as %s: %v, want code %q", tt.name, err, tt.want)
		}
		if file != nil {
			file.Close()
		}
	}
	if _, _, err := f.svc.Open(ctx, asBoss, "call-c", ""); calls.ErrorCode(err) != calls.CodeNotFound {
		t.Errorf("Open of a call without a recording: %v, want not_found", err)
	}
}

// TestRecordingStopsWhenTheCallEnds: callEnded stops the call's recording
// and completes its file.
func TestRecordingStopsWhenTheCallEnds(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := t.Context()
	pub := f.svc.Publisher(&callstest.Publisher{})
	if _, err := f.svc.Start(ctx, asAlice, "call-a"); err != nil {
		t.Fatal(err)
	}
	f.tick(10)
	pub.Publish(calls.Event{Type: calls.EventCallEnded, AgentID: alice.RawID(), CallID: "call-a"})
	var recs []calls.Recording
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if recs, err = f.svc.Recordings(ctx, "call-a"); err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 && recs[0].State == calls.RecordingStopped {
			break
		}
	}
	if len(recs) != 1 || recs[0].State != calls.RecordingStopped || recs[0].StartedBy.Kind != calls.ActorAgent ||
		recs[0].StoppedBy == nil || recs[0].StoppedBy.Kind != calls.ActorSystem {
		t.Fatalf("after callEnded: %+v", recs)
	}
	if left, _ := readWAV(t, filepath.Join(f.dir, recs[0].File)); len(left) != 10 {
		t.Errorf("the file holds %d frames, want 10", len(left))
	}
}

// TestRecordingSurvivesAKill: a copy of the file taken while recording (as
// a killed process leaves it) reads as a WAV up to the last flush, and a
// new service finishes the recording the "crash" left.
func TestRecordingSurvivesAKill(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := t.Context()
	rec, err := f.svc.Start(ctx, asAlice, "call-a")
	if err != nil {
		t.Fatal(err)
	}
	f.tick(2*flushEvery + 10)
	path := filepath.Join(f.dir, rec.File)
	// Wait for the writer's second flush (the header counts 2 s).
	want := int64(headerSize + 2*flushEvery*audio.FrameSamples*bytesPerFrame)
	var data []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if data, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) >= want && int64(wavSize(data)) >= want-headerSize {
			break
		}
	}
	crashed := t.TempDir()
	// A killed process leaves what was flushed, and maybe part of a frame.
	if err := os.WriteFile(filepath.Join(crashed, rec.File), append(data, 1, 2, 3), 0o600); err != nil {
		t.Fatal(err)
	}
	left, right := readWAV(t, filepath.Join(crashed, rec.File)) // readable as it is
	if len(left) < 2*flushEvery || audio.ToneLevel(&left[0], toneA) < 0.05 || audio.ToneLevel(&right[0], toneB) < 0.05 {
		t.Fatalf("the file as a kill leaves it: %d frames", len(left))
	}
	// The node restarts on the same store and its recordings directory.
	st := f.store // the crashed node's metadata
	svc, err := New(ctx, Config{Dir: crashed, Calls: f.calls, Media: audio.NewMixer(audio.MixerConfig{}), Store: st,
		Publisher: &callstest.Publisher{}, NewID: func() string { return "x" }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	recs, err := st.FindRecordings(ctx, calls.RecordingFilter{CallID: "call-a"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("%+v, %v", recs, err)
	}
	if recs[0].State != calls.RecordingStopped || recs[0].StoppedAt == nil || recs[0].DurationMs < 2000 {
		t.Errorf("after the restart: %+v; want stopped with at least 2 s", recs[0])
	}
	if left, _ := readWAV(t, filepath.Join(crashed, rec.File)); int64(len(left))*20 != recs[0].DurationMs {
		t.Errorf("repaired file holds %d frames, metadata says %d ms", len(left), recs[0].DurationMs)
	}
}

// codeOf is err's code, "" for no error.
func codeOf(err error) calls.Code {
	if err == nil {
		return ""
	}
	return calls.ErrorCode(err)
}

var quiet = slog.New(slog.DiscardHandler)

// wavSize is the data size a WAV header says.
func wavSize(b []byte) uint32 {
	if len(b) < headerSize {
		return 0
	}
	return uint32(b[40]) | uint32(b[41])<<8 | uint32(b[42])<<16 | uint32(b[43])<<24
}

// TestRecordingRetention: a sweep deletes the files of recordings stopped
// longer ago than the retention and marks them; the owned sweeper does it
// on its own and stops with Close.
func TestRecordingRetention(t *testing.T) {
	f := newFixture(t, Config{Retention: time.Hour, SweepEvery: 20 * time.Millisecond})
	ctx := t.Context()
	old, err := f.svc.Start(ctx, asAlice, "call-a")
	if err != nil {
		t.Fatal(err)
	}
	f.tick(3)
	if old, err = f.svc.Stop(ctx, asAlice, "call-a"); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(30 * time.Minute)
	young, err := f.svc.Start(ctx, asAlice, "call-a")
	if err != nil {
		t.Fatal(err)
	}
	f.tick(3)
	if young, err = f.svc.Stop(ctx, asAlice, "call-a"); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(31 * time.Minute) // old: 61 min, young: 31 min
	var recs []calls.Recording
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if recs, err = f.svc.Recordings(ctx, "call-a"); err != nil {
			t.Fatal(err)
		}
		if recs[0].DeletedAt != nil {
			break
		}
	}
	if recs[0].ID != old.ID || recs[0].DeletedAt == nil || recs[1].DeletedAt != nil {
		t.Fatalf("after the sweeper: %+v", recs)
	}
	if _, err := os.Stat(filepath.Join(f.dir, old.File)); !os.IsNotExist(err) {
		t.Errorf("the old file: %v, want it deleted", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, young.File)); err != nil {
		t.Errorf("the young file: %v, want it kept", err)
	}
	if _, _, err := f.svc.Open(ctx, asAlice, "call-a", old.ID); calls.ErrorCode(err) != calls.CodeNotFound {
		t.Errorf("Open of a deleted recording: %v, want not_found", err)
	}
	f.clock.advance(time.Hour)
	if n, err := f.svc.Sweep(ctx); err != nil || n != 1 {
		t.Errorf("Sweep an hour later: %d, %v; want the young one", n, err)
	}
}

// TestVoicemailChannels: a voicemail records the caller's own call with
// her microphone (B) on the right and the left silent, even while she
// hears someone (A); it names her and the system, and a supervisor may
// open it while an agent may not.
func TestVoicemailChannels(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := t.Context()
	c, err := f.calls.GetCall(ctx, asBoss, "call-c")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.svc.StartVoicemail(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if rec.AgentID != customer.RawID() || rec.StartedBy.Kind != calls.ActorSystem {
		t.Errorf("started: %+v", rec)
	}
	f.tick(50)
	if rec, err = f.svc.Stop(ctx, asBoss, "call-c"); err != nil {
		t.Fatal(err)
	}
	left, right := readWAV(t, filepath.Join(f.dir, rec.File))
	if len(left) != 50 {
		t.Fatalf("the voicemail holds %d frames, want 50", len(left))
	}
	for i := range left {
		if left[i].RMS() != 0 {
			t.Errorf("frame %d: left RMS %.1f; want silence", i, left[i].RMS())
		}
		if rb, ra := audio.ToneLevel(&right[i], toneB), audio.ToneLevel(&right[i], toneA); rb < 0.05 || ra > 0.001 {
			t.Errorf("frame %d: right carries B at %.4f and A at %.4f; want the caller's B only", i, rb, ra)
		}
	}
	if file, _, err := f.svc.Open(ctx, asBoss, "call-c", ""); err != nil {
		t.Errorf("a supervisor opens the voicemail: %v", err)
	} else {
		_ = file.Close()
	}
	if _, _, err := f.svc.Open(ctx, asAlice, "call-c", ""); err == nil {
		t.Error("an agent opened the voicemail")
	}
}
