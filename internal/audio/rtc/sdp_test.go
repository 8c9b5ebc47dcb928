package rtc

import (
	"errors"
	"strings"
	"testing"
)

// TestParseRemoteTakesEveryWayOfWritingPCMU: an offer that takes PCMU is
// accepted however its rtpmap is written, or without one for payload 0;
// one whose payload 0 is mapped to anything else is refused.
func TestParseRemoteTakesEveryWayOfWritingPCMU(t *testing.T) {
	const rtpmap = "a=rtpmap:0 PCMU/8000\r\n"
	tests := []struct {
		name, replace string
		ok            bool
	}{
		{"PCMU/8000", rtpmap, true},
		{"PCMU/8000/1 (pion, one channel)", "a=rtpmap:0 PCMU/8000/1\r\n", true},
		{"lower case", "a=rtpmap:0 pcmu/8000\r\n", true},
		{"no rtpmap for payload 0", "", true},
		{"two channels", "a=rtpmap:0 PCMU/8000/2\r\n", false},
		{"another clock", "a=rtpmap:0 PCMU/16000\r\n", false},
		{"payload 0 mapped to PCMA", "a=rtpmap:0 PCMA/8000\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer := strings.NewReplacer(rtpmap, tt.replace, "a=rtpmap:111 opus/48000/2\r\n", "", "a=fmtp:111 minptime=10;useinbandfec=1\r\n", "").Replace(browserOffer)
			offer = strings.Replace(offer, "UDP/TLS/RTP/SAVPF 111 0 8 126", "UDP/TLS/RTP/SAVPF 0 8 126", 1)
			r, err := parseRemote(offer, "offer")
			switch {
			case tt.ok && err != nil:
				t.Fatalf("refused: %v\n%s", err, offer)
			case !tt.ok && !errors.Is(err, ErrBadSDP):
				t.Fatalf("got %v, want ErrBadSDP\n%s", err, offer)
			case tt.ok && r.audio != 0:
				t.Fatalf("audio section %d, want 0", r.audio)
			}
		})
	}
}
