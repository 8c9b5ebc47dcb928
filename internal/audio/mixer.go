package audio

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// MixerConfig configures a Mixer.
type MixerConfig struct {
	// Hold is what the remote side of a held 1:1 call hears; nil is the
	// built-in tone.
	Hold *HoldSource
	// QueueMusic is what a caller waiting in a queue hears between its
	// position prompts (SetQueueWait); nil is the built-in hold tone.
	QueueMusic *HoldSource
	// OnSpeaking hears a call's participant start or stop speaking; it runs
	// on the mixer's reporter goroutine, never on its clock.
	OnSpeaking func(callID string, speaking bool)
	// EchoBot is the echo bot's raw id ("8:echo123"); its legs play back
	// what they hear EchoDelay frames later (default one second).
	EchoBot   string
	EchoDelay int
	// LateTick is how late a tick may start before it counts as late
	// (default 5 ms).
	LateTick time.Duration
	Logger   *slog.Logger
}

// Mixer is the media plane's clock and switch. Every 20 ms, on one
// goroutine, it captures a frame from every endpoint, builds for every
// member of every conversation the mix of the others who send, hands each
// identity the mix of the call it receives (its active call), the hold
// tone, or silence, and follows every sender's level for isSpeaking.
//
// It implements calls.Media: routes arrive under the call model's locks and
// take effect at the next tick, so a switch, a mute or a hold acts on the
// media within one frame.
type Mixer struct {
	cfg MixerConfig
	log *slog.Logger

	// pending is what other goroutines hand to the clock.
	mu       sync.Mutex
	routes   map[string]calls.Route // newest route per conversation
	attach   []attachment
	tones    []toneRequest
	tapReqs  []tapRequest  // SetTap's, for the clock (tap.go)
	waitReqs []waitRequest // SetQueueWait's, for the clock (queuewait.go)
	retired  []Endpoint    // replaced or detached, for the closer
	closed   bool
	wake     chan struct{} // the closer's signal

	// speaking changes waiting for the reporter, newest per call.
	speakMu   sync.Mutex
	speakNew  map[string]bool
	speakWake chan struct{}

	// Owned by the clock (Tick).
	convs map[string]*conv
	ids   map[string]*identity
	hold  *HoldSource
	mix   sum
	tmp   Frame
	taps  tapSet                // recorders' taps by call id (tap.go)
	waits map[string]*QueueWait // waiting calls by call id (queuewait.go)
	music *HoldSource           // the queue music

	stats mixerStats
}

// toneRequest is SendTones' request, for the clock.
type toneRequest struct {
	serverCallID, rawID, digits string
}

type attachment struct {
	rawID string
	ep    Endpoint
	only  Endpoint // for a detach: remove only if this is still attached
}

// identity is one identity's endpoint and its frame of the tick.
type identity struct {
	ep      Endpoint
	members int // memberships in conversations
	mic     Frame
	hasMic  bool
	out     Frame
	source  Source
	dtmf    dtmfPlayer // digits it sends in band, in place of its microphone
	toning  bool       // this tick's mic is a DTMF tone
	wait    *QueueWait // this tick: it waits in a queue, alone (queuewait.go)
}

type conv struct {
	kind    calls.Kind
	members []*member
	// limited: some member is heard by only some of the others (its
	// audience); mixConv then mixes for each receiver apart (audience.go).
	limited bool
}

type member struct {
	rawID, callID       string
	key                 string // its endpoint's: rawID, or callID when the call has its own
	send, receive, held bool
	id                  *identity // nil for the echo bot
	echo                *echoLine
	contrib             *Frame // what it sent into the mix this tick
	digitsOutOfBand     bool   // its endpoint took the last digits sent to it out of band
	speaking            speakingDetector
	limited             bool      // heard by its audience alone
	audience            []*member // with limited: who hears it
}

type mixerStats struct {
	ticks   atomic.Uint64
	late    atomic.Uint64
	maxLate atomic.Int64
	busy    atomic.Int64 // total time spent in ticks, ns
}

// MixerStats is what the clock measured so far.
type MixerStats struct {
	Ticks   uint64
	Late    uint64        // ticks that started over LateTick late
	MaxLate time.Duration // the latest start
	Busy    time.Duration // total time inside ticks
}

