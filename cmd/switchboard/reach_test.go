package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
)

// TestReachEchoBot: a softphone that cannot use direct UDP calls the echo
// bot and hears its tone back: relayed through the embedded TURN over UDP
// or over TCP, or straight to the media port over ICE-TCP. The pair its
// media took is asserted.
func TestReachEchoBot(t *testing.T) {
	tests := []struct {
		name  string
		media func(t *testing.T) MediaConfig
		opts  phone.Options
		// want: the local candidate's type, and its transport (a relayed
		// candidate's: the one to the relay).
		wantType  ice.CandidateType
		wantProto string
		// wantPath is how the server's log says the media travels.
		wantPath string
		// wantInMemory: the relay and the media port exchange the media
		// in memory, not through the kernel.
		wantInMemory bool
	}{
		{"TURN over UDP", func(*testing.T) MediaConfig {
			return MediaConfig{Grace: time.Minute, ICE: ICEConfig{TURNAddr: "127.0.0.1:0"}}
		}, phone.Options{Relay: true}, ice.CandidateTypeRelay, "udp", "udp relay", false},
		{"TURN over TCP", func(*testing.T) MediaConfig {
			return MediaConfig{Grace: time.Minute, ICE: ICEConfig{TURNAddr: "127.0.0.1:0"}}
		}, phone.Options{Relay: true, TCPOnly: true}, ice.CandidateTypeRelay, "tcp", "udp relay", false},
		{"TURN over UDP to a shared port", func(t *testing.T) MediaConfig {
			return MediaConfig{Grace: time.Minute, SharedPort: freeUDPPort(t), ICE: ICEConfig{TURNAddr: "127.0.0.1:0"}}
		}, phone.Options{Relay: true}, ice.CandidateTypeRelay, "udp", "udp relay", true},
		{"TURN over TCP to a shared port", func(t *testing.T) MediaConfig {
			return MediaConfig{Grace: time.Minute, SharedPort: freeUDPPort(t), ICE: ICEConfig{TURNAddr: "127.0.0.1:0"}}
		}, phone.Options{Relay: true, TCPOnly: true}, ice.CandidateTypeRelay, "tcp", "udp relay", true},
		{"ICE-TCP to the shared port", func(t *testing.T) MediaConfig {
			p := freeUDPTCPPort(t)
			return MediaConfig{Grace: time.Minute, SharedPort: p, TCP: true, TCPPort: p}
		}, phone.Options{TCPOnly: true}, ice.CandidateTypeHost, "tcp", "tcp prflx", false},
		{"ICE-TCP without shared ports", func(*testing.T) MediaConfig {
			return MediaConfig{Grace: time.Minute, TCP: true}
		}, phone.Options{TCPOnly: true}, ice.CandidateTypeHost, "tcp", "tcp prflx", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			media := tt.media(t)
			media.ICE.CredentialTTL = time.Hour
			log := &syncBuffer{}
			m := startMediaServerLogging(t, media, slog.New(slog.NewTextHandler(log, nil)))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, pair, proto := customerPhone(t, ctx, m.Addr, tt.opts)
			if pair.Local.Type() != tt.wantType || proto != tt.wantProto {
				t.Fatalf("selected pair %s (local over %s); want a local %s candidate over %s", pair, proto, tt.wantType, tt.wantProto)
			}
			if tt.wantType == ice.CandidateTypeRelay && m.turn.Allocations() == 0 {
				t.Error("the embedded relay has no allocation")
			}
			hearEcho(t, ctx, p)
			// Relayed to a shared port, the relay hands the media to the
			// leg in memory, and takes the leg's back the same way.
			if tt.wantInMemory {
				st := m.turn.Stats().Local
				t.Logf("in memory: %d packets carried, %d sent back through the kernel", st.Carried, st.Refused)
				if got := st.Carried; got < 80 {
					t.Errorf("%d packets went between the relay and the media port in memory; want the call's media (at least 80)", got)
				}
			} else if m.turn != nil && m.turn.Stats().Local.Carried != 0 {
				t.Errorf("packets went in memory without a shared media port")
			}
			// The server says how the media travels (the phone's relayed
			// candidate, or its ICE-TCP one, unsignalled: peer reflexive).
			want := `msg="audio endpoint connected" identity=8:acs:customer path="` + tt.wantPath + `"`
			if !strings.Contains(log.String(), want) {
				t.Errorf("the server's log does not say %s:\n%s", want, log.String())
			}
		})
	}
}

