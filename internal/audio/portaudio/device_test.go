//go:build portaudio

package portaudio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/internal/audio"
)

// TestDeviceJACK runs the device against JACK's dummy driver, which gives
// PortAudio a properly timed device without a sound card, at 8 kHz (no
// resampling) and at 48 kHz (resampling both ways): two seconds of the
// mixer's ticks, a tone played, the input captured.
func TestDeviceJACK(t *testing.T) {
	tests := []struct {
		rate, period int // jackd's -r and -p
	}{
		{8000, 160},
		{48000, 960},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dHz", tt.rate), func(t *testing.T) {
			server := fmt.Sprintf("switchboard-test-%d", tt.rate)
			startJACK(t, server, tt.rate, tt.period)
			t.Setenv("JACK_DEFAULT_SERVER", server)
			t.Setenv("JACK_NO_START_SERVER", "1")
			ignore := goleak.IgnoreCurrent()

			d, err := Open("default", quiet)
			if err != nil {
				t.Fatalf("Open(default): %v", err)
			}
			info := d.Info()
			t.Logf("info: %+v", info)
			if info.InputRate != tt.rate || info.OutputRate != tt.rate {
				t.Errorf("stream rates in %d, out %d; want JACK's %d", info.InputRate, info.OutputRate, tt.rate)
			}
			if info.InputChannels != 1 || info.OutputChannels != 1 {
				t.Errorf("channels in %d, out %d; want mono", info.InputChannels, info.OutputChannels)
			}

			r := runTicks(d, 2*time.Second, 10)
			s := d.Stats()
			perSec := float64(s.OutputCallbacks-r.warm.OutputCallbacks) / r.elapsed.Seconds()
			t.Logf("after warm-up: %d ticks in %v (at most %v late), %.1f callbacks/s (JACK: %d/s), %d frames captured, %d play underruns, %d play overruns; stats since open %+v",
				r.ticks-r.warmTicks, r.elapsed.Round(time.Millisecond), r.maxLate.Round(100*time.Microsecond), perSec, tt.rate/tt.period, r.captured,
				s.PlayUnderruns-r.warm.PlayUnderruns, s.PlayOverruns-r.warm.PlayOverruns, s)

			// The device's own pace: a generous range, since the test may
			// share the machine.
			want := float64(tt.rate) / float64(tt.period)
			if perSec < want/2 || perSec > want*2 {
				t.Errorf("%.1f callbacks/s, want about %.0f", perSec, want)
			}
			if s.InputCallbacks != s.OutputCallbacks {
				t.Errorf("input callbacks %d, output %d: want one duplex stream", s.InputCallbacks, s.OutputCallbacks)
			}
			// The playback ring keeps 20-40 ms queued: a mixer that keeps
			// its clock within 15 ms never lets it run dry. A test starved
			// of CPU for longer cannot blame the device.
			if n := s.PlayUnderruns - r.warm.PlayUnderruns; n > 0 {
				if r.maxLate < 15*time.Millisecond {
					t.Errorf("%d play underruns after warm-up with ticks at most %v late, want 0", n, r.maxLate)
				} else {
					t.Logf("%d play underruns after warm-up: the test's ticks ran up to %v late (a busy machine), not checked", n, r.maxLate)
				}
			}
			// A busy machine makes JACK skip periods (xruns): the device then
			// takes fewer frames than the mixer plays and the ring drops the
			// oldest, which is right. Beyond those, nothing may be dropped.
			callbacks := int(s.OutputCallbacks - r.warm.OutputCallbacks)
			missed := max(0, int(math.Round(r.elapsed.Seconds()*want))-callbacks)
			if n := int(s.PlayOverruns - r.warm.PlayOverruns); n > missed+1 {
				t.Errorf("%d play overruns after warm-up with %d periods missed, want at most %d", n, missed, missed+1)
			}
			// Every period the device captured became a frame for the mixer.
			if r.captured < callbacks-primeFrames-1 {
				t.Errorf("captured %d frames after warm-up in %d callbacks, want about as many", r.captured, callbacks)
			}

			for i := range 2 {
				if err := d.Close(); err != nil {
					t.Errorf("Close #%d: %v", i+1, err)
				}
			}
			var f audio.Frame
			if d.Capture(&f) {
				t.Error("Capture after Close: true, want false")
			}
			d.Play(audio.Output{PCM: &f})
			if got := d.Stats().Played; got != s.Played {
				t.Errorf("Play after Close queued a frame (%d, was %d)", got, s.Played)
			}

			// The same device by its PortAudio name (JACK's is "system").
			byName, err := Open(info.OutputDevice, quiet)
			if err != nil {
				t.Fatalf("Open(%q): %v", info.OutputDevice, err)
			}
			if got := byName.Info(); got.InputRate != tt.rate || got.OutputRate != tt.rate {
				t.Errorf("Open(%q): rates in %d, out %d; want %d", info.OutputDevice, got.InputRate, got.OutputRate, tt.rate)
			}
			if err := byName.Close(); err != nil {
				t.Errorf("Close of %q: %v", info.OutputDevice, err)
			}
			goleak.VerifyNone(t, ignore)
		})
	}
}

