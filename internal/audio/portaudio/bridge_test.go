package portaudio

import (
	"fmt"
	"math"
	"testing"

	"github.com/switchboard/switchboard/internal/audio"
)

// TestBridgeRates sends a tone through the bridge both ways at the rates
// sound cards run at, as PortAudio's callbacks and the mixer would call it
// (a callback every 20 ms, stereo and mono), and checks that the tone
// comes out at 8 kHz, at its level, and that nothing underruns or
// overruns once started.
func TestBridgeRates(t *testing.T) {
	const hz, dBov = 440.0, -12.0
	for _, rate := range []int{8000, 16000, 44100, 48000} {
		for _, ch := range []int{1, 2} {
			t.Run(fmt.Sprintf("%dHz/%dch", rate, ch), func(t *testing.T) {
				b := newBridge(rate, ch, rate, ch)
				period := rate / audio.FramesPerSec
				step := 2 * math.Pi * hz / float64(rate)
				amp := 32767 * math.Pow(10, dBov/20) * math.Sqrt2
				in := make([]int16, period*ch)
				out := make([]int16, period*ch)
				tone := audio.NewTone(hz, dBov)
				var phase float64
				var f, sent audio.Frame
				var outLevel, inLevel float64
				const ticks, warm = 100, 10
				for tick := range ticks {
					// The device's callback: a period of the tone in, a period out.
					for i := range period {
						v := int16(amp * math.Sin(phase))
						phase += step
						for c := range ch {
							in[i*ch+c] = v
						}
					}
					b.onInput(in)
					b.onOutput(out)
					if tick >= warm {
						mono := make([]int16, period)
						for i := range mono {
							mono[i] = out[i*ch]
							for c := 1; c < ch; c++ {
								if out[i*ch+c] != mono[i] {
									t.Fatalf("tick %d: channel %d differs from channel 0", tick, c)
								}
							}
						}
						// Back to 8 kHz to measure the tone.
						var back audio.Frame
						copy(back[:], audio.Resample(mono, rate, audio.SampleRate))
						outLevel += audio.ToneLevel(&back, hz)
					}
					// The mixer's tick.
					if b.capture(&f) && tick >= warm {
						inLevel += audio.ToneLevel(&f, hz)
					}
					tone.Next(&sent)
					b.play(audio.Output{PCM: &sent, Source: audio.SourceCall})
				}
				want := math.Pow(10, dBov/10) * 2 // ToneLevel of a sine at dBov
				t.Logf("tone level: captured %.3f, played %.3f, want about %.3f", inLevel/(ticks-warm), outLevel/(ticks-warm), want)
				for _, c := range []struct {
					what string
					got  float64
				}{{"captured", inLevel / (ticks - warm)}, {"played", outLevel / (ticks - warm)}} {
					if c.got < want*0.8 || c.got > want*1.25 {
						t.Errorf("%s tone level %.3f, want about %.3f", c.what, c.got, want)
					}
				}
				s := b.stats()
				if s.PlayUnderruns > 0 || s.PlayOverruns > 0 || s.CaptureOverruns > 0 {
					t.Errorf("stats %+v: want no play underruns, no overruns", s)
				}
				if s.CaptureUnderruns > primeFrames || s.Captured < ticks-primeFrames-1 {
					t.Errorf("stats %+v: want at most %d capture underruns (priming) and the rest captured", s, primeFrames)
				}
			})
		}
	}
}

// TestBridgeUnderrunOverrun: with nothing to play the callback plays
// silence and counts it, once playback has started; a mixer that stops
// capturing leaves the callback dropping the oldest samples, and a mixer
// that plays faster than the device drops the oldest too.
func TestBridgeUnderrunOverrun(t *testing.T) {
	b := newBridge(48000, 1, 48000, 1)
	out := make([]int16, 960)
	b.onOutput(out)
	if s := b.stats(); s.PlayUnderruns != 0 {
		t.Fatalf("play underruns before anything played: %d, want 0", s.PlayUnderruns)
	}
	tone := audio.NewTone(1000, -6)
	var f audio.Frame
	tone.Next(&f)
	// The first frame comes out a sample short (the resampler's delay):
	// three frames make two callbacks' worth and most of a third.
	for range primeFrames + 1 {
		b.play(audio.Output{PCM: &f})
	}
	for i := range 2 {
		b.onOutput(out)
		if audioRMS(out) == 0 {
			t.Fatalf("callback %d played silence, want the tone", i)
		}
	}
	b.onOutput(out)
	if s := b.stats(); s.PlayUnderruns != 1 || out[len(out)-1] != 0 {
		t.Fatalf("short ring: underruns %d, last sample %d; want 1 and silence", s.PlayUnderruns, out[len(out)-1])
	}
	b.onOutput(out)
	if s := b.stats(); s.PlayUnderruns != 2 || audioRMS(out) != 0 {
		t.Fatalf("dry ring: underruns %d, rms %.0f; want 2 and silence", s.PlayUnderruns, audioRMS(out))
	}
	for range ringFrames + 2 {
		b.play(audio.Output{PCM: &f})
	}
	if s := b.stats(); s.PlayOverruns != 2 {
		t.Fatalf("play overruns %d, want 2", s.PlayOverruns)
	}
	in := make([]int16, 960)
	for range ringFrames + 3 {
		b.onInput(in)
	}
	if s := b.stats(); s.CaptureOverruns != 3 {
		t.Fatalf("capture overruns %d, want 3", s.CaptureOverruns)
	}
	if !b.capture(&f) {
		t.Fatal("capture with a full ring: false, want a frame")
	}
	if s := b.stats(); s.CaptureOverruns != 4 || b.in.level() != primeFrames*960 {
		t.Fatalf("after capture: overruns %d, level %d; want 4 (the backlog trimmed) and %d", s.CaptureOverruns, b.in.level(), primeFrames*960)
	}
	b.closed.Store(true)
	if b.capture(&f) {
		t.Fatal("capture after close: true, want false")
	}
}

// TestCallbacksDoNotAllocate: PortAudio's callbacks run on its real-time
// thread, where an allocation can stall the device.
func TestCallbacksDoNotAllocate(t *testing.T) {
	b := newBridge(44100, 2, 44100, 2)
	in := make([]int16, 882*2)
	out := make([]int16, 882*2)
	var f audio.Frame
	if n := testing.AllocsPerRun(200, func() {
		b.onInput(in)
		b.onOutput(out)
		b.capture(&f)
		b.play(audio.Output{PCM: &f})
	}); n != 0 {
		t.Fatalf("callbacks and a mixer tick allocate %.1f times, want 0", n)
	}
}

func audioRMS(p []int16) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(p)))
}