// NewMixer makes a mixer; Run drives its clock.
func NewMixer(cfg MixerConfig) *Mixer {
	if cfg.Hold == nil {
		cfg.Hold = DefaultHold()
	}
	if cfg.QueueMusic == nil {
		cfg.QueueMusic = DefaultHold()
	}
	if cfg.EchoDelay <= 0 {
		cfg.EchoDelay = FramesPerSec
	}
	if cfg.LateTick <= 0 {
		cfg.LateTick = 5 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Mixer{
		cfg: cfg, log: cfg.Logger, hold: cfg.Hold, music: cfg.QueueMusic,
		routes: map[string]calls.Route{}, wake: make(chan struct{}, 1),
		speakNew: map[string]bool{}, speakWake: make(chan struct{}, 1),
		convs: map[string]*conv{}, ids: map[string]*identity{},
	}
}

// SetRoute takes a conversation's new routing; it applies at the next tick.
func (m *Mixer) SetRoute(r calls.Route) {
	m.mu.Lock()
	m.routes[r.ServerCallID] = r
	m.mu.Unlock()
}

// SendTones plays DTMF digits from rawID into the conversation
// serverCallID, from the next tick on: the others who hear rawID hear the
// digits' tones in place of its microphone (160 ms a digit), but for
// members whose endpoint is a DigitSink, which are handed the digits
// instead. Digits outside calls.DTMFDigits are skipped.
func (m *Mixer) SendTones(serverCallID, rawID, digits string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tones = append(m.tones, toneRequest{serverCallID: serverCallID, rawID: rawID, digits: digits})
}

// Attach makes ep the identity's audio endpoint from the next tick on,
// replacing (and closing) the one it had. A call with an endpoint of its
// own (calls.MediaMember.OwnEndpoint: a phone line) attaches it under its
// call id in place of a raw id.
func (m *Mixer) Attach(rawID string, ep Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		m.retired = append(m.retired, ep)
		m.signal(m.wake)
		return
	}
	m.attach = append(m.attach, attachment{rawID: rawID, ep: ep})
}

// Detach removes ep if it is still the identity's endpoint, and closes it.
func (m *Mixer) Detach(rawID string, ep Endpoint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attach = append(m.attach, attachment{rawID: rawID, only: ep})
}

// Stats returns what the clock measured so far.
func (m *Mixer) Stats() MixerStats {
	return MixerStats{
		Ticks: m.stats.ticks.Load(), Late: m.stats.late.Load(),
		MaxLate: time.Duration(m.stats.maxLate.Load()), Busy: time.Duration(m.stats.busy.Load()),
	}
}

func (m *Mixer) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run drives the clock until ctx ends, then closes every endpoint. It owns
// two helpers it stops before it returns: the closer, which closes
// endpoints off the clock, and the reporter, which tells OnSpeaking.
func (m *Mixer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	helpers, stop := context.WithCancel(context.Background())
	wg.Add(2)
	go func() { defer wg.Done(); m.closer(helpers) }()
	go func() { defer wg.Done(); m.reporter(helpers) }()

	start := time.Now()
	timer := time.NewTimer(FrameDuration)
	defer timer.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-ctx.Done():
			m.shutdown()
			stop()
			wg.Wait()
			return nil
		case now := <-timer.C:
			due := start.Add(time.Duration(n) * FrameDuration)
			late := now.Sub(due)
			if late > m.cfg.LateTick {
				m.stats.late.Add(1)
			}
			if late > time.Duration(m.stats.maxLate.Load()) {
				m.stats.maxLate.Store(int64(late))
			}
			if late > 10*FrameDuration {
				// Asleep (a suspended host): start the clock afresh rather
				// than rush through the frames missed.
				m.log.Warn("mixer clock fell behind; restarting it", "late", late)
				start, n = now, 0
			}
			m.Tick()
			m.stats.busy.Add(int64(time.Since(now)))
			timer.Reset(time.Until(start.Add(time.Duration(n+1) * FrameDuration)))
		}
	}
}

// shutdown stops taking endpoints and retires every one it has.
func (m *Mixer) shutdown() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, a := range m.attach {
		if a.ep != nil {
			m.retired = append(m.retired, a.ep)
		}
	}
	m.attach = nil
	for _, id := range m.ids {
		if id.ep != nil {
			m.retired = append(m.retired, id.ep)
			id.ep = nil
		}
	}
}

// closer closes retired endpoints until ctx ends, then the rest.
func (m *Mixer) closer(ctx context.Context) {
	for {
		m.mu.Lock()
		eps := m.retired
		m.retired = nil
		m.mu.Unlock()
		for _, ep := range eps {
			if err := ep.Close(); err != nil {
				m.log.Warn("closing an audio endpoint", "err", err)
			}
		}
		if ctx.Err() != nil && len(eps) == 0 {
			return
		}
		select {
		case <-m.wake:
		case <-ctx.Done():
		}
	}
}

// reporter hands speaking changes to OnSpeaking until ctx ends.
func (m *Mixer) reporter(ctx context.Context) {
	for {
		select {
		case <-m.speakWake:
			m.flushSpeaking()
		case <-ctx.Done():
			m.flushSpeaking()
			return
		}
	}
}

func (m *Mixer) flushSpeaking() {
	m.speakMu.Lock()
	changes := m.speakNew
	m.speakNew = make(map[string]bool, len(changes))
	m.speakMu.Unlock()
	if m.cfg.OnSpeaking == nil {
		return
	}
	for id, s := range changes {
		m.cfg.OnSpeaking(id, s)
	}
}
