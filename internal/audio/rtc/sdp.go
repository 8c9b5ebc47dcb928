package rtc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// remoteDesc is what a leg takes from the peer's offer or answer.
type remoteDesc struct {
	ufrag, pwd  string
	fingerprint string   // "sha-256 AB:CD:..."
	setup       string   // actpass, active or passive
	candidates  []string // a=candidate values
	// sections are the offer's media sections, in order, and audio the
	// index of the one the leg carries.
	sections []sdp.MediaName
	mids     []string
	audio    int
}

// parseRemote reads an offer or an answer. It rejects what a voice leg
// cannot use: no audio section that takes PCMU, no ICE credentials, no
// DTLS fingerprint, or bytes and payload types no SDP should carry.
func parseRemote(desc, kind string) (*remoteDesc, error) {
	switch {
	case strings.TrimSpace(desc) == "":
		return nil, fmt.Errorf("%w: the %s is empty", ErrBadSDP, kind)
	case strings.ContainsFunc(desc, func(r rune) bool { return r < 0x20 && r != '\r' && r != '\n' && r != '\t' }):
		return nil, fmt.Errorf("%w: the %s contains control characters", ErrBadSDP, kind)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	r := &remoteDesc{audio: -1}
	session := func(key string) string { v, _ := sd.Attribute(key); return v }
	for i, m := range sd.MediaDescriptions {
		for _, f := range m.MediaName.Formats {
			if pt, err := strconv.Atoi(f); err != nil || pt < 0 || pt > 127 {
				return nil, fmt.Errorf("%w: payload type %q is not 0-127", ErrBadSDP, f)
			}
		}
		pcmu := false
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" && a.Key != "fmtp" {
				continue
			}
			pt, rest, _ := strings.Cut(a.Value, " ")
			if n, err := strconv.Atoi(pt); err != nil || n < 0 || n > 127 {
				return nil, fmt.Errorf("%w: a=%s names payload type %q, not 0-127", ErrBadSDP, a.Key, pt)
			}
			pcmu = pcmu || (a.Key == "rtpmap" && pt == "0" && isPCMU(rest))
		}
		// Payload type 0 is PCMU without an rtpmap too (RFC 3551).
		pcmu = pcmu || (m.MediaName.Port.Value != 0 && slices.Contains(m.MediaName.Formats, "0") && !hasRtpmap(m, "0"))
		mid, _ := m.Attribute("mid")
		r.sections = append(r.sections, m.MediaName)
		r.mids = append(r.mids, mid)
		if r.audio >= 0 || m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 || !pcmu {
			continue
		}
		r.audio = i
		attr := func(key string) string {
			if v, ok := m.Attribute(key); ok {
				return v
			}
			return session(key)
		}
		r.ufrag, r.pwd = attr("ice-ufrag"), attr("ice-pwd")
		r.fingerprint, r.setup = attr("fingerprint"), attr("setup")
		for _, a := range m.Attributes {
			if a.Key == "candidate" {
				r.candidates = append(r.candidates, a.Value)
			}
		}
	}
	switch {
	case !slices.ContainsFunc(r.sections, func(m sdp.MediaName) bool { return m.Media == "audio" }):
		return nil, fmt.Errorf("%w: the %s has no audio section", ErrBadSDP, kind)
	case r.audio < 0:
		return nil, fmt.Errorf("%w: the %s's audio does not take PCMU", ErrBadSDP, kind)
	case r.ufrag == "" || r.pwd == "":
		return nil, fmt.Errorf("%w: the %s has no ICE credentials (a=ice-ufrag, a=ice-pwd)", ErrBadSDP, kind)
	case !strings.Contains(r.fingerprint, " "):
		return nil, fmt.Errorf("%w: the %s has no DTLS fingerprint (a=fingerprint)", ErrBadSDP, kind)
	}
	return r, nil
}

// isPCMU says whether an rtpmap's encoding (after the payload type) is
// PCMU: "PCMU/8000", or with its channel count, "PCMU/8000/1" (RFC 4566
// allows it, and pion writes it for a codec registered with one channel).
// The name is case-insensitive (RFC 4855).
func isPCMU(encoding string) bool {
	name, rest, _ := strings.Cut(strings.TrimSpace(encoding), "/")
	clock, channels, _ := strings.Cut(rest, "/")
	return strings.EqualFold(name, "PCMU") && clock == "8000" && (channels == "" || channels == "1")
}

func hasRtpmap(m *sdp.MediaDescription, pt string) bool {
	for _, a := range m.Attributes {
		if a.Key == "rtpmap" && strings.HasPrefix(a.Value, pt+" ") {
			return true
		}
	}
	return false
}

// localDesc is what a leg tells its peer.
type localDesc struct {
	ufrag, pwd  string
	fingerprint string
	setup       string // actpass (offer), active or passive (answer)
	lite        bool   // a=ice-lite
	ssrc        uint32
	candidates  []string
}

// offerSDP is an offer with one audio section, mid "0".
func offerSDP(l localDesc) string {
	var b strings.Builder
	writeSession(&b, l, "0")
	writeAudio(&b, l, "UDP/TLS/RTP/SAVPF", "0")
	return b.String()
}

// answerSDP answers r: its audio section takes PCMU, every other section
// is refused (port 0), in the offer's order.
func answerSDP(l localDesc, r *remoteDesc) string {
	var b strings.Builder
	writeSession(&b, l, r.mids[r.audio])
	for i, m := range r.sections {
		if i == r.audio {
			writeAudio(&b, l, strings.Join(m.Protos, "/"), r.mids[i])
			continue
		}
		fmt.Fprintf(&b, "m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n", m.Media, strings.Join(m.Protos, "/"), strings.Join(m.Formats, " "))
		if r.mids[i] != "" {
			fmt.Fprintf(&b, "a=mid:%s\r\n", r.mids[i])
		}
	}
	return b.String()
}

func writeSession(b *strings.Builder, l localDesc, mid string) {
	fmt.Fprintf(b, "v=0\r\no=- %d 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", rand.Uint64()>>1)
	if l.lite {
		b.WriteString("a=ice-lite\r\n")
	}
	if mid != "" {
		fmt.Fprintf(b, "a=group:BUNDLE %s\r\n", mid)
	}
	b.WriteString("a=msid-semantic: WMS switchboard\r\n")
}

func writeAudio(b *strings.Builder, l localDesc, proto, mid string) {
	fmt.Fprintf(b, "m=audio 9 %s 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n", proto)
	fmt.Fprintf(b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:%s\r\na=setup:%s\r\n", l.ufrag, l.pwd, l.fingerprint, l.setup)
	if mid != "" {
		fmt.Fprintf(b, "a=mid:%s\r\n", mid)
	}
	b.WriteString("a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:0 PCMU/8000\r\na=msid:switchboard audio\r\n")
	fmt.Fprintf(b, "a=ssrc:%d cname:switchboard\r\na=ssrc:%d msid:switchboard audio\r\n", l.ssrc, l.ssrc)
	for _, c := range l.candidates {
		fmt.Fprintf(b, "a=candidate:%s\r\n", c)
	}
	b.WriteString("a=end-of-candidates\r\n")
}
