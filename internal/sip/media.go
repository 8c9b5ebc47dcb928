package sip

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/sdp/v3"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/sdpaudio"
)

// MediaLeg is the audio of one call with the phone network: plain RTP,
// negotiated by SDP offer and answer. Package audio/rtp provides it; this
// package only carries its SDP in INVITEs and their answers.
type MediaLeg interface {
	// Answer takes the phone's SDP offer and returns the leg's answer. An
	// offer that is not SDP is an error wrapping ErrBadSDP, which the
	// INVITE is answered 400 for; any other error (no PCMU:
	// ErrNoCommonCodec) is answered 488.
	Answer(offer []byte) ([]byte, error)
	// Offer returns an SDP offer, for a call the switchboard places or a
	// re-INVITE it sends.
	Offer() ([]byte, error)
	// ApplyAnswer takes the far end's answer to Offer.
	ApplyAnswer(answer []byte) error
	// Hold sets the direction of the leg's next offers: sendonly when
	// held (the phone hears the hold audio and need not send), sendrecv
	// when not. The re-INVITE that tells the phone carries the next
	// Offer, whose o= version has risen.
	Hold(held bool)
	// Attach binds the leg to the phone's call in the switchboard (its
	// id), once the call exists, so that the media plane carries that
	// call's audio through it.
	Attach(call calls.Call)
	// Close stops the leg and releases its ports. Closing twice does
	// nothing.
	Close() error
}

// Media opens media legs.
type Media interface {
	// NewLeg opens a leg for a call with phone.
	NewLeg(ctx context.Context, phone calls.Identifier) (MediaLeg, error)
}

// Errors of MediaLeg.Answer. Legs of other packages wrap ErrBadSDP for an
// offer they cannot parse (answered 400); any other error of theirs is
// answered 488, as ErrNoCommonCodec is.
var (
	// ErrBadSDP: the offer does not parse as SDP.
	ErrBadSDP = errors.New("sip: the offer is not a valid session description")
	// ErrNoCommonCodec: a valid offer without PCMU.
	ErrNoCommonCodec = errors.New("sip: the offer has no PCMU (payload 0 or an rtpmap of PCMU/8000)")
)

// NoMedia is the Media of a switchboard without an RTP engine: its legs
// check that an offer takes PCMU and answer it with an inactive stream on
// the discard port, so that signalling works end to end while no audio
// flows.
type NoMedia struct {
	// Host is the address the answers name (c=); default 127.0.0.1.
	Host string
}

// NewLeg answers a leg that carries no audio.
func (m NoMedia) NewLeg(context.Context, calls.Identifier) (MediaLeg, error) {
	host := m.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return &noLeg{host: host}, nil
}

type noLeg struct {
	host string

	mu      sync.Mutex
	dir     string // of offers: inactive until Hold says otherwise
	last    string // the direction of the last description
	version uint64 // o=, which rises with each change
}

func (l *noLeg) Answer(offer []byte) ([]byte, error) {
	pcmu, err := offersPCMU(offer)
	if err != nil {
		return nil, err
	}
	if !pcmu {
		return nil, ErrNoCommonCodec
	}
	return l.sdp("inactive"), nil
}

func (l *noLeg) Offer() ([]byte, error) {
	l.mu.Lock()
	dir := l.dir
	l.mu.Unlock()
	if dir == "" {
		dir = "inactive"
	}
	return l.sdp(dir), nil
}

func (l *noLeg) Hold(held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dir = "sendrecv"
	if held {
		l.dir = "sendonly"
	}
}

func (l *noLeg) ApplyAnswer(a []byte) error { return nil }
func (l *noLeg) Attach(calls.Call)          {}
func (l *noLeg) Close() error               { return nil }

// sdp describes the leg with direction; the version rises when the
// direction changes (RFC 3264 section 8).
func (l *noLeg) sdp(direction string) []byte {
	l.mu.Lock()
	if l.version == 0 {
		l.version = 1
	} else if direction != l.last {
		l.version++
	}
	l.last = direction
	version := l.version
	l.mu.Unlock()
	return fmt.Appendf(nil, "v=0\r\no=switchboard 1 %d IN IP4 %s\r\ns=switchboard\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=%s\r\n", version, l.host, l.host, direction)
}

// offersPCMU reports whether an SDP offer has an audio stream the
// switchboard takes (package sdpaudio's rule: plain RTP with PCMU).
// pion/sdp parses; anything it refuses, or panics on, is an error wrapping
// ErrBadSDP.
func offersPCMU(offer []byte) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("%w: the parser crashed: %v", ErrBadSDP, r)
		}
	}()
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(offer); err != nil {
		return false, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	return sdpaudio.Takes(&sd), nil
}
