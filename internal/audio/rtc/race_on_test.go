//go:build race

package rtc

// raceEnabled: the race detector's instrumentation allocates.
const raceEnabled = true
