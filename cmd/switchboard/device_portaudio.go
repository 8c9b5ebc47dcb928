//go:build portaudio

package main

import (
	"log/slog"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/portaudio"
)

// openHostDevice is the host sound card through PortAudio: spec is
// "default" or a PortAudio device name.
func openHostDevice(spec string, log *slog.Logger) (audio.Endpoint, error) {
	return portaudio.Open(spec, log)
}
