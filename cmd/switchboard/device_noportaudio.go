//go:build !portaudio

package main

import (
	"fmt"
	"log/slog"

	"github.com/switchboard/switchboard/internal/audio"
)

// openHostDevice is the host sound card; this build has no PortAudio.
func openHostDevice(spec string, _ *slog.Logger) (audio.Endpoint, error) {
	return nil, fmt.Errorf("device %q: this build has no PortAudio (build with -tags portaudio and portaudio19-dev); file: and tone: devices work", spec)
}
