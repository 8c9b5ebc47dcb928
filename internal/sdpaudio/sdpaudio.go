// Package sdpaudio is the one rule by which the switchboard takes a media
// section of an SDP offer or answer as a phone call's audio: audio over
// plain RTP (RTP/AVP or RTP/AVPF, no SRTP) on a port other than 0, with
// PCMU among its formats, as payload type 0 without an rtpmap or as any
// payload type whose rtpmap says PCMU/8000. The SIP layer (which only
// checks offers) and the RTP legs (which carry the audio) both ask it, so
// that they never disagree on what an offer takes. It reads descriptions
// that pion/sdp parsed and does no I/O.
package sdpaudio

import (
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// PCMU is PCMU's static payload type (RFC 3551).
const PCMU = 0

// PCMUType answers the payload type that m carries PCMU on: the first of
// its formats that takes PCMU. ok is false when m is not audio over plain
// RTP on a port other than 0, or takes no PCMU.
func PCMUType(m *sdp.MediaDescription) (pt uint8, ok bool) {
	mn := m.MediaName
	if mn.Media != "audio" || mn.Port.Value <= 0 || mn.Port.Value > 65535 || !PlainRTP(mn.Protos) {
		return 0, false
	}
	maps := Rtpmaps(m)
	for _, f := range mn.Formats {
		pt, valid := PayloadType(f)
		if !valid {
			continue
		}
		enc, mapped := maps[f]
		if IsCodec(enc, "PCMU") || (pt == PCMU && !mapped) {
			return pt, true
		}
	}
	return 0, false
}

// Takes reports whether some media section of sd takes PCMU (PCMUType).
func Takes(sd *sdp.SessionDescription) bool {
	for _, m := range sd.MediaDescriptions {
		if _, ok := PCMUType(m); ok {
			return true
		}
	}
	return false
}

// PlainRTP tells the RTP profiles without SRTP: RTP/AVP and RTP/AVPF, in
// any case.
func PlainRTP(protos []string) bool {
	p := strings.Join(protos, "/")
	return strings.EqualFold(p, "RTP/AVP") || strings.EqualFold(p, "RTP/AVPF")
}

// Rtpmaps answers m's rtpmap attributes: payload type (as written) to
// encoding ("PCMU/8000").
func Rtpmaps(m *sdp.MediaDescription) map[string]string {
	maps := map[string]string{}
	for _, a := range m.Attributes {
		if a.Key == "rtpmap" {
			pt, enc, _ := strings.Cut(a.Value, " ")
			maps[pt] = strings.TrimSpace(enc)
		}
	}
	return maps
}

// IsCodec tells whether an rtpmap encoding ("PCMU/8000", "PCMU/8000/1")
// is name at 8 kHz, mono. Names are case-insensitive (RFC 4855).
func IsCodec(enc, name string) bool {
	n, rest, _ := strings.Cut(enc, "/")
	clock, channels, _ := strings.Cut(rest, "/")
	return strings.EqualFold(n, name) && clock == "8000" && (channels == "" || channels == "1")
}

// PayloadType reads a format of an RTP profile: a payload type, 0-127.
func PayloadType(s string) (uint8, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 127 {
		return 0, false
	}
	return uint8(n), true
}
