package rtp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPorts is the range the tests' engines take ports from: below the
// kernel's ephemeral ports (32768-60999), so no client socket of another
// test holds one of them by chance (an engine skips a port that is taken,
// but TestCloseReleasesEverything counts on its three).
const testPorts = "27000-27899"

func testEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.Ports == "" {
		cfg.Ports = testPorts
	}
	cfg.ListenIP, cfg.PublicIP = "127.0.0.1", "127.0.0.1"
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func mustLeg(t testing.TB, e *Engine) *Leg {
	t.Helper()
	l, err := e.NewLeg(LegOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// phoneOffer is an offer as a SIP phone or carrier makes one: PCMU, PCMA
// and telephone-event, RTP on 127.0.0.1:port.
func phoneOffer(port int, extra ...string) string {
	return fmt.Sprintf("v=0\r\n"+
		"o=phone 1234 1 IN IP4 127.0.0.1\r\n"+
		"s=call\r\n"+
		"c=IN IP4 127.0.0.1\r\n"+
		"t=0 0\r\n"+
		"m=audio %d RTP/AVP 0 8 101\r\n"+
		"a=rtpmap:0 PCMU/8000\r\n"+
		"a=rtpmap:8 PCMA/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\n"+
		"a=fmtp:101 0-16\r\n"+
		"a=ptime:20\r\n", port) + strings.Join(extra, "")
}

func TestAnswer(t *testing.T) {
	e := testEngine(t, Config{})
	base := phoneOffer(30000)
	tests := []struct {
		name      string
		offer     string
		err       error
		want      []string // in the answer
		not       []string // not in it
		remoteDir Direction
		dir       Direction
		remote    string // where RTP goes, "" for nowhere
	}{
		{name: "phone", offer: base, want: []string{"m=audio PORT RTP/AVP 0 101\r\n", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=sendrecv", "c=IN IP4 127.0.0.1"},
			not: []string{"PCMA", "rtcp-mux"}, remote: "127.0.0.1:30000"},
		{name: "sendonly: the peer holds", offer: base + "a=sendonly\r\n", want: []string{"a=recvonly"}, remoteDir: SendOnly, dir: RecvOnly, remote: "127.0.0.1:30000"},
		{name: "inactive", offer: base + "a=inactive\r\n", want: []string{"a=inactive"}, remoteDir: Inactive, dir: Inactive, remote: "127.0.0.1:30000"},
		{name: "recvonly", offer: base + "a=recvonly\r\n", want: []string{"a=sendonly"}, remoteDir: RecvOnly, dir: SendOnly, remote: "127.0.0.1:30000"},
		{name: "session-level direction", offer: strings.Replace(base, "t=0 0\r\n", "t=0 0\r\na=sendonly\r\n", 1), want: []string{"a=recvonly"}, remoteDir: SendOnly, dir: RecvOnly, remote: "127.0.0.1:30000"},
		{name: "c=0.0.0.0 hold", offer: strings.Replace(base, "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1), want: []string{"a=recvonly"}, remoteDir: SendOnly, dir: RecvOnly},
		{name: "rtcp-mux", offer: base + "a=rtcp-mux\r\n", want: []string{"a=rtcp-mux"}, remote: "127.0.0.1:30000"},
		{name: "no telephone-event", offer: strings.NewReplacer(" 0 8 101", " 0 8", "a=rtpmap:101 telephone-event/8000\r\n", "", "a=fmtp:101 0-16\r\n", "").Replace(base),
			want: []string{"m=audio PORT RTP/AVP 0\r\n"}, not: []string{"telephone-event"}, remote: "127.0.0.1:30000"},
		{name: "telephone-event at 96", offer: strings.ReplaceAll(base, "101", "96"), want: []string{"RTP/AVP 0 96\r\n", "a=rtpmap:96 telephone-event/8000"}, remote: "127.0.0.1:30000"},
		{name: "PCMU without rtpmap", offer: strings.Replace(base, "a=rtpmap:0 PCMU/8000\r\n", "", 1), want: []string{"RTP/AVP 0 101\r\n"}, remote: "127.0.0.1:30000"},
		{name: "PCMU at a dynamic type", offer: strings.NewReplacer(" 0 8 101", " 98 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:98 pcmu/8000/1").Replace(base),
			want: []string{"RTP/AVP 98 101\r\n", "a=rtpmap:98 PCMU/8000"}, remote: "127.0.0.1:30000"},
		{name: "video refused", offer: base + "m=video 30002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", want: []string{"m=audio PORT RTP/AVP 0 101\r\n", "m=video 0 RTP/AVP 96\r\n"}, remote: "127.0.0.1:30000"},
		{name: "video first", offer: strings.Replace(base, "m=audio", "m=video 30002 RTP/AVP 96\r\nm=audio", 1), want: []string{"m=video 0 RTP/AVP 96\r\nm=audio PORT RTP/AVP 0 101\r\n"}, remote: "127.0.0.1:30000"},
		{name: "media-level c= and a=rtcp", offer: base + "c=IN IP4 127.0.0.2\r\na=rtcp:31000\r\n", remote: "127.0.0.2:30000"},
		{name: "IPv6", offer: strings.Replace(base, "c=IN IP4 127.0.0.1", "c=IN IP6 ::1", 1), remote: "[::1]:30000"},
		{name: "hostname: latch only", offer: strings.Replace(base, "c=IN IP4 127.0.0.1", "c=IN IP4 pbx.example", 1), want: []string{"a=sendrecv"}},
		{name: "PCMA only", offer: strings.NewReplacer(" 0 8 101", " 8 101", "a=rtpmap:0 PCMU/8000\r\n", "").Replace(base), err: ErrNoCommonCodec},
		{name: "PCMU/16000", offer: strings.Replace(base, "PCMU/8000", "PCMU/16000", 1), err: ErrNoCommonCodec},
		{name: "SRTP only", offer: strings.Replace(base, "RTP/AVP", "RTP/SAVP", 1), err: ErrNoCommonCodec},
		{name: "WebRTC", offer: strings.Replace(base, "RTP/AVP", "UDP/TLS/RTP/SAVPF", 1), err: ErrNoCommonCodec},
		{name: "audio refused by the offerer", offer: strings.Replace(base, "m=audio 30000", "m=audio 0", 1), err: ErrNoCommonCodec},
		{name: "no media", offer: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n", err: ErrNoCommonCodec},
		{name: "video only", offer: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 30002 RTP/AVP 0\r\n", err: ErrNoCommonCodec},
		{name: "empty", offer: "", err: ErrBadSDP},
		{name: "blank", offer: " \r\n", err: ErrBadSDP},
		{name: "garbage", offer: "hello", err: ErrBadSDP},
		{name: "NUL in fmtp", offer: strings.Replace(base, "0-16", "0\x0016", 1), err: ErrBadSDP},
		{name: "payload type 4294967296", offer: strings.Replace(base, " 0 8 101", " 4294967296", 1), err: ErrBadSDP},
		{name: "port 70000", offer: strings.Replace(base, "30000", "70000", 1), err: ErrBadSDP},
		{name: "truncated", offer: base[:len(base)/2], err: ErrBadSDP},
		{name: "huge", offer: base + strings.Repeat("a=x\r\n", 20000), err: ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustLeg(t, e)
			if err := CheckOffer([]byte(tt.offer)); !errors.Is(err, tt.err) {
				t.Errorf("CheckOffer: %v, want %v", err, tt.err)
			}
			answer, err := l.Answer([]byte(tt.offer))
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Answer: %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := string(answer)
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "PORT", fmt.Sprint(l.Port()))
				if !strings.Contains(got, w) {
					t.Errorf("the answer lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("the answer has %q:\n%s", n, got)
				}
			}
			if got, want := l.RemoteDirection(), tt.remoteDir; got != want {
				t.Errorf("RemoteDirection %v, want %v", got, want)
			}
			if got, want := l.Direction(), tt.dir; got != want {
				t.Errorf("Direction %v, want %v", got, want)
			}
			want := netip.AddrPort{}
			if tt.remote != "" {
				want = netip.MustParseAddrPort(tt.remote)
			}
			if got := l.RemoteAddr(); got != want {
				t.Errorf("RemoteAddr %v, want %v", got, want)
			}
			if n, m := strings.Count(got, "m="), strings.Count(tt.offer, "m="); n != m {
				t.Errorf("%d media sections answer %d", n, m)
			}
		})
	}
}

func TestOfferAndAnswer(t *testing.T) {
	e := testEngine(t, Config{})
	answer := func(extra string) string {
		return "v=0\r\no=carrier 9 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=audio 32000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n" + extra
	}
	tests := []struct {
		name   string
		hold   bool // SetDirection(SendOnly) before the offer
		answer string
		err    error
		dir    Direction
	}{
		{name: "sendrecv", answer: answer("a=sendrecv\r\n")},
		{name: "no direction: sendrecv", answer: answer("")},
		{name: "we hold", hold: true, answer: answer("a=recvonly\r\n"), dir: SendOnly},
		{name: "the peer answers inactive", answer: answer("a=inactive\r\n"), dir: Inactive},
		{name: "rtcp-mux taken", answer: answer("a=rtcp-mux\r\n")},
		{name: "audio refused", answer: strings.Replace(answer(""), "m=audio 32000", "m=audio 0", 1), err: ErrNoCommonCodec},
		{name: "PCMA", answer: strings.NewReplacer("RTP/AVP 0 101", "RTP/AVP 8", "PCMU", "PCMA").Replace(answer("")), err: ErrNoCommonCodec},
		{name: "no media", answer: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", err: ErrBadSDP},
		{name: "garbage", answer: "v=1\r\nx", err: ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustLeg(t, e)
			if err := l.ApplyAnswer([]byte(answer(""))); err == nil {
				t.Error("an answer with no offer was taken")
			}
			if tt.hold {
				l.SetDirection(SendOnly)
			}
			offer, err := l.Offer()
			if err != nil {
				t.Fatal(err)
			}
			wantDir := "a=sendrecv"
			if tt.hold {
				wantDir = "a=sendonly"
			}
			for _, w := range []string{fmt.Sprintf("m=audio %d RTP/AVP 0 101\r\n", l.Port()), "c=IN IP4 127.0.0.1", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=rtcp-mux", wantDir} {
				if !strings.Contains(string(offer), w) {
					t.Errorf("the offer lacks %q:\n%s", w, offer)
				}
			}
			err = l.ApplyAnswer([]byte(tt.answer))
			if !errors.Is(err, tt.err) {
				t.Fatalf("ApplyAnswer: %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if got := l.Direction(); got != tt.dir {
				t.Errorf("Direction %v, want %v", got, tt.dir)
			}
			if got, want := l.RemoteAddr(), netip.MustParseAddrPort("127.0.0.1:32000"); got != want {
				t.Errorf("RemoteAddr %v, want %v", got, want)
			}
		})
	}
}

var originVersion = regexp.MustCompile(`o=switchboard (\d+) (\d+) `)

// TestReofferVersions checks the origin line across a session: one
// session id, and a version that goes up when the description changes
// (hold, resume) and only then.
func TestReofferVersions(t *testing.T) {
	l := mustLeg(t, testEngine(t, Config{}))
	origin := func(sdp []byte, err error) (string, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		m := originVersion.FindStringSubmatch(string(sdp))
		if m == nil {
			t.Fatalf("no origin line in:\n%s", sdp)
		}
		return m[1], m[2]
	}
	id, v1 := origin(l.Answer([]byte(phoneOffer(30000))))
	id2, v2 := origin(l.Answer([]byte(phoneOffer(30000)))) // a refresh
	l.SetDirection(SendOnly)
	id3, v3 := origin(l.Offer())
	if err := l.ApplyAnswer([]byte(strings.Replace(phoneOffer(30000), "a=ptime:20", "a=recvonly", 1))); err != nil {
		t.Fatal(err)
	}
	l.SetDirection(SendRecv)
	_, v4 := origin(l.Offer())
	if id2 != id || id3 != id {
		t.Errorf("session ids %s, %s, %s: want one", id, id2, id3)
	}
	if v2 != v1 || v3 == v2 || v4 == v3 {
		t.Errorf("versions %s (answer), %s (same answer), %s (hold), %s (resume): want the same, then new ones", v1, v2, v3, v4)
	}
}

func TestEngineConfig(t *testing.T) {
	tests := []struct {
		ports       string
		first, last int
		ok          bool
	}{
		{"40000-40999", 40000, 40998, true},
		{"40001-40004", 40002, 40002, true},
		{"40000-40001", 40000, 40000, true},
		{"40001-40002", 0, 0, false},
		{"40000", 0, 0, false},
		{"50000-40000", 0, 0, false},
		{"0-100", 0, 0, false},
		{"1-65536", 0, 0, false},
		{"a-b", 0, 0, false},
	}
	for _, tt := range tests {
		first, last, err := parsePorts(tt.ports)
		if (err == nil) != tt.ok || first != tt.first || last != tt.last {
			t.Errorf("parsePorts(%q) = %d, %d, %v; want %d, %d, ok %v", tt.ports, first, last, err, tt.first, tt.last, tt.ok)
		}
	}
	if _, err := NewEngine(Config{PublicIP: "not an address"}); err == nil {
		t.Error("a bad public IP was taken")
	}
	e, err := NewEngine(Config{SilenceTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !e.public.IsValid() || e.cfg.SilenceTimeout != -1 || e.cfg.ReportInterval != DefaultReportInterval {
		t.Errorf("defaults: public %v, silence %v, reports %v", e.public, e.cfg.SilenceTimeout, e.cfg.ReportInterval)
	}
}
