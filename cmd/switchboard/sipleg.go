package main

import (
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/internal/audio/rtp"
	"github.com/switchboard/switchboard/internal/sip"
)

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
