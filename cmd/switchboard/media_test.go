package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/store"
)

// The tones of the end-to-end media test.
const (
	aliceHz   = 1000
	toneLevel = 1e-3 // ToneLevel of a -20 dBov tone is about 1e-2
	noTone    = 1e-4
)

var callerHz = []float64{400, 600, 800}

// startMediaServer runs the real program with its media plane on port 0.
func startMediaServer(t *testing.T, media MediaConfig) *Main {
	t.Helper()
	return startMediaServerLogging(t, media, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startMediaServerLogging is startMediaServer with its log going to log.
func startMediaServerLogging(t *testing.T, media MediaConfig, log *slog.Logger) *Main {
	t.Helper()
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, Media: media},
		Logger: log, Stdout: io.Discard,
		Store: store.NewMemory(),
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func phoneEngine(t *testing.T) *rtc.Engine {
	t.Helper()
	e, err := rtc.NewEngine(rtc.Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// switchAt is one API request that changed alice's active call.
type switchAt struct {
	active       int       // the caller now active
	n0, n1       int       // frames alice's device had played before the request and after the answer
	sent, answer time.Time // wall clock around the request
}

// TestOnlyTheActiveCallReachesTheDevice is the media plane's end-to-end
// test: alice's device is a file endpoint that speaks 1 kHz and records;
// three pion softphones call her with 400, 600 and 800 Hz; she accepts them
// one after another and resumes each in turn. Her recording must carry the
// active caller's tone and no other; each caller must hear alice only while
// its call is active and the hold tone while held.
func TestOnlyTheActiveCallReachesTheDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 10 s")
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	aliceToken := mint(t, "alice", calls.RoleAgent)
	next, _ := openEvents(t, m.Addr, aliceToken) // alice is online: calls to her ring
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("first event %v, %v", ev, err)
	}
	recording := filepath.Join(t.TempDir(), "alice.wav")
	device, err := audio.NewFileEndpoint(audio.NewTone(aliceHz, -20), recording)
	if err != nil {
		t.Fatal(err)
	}
	m.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	engine := phoneEngine(t)
	phones := make([]*phone.Phone, len(callerHz))
	done := make(chan struct{}, len(callerHz))
	for i, hz := range callerHz {
		tok := mint(t, fmt.Sprintf("customer%d", i+1), calls.RoleCaller)
		p, err := phone.Connect(ctx, engine, base, tok, phone.Options{Mic: audio.NewTone(hz, -20), KeepHeard: true})
		if err != nil {
			t.Fatal(err)
		}
		phones[i] = p
		go func() { p.Run(ctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range phones {
			<-done
		}
		for _, p := range phones {
			p.Close()
		}
	}()

	// Let every phone's stream fill the server's jitter buffer, so what is
	// measured below is the switch, not the buffer's first fill.
	time.Sleep(200 * time.Millisecond)

	// Each caller dials alice and she accepts; then she resumes each in turn.
	const segment = 1400 * time.Millisecond
	aliceCall := make([]string, len(phones))
	var switches []switchAt
	act := func(active int, path string) {
		s := switchAt{active: active, n0: device.Played(), sent: time.Now()}
		res := post(t, base+path, aliceToken, "")
		s.answer, s.n1 = time.Now(), device.Played()
		if res["state"] != "Connected" {
			t.Fatalf("POST %s: state %v, want Connected", path, res["state"])
		}
		aliceCall[active] = res["id"].(string)
		switches = append(switches, s)
		time.Sleep(segment)
	}
	for i, p := range phones {
		if _, err := p.Call(ctx, "8:acs:alice"); err != nil {
			t.Fatal(err)
		}
		id := waitIncoming(t, next)
		act(i, "/api/incoming-calls/"+id+"/accept")
	}
	for i := range phones {
		act(i, "/api/calls/"+aliceCall[i]+"/resume")
	}
	end := time.Now()
	cancel()
	for range phones {
		<-done
	}
	done = make(chan struct{}, len(phones)) // the deferred wait is over
	for range phones {
		done <- struct{}{}
	}
	if err := m.Close(context.Background()); err != nil { // closes the recording
		t.Fatal(err)
	}

	heard, err := audio.ReadWAV(recording)
	if err != nil {
		t.Fatal(err)
	}
	checkAliceHeard(t, heard, switches)
	checkSpeaking(t, next)
	for i, p := range phones {
		checkCallerHeard(t, i, p.Heard(), switches, end)
	}
}

// checkSpeaking reads the rest of alice's event stream: every caller was
// heard speaking (its tone) while active, and stopped when held.
func checkSpeaking(t *testing.T, next func() (map[string]any, error)) {
	t.Helper()
	started, stopped := map[string]bool{}, map[string]bool{}
	for {
		ev, err := next()
		if err != nil {
			break // the server closed the stream at shutdown
		}
		if ev["type"] != "isSpeakingChanged" {
			continue
		}
		d := ev["data"].(map[string]any)
		who, _ := d["participant"].(string)
		if d["isSpeaking"] == true {
			started[who] = true
		} else {
			stopped[who] = true
		}
	}
	for i := range callerHz {
		who := fmt.Sprintf("8:acs:customer%d", i+1)
		if !started[who] || !stopped[who] {
			t.Errorf("isSpeakingChanged for %s: started %v, stopped %v; want both", who, started[who], stopped[who])
		}
	}
}

// waitIncoming reads events until an incomingCall and returns its id.
func waitIncoming(t *testing.T, next func() (map[string]any, error)) string {
	t.Helper()
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("waiting for incomingCall: %v", err)
		}
		if ev["type"] == "incomingCall" {
			return ev["callId"].(string)
		}
	}
}

// checkAliceHeard: once a switch has taken effect, alice's device never
// carries a held caller's tone, and carries the active caller's.
//
// The mixer applies a route at the first tick after it changes, and the
// request returns within a frame unless the machine is very busy: so from
// frame max(n0+2, n1+1) on the routing is the new one. That is asserted
// exactly. When the new caller's audio shows up also depends on its stream
// arriving in time (the jitter buffer, the machine's load): that is
// measured and logged, and only a gross delay fails.
func checkAliceHeard(t *testing.T, heard []audio.Frame, switches []switchAt) {
	t.Helper()
	var latencies []int
	for k, s := range switches {
		stop := len(heard)
		if k+1 < len(switches) {
			stop = min(switches[k+1].n0, len(heard))
		}
		routed := max(s.n0+2, s.n1+1)
		first := -1 // the frame where the new caller's tone starts
		for n := s.n0; n < stop; n++ {
			if audio.ToneLevel(&heard[n], callerHz[s.active]) > toneLevel {
				first = n
				break
			}
		}
		if first < 0 || first > routed+10 {
			t.Errorf("switch %d: caller %d's tone starts at frame %d; request at %d, answer at %d", k, s.active+1, first, s.n0, s.n1)
			continue
		}
		latencies = append(latencies, first-s.n0+1)
		withTone := 0
		for n := routed; n < stop; n++ {
			for c, hz := range callerHz {
				if c != s.active && audio.ToneLevel(&heard[n], hz) > noTone {
					t.Errorf("switch %d: frame %d (%d after the request) carries held caller %d's tone", k, n, n-s.n0, c+1)
				}
			}
			if audio.ToneLevel(&heard[n], callerHz[s.active]) > toneLevel {
				withTone++
			}
		}
		// Most frames carry it; under -race on a busy machine some are
		// lost on the way (late frames are dropped, never queued up).
		if total := stop - routed; withTone < total/2 {
			t.Errorf("switch %d: the active caller's tone is in %d of %d frames", k, withTone, total)
		}
	}
	t.Logf("frames from the API request to the new caller's audio at alice's device: %v", latencies)
}

// checkCallerHeard: caller i hears alice only while its call is active and
// the hold tone while it is held; after a switch it allows 400 ms for the
// network, the server's writers and its jitter buffer on a busy machine.
func checkCallerHeard(t *testing.T, i int, heard []phone.Heard, switches []switchAt, end time.Time) {
	t.Helper()
	const settle = 400 * time.Millisecond
	type period struct {
		from, to time.Time
		active   bool
	}
	var periods []period
	accepted := false
	for k, s := range switches {
		to := end
		if k+1 < len(switches) {
			to = switches[k+1].sent
		}
		if s.active == i {
			accepted = true
		}
		if accepted {
			periods = append(periods, period{s.answer.Add(settle), to, s.active == i})
		}
	}
	// A hold spans consecutive held periods; the hold tone beeps every
	// 2 s, so a hold that long must have carried it.
	var heldFor time.Duration
	heldBeeps := 0
	endHold := func() {
		if heldFor >= 2*time.Second && heldBeeps == 0 {
			t.Errorf("caller %d, held %v: never heard the hold tone", i+1, heldFor.Round(10*time.Millisecond))
		}
		heldFor, heldBeeps = 0, 0
	}
	for _, p := range periods {
		alice, hold, frames := 0, 0, 0
		for _, h := range heard {
			if h.At.Before(p.from) || !h.At.Before(p.to) {
				continue
			}
			frames++
			if audio.ToneLevel(&h.Frame, aliceHz) > toneLevel {
				alice++
			}
			if audio.ToneLevel(&h.Frame, audio.HoldToneHz) > toneLevel {
				hold++
			}
		}
		t.Logf("caller %d, active %v for %v: %d frames, alice in %d, hold tone in %d", i+1, p.active, p.to.Sub(p.from).Round(10*time.Millisecond), frames, alice, hold)
		switch {
		case p.active && (alice < frames/2 || hold > 0):
			t.Errorf("caller %d, active %v: alice's tone in %d of %d frames, hold tone in %d", i+1, p.to.Sub(p.from), alice, frames, hold)
		case !p.active && alice > 0:
			t.Errorf("caller %d, held %v: heard alice in %d of %d frames", i+1, p.to.Sub(p.from), alice, frames)
		}
		if p.active {
			endHold()
		} else {
			heldFor += p.to.Sub(p.from)
			heldBeeps += hold
		}
	}
	endHold()
}

// TestPhoneCallsTheEchoBot runs `switchboard phone` against the real
// server: it calls the echo bot with a 600 Hz tone and records; the bot
// plays the tone back one second later.
func TestPhoneCallsTheEchoBot(t *testing.T) {
	for _, tt := range []struct {
		name  string
		media MediaConfig
		args  []string // the phone's own
	}{
		{"a socket per leg", MediaConfig{Grace: time.Minute}, nil},
		{"one shared port", MediaConfig{Grace: time.Minute, SharedPort: freeUDPPort(t)}, nil},
		{"through the TURN relay over TCP", MediaConfig{Grace: time.Minute, ICE: ICEConfig{TURNAddr: "127.0.0.1:0", CredentialTTL: time.Hour}}, []string{"--relay", "--tcp"}},
	} {
		t.Run(tt.name, func(t *testing.T) { phoneCallsTheEchoBot(t, tt.media, tt.args...) })
	}
}

func phoneCallsTheEchoBot(t *testing.T, media MediaConfig, args ...string) {
	m := startMediaServer(t, media)
	recording := filepath.Join(t.TempDir(), "echo.wav")
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{
		"phone", "--url", "http://" + m.Addr, "--token", mint(t, "customer", calls.RoleCaller),
		"--tone", "600", "--call", "8:echo123", "--record", recording, "--duration", "2500ms",
	}, args...), &out, &errOut, env(nil))
	if code != 0 {
		t.Fatalf("phone exited %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "in call") {
		t.Errorf("phone did not say it was in a call: %q", out.String())
	}
	heard, err := audio.ReadWAV(recording)
	if err != nil {
		t.Fatal(err)
	}
	first, withTone := -1, 0
	for n := range heard {
		if audio.ToneLevel(&heard[n], 600) > toneLevel {
			if first < 0 {
				first = n
			}
			withTone++
		}
	}
	t.Logf("recorded %d frames; the echo starts at frame %d", len(heard), first)
	// The call starts within a few frames of the recording; the echo one
	// second (50 frames) after, plus the jitter buffers on both sides.
	// Never before the second has passed; later on a busy machine.
	if first < 45 || first > 100 {
		t.Fatalf("the echo starts at frame %d, want about 50 (one second)", first)
	}
	if after := len(heard) - first; withTone < after/2 {
		t.Errorf("the echo is in %d of the %d frames after it started", withTone, after)
	}
}

// freeUDPPort returns a UDP port nothing listens on just now.
func freeUDPPort(t *testing.T) uint16 { return freeUDPPorts(t, 1) }

// freeUDPPorts returns the first of n consecutive UDP ports that were all
// free a moment ago.
func freeUDPPorts(t *testing.T, n int) uint16 {
	t.Helper()
	for range 100 {
		var conns []*net.UDPConn
		first := 0
		for i := range n {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4zero, Port: first + i})
			if err != nil {
				break
			}
			conns = append(conns, conn)
			if i == 0 {
				first = conn.LocalAddr().(*net.UDPAddr).Port
			}
		}
		for _, c := range conns {
			c.Close()
		}
		if len(conns) == n && first+n-1 <= 65535 {
			return uint16(first)
		}
	}
	t.Fatalf("no %d consecutive free UDP ports", n)
	return 0
}

