package portaudio

import (
	"math"
	"sync/atomic"

	"github.com/switchboard/switchboard/internal/audio"
)

// Ring sizes, in 20 ms frames at the device's rate.
const (
	ringFrames  = 4 // a ring holds at most 80 ms
	primeFrames = 2 // a ring that ran dry resumes once it holds 40 ms
)

// bridge carries audio between the mixer (Capture and Play, 8 kHz, on the
// mixer's goroutine) and PortAudio's callbacks (the device's rate and
// channels, on PortAudio's thread): two rings at the device's rate, and
// the resampling, done on the mixer's side so that the callbacks only
// copy.
type bridge struct {
	in, out         *ring // nil: the device has no input, no output
	inCh, outCh     int   // the streams' channels
	inRate, outRate int   // the streams' rates, Hz
	inFrame         int   // samples in 20 ms at inRate, rounded up

	// The mixer's side: used on its goroutine only.
	down    *audio.Resampler // inRate → 8 kHz; nil when inRate is 8 kHz
	up      *audio.Resampler // 8 kHz → outRate; nil when outRate is 8 kHz
	raw     []int16          // samples read from in, at inRate
	pending []int16          // captured at 8 kHz, not handed out yet
	played  []int16          // one frame at outRate

	closed  atomic.Bool
	playing atomic.Bool // the playback ring has had something to play
	n       counters
}

type counters struct {
	inCallbacks, outCallbacks         atomic.Uint64
	captured, played                  atomic.Uint64
	captureUnderruns, captureOverruns atomic.Uint64
	playUnderruns, playOverruns       atomic.Uint64
}

// Stats is what a device counted since it opened.
type Stats struct {
	// PortAudio's callbacks that carried input, output (a duplex stream's
	// callback carries both).
	InputCallbacks, OutputCallbacks uint64
	// Captured is how many frames Capture handed to the mixer;
	// CaptureUnderruns how many times it had less than a frame and
	// answered silence; CaptureOverruns how many times the oldest captured
	// samples were dropped, because the capture ring was full when a
	// callback wrote or held more than 60 ms when Capture read.
	Captured, CaptureUnderruns, CaptureOverruns uint64
	// Played is how many frames Play queued; PlayUnderruns how many
	// callbacks, once playback had started, found too little to play and
	// played silence; PlayOverruns how many times Play found the playback
	// ring full and dropped its oldest samples.
	Played, PlayUnderruns, PlayOverruns uint64
}

// newBridge makes the bridge for a device with input at inRate with inCh
// channels and output at outRate with outCh channels; a zero rate is a
// direction the device does not have.
func newBridge(inRate, inCh, outRate, outCh int) *bridge {
	b := &bridge{inRate: inRate, inCh: inCh, outRate: outRate, outCh: outCh}
	if inRate > 0 {
		b.inFrame = frameLen(inRate)
		b.in = newRing(ringFrames*b.inFrame, primeFrames*b.inFrame)
		b.raw = make([]int16, b.inFrame+1)
		b.pending = make([]int16, 0, 2*audio.FrameSamples)
		if inRate != audio.SampleRate {
			b.down = audio.NewResampler(inRate, audio.SampleRate)
		}
	}
	if outRate > 0 {
		n := frameLen(outRate)
		b.out = newRing(ringFrames*n, primeFrames*n)
		b.played = make([]int16, 0, n+1)
		if outRate != audio.SampleRate {
			b.up = audio.NewResampler(audio.SampleRate, outRate)
		}
	}
	return b
}

// frameLen is how many samples 20 ms holds at rate, rounded up.
func frameLen(rate int) int {
	return (rate*audio.FrameSamples + audio.SampleRate - 1) / audio.SampleRate
}

// onInput is PortAudio's input callback: it queues the captured frames
// (interleaved, inCh channels), downmixed to mono. It never waits and
// never allocates.
func (b *bridge) onInput(in []int16) {
	b.n.inCallbacks.Add(1)
	if b.in.write(in, b.inCh) > 0 {
		b.n.captureOverruns.Add(1)
	}
}

// onOutput is PortAudio's output callback: it fills out (interleaved,
// outCh channels) from the playback ring, silence for what the ring lacks.
// It never waits and never allocates.
func (b *bridge) onOutput(out []int16) {
	b.n.outCallbacks.Add(1)
	k := b.out.read(out, b.outCh)
	clear(out[k*b.outCh:])
	switch {
	case k > 0:
		b.playing.Store(true)
		if k*b.outCh < len(out) {
			b.n.playUnderruns.Add(1)
		}
	case b.playing.Load():
		b.n.playUnderruns.Add(1)
	}
}

// capture is Endpoint.Capture: the next 20 ms of the input at 8 kHz.
func (b *bridge) capture(f *audio.Frame) bool {
	if b.in == nil || b.closed.Load() {
		f.Clear()
		return false
	}
	// A backlog (the mixer started late, or paused) is latency for the
	// rest of the call: keep one frame more than the ring primes to.
	if b.in.trim((primeFrames+1)*b.inFrame) > 0 {
		b.n.captureOverruns.Add(1)
	}
	for len(b.pending) < audio.FrameSamples {
		need := audio.FrameSamples - len(b.pending)
		if b.down != nil {
			need = int(math.Ceil(float64(need) * float64(b.inRate) / audio.SampleRate))
		}
		raw := b.raw[:min(need, len(b.raw))]
		got := b.in.read(raw, 1)
		if b.down != nil {
			b.pending = b.down.Process(b.pending, raw[:got])
		} else {
			b.pending = append(b.pending, raw[:got]...)
		}
		if got < len(raw) {
			b.n.captureUnderruns.Add(1)
			f.Clear()
			return false
		}
	}
	copy(f[:], b.pending)
	b.pending = b.pending[:copy(b.pending, b.pending[audio.FrameSamples:])]
	b.n.captured.Add(1)
	return true
}

// play is Endpoint.Play: it queues one frame, at the device's rate.
func (b *bridge) play(o audio.Output) {
	if b.out == nil || b.closed.Load() {
		return
	}
	var pcm audio.Frame
	if o.PCM != nil {
		pcm = *o.PCM
	}
	if b.up != nil {
		b.played = b.up.Process(b.played[:0], pcm[:])
	} else {
		b.played = append(b.played[:0], pcm[:]...)
	}
	if b.out.write(b.played, 1) > 0 {
		b.n.playOverruns.Add(1)
	}
	b.n.played.Add(1)
}

func (b *bridge) stats() Stats {
	return Stats{
		InputCallbacks:   b.n.inCallbacks.Load(),
		OutputCallbacks:  b.n.outCallbacks.Load(),
		Captured:         b.n.captured.Load(),
		CaptureUnderruns: b.n.captureUnderruns.Load(),
		CaptureOverruns:  b.n.captureOverruns.Load(),
		Played:           b.n.played.Load(),
		PlayUnderruns:    b.n.playUnderruns.Load(),
		PlayOverruns:     b.n.playOverruns.Load(),
	}
}
