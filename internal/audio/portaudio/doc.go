// Package portaudio is the host's sound card as an audio endpoint
// (audio.Endpoint), through PortAudio: `switchboard serve --device
// alice=default` binds Alice to the default input and output devices.
//
// The device runs at its own rate (its default sample rate, 44.1 or 48 kHz
// on most cards) on PortAudio's callback thread; the mixer runs at 8 kHz on
// its own clock. Between the two sit two small rings of samples at the
// device's rate, one each way, each holding a few 20 ms frames under a
// mutex that is only ever held for a copy:
//
//   - PortAudio's callback only copies: captured samples into the capture
//     ring (downmixed to mono), and samples from the playback ring out to
//     every channel. It never waits for the mixer, never allocates, and
//     never logs.
//   - The mixer's Capture and Play resample (audio.Resampler) between 8 kHz
//     and the device's rate, on the mixer's goroutine.
//
// A ring that runs dry plays (or captures) silence and waits until it holds
// two frames again before it resumes, so that the two clocks' jitter does
// not turn into a click every frame; a ring that fills drops its oldest
// samples, keeping latency bounded. Both are counted (Device.Stats).
//
// PortAudio itself is initialized when the first device opens and
// terminated when the last one closes, under one lock that also guards
// every other call into the library, whose Go binding keeps unguarded
// globals.
//
// The device needs cgo and PortAudio's headers (Debian: portaudio19-dev),
// so it is built only with the portaudio build tag; the rings and the
// callback's logic are plain Go and are tested in every build. Without a
// sound card, JACK's dummy driver gives PortAudio a properly timed device
// (see the README).
//
// This package must not know about calls: it moves audio between a device
// and the mixer, nothing more.
package portaudio
