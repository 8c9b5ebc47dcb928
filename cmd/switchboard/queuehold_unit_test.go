package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/queue"
)

// TestQueueHoldFollowsTheStore: a waiting call's prompts goroutine finds
// its position in its queue, and in the queue it overflowed into; it ends
// (the call's wait leaves the mixer) once the call waits nowhere; close
// stops the others.
func TestQueueHoldFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	st := queue.NewMemory()
	for _, name := range []string{"a", "b"} {
		if err := st.PutQueue(ctx, queue.Definition{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(q, id string) queue.Waiting {
		w := queue.Waiting{CallID: id, Queue: q, EnteredAt: time.Now()}
		if err := st.PutWaiting(ctx, w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	h := newQueueHold(audio.NewMixer(audio.MixerConfig{}), st, 10*time.Millisecond, nil, slog.New(slog.DiscardHandler))
	first, second := put("a", "c1"), put("a", "c2")
	h.waiting(first, 1)
	h.waiting(second, 2)
	for _, tc := range []struct {
		q, id string
		want  int
	}{{"a", "c1", 1}, {"a", "c2", 2}, {"b", "c2", 2}, {"a", "gone", 0}} {
		if got, err := h.position(tc.q, tc.id); err != nil || got != tc.want {
			t.Errorf("position(%s, %s) = %d, %v; want %d", tc.q, tc.id, got, err, tc.want)
		}
	}
	// c1 answered: its wait ends; c2 moves to b and stays.
	if err := st.DeleteWaiting(ctx, "a", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteWaiting(ctx, "a", "c2"); err != nil {
		t.Fatal(err)
	}
	put("b", "c2")
	if !within(5*time.Second, func() bool { return h.count() == 1 }) {
		t.Fatalf("%d waits after c1 left the queue; want 1", h.count())
	}
	h.close()
	if h.count() != 0 {
		t.Fatalf("%d waits after close", h.count())
	}
}

func TestQueueHoldFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		music   string
		every   time.Duration
		prompts string
		wantErr string
	}{
		{nil, nil, "", 30 * time.Second, "", ""},
		{nil, map[string]string{"SWITCHBOARD_QUEUE_MUSIC": "m.wav", "SWITCHBOARD_QUEUE_PROMPT_EVERY": "45s", "SWITCHBOARD_QUEUE_PROMPTS": "/v"}, "m.wav", 45 * time.Second, "/v", ""},
		{[]string{"--queue-music", "n.wav", "--queue-prompt-every", "1m", "--queue-prompts", "/w"}, map[string]string{"SWITCHBOARD_QUEUE_MUSIC": "m.wav", "SWITCHBOARD_QUEUE_PROMPTS": "/v"}, "n.wav", time.Minute, "/w", ""},
		{[]string{"--queue-prompt-every", "500ms"}, nil, "", 0, "", "--queue-prompt-every"},
		{[]string{"--queue-prompt-every", "often"}, nil, "", 0, "", "--queue-prompt-every"},
	} {
		c, err := parseServeFlags(tc.args, io.Discard, env(tc.env))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("serve %v: %v, want an error saying %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.Media.QueueHold.MusicWAV != tc.music || c.Media.QueueHold.PromptEvery != tc.every || c.Media.QueueHold.PromptsDir != tc.prompts {
			t.Errorf("serve %v %v: %+v, %v; want %q every %s, prompts %q", tc.args, tc.env, c.Media.QueueHold, err, tc.music, tc.every, tc.prompts)
		}
	}
	if _, err := queueMusic(QueueHoldConfig{MusicWAV: "/nonexistent.wav"}); err == nil {
		t.Error("a missing queue music file loads")
	}
	if _, err := queueVoice(QueueHoldConfig{PromptsDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "caller.wav") {
		t.Errorf("an empty prompts directory: %v, want an error naming caller.wav", err)
	}
}

// TestVoicemailGreeting: the greeting is voicemail.wav of the prompts
// directory when it has one, else the built-in half-second beep.
func TestVoicemailGreeting(t *testing.T) {
	beep, err := voicemailGreeting(QueueHoldConfig{})
	if err != nil || beep.Len() != audio.FramesPerSec/2 || audio.ToneLevel(beep.Frame(0), voicemailBeepHz) < 0.05 {
		t.Fatalf("built-in greeting: %v", err)
	}
	dir := t.TempDir()
	if g, err := voicemailGreeting(QueueHoldConfig{PromptsDir: dir}); err != nil || g.Len() != beep.Len() {
		t.Errorf("a prompts directory without voicemail.wav: %v; want the beep", err)
	}
	src := writeToneWAV(t, dir, 700, 2) // music.wav: 2 s of 700 Hz
	if err := os.Rename(src, filepath.Join(dir, "voicemail.wav")); err != nil {
		t.Fatal(err)
	}
	g, err := voicemailGreeting(QueueHoldConfig{PromptsDir: dir})
	if err != nil || g.Len() != 2*audio.FramesPerSec || audio.ToneLevel(g.Frame(10), 700) < 1e-3 {
		t.Errorf("voicemail.wav: %v", err)
	}
}
