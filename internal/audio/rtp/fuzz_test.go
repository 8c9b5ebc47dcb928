package rtp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/rtcp"

	"github.com/switchboard/switchboard/internal/audio"
)

// FuzzAnswer feeds offers through the path an INVITE's body takes. It must
// never panic: either an answer that takes PCMU, or an error that wraps
// ErrBadSDP or ErrNoCommonCodec. One leg answers them all, as it would the
// re-INVITEs of one call.
func FuzzAnswer(f *testing.F) {
	base := phoneOffer(30000)
	f.Add(base)
	f.Add(base + "a=rtcp-mux\r\na=sendonly\r\nm=video 30002 RTP/AVP 96\r\n")
	f.Add(strings.Replace(base, "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1))
	f.Add(strings.Replace(base, "0-16", "0\x0016", 1))
	f.Add(strings.Replace(base, " 0 8 101", " 4294967296", 1))
	f.Add(base + "a=rtcp:\r\n")
	f.Add(base + "a=rtcp: 1 IN IP4\r\n")
	f.Add("v=0\r\nm=audio 9 RTP/AVP 0\r\n")
	f.Add("")
	e := testEngine(f, Config{})
	l := mustLeg(f, e)
	f.Fuzz(func(t *testing.T, offer string) {
		answer, err := l.Answer([]byte(offer))
		if check := CheckOffer([]byte(offer)); (err == nil) != (check == nil) {
			t.Fatalf("Answer: %v; CheckOffer: %v", err, check)
		}
		if err != nil {
			if !errors.Is(err, ErrBadSDP) && !errors.Is(err, ErrNoCommonCodec) {
				t.Fatalf("error %v is neither ErrBadSDP nor ErrNoCommonCodec", err)
			}
			return
		}
		if !strings.Contains(string(answer), " PCMU/8000") {
			t.Fatalf("answered without PCMU: %q", answer)
		}
		if _, err := parseOffer(answer); err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, answer)
		}
	})
}

// FuzzReceive feeds datagrams through the path a leg's sockets take, on
// the RTP port (RTP, telephone-events, muxed RTCP) and the RTCP port. It
// must never panic, and a digit it reports must be a DTMF digit.
func FuzzReceive(f *testing.F) {
	p := newPeer(f)
	seed := func(pt uint8, payload []byte) []byte { return p.packet(pt, 1000, payload) }
	f.Add(seed(0, make([]byte, 160)), false)
	f.Add(seed(101, []byte{1, 0x8a, 0, 160}), false)
	f.Add(seed(101, []byte{200, 0, 0}), false)
	f.Add(seed(13, []byte{40}), false)
	f.Add(seed(96, nil), false)
	sr, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 40, Reports: []rtcp.ReceptionReport{{SSRC: 2}}},
		rtcp.NewCNAMESourceDescription(1, "peer"), &rtcp.Goodbye{Sources: []uint32{1}},
	})
	f.Add(sr, false)
	f.Add(sr, true)
	f.Add([]byte{0x80, 200, 0xff, 0xff, 0, 0, 0, 1}, true)
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff}, false) // an extension past the end
	f.Add([]byte{}, false)
	e := testEngine(f, Config{})
	l := mustLeg(f, e)
	if _, err := l.Answer(p.offer("a=rtcp-mux\r\n")); err != nil {
		f.Fatal(err)
	}
	from := netip.MustParseAddrPort(p.rtp.LocalAddr().String())
	f.Fuzz(func(t *testing.T, b []byte, rtcpPort bool) {
		l.receive(b, from, rtcpPort)
		for {
			select {
			case d := <-l.DTMF():
				if !strings.ContainsRune(dtmfDigits, d) {
					t.Fatalf("digit %q", d)
				}
				continue
			default:
			}
			break
		}
		var fr audio.Frame
		l.Capture(&fr)
	})
}
