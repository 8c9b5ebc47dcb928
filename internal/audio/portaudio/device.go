//go:build portaudio

package portaudio

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	pa "github.com/gordonklaus/portaudio"

	"github.com/switchboard/switchboard/internal/audio"
)

// lib guards PortAudio: its reference count (Initialize when the first
// device opens, Terminate when the last closes) and every call into the Go
// binding, whose globals (the device list, the initialized count) are not
// guarded. The callbacks never take it.
var lib struct {
	sync.Mutex
	refs       int
	idsSkipped bool // see race.go
}

// Device is a host sound card opened through PortAudio; it implements
// audio.Endpoint. It opens the device at its own rate and resamples to and
// from 8 kHz; see the package's doc.
type Device struct {
	*bridge
	info    Info
	streams []*pa.Stream
	log     *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

var _ audio.Endpoint = (*Device)(nil)

// Info describes an open device.
type Info struct {
	Name    string // the name Open was given
	HostAPI string // PortAudio's host API, as "JACK Audio Connection Kit"
	// The input's and output's device names, rates (Hz, as the streams
	// run), channels and latency; zero for a direction the device lacks.
	InputDevice, OutputDevice     string
	InputRate, OutputRate         int
	InputChannels, OutputChannels int
	InputLatency, OutputLatency   time.Duration
}

// Open opens the sound card called name ("default": the default input and
// output devices), in and out at its default rate, mono when it can be,
// and starts its streams. A device with only an input or only an output
// works one way: Capture answers silence, or Play does nothing. log (nil:
// slog.Default()) hears when it opens and closes, with its counts.
func Open(name string, log *slog.Logger) (*Device, error) {
	if log == nil {
		log = slog.Default()
	}
	lib.Lock()
	defer lib.Unlock()
	if lib.refs == 0 {
		if err := pa.Initialize(); err != nil {
			return nil, fmt.Errorf("portaudio: initialize: %w", err)
		}
	}
	lib.refs++
	if raceBuild && !lib.idsSkipped {
		skipLowStreamIDs()
		lib.idsSkipped = true
	}
	d, err := open(name, log)
	if err != nil {
		return nil, fmt.Errorf("portaudio: open %q: %w", name, errors.Join(err, releaseLocked()))
	}
	i := d.info
	log.Info("portaudio device opened", "device", name, "host_api", i.HostAPI,
		"input", i.InputDevice, "input_rate", i.InputRate, "input_channels", i.InputChannels, "input_latency", i.InputLatency,
		"output", i.OutputDevice, "output_rate", i.OutputRate, "output_channels", i.OutputChannels, "output_latency", i.OutputLatency)
	return d, nil
}

// releaseLocked drops one reference to PortAudio; lib must be held.
func releaseLocked() error {
	lib.refs--
	if lib.refs > 0 {
		return nil
	}
	if err := pa.Terminate(); err != nil {
		return fmt.Errorf("portaudio: terminate: %w", err)
	}
	return nil
}

// open finds, opens and starts the streams; lib is held.
func open(name string, log *slog.Logger) (*Device, error) {
	in, out, err := findDevices(name)
	if err != nil {
		return nil, err
	}
	var inCh, outCh, inRate, outRate int
	if in != nil {
		inRate = int(in.DefaultSampleRate)
		if inCh, err = channels(in, inRate, true); err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
	}
	if out != nil {
		outRate = int(out.DefaultSampleRate)
		if outCh, err = channels(out, outRate, false); err != nil {
			return nil, fmt.Errorf("output %q: %w", out.Name, err)
		}
	}
	d := &Device{bridge: newBridge(inRate, inCh, outRate, outCh), log: log}

	d.info = Info{Name: name, InputChannels: inCh, OutputChannels: outCh}
	if in != nil {
		d.info.HostAPI, d.info.InputDevice, d.info.InputRate = in.HostApi.Name, in.Name, inRate
	}
	if out != nil {
		d.info.HostAPI, d.info.OutputDevice, d.info.OutputRate = out.HostApi.Name, out.Name, outRate
	}

	// One duplex stream when both ways share a rate (one callback a
	// period); otherwise a stream each way, each at its device's rate.
	var si *pa.StreamInfo
	switch {
	case in != nil && out != nil && inRate == outRate:
		si, err = d.start(params(in, inCh, out, outCh, inRate), func(i, o []int16) { d.onInput(i); d.onOutput(o) })
		if si != nil {
			d.info.InputRate, d.info.InputLatency = int(math.Round(si.SampleRate)), si.InputLatency
			d.info.OutputRate, d.info.OutputLatency = int(math.Round(si.SampleRate)), si.OutputLatency
		}
	default:
		if in != nil {
			si, err = d.start(params(in, inCh, nil, 0, inRate), d.onInput)
			if si != nil {
				d.info.InputRate, d.info.InputLatency = int(math.Round(si.SampleRate)), si.InputLatency
			}
		}
		if err == nil && out != nil {
			si, err = d.start(params(nil, 0, out, outCh, outRate), d.onOutput)
			if si != nil {
				d.info.OutputRate, d.info.OutputLatency = int(math.Round(si.SampleRate)), si.OutputLatency
			}
		}
	}
	if err != nil {
		return nil, errors.Join(err, d.stopStreams())
	}
	return d, nil
}

// findDevices resolves name to an input and an output device (either nil
// when the device lacks that direction).
func findDevices(name string) (in, out *pa.DeviceInfo, err error) {
	if name == "default" {
		in, errIn := pa.DefaultInputDevice()
		out, errOut := pa.DefaultOutputDevice()
		if in == nil && out == nil {
			return nil, nil, fmt.Errorf("no default device (%w; %w)%s", errIn, errOut, available())
		}
		return in, out, nil
	}
	devs, err := pa.Devices()
	if err != nil {
		return nil, nil, fmt.Errorf("list devices: %w", err)
	}
	for _, dev := range devs {
		if dev.Name != name {
			continue
		}
		if dev.MaxInputChannels > 0 {
			in = dev
		}
		if dev.MaxOutputChannels > 0 {
			out = dev
		}
		return in, out, nil
	}
	return nil, nil, fmt.Errorf("no such device%s", available())
}

// available lists the devices for an error message.
func available() string {
	devs, err := pa.Devices()
	if err != nil || len(devs) == 0 {
		return "; PortAudio sees no devices"
	}
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = fmt.Sprintf("%q (%s)", d.Name, d.HostApi.Name)
	}
	return "; PortAudio's devices: " + strings.Join(names, ", ")
}