// TestOpenUnknown: a device name PortAudio does not have is an error that
// says what there is, and leaves PortAudio terminated.
func TestOpenUnknown(t *testing.T) {
	_, err := Open("no such sound card", quiet)
	if err == nil {
		t.Fatal("Open of an unknown device: nil error")
	}
	t.Log(err)
	lib.Lock()
	refs := lib.refs
	lib.Unlock()
	if refs != 0 {
		t.Errorf("PortAudio references after a failed Open: %d, want 0", refs)
	}
}

var quiet = slog.New(slog.DiscardHandler)

type tickResult struct {
	ticks, warmTicks, captured int
	elapsed, maxLate           time.Duration // maxLate: the latest tick after warm-up
	warm                       Stats
}

// runTicks is the mixer's loop: every 20 ms, on one goroutine, Capture and
// then Play of a 440 Hz tone, for d; the first warm ticks are warm-up.
func runTicks(dev *Device, d time.Duration, warm int) tickResult {
	var r tickResult
	r.warmTicks = warm
	tone := audio.NewTone(440, -20)
	var mic, spk audio.Frame
	start := time.Now()
	timer := time.NewTimer(audio.FrameDuration)
	defer timer.Stop()
	var warmAt time.Time
	for n := 1; time.Since(start) < d; n++ {
		<-timer.C
		if late := time.Since(start.Add(time.Duration(n) * audio.FrameDuration)); n > warm {
			r.maxLate = max(r.maxLate, late)
		}
		timer.Reset(time.Until(start.Add(time.Duration(n+1) * audio.FrameDuration)))
		if dev.Capture(&mic) && n > warm {
			r.captured++
		}
		tone.Next(&spk)
		dev.Play(audio.Output{PCM: &spk, Source: audio.SourceCall})
		r.ticks++
		if n == warm {
			r.warm, warmAt = dev.Stats(), time.Now()
		}
	}
	r.elapsed = time.Since(warmAt)
	return r
}

// startJACK makes sure a JACK server called name runs with the dummy
// driver at rate: it starts jackd unless one already answers, waits until
// it is ready, and stops it when the test ends. It skips the test when
// jackd is not installed.
func startJACK(t *testing.T, name string, rate, period int) {
	t.Helper()
	jackd, err := exec.LookPath("jackd")
	if err != nil {
		t.Skip("jackd is not installed (Debian: apt-get install jackd2); scripts/test installs it when run as root")
	}
	wait, err := exec.LookPath("jack_wait")
	if err != nil {
		t.Skip("jack_wait is not installed (Debian's jackd2 has it)")
	}
	if out, _ := exec.Command(wait, "-s", name, "-c").Output(); string(out) == "running\n" {
		t.Logf("using the JACK server %s that already runs", name)
		return
	}
	var out syncBuffer
	cmd := exec.Command(jackd, "-n", name, "--no-realtime", "-d", "dummy",
		"-r", fmt.Sprint(rate), "-p", fmt.Sprint(period))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start jackd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("jackd's output:\n%s", out.String())
		}
	})
	// jack_wait -w returns once the server accepts clients.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- exec.CommandContext(ctx, wait, "-s", name, "-w", "-t", "10").Run() }()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("jack_wait for %s: %v\njackd's output:\n%s", name, err, out.String())
		}
	case err := <-exited:
		t.Fatalf("jackd exited before it was ready: %v\n%s", errors.Join(err, errors.New("no error")), out.String())
	}
}

// syncBuffer is a bytes.Buffer that jackd's output and the test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
