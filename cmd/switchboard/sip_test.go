package main

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/sip"
	"github.com/switchboard/switchboard/internal/store"
)

// TestSIPInbound boots the real program with --sip-addr and a trunk, routes
// a number through the API, and has sipp call it as a carrier: the agent
// hears an incomingCall from the caller's phone number on its event stream,
// and the call's end reason is on the stream and in history.
func TestSIPInbound(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	tests := []struct {
		name     string
		scenario string
		accept   bool
		code     float64
		sub      float64
	}{
		{name: "answered, then the carrier hangs up", scenario: "carrier_hangs_up.xml", accept: true, code: 0, sub: 5000},
		{name: "canceled before the answer", scenario: "cancel.xml", code: 487},
		{name: "the carrier hangs up before it acknowledges the answer", scenario: "bye_before_ack.xml", accept: true, code: 0, sub: 5000},
		{name: "delayed offer: the RTP leg offers in the 200, the ACK answers", scenario: "delayed_offer.xml", accept: true, code: 0, sub: 5000},
		{name: "delayed offer, no answer in the ACK: BYE, 488", scenario: "delayed_offer_no_answer.xml", accept: true, code: 488},
		{name: "re-INVITEs without SDP: the RTP leg offers, the ACKs hold and resume", scenario: "carrier_holds_offerless.xml", accept: true, code: 0, sub: 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, history := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "")
			routeNumber(t, m, "+14255550100", "alice")
			alice, next := online(t, m, "alice", calls.RoleAgent)
			carrier := runSipp(t, tt.scenario, "+14255550100", m.SIPAddr)
			var id string
			for id == "" {
				ev, err := next()
				if err != nil {
					t.Fatalf("no incomingCall: %v", err)
				}
				if ev["type"] != "incomingCall" {
					continue
				}
				in := ev["data"].(map[string]any)["incomingCall"].(map[string]any)
				from := in["callerInfo"].(map[string]any)["identifier"].(map[string]any)
				if from["phoneNumber"] != "+14255550123" {
					t.Errorf("incoming call from %v, want phoneNumber +14255550123", from)
				}
				id = in["id"].(string)
			}
			if tt.accept {
				call := post(t, "http://"+m.Addr+"/api/incoming-calls/"+id+"/accept", alice, "")
				if call["state"] != "Connected" {
					t.Errorf("accepted call is %v, want Connected", call["state"])
				}
			}
			wantReason(t, waitCallEnded(t, next, id), tt.code, tt.sub)
			carrier()
			h, err := history.FindCallByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if r := h.Call.CallEndReason; r == nil || float64(r.Code) != tt.code || float64(r.SubCode) != tt.sub {
				t.Errorf("history has %+v, want %v/%v", r, tt.code, tt.sub)
			}
			if ps := h.Call.RemoteParticipants; len(ps) != 1 || ps[0].RawID != "4:+14255550123" {
				t.Errorf("history's participants %+v, want the phone number", ps)
			}
		})
	}
}

// runSipp runs one call of a scenario of internal/sip/testdata/sipp against
// addr; the function it answers waits for sipp and fails the test when the
// scenario did not play through.
func runSipp(t *testing.T, scenario, number, addr string, files ...sippFile) func() {
	t.Helper()
	return sippRun(t, scenario, files, "-s", number, "-p", sippPort(t), addr)
}

// sippPort is a UDP port that was free a moment ago, for sipp.
func sippPort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(int(freeUDPPort(t)))
}

// sippWith runs one call of a scenario with these arguments.
func sippWith(t *testing.T, scenario string, args ...string) func() {
	t.Helper()
	return sippRun(t, scenario, nil, args...)
}

// sippRun runs one call of a scenario with these arguments, the files it
// reads beside it.
func sippRun(t *testing.T, scenario string, files []sippFile, args ...string) func() {
	t.Helper()
	return sippRunCalls(t, scenario, files, 1, args...)
}