// channels picks mono when the device takes it, else the fewest it takes
// up to two (the callbacks downmix and duplicate).
func channels(dev *pa.DeviceInfo, rate int, input bool) (int, error) {
	maxCh := dev.MaxOutputChannels
	if input {
		maxCh = dev.MaxInputChannels
	}
	var err error
	for ch := 1; ch <= min(maxCh, 2); ch++ {
		var p pa.StreamParameters
		var cb any = func(out []int16) {}
		if input {
			p = params(dev, ch, nil, 0, rate)
			cb = func(in []int16) {}
		} else {
			p = params(nil, 0, dev, ch, rate)
		}
		if err = pa.IsFormatSupported(p, cb); err == nil {
			return ch, nil
		}
	}
	if err == nil {
		err = errors.New("no channels")
	}
	return 0, fmt.Errorf("16-bit mono or stereo at %d Hz: %w", rate, err)
}

// params are a stream's parameters: 16-bit, 20 ms a callback, the
// devices' low latency.
func params(in *pa.DeviceInfo, inCh int, out *pa.DeviceInfo, outCh int, rate int) pa.StreamParameters {
	p := pa.StreamParameters{SampleRate: float64(rate), FramesPerBuffer: rate / audio.FramesPerSec}
	if in != nil {
		p.Input = pa.StreamDeviceParameters{Device: in, Channels: inCh, Latency: in.DefaultLowInputLatency}
	}
	if out != nil {
		p.Output = pa.StreamDeviceParameters{Device: out, Channels: outCh, Latency: out.DefaultLowOutputLatency}
	}
	return p
}

// start opens and starts one stream with the callback cb, and says how
// it runs; lib is held.
func (d *Device) start(p pa.StreamParameters, cb any) (*pa.StreamInfo, error) {
	s, err := pa.OpenStream(p, cb)
	if err != nil {
		return nil, fmt.Errorf("open stream at %.0f Hz: %w", p.SampleRate, err)
	}
	d.streams = append(d.streams, s)
	if err := s.Start(); err != nil {
		return nil, fmt.Errorf("start stream: %w", err)
	}
	return s.Info(), nil
}

// stopStreams stops and closes the streams; lib is held.
func (d *Device) stopStreams() error {
	var errs []error
	for _, s := range d.streams {
		if err := s.Stop(); err != nil && !errors.Is(err, pa.StreamIsStopped) {
			errs = append(errs, fmt.Errorf("stop stream: %w", err))
		}
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close stream: %w", err))
		}
	}
	d.streams = nil
	return errors.Join(errs...)
}

// Info describes the device as it runs.
func (d *Device) Info() Info { return d.info }

// Stats returns what the device counted so far.
func (d *Device) Stats() Stats { return d.stats() }

// Capture writes the next 20 ms of the device's input, at 8 kHz, into f,
// and reports whether it had them (false: f is silence). It never blocks.
func (d *Device) Capture(f *audio.Frame) bool { return d.capture(f) }

// Play queues 20 ms for the device's output. It never blocks.
func (d *Device) Play(out audio.Output) { d.play(out) }

// Close stops and closes the streams, and PortAudio with the last device.
// A second Close does nothing and returns the first one's error.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		lib.Lock()
		defer lib.Unlock()
		err := errors.Join(d.stopStreams(), releaseLocked())
		s := d.stats()
		d.log.Info("portaudio device closed", "device", d.info.Name,
			"input_callbacks", s.InputCallbacks, "output_callbacks", s.OutputCallbacks,
			"captured", s.Captured, "capture_underruns", s.CaptureUnderruns, "capture_overruns", s.CaptureOverruns,
			"played", s.Played, "play_underruns", s.PlayUnderruns, "play_overruns", s.PlayOverruns)
		if err != nil {
			d.closeErr = fmt.Errorf("portaudio: close %q: %w", d.info.Name, err)
		}
	})
	return d.closeErr
}
