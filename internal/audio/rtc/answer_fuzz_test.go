package rtc

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// browserOffer is an audio-only offer as Chromium makes it, trimmed.
const browserOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0\r\n" +
	"a=msid-semantic: WMS\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:Ab3d\r\n" +
	"a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 5B:6A:1C:3E:E8:0A:1D:33:0F:5B:3E:8A:55:1C:99:A4:6D:2E:0C:7B:81:4F:63:24:AE:73:92:01:3D:B4:1C:5E\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=sendrecv\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:126 telephone-event/8000\r\n" +
	"a=ssrc:1001 cname:fuzz\r\n"

// FuzzAnswer feeds offers through the path POST /api/media/webrtc takes.
// It must never panic or leak: either an answer, or an error that says the
// SDP is bad (or, for a well-formed offer, that ICE could not gather).
// Seeds include the known pion crashers: a NUL inside a=fmtp, and a
// payload type of 4294967296.
func FuzzAnswer(f *testing.F) {
	e, err := NewEngine(Config{Loopback: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(browserOffer)
	f.Add(strings.Replace(browserOffer, "a=fmtp:111 minptime=10", "a=fmtp:111 mi\x00ptime=10", 1))
	f.Add(strings.Replace(browserOffer, "a=rtpmap:0 PCMU/8000", "a=rtpmap:4294967296 PCMU/8000", 1))
	f.Add(strings.Replace(browserOffer, "SAVPF 111 0 8 126", "SAVPF 4294967296", 1))
	f.Add("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, offer string) {
		leg, answer, err := e.Answer(context.Background(), offer)
		if err != nil {
			if leg != nil {
				t.Fatal("an error and a leg")
			}
			return
		}
		defer leg.Close()
		if !strings.Contains(answer, "PCMU/8000") {
			t.Fatalf("answered without PCMU: %q", answer)
		}
	})
}

func TestBrowserOfferIsAnswered(t *testing.T) {
	e := testEngine(t)
	leg, answer, err := e.Answer(context.Background(), browserOffer)
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	for _, want := range []string{"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n", "a=rtpmap:0 PCMU/8000", "a=candidate:", "a=end-of-candidates"} {
		if !strings.Contains(answer, want) {
			t.Errorf("answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, "opus") || strings.Contains(answer, "PCMA") {
		t.Errorf("answer offers another codec than PCMU:\n%s", answer)
	}
	if _, _, err := e.Answer(context.Background(), strings.Replace(browserOffer, "a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMU/8000\r\na=fmtp:0 x\x00y", 1)); !errors.Is(err, ErrBadSDP) {
		t.Errorf("a NUL in an attribute: %v, want ErrBadSDP", err)
	}
}
