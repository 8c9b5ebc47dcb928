package rtp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/switchboard/switchboard/internal/sdpaudio"
)

// Errors a session description can earn. The SIP layer answers ErrBadSDP
// with 400 and ErrNoCommonCodec with 488 (Not Acceptable Here).
var (
	// ErrBadSDP wraps what makes a description unreadable.
	ErrBadSDP = errors.New("invalid SDP")
	// ErrNoCommonCodec: a readable description with no audio stream this
	// leg can carry (plain RTP with PCMU).
	ErrNoCommonCodec = errors.New("no common codec: the SDP has no plain RTP audio stream with PCMU")
)

// Direction is an SDP media direction (RFC 3264 section 5.1), from the
// point of view of the side that wrote it.
type Direction uint8

// The four directions. The zero value is SendRecv.
const (
	SendRecv Direction = iota
	SendOnly           // it sends, and does not want to receive: it holds the other side
	RecvOnly           // it receives only: the other side holds it
	Inactive           // neither
)

func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// Sends tells whether the side with this direction sends media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives tells whether the side with this direction takes media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

func direction(send, recv bool) Direction {
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}

// answerTo is the direction a side that wants d answers an offer with
// direction offered: it sends only if the offerer receives, and receives
// only if the offerer sends.
func (d Direction) answerTo(offered Direction) Direction {
	return direction(d.Sends() && offered.Receives(), d.Receives() && offered.Sends())
}

// Payload types this leg offers: PCMU is static (RFC 3551), and 101 is
// the usual choice for telephone-event.
const (
	ptPCMU        = sdpaudio.PCMU
	ptCN          = 13 // comfort noise: accepted and dropped
	ptEventOffer  = 101
	noPT          = -1
	maxSDPBytes   = 64 << 10
	dtmfEventsSDP = "0-16" // the digits, *, #, A-D and flash (RFC 4733)
)

// remoteMedia is what a peer's description says about its audio stream.
type remoteMedia struct {
	// rtp and rtcp are where the peer wants media and reports; invalid
	// when the description names no usable address (a hostname, or
	// 0.0.0.0, the old way to hold).
	rtp, rtcp netip.AddrPort
	mux       bool // a=rtcp-mux: RTCP on the RTP port
	audioPT   uint8
	eventPT   int // telephone-event/8000, or noPT
	dir       Direction
}

// offerDesc is a parsed offer: every media section (an answer lists them
// all, in order, refusing the ones it does not take) and the one taken.
type offerDesc struct {
	sections []sdp.MediaName
	audio    int
	media    remoteMedia
}

// CheckOffer reports whether a leg could answer offer: nil, or an error
// wrapping ErrBadSDP or ErrNoCommonCodec. The SIP layer may call it before
// it opens a leg, to answer 400 or 488 at once.
func CheckOffer(offer []byte) error {
	_, err := parseOffer(offer)
	return err
}

// parseOffer reads an offer and picks its first audio section that this
// leg can carry: plain RTP (RTP/AVP or RTP/AVPF) with PCMU.
func parseOffer(b []byte) (*offerDesc, error) {
	sd, err := unmarshal(b, "offer")
	if err != nil {
		return nil, err
	}
	o := &offerDesc{audio: -1}
	for i, m := range sd.MediaDescriptions {
		o.sections = append(o.sections, m.MediaName)
		if o.audio >= 0 {
			continue
		}
		if media, ok := takeAudio(sd, m); ok {
			o.audio, o.media = i, media
		}
	}
	if o.audio < 0 {
		return nil, fmt.Errorf("rtp: the offer: %w", ErrNoCommonCodec)
	}
	return o, nil
}

// parseAnswer reads the answer to one of this leg's offers, which have one
// audio section: the answer's first section must take it.
func parseAnswer(b []byte) (remoteMedia, error) {
	sd, err := unmarshal(b, "answer")
	if err != nil {
		return remoteMedia{}, err
	}
	if len(sd.MediaDescriptions) == 0 {
		return remoteMedia{}, fmt.Errorf("%w: the answer has no media section", ErrBadSDP)
	}
	media, ok := takeAudio(sd, sd.MediaDescriptions[0])
	if !ok {
		return remoteMedia{}, fmt.Errorf("rtp: the answer: %w", ErrNoCommonCodec)
	}
	return media, nil
}

// unmarshal parses a description after checking what pion's parser is
// known to choke on (control characters, payload types past 127), and
// turns any panic of the parser into ErrBadSDP all the same.
func unmarshal(b []byte, kind string) (sd *sdp.SessionDescription, err error) {
	switch {
	case len(strings.TrimSpace(string(b))) == 0:
		return nil, fmt.Errorf("%w: the %s is empty", ErrBadSDP, kind)
	case len(b) > maxSDPBytes:
		return nil, fmt.Errorf("%w: the %s is %d bytes, over %d", ErrBadSDP, kind, len(b), maxSDPBytes)
	case slices.ContainsFunc(b, func(c byte) bool { return c < 0x20 && c != '\r' && c != '\n' && c != '\t' || c == 0x7f }):
		return nil, fmt.Errorf("%w: the %s contains control characters", ErrBadSDP, kind)
	}
	defer func() {
		if r := recover(); r != nil {
			sd, err = nil, fmt.Errorf("%w: the %s crashed the parser: %v", ErrBadSDP, kind, r)
		}
	}()
	sd = &sdp.SessionDescription{}
	if err := sd.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	for _, m := range sd.MediaDescriptions {
		for _, f := range m.MediaName.Formats {
			if _, ok := sdpaudio.PayloadType(f); !ok && isRTPProto(m.MediaName.Protos) {
				return nil, fmt.Errorf("%w: payload type %q is not 0-127", ErrBadSDP, f)
			}
		}
		if p := m.MediaName.Port.Value; p < 0 || p > 65535 {
			return nil, fmt.Errorf("%w: port %d is not 0-65535", ErrBadSDP, p)
		}
	}
	return sd, nil
}

