package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// TestSIPCallsBaresip: an agent calls a phone number that leaves through
// a trunk to baresip, a real phone, which answers by itself. While the call
// is active each side hears the other's tone; holding it sends the phone a
// re-INVITE with sendonly and the phone hears the hold tone; resumed, then
// held again by a second call the agent starts (the single-active rule),
// the agent no longer hears the phone. The agent hangs both up, and the
// phone's call ends with a BYE; history has the end reasons.
func TestSIPCallsBaresip(t *testing.T) {
	phone := startBaresip(t, "+14255550123")
	m, _ := startSIPSwitchboard(t, "phone=sip:"+phone.sipAddr, "28000-28049")
	device := audio.NewMemoryEndpoint(audio.NewTone(agentHz, -20))
	m.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)
	alice, next := online(t, m, "alice", calls.RoleAgent)
	base := "http://" + m.Addr + "/api/calls"

	call := post(t, base, alice, `{"participants": [{"phoneNumber": "+14255550123"}], "alternateCallerId": {"phoneNumber": "+14255550100"}}`)
	id := call["id"].(string)
	waitState(t, base+"/"+id, alice, "Connected")
	phone.waitEvent(t, "CALL_ESTABLISHED", 1)
	if !hearsTone(device, phoneHz) {
		t.Fatal("with the phone call active, alice did not hear the phone's tone in most frames of a second")
	}
	phone.waitHeard(t, "alice's tone", agentHz, 25)

	post(t, base+"/"+id+"/hold", alice, "")
	waitState(t, base+"/"+id, alice, "LocalHold")
	if !within(5*time.Second, func() bool { return phone.reinvites("a=sendonly") >= 1 }) {
		t.Fatal("holding the call sent the phone no re-INVITE with a=sendonly")
	}
	phone.waitHeard(t, "the hold tone", audio.HoldToneHz, 15) // one beep is 15 frames

	post(t, base+"/"+id+"/resume", alice, "")
	waitState(t, base+"/"+id, alice, "Connected")
	if !within(5*time.Second, func() bool { return phone.reinvites("a=sendrecv") >= 1 }) {
		t.Fatal("resuming the call sent the phone no re-INVITE with a=sendrecv")
	}
	if !hearsTone(device, phoneHz) {
		t.Fatal("with the phone call resumed, alice did not hear the phone's tone in most frames of a second")
	}

	// A second call holds the phone's: alice hears it no more.
	echo := post(t, base, alice, `{"participants": [{"id": "8:echo123"}]}`)["id"].(string)
	waitState(t, base+"/"+id, alice, "LocalHold")
	from := device.Played()
	if !within(5*time.Second, func() bool { return phone.reinvites("a=sendonly") >= 2 }) {
		t.Fatal("the second call sent the phone no re-INVITE with a=sendonly")
	}
	var heard []audio.Frame
	within(5*time.Second, func() bool { heard, _ = device.Heard(from); return len(heard) >= 60 })
	if len(heard) < 60 {
		t.Fatalf("alice's device got %d frames in 5 s", len(heard))
	}
	// The first frames may be the mixer's last tick before the switch.
	if n := countTone(heard[5:], phoneHz); n != 0 {
		t.Errorf("with the phone call held by the second call, alice heard the phone's tone in %d of %d frames, want none", n, len(heard)-5)
	}

	post(t, base+"/"+echo+"/hangup", alice, `{"forEveryone": true}`)
	post(t, base+"/"+id+"/hangup", alice, `{"forEveryone": true}`)
	phone.waitEvent(t, "CALL_CLOSED", 1)
	reasons := map[string]map[string]any{}
	for len(reasons) < 2 {
		ev, err := next()
		if err != nil {
			t.Fatalf("event stream ended before both calls ended: %v", err)
		}
		if ev["type"] == "callEnded" {
			reasons[ev["callId"].(string)] = ev["data"].(map[string]any)["callEndReason"].(map[string]any)
		}
	}
	for _, c := range []string{id, echo} {
		wantReason(t, reasons[c], 0, 0)
		wantReason(t, historyCall(t, m, alice, c)["callEndReason"].(map[string]any), 0, 0)
	}
	if ps := historyCall(t, m, alice, id)["remoteParticipants"].([]any); len(ps) != 1 || ps[0].(map[string]any)["rawId"] != "4:+14255550123" {
		t.Errorf("history's participants %v, want the phone number", ps)
	}
}

// historyCall is a call as GET /api/history/calls/{id} answers it.
func historyCall(t *testing.T, m *Main, token, id string) map[string]any {
	t.Helper()
	code, body := get(t, "http://"+m.Addr+"/api/history/calls/"+id, token)
	var h struct{ Call map[string]any }
	if err := json.Unmarshal(body, &h); code != 200 || err != nil || h.Call == nil {
		t.Fatalf("GET /api/history/calls/%s: %d %s", id, code, body)
	}
	return h.Call
}

