package rtp

import (
	"errors"
	"strings"
	"testing"
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