// customerPhone connects a softphone for a caller, speaking 600 Hz and
// keeping what it hears, to the switchboard at addr; it answers the phone
// (closed when the test ends), the candidate pair its media took, and the
// local candidate's transport (a relayed one's: the one to the relay).
func customerPhone(t *testing.T, ctx context.Context, addr string, opts phone.Options) (*phone.Phone, *ice.CandidatePair, string) {
	t.Helper()
	opts.Mic, opts.KeepHeard = audio.NewTone(600, -20), true
	p, err := phone.Connect(ctx, phoneEngine(t), "http://"+addr, mint(t, "customer", calls.RoleCaller), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pair, err := p.Leg().SelectedPair()
	if err != nil {
		t.Fatal(err)
	}
	proto := pair.Local.NetworkType().NetworkShort()
	if r, ok := pair.Local.(*ice.CandidateRelay); ok {
		proto = r.RelayProtocol()
	}
	return p, pair, proto
}

// hearEcho runs the phone, speaking 600 Hz, and calls the echo bot: it
// must hear the tone back.
func hearEcho(t *testing.T, ctx context.Context, p *phone.Phone) {
	t.Helper()
	running := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	go func() { defer close(running); p.Run(runCtx) }()
	defer func() { stop(); <-running }()
	if _, err := p.Call(ctx, "8:echo123"); err != nil {
		t.Fatal(err)
	}
	// The bot plays the tone back one second later: wait for 40 frames
	// of it (most of a second's worth).
	for {
		heard := p.Heard()
		withTone := 0
		for _, h := range heard {
			if audio.ToneLevel(&h.Frame, 600) > toneLevel {
				withTone++
			}
		}
		if withTone >= 40 {
			t.Logf("%d of %d frames heard carry the echo", withTone, len(heard))
			return
		}
		if ctx.Err() != nil || len(heard) > 500 {
			t.Fatalf("%d of %d frames heard carry the echo; want 40", withTone, len(heard))
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // polling what the phone heard
		}
	}
}

// freeUDPTCPPort returns a port free for UDP and TCP a moment ago.
func freeUDPTCPPort(t *testing.T) uint16 {
	t.Helper()
	for range 100 {
		p := freeUDPPort(t)
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(int(p)))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no port free for UDP and TCP")
	return 0
}

// TestICEServersEndpoint: GET /api/media/ice-servers lists the embedded
// relay at the address the client used (or the public one), with
// credentials, then the --ice-servers, with credentials minted from a
// shared secret or given.
func TestICEServersEndpoint(t *testing.T) {
	external, err := parseICEServers("turn:turn.example.com:3478?transport=udp,turn:turn.example.com:3478?transport=tcp,secret=coturn-secret;stun:stun.example.com:3478;turns:relay.example.com:5349,username=u,credential=p")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		publicIPs []string
		host      string // the request's Host
		wantHost  string // the relay's, in its URLs
	}{
		{"detected from the Host header", nil, "switchboard.example.com:8443", "switchboard.example.com"},
		{"an address in the Host header", nil, "192.0.2.10:8080", "192.0.2.10"},
		{"the public address wins", []string{"203.0.113.7"}, "switchboard.example.com", "203.0.113.7"},
		{"a loopback public address is no public address", []string{"127.0.0.1"}, "192.0.2.10:8080", "192.0.2.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := startMediaServer(t, MediaConfig{Grace: time.Minute, PublicIPs: tt.publicIPs,
				ICE: ICEConfig{TURNAddr: "127.0.0.1:0", CredentialTTL: 10 * time.Minute, Servers: external}})
			req, _ := http.NewRequest("GET", "http://"+m.Addr+"/api/media/ice-servers", nil)
			req.Host = tt.host
			req.Header.Set("Authorization", "Bearer "+mint(t, "alice", calls.RoleAgent))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				ICEServers []struct {
					URLs       []string `json:"urls"`
					Username   string   `json:"username"`
					Credential string   `json:"credential"`
				} `json:"iceServers"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			if len(body.ICEServers) != 4 {
				t.Fatalf("%d ICE servers, want the relay and 3 configured: %+v", len(body.ICEServers), body)
			}
			hp := net.JoinHostPort(tt.wantHost, strconv.Itoa(m.turn.Port()))
			own := body.ICEServers[0]
			if want := []string{"stun:" + hp, "turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}; strings.Join(own.URLs, " ") != strings.Join(want, " ") {
				t.Errorf("the relay's URLs %q, want %q", own.URLs, want)
			}
			for i, s := range body.ICEServers[:2] {
				expiry, who, ok := strings.Cut(s.Username, ":")
				at, err := strconv.ParseInt(expiry, 10, 64)
				if !ok || err != nil || who != "8_acs_alice" || s.Credential == "" {
					t.Errorf("server %d: username %q: want expiry:8_acs_alice and a credential", i, s.Username)
					continue
				}
				if d := time.Until(time.Unix(at, 0)); d < 9*time.Minute || d > 10*time.Minute+time.Second {
					t.Errorf("server %d: credentials expire in %v, want the TTL (10 min)", i, d)
				}
			}
			mac := hmac.New(sha1.New, []byte("coturn-secret"))
			mac.Write([]byte(body.ICEServers[1].Username))
			if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); body.ICEServers[1].Credential != want {
				t.Errorf("coturn credential %q, want HMAC-SHA1 of the username under the secret (%q)", body.ICEServers[1].Credential, want)
			}
			if s := body.ICEServers[2]; s.Username != "" || s.Credential != "" || s.URLs[0] != "stun:stun.example.com:3478" {
				t.Errorf("STUN entry %+v", s)
			}
			if s := body.ICEServers[3]; s.Username != "u" || s.Credential != "p" || s.URLs[0] != "turns:relay.example.com:5349" {
				t.Errorf("static TURN entry %+v", s)
			}
		})
	}
}

func TestParseICEServers(t *testing.T) {
	good := []struct {
		in   string
		want int
	}{
		{"stun:stun.example.com", 1},
		{"turn:a.example:3478?transport=udp,turn:a.example:3478?transport=tcp,secret=s; stun:b.example", 2},
		{"turn:a.example,username=u,credential=p", 1},
		{" ; ", 0},
	}
	for _, tt := range good {
		got, err := parseICEServers(tt.in)
		if err != nil || len(got) != tt.want {
			t.Errorf("%q: %d servers, %v; want %d", tt.in, len(got), err, tt.want)
		}
	}
	for _, in := range []string{
		"turn:a.example",                                  // no credentials
		"turn:a.example,username=u",                       // half
		"turn:a.example,secret=s,username=u,credential=p", // both kinds
		"http://a.example",                                // not an ICE URL
		"secret=s",                                        // no URL
		"turn:a.example,credential=p",
	} {
		if _, err := parseICEServers(in); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}

func TestMediaPeers(t *testing.T) {
	pub := "203.0.113.7"
	tests := []struct {
		name string
		cfg  MediaConfig
		peer string
		want bool
	}{
		{"shared port on loopback", MediaConfig{SharedPort: 40000, SharedPorts: 2}, "127.0.0.1:40001", true},
		{"past the shared ports", MediaConfig{SharedPort: 40000, SharedPorts: 2}, "127.0.0.1:40002", false},
		{"the database's port", MediaConfig{SharedPort: 40000}, "127.0.0.1:5432", false},
		{"public address", MediaConfig{SharedPort: 40000, PublicIPs: []string{pub}}, pub + ":40000", true},
		{"another host", MediaConfig{SharedPort: 40000}, "198.51.100.1:40000", false},
		{"permission for the host", MediaConfig{SharedPort: 40000}, "127.0.0.1:0", true},
		{"permission for another host", MediaConfig{SharedPort: 40000}, "198.51.100.1:0", false},
		{"port range", MediaConfig{PortMin: 41000, PortMax: 41099}, "127.0.0.1:41099", true},
		{"outside the port range", MediaConfig{PortMin: 41000, PortMax: 41099}, "127.0.0.1:41100", false},
		{"any port", MediaConfig{}, "127.0.0.1:5432", true},
		{"any port, another host", MediaConfig{}, "198.51.100.1:5432", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mediaPeers(tt.cfg, slog.New(slog.DiscardHandler))(netip.MustParseAddrPort(tt.peer)); got != tt.want {
				t.Errorf("%s: %v, want %v", tt.peer, got, tt.want)
			}
		})
	}
}