// TestSIPBaresipCallsIn: baresip dials a number routed to an agent; the
// agent accepts and each side hears the other's tone. The phone holds the
// call (RemoteHold: the agent hears the hold tone) and resumes it; muted by a supervisor, it keys *6 and
// is unmuted. baresip hangs up: the call ends 0/5000 (the phone hung up),
// on the stream and in history.
func TestSIPBaresipCallsIn(t *testing.T) {
	phone := startBaresip(t, "+14255550123")
	m, _ := startSIPSwitchboard(t, "phone=sip:127.0.0.1", "28050-28099")
	routeNumber(t, m, "+14255550100", "alice")
	device := audio.NewMemoryEndpoint(audio.NewTone(agentHz, -20))
	m.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)
	alice, next := online(t, m, "alice", calls.RoleAgent)

	phone.command(t, "dial", "sip:+14255550100@"+m.SIPAddr)
	id := waitIncoming(t, next)
	call := post(t, "http://"+m.Addr+"/api/incoming-calls/"+id+"/accept", alice, "")
	if call["state"] != "Connected" {
		t.Errorf("accepted call is %v, want Connected", call["state"])
	}
	if from, _ := call["callerInfo"].(map[string]any)["identifier"].(map[string]any); from["phoneNumber"] != "+14255550123" {
		t.Errorf("the call is from %v, want phoneNumber +14255550123", from)
	}
	phone.waitEvent(t, "CALL_ESTABLISHED", 1)
	if !hearsTone(device, phoneHz) {
		t.Fatal("alice did not hear the phone's tone in most frames of a second")
	}
	phone.waitHeard(t, "alice's tone", agentHz, 25)

	// The phone holds the call and resumes it.
	url := "http://" + m.Addr + "/api/calls/" + id
	phone.command(t, "hold", "")
	waitState(t, url, alice, "RemoteHold")
	from := device.Played()
	var held int
	if !within(8*time.Second, func() bool {
		heard, _ := device.Heard(from)
		held = countTone(heard, audio.HoldToneHz)
		return held >= 15 // one beep
	}) {
		t.Fatalf("with the call held by the phone, alice heard the hold tone in %d frames, want 15 or more", held)
	}
	phone.command(t, "resume", "")
	waitState(t, url, alice, "Connected")
	if !hearsTone(device, phoneHz) {
		t.Fatal("once the phone resumed, alice did not hear its tone in most frames of a second")
	}

	// Muted by a supervisor, the phone keys *6 (RFC 4733) and is unmuted.
	sup := mint(t, "sue", calls.RoleSupervisor)
	post(t, url+"/participants/"+neturl.PathEscape("4:+14255550123")+"/mute", sup, "")
	phone.command(t, "sndcode", "*6")
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("no isMutedChanged unmuting the phone: %v", err)
		}
		if ev["type"] != "isMutedChanged" || ev["data"].(map[string]any)["isMuted"] == true {
			continue
		}
		if actor, _ := ev["actor"].(map[string]any); actor == nil || actor["rawId"] != "4:+14255550123" {
			t.Errorf("the phone was unmuted by %v, want the phone itself", ev["actor"])
		}
		break
	}

	phone.command(t, "hangup", "")
	wantReason(t, waitCallEnded(t, next, id), 0, 5000)
	phone.waitEvent(t, "CALL_CLOSED", 1)
	wantReason(t, historyCall(t, m, alice, id)["callEndReason"].(map[string]any), 0, 5000)
	if ps := historyCall(t, m, alice, id)["remoteParticipants"].([]any); len(ps) != 1 || ps[0].(map[string]any)["rawId"] != "4:+14255550123" {
		t.Errorf("history's participants %v, want the phone number", ps)
	}
}

// hearsTone waits up to 5 s for a second of frames on the device most of
// which carry a tone at hz.
func hearsTone(device *audio.MemoryEndpoint, hz float64) bool {
	from := device.Played()
	return within(5*time.Second, func() bool {
		heard, _ := device.Heard(from)
		if len(heard) < 50 {
			return false
		}
		return countTone(heard[len(heard)-50:], hz) >= 40
	})
}

// waitState polls a call until it is in state.
func waitState(t *testing.T, url, token, state string) {
	t.Helper()
	var last string
	if !within(10*time.Second, func() bool {
		code, body := get(t, url, token)
		var c map[string]any
		if code != 200 || json.Unmarshal(body, &c) != nil {
			last = fmt.Sprintf("%d %s", code, body)
			return false
		}
		last, _ = c["state"].(string)
		return last == state
	}) {
		t.Fatalf("call %s is %s, want %s", url, last, state)
	}
}