// sippRunCalls is sippRun for n calls, all at once.
func sippRunCalls(t *testing.T, scenario string, files []sippFile, n int, args ...string) func() {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	xml, err := os.ReadFile(filepath.Join("..", "..", "internal", "sip", "testdata", "sipp", scenario))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, scenario), xml, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "sipp", append([]string{"-sf", scenario, "-m", strconv.Itoa(n), "-l", strconv.Itoa(n), "-r", strconv.Itoa(max(n, 10)), "-t", "u1",
		"-i", "127.0.0.1", "-mp", sippPort(t), "-timeout", "30s", "-timeout_error", "-nostdin", "-trace_err"}, args...)...)
	cmd.Dir = dir
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() { // say what sipp saw, even when the test gave up first
			t.Logf("sipp's output (%s):\n%s", scenario, out.String())
		}
	})
	return func() {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			logs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
			var b []byte
			for _, l := range logs {
				c, _ := os.ReadFile(l)
				b = append(b, c...)
			}
			t.Fatalf("sipp failed (%v): %s", err, b)
		}
	}
}

// sippFile is a file a scenario reads (an RTP stream), put beside it.
type sippFile struct {
	name string
	data []byte
}

// TestSIPInboundAudio: a carrier calls in and talks (sipp streams a 1 kHz
// tone as RTP PCMU): the agent hears it through the real RTP leg and the
// mixer while the call is active, and not once the agent starts another
// call, which holds it (the phone gets a re-INVITE with sendonly); the
// carrier's BYE then ends the call 0/5000.
func TestSIPInboundAudio(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	m, _ := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "27950-27999")
	routeNumber(t, m, "+14255550100", "alice")
	device := audio.NewMemoryEndpoint(nil)
	m.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)
	alice, next := online(t, m, "alice", calls.RoleAgent)

	// Two seconds of a 1 kHz tone at -20 dBov, as µ-law; sipp loops it.
	var tone []byte
	src := audio.NewTone(1000, -20)
	for range 100 {
		var f audio.Frame
		var b [audio.FrameSamples]byte
		src.Next(&f)
		audio.EncodeUlaw(b[:], &f)
		tone = append(tone, b[:]...)
	}
	carrier := runSipp(t, "carrier_talks.xml", "+14255550100", m.SIPAddr, sippFile{"tone1k.ulaw", tone})
	id := waitIncoming(t, next)
	post(t, "http://"+m.Addr+"/api/incoming-calls/"+id+"/accept", alice, "")

	hears := func(from int) (tone, frames int) {
		heard, _ := device.Heard(from)
		for i := range heard {
			if audio.ToneLevel(&heard[i], 1000) > toneLevel {
				tone++
			}
		}
		return tone, len(heard)
	}
	from := device.Played()
	time.Sleep(1200 * time.Millisecond)
	if n, of := hears(from); n < of/2 {
		t.Errorf("while the phone call is active, alice heard its tone in %d of %d frames, want most", n, of)
	}
	post(t, "http://"+m.Addr+"/api/calls", alice, `{"participants": [{"id": "8:echo123"}]}`) // holds the phone call
	time.Sleep(100 * time.Millisecond)                                                       // the switch, and the jitter buffer's tail
	from = device.Played()
	time.Sleep(1 * time.Second)
	if n, of := hears(from); n != 0 {
		t.Errorf("with the phone call on hold, alice heard its tone in %d of %d frames, want none", n, of)
	}
	wantReason(t, waitCallEnded(t, next, id), 0, 5000)
	carrier()
}

