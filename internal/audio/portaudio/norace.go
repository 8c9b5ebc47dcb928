//go:build portaudio && !race

package portaudio

// raceBuild says the race detector is on; see race.go.
const raceBuild = false

func skipLowStreamIDs() {}