// baresip is a real SIP phone (Debian's baresip 1.0.0) for the interop
// tests: it speaks a tone from a WAV file (module aufile), records what it
// hears (module sndfile), answers calls by itself and takes commands over
// ctrl_tcp. Its SIP trace (-s) is kept, to see what it was sent.
type baresip struct {
	sipAddr string // where it listens for SIP, UDP and TCP
	rec     string // sndfile's directory

	mu     sync.Mutex
	out    bytes.Buffer     // stdout and stderr: the SIP trace, its log
	events []map[string]any // ctrl_tcp's events and answers
	sent   int              // commands sent
	ctrl   net.Conn
}

// Tones of the interop tests: the phone speaks phoneHz, the agent agentHz.
const (
	phoneHz = 800
	agentHz = 600
)

// startBaresip runs baresip with a fresh configuration as the account
// sip:user@127.0.0.1, answering calls at once, and waits until it is
// ready. The test's cleanup stops it.
func startBaresip(t *testing.T, user string) *baresip {
	t.Helper()
	if _, err := exec.LookPath("baresip"); err != nil {
		t.Skip("baresip is not installed (Debian package baresip)")
	}
	modules := "/usr/lib/baresip/modules"
	if _, err := os.Stat(filepath.Join(modules, "sndfile.so")); err != nil {
		t.Skipf("baresip's modules are not in %s: %v", modules, err)
	}
	dir := t.TempDir()
	b := &baresip{
		sipAddr: "127.0.0.1:" + strconv.Itoa(int(freeUDPTCPPort(t))),
		rec:     filepath.Join(dir, "rec"),
	}
	if err := os.Mkdir(b.rec, 0o755); err != nil {
		t.Fatal(err)
	}
	tone := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(tone, toneWAV(phoneHz, 30*time.Second), 0o644); err != nil {
		t.Fatal(err)
	}
	ctrlAddr := freeTCPAddr(t)
	config := strings.Join([]string{
		"poll_method epoll",
		"sip_listen " + b.sipAddr,
		"audio_player",
		"audio_source aufile," + tone,
		"audio_alert",
		"module_path " + modules,
		"module g711.so",
		"module aufile.so",
		"module sndfile.so",
		"module account.so",
		"module menu.so",
		"module ctrl_tcp.so",
		"ctrl_tcp_listen " + ctrlAddr,
		"snd_path " + b.rec,
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	account := "<sip:" + user + "@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMU\n"
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account), 0o644); err != nil {
		t.Fatal(err)
	}
	// sndfile records both ways, to dump-<local time to the second>-enc.wav
	// and -dec.wav, when the call's audio-filter chain is set up. A
	// re-INVITE (hold, resume) drops baresip 1.0.0's decoder side of the
	// chain, and it sets the chain up again only when both sides are
	// empty: the phone's recording would stop at the first hold.
	// Directories in the way of the -enc.wav names (TZ=UTC makes them
	// predictable) keep the encoder side empty, so each re-INVITE starts
	// a new -dec.wav recording.
	now := time.Now().UTC()
	for i := -2; i < 180; i++ {
		name := now.Add(time.Duration(i) * time.Second).Format("dump-2006-01-02-15-04-05-enc.wav")
		if err := os.Mkdir(filepath.Join(b.rec, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("baresip", "-4", "-s", "-f", dir)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdout, cmd.Stderr = lockedWriter{b}, lockedWriter{b}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("baresip's output:\n%s", b.output())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", ctrlAddr)
		if err == nil {
			b.ctrl = conn
			break
		}
		select {
		case <-done:
			t.Fatalf("baresip exited: %s", b.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip's ctrl_tcp did not listen on %s: %v", ctrlAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { b.ctrl.Close() })
	go b.readCtrl()
	return b
}

// lockedWriter appends to baresip's output.
type lockedWriter struct{ b *baresip }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.b.mu.Lock()
	defer w.b.mu.Unlock()
	return w.b.out.Write(p)
}

func (b *baresip) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// readCtrl keeps ctrl_tcp's messages (netstrings of JSON) until the
// connection closes.
func (b *baresip) readCtrl() {
	r := bufio.NewReader(b.ctrl)
	for {
		n, err := r.ReadString(':')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, ":"))
		if err != nil {
			return
		}
		msg := make([]byte, size+1) // and the ','
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(msg[:size], &m) == nil {
			b.mu.Lock()
			b.events = append(b.events, m)
			b.mu.Unlock()
		}
	}
}

// command runs a command (as menu names them: dial, hangup) by ctrl_tcp
// and waits for baresip's answer, which must be ok.
func (b *baresip) command(t *testing.T, command, params string) {
	t.Helper()
	b.mu.Lock()
	b.sent++
	token := command + "-" + strconv.Itoa(b.sent)
	b.mu.Unlock()
	msg, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if _, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(msg), msg); err != nil {
		t.Fatalf("baresip %s: %v", command, err)
	}
	var answer map[string]any
	if !within(10*time.Second, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, m := range b.events {
			if m["response"] == true && m["token"] == token {
				answer = m
			}
		}
		return answer != nil
	}) {
		t.Fatalf("baresip did not answer %s in 10 s", command)
	}
	if answer["ok"] != true {
		t.Fatalf("baresip %s %s: %v", command, params, answer)
	}
}