// isRTPProto tells an RTP profile, whose formats are payload types.
func isRTPProto(protos []string) bool { return slices.Contains(protos, "RTP") }

// takeAudio reads one media section as this leg's stream, if it is audio
// that the switchboard takes (package sdpaudio's rule: plain RTP with
// PCMU).
func takeAudio(sd *sdp.SessionDescription, m *sdp.MediaDescription) (remoteMedia, bool) {
	pcmu, ok := sdpaudio.PCMUType(m)
	if !ok {
		return remoteMedia{}, false
	}
	mn := m.MediaName
	r := remoteMedia{audioPT: pcmu, eventPT: noPT, dir: SendRecv}
	rtpmaps := sdpaudio.Rtpmaps(m)
	for _, f := range mn.Formats {
		if pt, ok := sdpaudio.PayloadType(f); ok && sdpaudio.IsCodec(rtpmaps[f], "telephone-event") {
			r.eventPT = int(pt)
			break
		}
	}
	// Media-level attributes win over session-level ones.
	r.dir = SendRecv
	for _, attrs := range [][]sdp.Attribute{sd.Attributes, m.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv":
				r.dir = SendRecv
			case "sendonly":
				r.dir = SendOnly
			case "recvonly":
				r.dir = RecvOnly
			case "inactive":
				r.dir = Inactive
			}
		}
	}
	_, r.mux = m.Attribute("rtcp-mux")
	conn := m.ConnectionInformation
	if conn == nil {
		conn = sd.ConnectionInformation
	}
	var ip netip.Addr
	if conn != nil && conn.Address != nil {
		ip, _ = netip.ParseAddr(conn.Address.Address) // a hostname stays unknown: media latches
	}
	if ip.IsUnspecified() {
		// c=0.0.0.0 (RFC 2543 hold): send it nothing.
		ip = netip.Addr{}
		r.dir = direction(r.dir.Sends(), false)
	}
	if ip.IsValid() {
		ip = ip.Unmap()
		r.rtp = netip.AddrPortFrom(ip, uint16(mn.Port.Value))
		rtcpPort := mn.Port.Value + 1
		if v, ok := m.Attribute("rtcp"); ok {
			// a=rtcp:PORT [IN IP4 ADDRESS] (RFC 3605)
			f := strings.Fields(v)
			if len(f) == 0 {
				f = []string{""}
			}
			if p, err := strconv.Atoi(f[0]); err == nil && p > 0 && p <= 65535 {
				rtcpPort = p
			}
			if len(f) == 4 {
				if a, err := netip.ParseAddr(f[3]); err == nil && !a.IsUnspecified() {
					ip = a.Unmap()
				}
			}
		}
		if rtcpPort <= 65535 {
			r.rtcp = netip.AddrPortFrom(ip, uint16(rtcpPort))
		}
	}
	if r.mux {
		r.rtcp = r.rtp
	}
	return r, true
}

// localMedia is what a leg's descriptions say.
type localMedia struct {
	sessionID, version uint64
	ip                 netip.Addr
	port               int
	audioPT            uint8
	eventPT            int // noPT: no telephone-event
	mux                bool
	dir                Direction
}

// describe writes a description with the leg's audio section at index
// audio of sections (an answer), or alone (an offer: sections nil), every
// other section refused with port 0.
func describe(l localMedia, sections []sdp.MediaName, audio int) []byte {
	addrType := "IP4"
	if l.ip.Is6() {
		addrType = "IP6"
	}
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "switchboard", SessionID: l.sessionID, SessionVersion: l.version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: l.ip.String(),
		},
		SessionName:           "switchboard",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: l.ip.String()}},
		TimeDescriptions:      []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
	if sections == nil {
		sections, audio = []sdp.MediaName{{Media: "audio", Protos: []string{"RTP", "AVP"}}}, 0
	}
	for i, mn := range sections {
		if i != audio {
			formats := mn.Formats
			if len(formats) == 0 {
				formats = []string{"0"}
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{MediaName: sdp.MediaName{
				Media: mn.Media, Port: sdp.RangedPort{Value: 0}, Protos: mn.Protos, Formats: formats,
			}})
			continue
		}
		m := &sdp.MediaDescription{MediaName: sdp.MediaName{
			Media: "audio", Port: sdp.RangedPort{Value: l.port}, Protos: mn.Protos,
			Formats: []string{strconv.Itoa(int(l.audioPT))},
		}}
		m.Attributes = append(m.Attributes, sdp.NewAttribute("rtpmap", fmt.Sprintf("%d PCMU/8000", l.audioPT)))
		if l.eventPT != noPT {
			pt := strconv.Itoa(l.eventPT)
			m.MediaName.Formats = append(m.MediaName.Formats, pt)
			m.Attributes = append(m.Attributes,
				sdp.NewAttribute("rtpmap", pt+" telephone-event/8000"),
				sdp.NewAttribute("fmtp", pt+" "+dtmfEventsSDP))
		}
		m.Attributes = append(m.Attributes, sdp.NewAttribute("ptime", "20"))
		if l.mux {
			m.Attributes = append(m.Attributes, sdp.NewPropertyAttribute("rtcp-mux"))
		}
		m.Attributes = append(m.Attributes, sdp.NewPropertyAttribute(l.dir.String()))
		sd.MediaDescriptions = append(sd.MediaDescriptions, m)
	}
	b, _ := sd.Marshal() // it fails on nothing
	return b
}