// TestVanishedPeerEndsCallsWith410: a caller's softphone disappears
// without hanging up; after ICE notices and the grace period passes, its
// call ends with 410 on both sides.
func TestVanishedPeerEndsCallsWith410(t *testing.T) {
	for _, tt := range []struct {
		name  string
		media MediaConfig
	}{
		{"a socket per leg", MediaConfig{Grace: 500 * time.Millisecond}},
		// Media takes the fast path there, past the ICE agent, which must
		// still notice the peer is gone.
		{"shared ports", MediaConfig{Grace: 500 * time.Millisecond, SharedPort: freeUDPPorts(t, 2), SharedPorts: 2}},
	} {
		t.Run(tt.name, func(t *testing.T) { vanishedPeerEndsCallWith410(t, tt.media) })
	}
}

func vanishedPeerEndsCallWith410(t *testing.T, media MediaConfig) {
	m := startMediaServer(t, media)
	base := "http://" + m.Addr
	aliceToken := mint(t, "alice", calls.RoleAgent)
	next, _ := openEvents(t, m.Addr, aliceToken)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := phone.Connect(ctx, phoneEngine(t), base, mint(t, "customer", calls.RoleCaller), phone.Options{Mic: audio.NewTone(400, -20)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Call(ctx, "8:acs:alice"); err != nil {
		t.Fatal(err)
	}
	id := waitIncoming(t, next)
	post(t, base+"/api/incoming-calls/"+id+"/accept", aliceToken, "")
	gone := time.Now()
	if err := p.Leg().Close(); err != nil { // no hangup: the peer just vanishes
		t.Fatal(err)
	}
	wantReason(t, waitCallEnded(t, next, id), 410, 0)
	t.Logf("call ended 410 %v after the peer vanished (ICE disconnected after ~3 s, grace 500 ms)", time.Since(gone).Round(100*time.Millisecond))
}

// TestMediaWebRTCBadInput: POST /api/media/webrtc answers bad input in the
// contract's error format and attaches nothing.
func TestMediaWebRTCBadInput(t *testing.T) {
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	url := "http://" + m.Addr + "/api/media/webrtc"
	tok := mint(t, "alice", calls.RoleAgent)
	tests := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"no token", "", `{"sdp":"v=0"}`, 401, "unauthorized"},
		{"forged token", tok + "x", `{"sdp":"v=0"}`, 401, "unauthorized"},
		{"malformed JSON", tok, `{"sdp":`, 400, "invalid_request"},
		{"no sdp", tok, `{}`, 400, "invalid_request"},
		{"garbage sdp", tok, `{"sdp":"hello"}`, 400, "invalid_request"},
		{"no audio", tok, `{"sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}`, 400, "invalid_request"},
		{"NUL in fmtp", tok, `{"sdp":"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=fmtp:0 a\u0000b\r\n"}`, 400, "invalid_request"},
		{"payload type 4294967296", tok, `{"sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 4294967296\r\n"}`, 400, "invalid_request"},
		{"oversize sdp", tok, `{"sdp":"v=0\r\n` + strings.Repeat("a=x:y\\r\\n", 3000) + `"}`, 413, "payload_too_large"},
		{"oversize body", tok, `{"sdp":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := request(t, http.MethodPost, url, tt.token, tt.body)
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || status != tt.status || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("%d %s, want %d with code %s", status, body, tt.status, tt.code)
			}
		})
	}
}

func TestDeviceSpecs(t *testing.T) {
	dir := t.TempDir()
	mic := filepath.Join(dir, "mic.wav")
	rec, err := audio.NewFileEndpoint(nil, mic) // a WAV of 10 frames of tone, as a microphone
	if err != nil {
		t.Fatal(err)
	}
	var f audio.Frame
	tone := audio.NewTone(500, -20)
	for range 10 {
		tone.Next(&f)
		rec.Play(audio.Output{PCM: &f})
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		flag    string
		rawID   string
		wantErr string // "" opens
	}{
		{"alice=tone:440", "8:acs:alice", ""},
		{"8:acs:bob=file:" + mic + ":" + filepath.Join(dir, "rec.wav"), "8:acs:bob", ""},
		{"carol=file::" + filepath.Join(dir, "carol.wav"), "8:acs:carol", ""},
		{"alice=tone:5000", "8:acs:alice", "below 4000 Hz"},
		{"alice=file:" + filepath.Join(dir, "missing.wav") + ":", "8:acs:alice", "no such file"},
		{"alice=no-such-device", "8:acs:alice", "device"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			rawID, spec, err := splitDevice(tt.flag)
			if err != nil || rawID != tt.rawID {
				t.Fatalf("splitDevice = %q, %q, %v; want %q", rawID, spec, err, tt.rawID)
			}
			ep, err := openDevice(spec, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("openDevice(%q) = %v, want an error with %q", spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ep.Capture(&f) {
				t.Error("the device gave no microphone frame")
			}
			ep.Play(audio.Output{PCM: &f})
			if err := ep.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, bad := range []string{"alice", "=default", "alice="} {
		if _, _, err := splitDevice(bad); err == nil {
			t.Errorf("splitDevice(%q) accepted", bad)
		}
	}
}

// TestDTMF: tones an agent sends on its active call reach the other side
// (here the echo bot, which plays them back to the agent's device a
// second later); on a held call, or with digits that are not DTMF, the
// request fails in the contract's format and nothing is played.
func TestDTMF(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 4 s")
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	alice := mint(t, "alice", calls.RoleAgent)
	device := audio.NewMemoryEndpoint(nil)
	m.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)
	first := post(t, base+"/api/calls", alice, `{"participants": [{"id": "8:echo123"}]}`)
	second := post(t, base+"/api/calls", alice, `{"participants": [{"id": "8:echo123"}]}`) // holds the first
	id, held := second["id"].(string), first["id"].(string)

	tests := []struct {
		name, call, body string
		status           int
		code             calls.Code
	}{
		{"on the active call", id, `{"tones": "1#9"}`, http.StatusOK, ""},
		{"lowercase a-d", id, `{"tones": "d"}`, http.StatusOK, ""},
		{"on a held call", held, `{"tones": "5"}`, http.StatusConflict, calls.CodeInvalidState},
		{"not DTMF", id, `{"tones": "12x"}`, http.StatusBadRequest, calls.CodeInvalidRequest},
		{"none", id, `{"tones": ""}`, http.StatusBadRequest, calls.CodeInvalidRequest},
		{"too many", id, `{"tones": "` + strings.Repeat("1", 33) + `"}`, http.StatusBadRequest, calls.CodeInvalidRequest},
		{"no body", id, ``, http.StatusBadRequest, calls.CodeInvalidRequest},
		{"unknown call", "nope", `{"tones": "1"}`, http.StatusNotFound, calls.CodeCallNotFound},
	}
	from := device.Played()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := postStatus(t, base+"/api/calls/"+tt.call+"/dtmf", alice, tt.body)
			if status != tt.status || code != tt.code {
				t.Errorf("POST dtmf %s: %d %q, want %d %q", tt.body, status, code, tt.status, tt.code)
			}
		})
	}
	// 4 digits of 160 ms, echoed a second later.
	deadline := time.Now().Add(10 * time.Second)
	for {
		frames, _ := device.Heard(from)
		got := audio.HeardDTMF(frames)
		if got == "1#9D" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice heard %q echoed, want %q", got, "1#9D")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postStatus sends a POST and answers its status and error code.
func postStatus(t *testing.T, url, token, body string) (int, calls.Code) {
	t.Helper()
	resp := postResponse(t, url, token, body)
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Code calls.Code `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code
}
