package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtp"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/sip"
)

// phoneMedia carries the audio of calls with the phone network: each call's
// plain RTP leg (package rtp) becomes the phone's endpoint in the mixer
// once the call exists, the digits the phone keys (RFC 4733) go to the
// switchboard (*6 unmutes it), and a leg whose peer falls silent ends the
// call with 410. It is sip.Media, wired here so that the SIP and media adapters
// do not import each other.
type phoneMedia struct {
	engine *rtp.Engine
	mixer  *audio.Mixer
	sb     *calls.Switchboard
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

// phoneLeg is one call's RTP leg as the SIP layer holds it.
type phoneLeg struct {
	*rtp.Leg
	media *phoneMedia
	rawID string

	mu       sync.Mutex
	attached bool
	closed   bool
	watching chan struct{} // closed when the silence watcher returns
}

// Attach makes the leg the phone's audio endpoint and watches it: the
// digits the phone keys go to the switchboard, and when the phone sends
// nothing for the silence timeout, its call ends with 410.
func (l *phoneLeg) Attach(c calls.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.attached {
		return
	}
	l.attached = true
	l.media.mixer.Attach(l.rawID, l.Leg)
	l.watching = make(chan struct{})
	go l.watch(c.ID)
}

// watch hands the phone's digits to the switchboard, and ends the call
// when the leg ends by itself (silence); it returns when the leg ends, for
// whatever reason.
func (l *phoneLeg) watch(callID string) {
	defer close(l.watching)
	digits := l.DTMF()
	for done := false; !done; {
		select {
		case d := <-digits:
			if err := l.media.sb.PhoneTones(context.Background(), callID, string(d)); err != nil {
				l.media.log.Debug("sip: the phone's digit went nowhere", "call_id", callID, "err", err)
			}
		case <-l.Done():
			done = true
		}
	}
	if !errors.Is(l.Err(), rtp.ErrSilence) {
		return
	}
	l.media.log.Info("sip: the phone's media fell silent; ending its call", "call_id", callID, "phone", l.rawID)
	if err := l.media.sb.EndPhoneCall(context.Background(), callID, calls.ReasonMediaLost); err != nil {
		l.media.log.Warn("sip: ending a silent phone call failed", "call_id", callID, "err", err)
	}
}

// Close detaches the leg from the mixer (which closes it) or closes it,
// and waits for its watcher. Closing twice does nothing.
func (l *phoneLeg) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	attached, watching := l.attached, l.watching
	l.mu.Unlock()
	err := l.Leg.Close()
	if attached {
		l.media.mixer.Detach(l.rawID, l.Leg)
	}
	if watching != nil {
		<-watching
	}
	return err
}
