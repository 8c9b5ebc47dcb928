package sip

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// sippMessages renders the requests of the sipp scenarios in testdata as
// the switchboard receives them, for seeds.
func sippMessages(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sipp", "*.xml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no sipp scenarios: %v", err)
	}
	cdata := regexp.MustCompile(`(?s)<!\[CDATA\[(.*?)\]\]>`)
	keyword := regexp.MustCompile(`\[[a-z_A-Z:-]+[^\]]*\]`)
	values := map[string]string{
		"[service]": "+14255550100", "[remote_ip]": "127.0.0.1", "[remote_port]": "5060",
		"[local_ip]": "127.0.0.1", "[local_port]": "5070", "[transport]": "UDP",
		"[media_ip]": "127.0.0.1", "[media_port]": "6000", "[local_ip_type]": "4", "[media_ip_type]": "4",
		"[call_id]": "1-1@127.0.0.1", "[pid]": "1", "[call_number]": "1", "[next_url]": "sip:switchboard@127.0.0.1:5060",
		"[routes]": "Route: <sip:127.0.0.2;lr>", // scenarios through a proxy
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range cdata.FindAllStringSubmatch(string(b), -1) {
			text := strings.TrimSpace(m[1])
			if strings.HasPrefix(text, "SIP/2.0") || strings.Contains(text, "[$") {
				continue // a response sipp sends, or a request built from what it received
			}
			var lines []string
			for _, l := range strings.Split(text, "\n") {
				l = strings.TrimSpace(l)
				if strings.HasPrefix(l, "[authentication") {
					l = `Authorization: Digest username="carrier", realm="switchboard", nonce="0.0", uri="sip:+14255550100@127.0.0.1", response="00"`
				}
				lines = append(lines, keyword.ReplaceAllStringFunc(l, func(k string) string {
					switch {
					case strings.HasPrefix(k, "[branch"):
						return "z9hG4bK-1"
					case k == "[peer_tag_param]":
						return ";tag=2"
					case k == "[len]":
						return k // once the body is known
					}
					return values[k]
				}))
			}
			msg := strings.Join(lines, "\r\n") + "\r\n"
			head, body, _ := strings.Cut(msg, "\r\n\r\n")
			msg = strings.Replace(head, "Content-Length: [len]", "Content-Length: "+strconv.Itoa(len(body)), 1) + "\r\n\r\n" + body
			out = append(out, []byte(msg))
		}
	}
	return out
}

// FuzzMessage: whatever arrives, parsing it and reading its numbers and
// its SDP never panics, and a number read is E.164.
func FuzzMessage(f *testing.F) {
	for _, m := range sippMessages(f) {
		f.Add(m)
	}
	f.Add([]byte("INVITE sip:+1@x SIP/2.0\r\nP-Asserted-Identity: <tel:+1-425-555-0123;npdi>, <sip:a@b>\r\n\r\n"))
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		if n, ok := calledNumber(req); ok {
			if !strings.HasPrefix(n, "+") || len(n) < 3 || len(n) > 16 {
				t.Fatalf("called number %q is not E.164", n)
			}
		}
		if c, ok := callerOf(req); ok && c.Identifier.Validate() != nil {
			t.Fatalf("caller %+v is not a valid phone number", c)
		}
		_, _ = offersPCMU(req.Body())
	})
}

// FuzzOffer: any SDP offer is read without panicking, and one the leg
// takes has a payload type it can send PCMU on.
func FuzzOffer(f *testing.F) {
	f.Add([]byte("v=0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"))
	f.Add([]byte("v=0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"))
	f.Add([]byte("v=0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 97\r\na=rtpmap:97 pcmu/8000/1\r\n"))
	f.Add([]byte("m= audio 00 RTP/ 0")) // CI found the hand-written parser taking this
	f.Fuzz(func(t *testing.T, offer []byte) {
		ok, err := offersPCMU(offer)
		if ok && !strings.Contains(string(offer), "m=audio") {
			t.Fatalf("an offer without an audio stream was taken: %q", offer)
		}
		if err != nil && (ok || !errors.Is(err, ErrBadSDP)) {
			t.Fatalf("offersPCMU = %v, %v: an error must be ErrBadSDP and take nothing", ok, err)
		}
	})
}

// TestSeedsParse: the seeds are real SIP (a scenario that stopped parsing
// would make the fuzz target's corpus useless).
func TestSeedsParse(t *testing.T) {
	parser := sip.NewParser()
	for _, m := range sippMessages(t) {
		msg, err := parser.ParseSIP(m)
		if err != nil {
			t.Fatalf("seed does not parse: %v\n%s", err, m)
		}
		if req, ok := msg.(*sip.Request); ok && req.IsInvite() {
			if n, ok := calledNumber(req); !ok || n != "+14255550100" {
				t.Errorf("INVITE seed calls %q, want +14255550100", n)
			}
			if c, ok := callerOf(req); !ok || c.Identifier.ID != "+14255550123" {
				t.Errorf("INVITE seed from %+v, want +14255550123", c)
			}
		}
	}
}
