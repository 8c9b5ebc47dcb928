package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/queue"
)

// QueueHoldConfig is what a caller waiting in a queue hears.
type QueueHoldConfig struct {
	// MusicWAV is the queue music (any rate, resampled to 8 kHz); empty is
	// the hold tone.
	MusicWAV string
	// PromptEvery is how often the position prompt interrupts the music;
	// the first is said as the caller enters.
	PromptEvery time.Duration
	// PromptsDir holds the operator's own voice for the position prompt
	// (caller.wav, 0.wav ... 20.wav, as internal/audio/prompts/queue);
	// empty is the built-in English one. Its voicemail.wav, if present,
	// is the greeting of a queue's voicemail; else a beep.
	PromptsDir string
}

// queueHoldFlags registers --queue-music, --queue-prompt-every and
// --queue-prompts.
func queueHoldFlags(fs *flag.FlagSet, cfg *QueueHoldConfig, env func(name, def string) string) (finish func() error) {
	fs.StringVar(&cfg.MusicWAV, "queue-music", env("SWITCHBOARD_QUEUE_MUSIC", ""), "a WAV file looped to callers waiting in a queue; empty is the hold tone (env SWITCHBOARD_QUEUE_MUSIC)")
	fs.StringVar(&cfg.PromptsDir, "queue-prompts", env("SWITCHBOARD_QUEUE_PROMPTS", ""), "a directory of WAV files, caller.wav (\"You are caller number\") and 0.wav to 20.wav, that speak the position prompt in your own voice, and voicemail.wav, the greeting of a queue's voicemail (else a beep); empty is the built-in English voice (env SWITCHBOARD_QUEUE_PROMPTS)")
	every := fs.String("queue-prompt-every", env("SWITCHBOARD_QUEUE_PROMPT_EVERY", "30s"), "how often a waiting caller hears its position (\"You are caller number N\") over the queue music (env SWITCHBOARD_QUEUE_PROMPT_EVERY)")
	return func() error {
		d, err := time.ParseDuration(*every)
		if err != nil || d < time.Second {
			return fmt.Errorf("--queue-prompt-every %q is not a duration of a second or more", *every)
		}
		cfg.PromptEvery = d
		return nil
	}
}

// queueVoice loads the configured voice of the position prompt.
func queueVoice(cfg QueueHoldConfig) (*audio.PositionVoice, error) {
	if cfg.PromptsDir == "" {
		return audio.BuiltInVoice(), nil
	}
	return audio.LoadPositionVoice(cfg.PromptsDir)
}

// voicemailBeepHz is the tone of the built-in voicemail greeting: half a second of
// 1 kHz (the tests tell it by its tone).
const voicemailBeepHz = 1000

// voicemailGreeting loads the greeting of a queue's voicemail:
// voicemail.wav in the prompts directory when there is one, else a beep.
func voicemailGreeting(cfg QueueHoldConfig) (*audio.Prompt, error) {
	if cfg.PromptsDir != "" {
		path := filepath.Join(cfg.PromptsDir, "voicemail.wav")
		if _, err := os.Stat(path); err == nil {
			return audio.LoadPromptWAV(path)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("voicemail greeting: %w", err)
		}
	}
	return audio.TonePrompt(voicemailBeepHz, -12, audio.FramesPerSec/2), nil
}

// queueMusic loads the configured queue music (nil: the mixer's default).
func queueMusic(cfg QueueHoldConfig) (*audio.HoldSource, error) {
	if cfg.MusicWAV == "" {
		return nil, nil
	}
	return audio.LoadHoldWAV(cfg.MusicWAV)
}

// queueHold plays the queue music and position prompts to this node's
// waiting callers: a waiting call (queueCallWaiting) gets an
// audio.QueueWait in the mixer and a goroutine that says its position at
// once and every PromptEvery, until the call waits in no queue. The mixer
// stops the music on its own the tick the agent is live. Close stops the
// goroutines.
type queueHold struct {
	mixer *audio.Mixer
	store queue.Store
	every time.Duration
	voice *audio.PositionVoice
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	waits  map[string]*holdWait // by call id
}

// holdWait is one waiting call's: what it hears and the queue it waits in.
type holdWait struct {
	qw    *audio.QueueWait
	queue string // guarded by queueHold.mu
	// voicemail: the call went to voicemail, whose greeting has the
	// mixer's wait now (guarded by queueHold.mu).
	voicemail bool
}

