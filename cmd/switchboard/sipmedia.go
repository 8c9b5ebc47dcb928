package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtp"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/sip"
)

// phoneMedia carries the audio of calls with the phone network: each call's
// plain RTP leg (package rtp) becomes the phone's endpoint in the mixer
// once the call exists. It is sip.Media, wired here so that the SIP and
// media adapters do not import each other.
type phoneMedia struct {
	engine *rtp.Engine
	mixer  *audio.Mixer
	log    *slog.Logger
}

var _ sip.Media = (*phoneMedia)(nil)

// NewLeg opens an RTP leg for a call with phone.
func (p *phoneMedia) NewLeg(_ context.Context, phone calls.Identifier) (sip.MediaLeg, error) {
	leg, err := p.engine.NewLeg(rtp.LegOptions{Logger: p.log.With("phone", phone.RawID())})
	if err != nil {
		return nil, err
	}
	return &phoneLeg{Leg: leg, media: p, rawID: phone.RawID()}, nil
}

// phoneLeg is one call's RTP leg as the SIP layer holds it. The SIP layer
// reads the leg's own end (silence: 410) and the phone's digits (RFC 4733)
// from the rtp.Leg it embeds.
type phoneLeg struct {
	*rtp.Leg
	media *phoneMedia
	rawID string

	mu       sync.Mutex
	attached bool
	closed   bool
}

// Attach makes the leg the phone's audio endpoint in the mixer.
func (l *phoneLeg) Attach(calls.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.attached {
		return
	}
	l.attached = true
	l.media.mixer.Attach(l.rawID, l.Leg)
}

// Close closes the leg and detaches it from the mixer. Closing twice does
// nothing.
func (l *phoneLeg) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	attached := l.attached
	l.mu.Unlock()
	err := l.Leg.Close()
	if attached {
		l.media.mixer.Detach(l.rawID, l.Leg)
	}
	return err
}