// TestSIPPhoneUnmutesByRFC4733: a phone muted by a supervisor keys *6 as
// RFC 4733 telephone-events on its RTP (sipp replays a capture the test
// writes, rfc4733Capture): the real RTP leg hands the digits to the switchboard, which
// unmutes the phone, and the agent sees isMutedChanged with the phone as
// the actor.
func TestSIPPhoneUnmutesByRFC4733(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	m, _ := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "27900-27949")
	routeNumber(t, m, "+14255550100", "alice")
	alice, next := online(t, m, "alice", calls.RoleAgent)
	sup := mint(t, "sue", calls.RoleSupervisor)
	carrier := runSipp(t, "phone_unmutes_rtp.xml", "+14255550100", m.SIPAddr, sippFile{"star6.pcap", rfc4733Capture("*6")})
	id := waitIncoming(t, next)
	post(t, "http://"+m.Addr+"/api/incoming-calls/"+id+"/accept", alice, "")
	post(t, "http://"+m.Addr+"/api/calls/"+id+"/participants/"+url.PathEscape("4:+14255550123")+"/mute", sup, "")
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("no isMutedChanged unmuting the phone: %v", err)
		}
		if ev["type"] != "isMutedChanged" {
			continue
		}
		d := ev["data"].(map[string]any)
		if d["isMuted"] == true {
			continue
		}
		if actor, _ := ev["actor"].(map[string]any); actor == nil || actor["rawId"] != "4:+14255550123" {
			t.Errorf("the phone was unmuted by %v, want the phone itself", ev["actor"])
		}
		break
	}
	wantReason(t, waitCallEnded(t, next, id), 0, 5000)
	carrier()
}

// rfc4733Capture is a pcap file (Ethernet, IPv4, UDP) of RTP packets
// keying digits as RFC 4733 telephone-events (payload type 101), for sipp's
// play_pcap_audio, which sends them from its media port to the peer's
// (the captures sipp ships are of one digit each, all with the same SSRC
// and earlier timestamps for later digits, so no two make a sequence).
// Each digit: three updates 20 ms apart, then three end packets; 100 ms
// between digits.
func rfc4733Capture(digits string) []byte {
	le, be := binary.LittleEndian, binary.BigEndian
	out := le.AppendUint32(nil, 0xa1b2c3d4)
	out = le.AppendUint16(out, 2)
	out = le.AppendUint16(out, 4)
	out = le.AppendUint32(out, 0) // thiszone
	out = le.AppendUint32(out, 0) // sigfigs
	out = le.AppendUint32(out, 65535)
	out = le.AppendUint32(out, 1) // Ethernet
	at := time.Duration(0)
	seq, ts := uint16(1000), uint32(16000)
	for _, d := range digits {
		code := byte(strings.IndexRune("0123456789*#ABCD", d))
		for i := range 6 {
			dur := uint16(160 * min(i+1, 4))
			flags := byte(10) // volume
			if i >= 3 {
				flags |= 0x80 // end
			}
			rtp := []byte{0x80, 101}
			if i == 0 {
				rtp[1] |= 0x80 // marker: a new event
			}
			rtp = be.AppendUint16(rtp, seq)
			rtp = be.AppendUint32(rtp, ts)
			rtp = be.AppendUint32(rtp, 0x5ca1ab1e)
			rtp = append(rtp, code, flags)
			rtp = be.AppendUint16(rtp, dur)
			udp := be.AppendUint16(nil, 40000)
			udp = be.AppendUint16(udp, 40002)
			udp = be.AppendUint16(udp, uint16(8+len(rtp)))
			udp = be.AppendUint16(udp, 0)
			udp = append(udp, rtp...)
			ip := []byte{0x45, 0}
			ip = be.AppendUint16(ip, uint16(20+len(udp)))
			ip = append(ip, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1)
			var sum uint32
			for i := 0; i < 20; i += 2 {
				sum += uint32(be.Uint16(ip[i:]))
			}
			for sum > 0xffff {
				sum = sum&0xffff + sum>>16
			}
			be.PutUint16(ip[10:], ^uint16(sum))
			frame := append(make([]byte, 12), 0x08, 0x00)
			frame = append(append(frame, ip...), udp...)
			out = le.AppendUint32(out, uint32(at/time.Second))
			out = le.AppendUint32(out, uint32(at%time.Second/time.Microsecond))
			out = le.AppendUint32(out, uint32(len(frame)))
			out = le.AppendUint32(out, uint32(len(frame)))
			out = append(out, frame...)
			seq++
			at += 20 * time.Millisecond
		}
		ts += 1600
		at += 100 * time.Millisecond
	}
	return out
}

