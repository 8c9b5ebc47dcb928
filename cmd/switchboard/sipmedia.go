package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtp"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/sip"
)

// phoneMedia carries the audio of calls with the phone network: each call's
// plain RTP leg (package rtp) becomes that call's own endpoint in the
// mixer once the call exists. It is sip.Media, wired here so that the SIP
// and media adapters do not import each other.
type phoneMedia struct {
	engine *rtp.Engine
	mixer  *audio.Mixer
	// muted is what a phone muted by others hears (it unmutes with *6).
	muted *audio.Prompt
	log   *slog.Logger
}

var _ sip.Media = (*phoneMedia)(nil)

// NewLeg opens an RTP leg for a call with phone.
func (p *phoneMedia) NewLeg(_ context.Context, phone calls.Identifier) (sip.MediaLeg, error) {
	leg, err := p.engine.NewLeg(rtp.LegOptions{Logger: p.log.With("phone", phone.RawID())})
	if err != nil {
		return nil, err
	}
	return &phoneLeg{Leg: leg, media: p}, nil
}

// phoneLeg is one call's RTP leg as the SIP layer holds it and the mixer
// plays it. The SIP layer reads the leg's own end (silence: 410) and the
// phone's digits (RFC 4733) from the rtp.Leg it embeds; the mixer captures
// from that leg and plays through Play, which speaks prompts over the
// call's audio.
type phoneLeg struct {
	*rtp.Leg
	media     *phoneMedia
	announcer audio.Announcer

	mu     sync.Mutex
	callID string // the call whose endpoint it is, once attached
	closed bool
}

// Attach makes the leg its call's own audio endpoint in the mixer (a call
// with the phone network has one: calls.MediaMember.OwnEndpoint), so that
// two calls from one number are two phones.
func (l *phoneLeg) Attach(c calls.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.callID != "" {
		return
	}
	l.callID = c.ID
	l.media.mixer.Attach(c.ID, l)
}

// Play plays the mixer's frame for the phone with any prompt spoken over
// it. It runs on the mixer's clock.
func (l *phoneLeg) Play(out audio.Output) {
	l.Leg.Play(l.announcer.Over(out))
}

// MutedByOthers tells the phone it was muted and that *6 unmutes it.
func (l *phoneLeg) MutedByOthers() {
	l.announcer.Say(l.media.muted)
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
	callID := l.callID
	l.mu.Unlock()
	err := l.Leg.Close()
	if callID != "" {
		l.media.mixer.Detach(callID, l)
	}
	return err
}

// Answer answers the phone's offer with the RTP leg's answer, its errors
// in the SIP layer's terms: an offer that does not parse is sip.ErrBadSDP
// (400), one without PCMU sip.ErrNoCommonCodec (488).
func (l *phoneLeg) Answer(offer []byte) ([]byte, error) {
	answer, err := l.Leg.Answer(offer)
	return answer, sipSDPError(err)
}

// Hold makes the leg's next offers sendonly (held: the phone hears the
// hold audio) or sendrecv.
func (l *phoneLeg) Hold(held bool) {
	d := rtp.SendRecv
	if held {
		d = rtp.SendOnly
	}
	l.Leg.SetDirection(d)
}

// sipSDPError wraps an rtp SDP error in the sip package's, keeping both.
func sipSDPError(err error) error {
	switch {
	case errors.Is(err, rtp.ErrBadSDP):
		return fmt.Errorf("%w: %w", sip.ErrBadSDP, err)
	case errors.Is(err, rtp.ErrNoCommonCodec):
		return fmt.Errorf("%w: %w", sip.ErrNoCommonCodec, err)
	}
	return err
}