func newQueueHold(mixer *audio.Mixer, store queue.Store, every time.Duration, voice *audio.PositionVoice, log *slog.Logger) *queueHold {
	if every <= 0 {
		every = 30 * time.Second
	}
	if voice == nil {
		voice = audio.BuiltInVoice()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &queueHold{mixer: mixer, store: store, every: every, voice: voice, log: log, ctx: ctx, cancel: cancel,
		waits: map[string]*holdWait{}}
}

// waiting starts the wait of a call that entered (or overflowed into) a
// queue at position.
func (h *queueHold) waiting(w queue.Waiting, position int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hw := h.waits[w.CallID]; hw != nil {
		hw.queue = w.Queue // overflowed into another queue
		hw.qw.Say(h.voice.Prompt(position))
		return
	}
	if h.ctx.Err() != nil {
		return
	}
	hw := &holdWait{qw: &audio.QueueWait{}, queue: w.Queue}
	hw.qw.Say(h.voice.Prompt(position))
	h.waits[w.CallID] = hw
	h.mixer.SetQueueWait(w.CallID, hw.qw)
	h.wg.Go(func() { h.run(w.CallID, hw) })
}

// count is how many calls wait here.
func (h *queueHold) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waits)
}

// run says the call's position every PromptEvery while it waits.
func (h *queueHold) run(callID string, hw *holdWait) {
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !hw.voicemail {
			h.mixer.SetQueueWait(callID, nil)
		}
		delete(h.waits, callID)
	}()
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		q := hw.queue
		h.mu.Unlock()
		pos, err := h.position(q, callID)
		if err != nil {
			h.log.Warn("queue hold: position", "call", callID, "err", err)
			continue
		}
		if pos == 0 {
			return // answered, abandoned or gone
		}
		hw.qw.Say(h.voice.Prompt(pos))
	}
}

// position is the call's place (from 1) in the queue it waits in, 0 when
// it waits in none: its queue q is read first (one read of the store),
// the others only when it is not there (an overflow not yet told).
func (h *queueHold) position(q, callID string) (int, error) {
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	find := func(name string) (int, error) {
		ws, err := h.store.Waiting(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("queue %s: %w", name, err)
		}
		return slices.IndexFunc(ws, func(w queue.Waiting) bool { return w.CallID == callID }) + 1, nil
	}
	if pos, err := find(q); err != nil || pos > 0 {
		return pos, err
	}
	qs, err := h.store.Queues(ctx)
	if err != nil {
		return 0, fmt.Errorf("queues: %w", err)
	}
	for _, d := range qs {
		if d.Name == q {
			continue
		}
		if pos, err := find(d.Name); err != nil || pos > 0 {
			return pos, err
		}
	}
	return 0, nil
}

// voicemail plays the call, gone to voicemail, greeting and then
// silence in place of the music and prompts: it answers how long the
// greeting lasts and stop, which takes the call's wait out of the mixer
// (api.VoicemailGreeter).
func (h *queueHold) voicemail(greeting *audio.Prompt) api.VoicemailGreeter {
	return func(callID string) (time.Duration, func()) {
		vw := &audio.QueueWait{Silent: true}
		vw.Say(greeting)
		h.mu.Lock()
		if hw := h.waits[callID]; hw != nil {
			hw.voicemail = true // its goroutine leaves the mixer's wait to us
		}
		h.mixer.SetQueueWait(callID, vw)
		h.mu.Unlock()
		stop := sync.OnceFunc(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.mixer.SetQueueWait(callID, nil)
		})
		return time.Duration(greeting.Len()) * audio.FrameDuration, stop
	}
}

// close stops every wait's goroutine and takes the waits out of the mixer.
func (h *queueHold) close() {
	h.cancel()
	h.wg.Wait()
}

// holdEvents is queue.Events that starts a waiting call's music and
// prompts before it tells the others.
type holdEvents struct {
	queue.Events
	hold *queueHold
}

// QueueCallWaiting implements queue.Events.
func (e holdEvents) QueueCallWaiting(w queue.Waiting, position int) {
	e.hold.waiting(w, position)
	e.Events.QueueCallWaiting(w, position)
}