// startSIPSwitchboard runs the real program with --sip-addr on a free
// port, one trunk (as --sip-trunk takes it) and its RTP legs on rtpPorts
// (empty: the default range), its history in a memory store, answered
// too, that outlives Close.
func startSIPSwitchboard(t *testing.T, trunk, rtpPorts string) (*Main, *store.Memory) {
	t.Helper()
	return startSIPTrunks(t, rtpPorts, trunk)
}

// startSIPTrunks is startSIPSwitchboard with any number of trunks.
func startSIPTrunks(t *testing.T, rtpPorts string, trunks ...string) (*Main, *store.Memory) {
	t.Helper()
	var trs []sip.Trunk
	for _, trunk := range trunks {
		tr, err := sip.ParseTrunk(trunk)
		if err != nil {
			t.Fatal(err)
		}
		trs = append(trs, tr)
	}
	history := store.NewMemory()
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute,
			Media: MediaConfig{Grace: time.Minute},
			SIP:   SIPConfig{Addr: "127.0.0.1:0", Trunks: trs, RTPPorts: rtpPorts}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
		Store: openMemory{history},
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	if m.SIPAddr == "" {
		t.Fatal("Main.SIPAddr is empty with --sip-addr set")
	}
	return m, history
}

// routeNumber routes calls to number to a user, through the API.
func routeNumber(t *testing.T, m *Main, number, user string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+m.Addr+"/api/numbers/"+number,
		strings.NewReader(`{"target": {"communicationUserId": "`+user+`"}}`))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := checkedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /api/numbers/%s: %d", number, resp.StatusCode)
	}
}

// online mints a token for user and opens its event stream, answering
// the token and the stream once its snapshot came (so calls reach it).
func online(t *testing.T, m *Main, user string, role calls.Role) (string, func() (map[string]any, error)) {
	t.Helper()
	token := mint(t, user, role)
	next, _ := openEvents(t, m.Addr, token)
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("%s's first event %v, %v", user, ev, err)
	}
	return token, next
}

// openMemory is a memory store whose Close leaves it readable, with its
// number routes.
type openMemory struct{ *store.Memory }

func (openMemory) Close(context.Context) error { return nil }

// TestSIPOutbound: an agent's call to a phone number through the API leaves
// through the trunk (sipp as the carrier, answering 486), and the call
// ends with 486 on the stream and in history.
func TestSIPOutbound(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	port := sippPort(t)
	m, history := startSIPSwitchboard(t, "carrier=sip:127.0.0.1:"+port, "")
	carrier := sippWith(t, "answers_busy.xml", "-p", port)
	alice, next := online(t, m, "alice", calls.RoleAgent)
	call := post(t, "http://"+m.Addr+"/api/calls", alice,
		`{"participants": [{"phoneNumber": "+14255550123"}], "alternateCallerId": {"phoneNumber": "+14255550100"}}`)
	id := call["id"].(string)
	wantReason(t, waitCallEnded(t, next, id), 486, 0)
	carrier()
	h, err := history.FindCallByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.Call.CallEndReason; r == nil || r.Code != 486 {
		t.Errorf("history has %+v, want 486", r)
	}
}

// TestSIPOfferRefused: the real RTP legs refuse an offer that is not SDP
// with 400 and a valid one without PCMU with 488 (sipp checks the status),
// and neither rings anyone.
func TestSIPOfferRefused(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	for _, scenario := range []string{"fails_400.xml", "fails_488.xml"} {
		t.Run(scenario, func(t *testing.T) {
			m, history := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "")
			routeNumber(t, m, "+14255550100", "alice")
			runSipp(t, scenario, "+14255550100", m.SIPAddr)()
			page, err := history.FindCalls(context.Background(), calls.CallFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 0 {
				t.Errorf("a refused offer made calls: %+v", page.Items)
			}
		})
	}
}
