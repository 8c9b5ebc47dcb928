//go:build portaudio && race

package portaudio

import pa "github.com/gordonklaus/portaudio"

// raceBuild says the race detector is on, and with it Go's pointer checks
// (checkptr).
const raceBuild = true

// skipLowStreamIDs works around the Go binding under the race detector.
// The binding numbers its streams from 0 and hands PortAudio each one's
// number as the callback's user data, converted to a pointer; checkptr
// kills the process when that pointer is 1 to 4095, which no real pointer
// is, so the second stream a race-enabled process opened was fatal. The
// binding takes a number even for an OpenStream that fails before it
// reaches PortAudio (no callback given), so those numbers are used up
// here, once per process. PortAudio must be initialized and lib held.
func skipLowStreamIDs() {
	for range 4096 {
		_, _ = pa.OpenStream(pa.StreamParameters{})
	}
}