// waitEvent waits until ctrl_tcp has reported n events of this type
// (CALL_ESTABLISHED, CALL_CLOSED).
func (b *baresip) waitEvent(t *testing.T, typ string, n int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		var seen []map[string]any
		for _, e := range b.events {
			if e["type"] == typ {
				seen = append(seen, e)
			}
		}
		b.mu.Unlock()
		if len(seen) >= n {
			return seen[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip reported %d %s events in 10 s, want %d", len(seen), typ, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHeard waits up to 8 s until baresip's recordings have at least n
// frames carrying a tone at hz.
func (b *baresip) waitHeard(t *testing.T, what string, hz float64, n int) {
	t.Helper()
	var got int
	if !within(8*time.Second, func() bool { got = countTone(b.recorded(t), hz); return got >= n }) {
		t.Fatalf("the phone heard %s (%v Hz) in %d frames, want %d or more", what, hz, got, n)
	}
}

// reinvites counts the re-INVITEs baresip was sent (its SIP trace) whose
// SDP has this line.
func (b *baresip) reinvites(line string) int {
	n := 0
	for _, msg := range strings.Split(b.output(), "\nINVITE sip:")[1:] {
		msg, _, _ = strings.Cut(msg, "\x1b[;m") // the trace's end of a message
		_, to, _ := strings.Cut(msg, "\nTo: ")
		to, _, _ = strings.Cut(to, "\n")
		if strings.Contains(to, ";tag=") && strings.Contains(msg, "\n"+line) {
			n++
		}
	}
	return n
}

// recorded is what baresip heard, frame by frame: the files sndfile wrote
// of decoded audio, oldest first.
func (b *baresip) recorded(t *testing.T) []audio.Frame {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(b.rec, "dump-*-dec.wav"))
	if err != nil {
		t.Fatal(err)
	}
	var frames []audio.Frame
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// The header's sizes are written at close; find the samples.
		i := bytes.Index(data, []byte("data"))
		if i < 0 || i+8 > len(data) {
			continue
		}
		pcm := data[i+8:]
		for len(pcm) >= 2*audio.FrameSamples {
			var fr audio.Frame
			for j := range fr {
				fr[j] = int16(binary.LittleEndian.Uint16(pcm[2*j:]))
			}
			frames = append(frames, fr)
			pcm = pcm[2*audio.FrameSamples:]
		}
	}
	return frames
}

// toneWAV is a WAV file (8 kHz, mono, 16 bits) of a tone at -20 dBov.
func toneWAV(hz float64, d time.Duration) []byte {
	src := audio.NewTone(hz, -20)
	var pcm []byte
	for range int(d / (20 * time.Millisecond)) {
		var f audio.Frame
		src.Next(&f)
		for _, s := range f {
			pcm = binary.LittleEndian.AppendUint16(pcm, uint16(s))
		}
	}
	le := binary.LittleEndian
	out := append([]byte("RIFF"), 0, 0, 0, 0)
	le.PutUint32(out[4:], uint32(36+len(pcm)))
	out = append(out, "WAVEfmt "...)
	out = le.AppendUint32(out, 16)
	out = le.AppendUint16(out, 1) // PCM
	out = le.AppendUint16(out, 1) // mono
	out = le.AppendUint32(out, audio.SampleRate)
	out = le.AppendUint32(out, 2*audio.SampleRate)
	out = le.AppendUint16(out, 2)
	out = le.AppendUint16(out, 16)
	out = append(out, "data"...)
	out = le.AppendUint32(out, uint32(len(pcm)))
	return append(out, pcm...)
}

// freeTCPAddr is a loopback TCP address that was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// countTone counts the frames carrying a tone at hz.
func countTone(frames []audio.Frame, hz float64) int {
	n := 0
	for i := range frames {
		if audio.ToneLevel(&frames[i], hz) > toneLevel {
			n++
		}
	}
	return n
}

// within polls cond every 20 ms until it holds or d passes.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
