package main

import (
	"bytes"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// TestSIPPhoneHearsItIsMuted: a carrier calls in (sipp) with its audio at
// a UDP socket the test reads; once the agent answers and a supervisor
// mutes the phone, the phone hears the built-in announcement ("You are
// muted. To unmute, press star 6.") exactly once, every frame of it
// in order, byte for byte as µ-law (the agent is silent, so the prompt is
// all the phone hears), and never before it was muted.
func TestSIPPhoneHearsItIsMuted(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	m, _ := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "28150-28199")
	routeNumber(t, m, "+14255550100", "alice")
	alice, next := online(t, m, "alice", calls.RoleAgent)
	sup := mint(t, "sue", calls.RoleSupervisor)

	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	heard := &phoneEar{conn: phone}
	var wg sync.WaitGroup
	wg.Go(heard.listen)
	t.Cleanup(func() { phone.Close(); wg.Wait() })

	rtpPort := strconv.Itoa(phone.LocalAddr().(*net.UDPAddr).Port)
	carrier := sippWith(t, "carrier_listens.xml", "-set", "rtpport", rtpPort,
		"-s", "+14255550100", "-p", sippPort(t), m.SIPAddr)
	id := waitIncoming(t, next)
	post(t, "http://"+m.Addr+"/api/incoming-calls/"+id+"/accept", alice, "")
	time.Sleep(500 * time.Millisecond) // the phone hears the call before it is muted
	mutedAt := heard.frames()
	post(t, "http://"+m.Addr+"/api/calls/"+id+"/participants/"+url.PathEscape("4:+14255550123")+"/mute", sup, "")
	wantReason(t, waitCallEnded(t, next, id), 0, 5000)
	carrier()

	prompt := audio.MutedPrompt()
	want := make([]byte, 0, prompt.Len()*audio.FrameSamples)
	for i := range prompt.Len() {
		var b [audio.FrameSamples]byte
		audio.EncodeUlaw(b[:], prompt.Frame(i))
		want = append(want, b[:]...)
	}
	got := heard.ulaw()
	if mutedAt == 0 {
		t.Fatal("the phone heard no RTP before it was muted")
	}
	at := bytes.Index(got, want)
	switch {
	case at < 0:
		t.Fatalf("the phone never heard the whole muted prompt (%d frames) in %d frames of RTP", prompt.Len(), len(got)/audio.FrameSamples)
	case at/audio.FrameSamples < mutedAt:
		t.Errorf("the phone heard the muted prompt from frame %d, before it was muted at frame %d", at/audio.FrameSamples, mutedAt)
	case bytes.Contains(got[at+len(want):], want[:len(want)/2]):
		t.Errorf("the phone heard the muted prompt more than once")
	}
}

// phoneEar is a phone's RTP socket: it keeps the PCMU payloads it is sent.
type phoneEar struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  []byte // PCMU payloads, in order
}

func (e *phoneEar) listen() {
	buf := make([]byte, 1500)
	for {
		n, _, err := e.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil || p.PayloadType != 0 {
			continue
		}
		e.mu.Lock()
		e.got = append(e.got, p.Payload...)
		e.mu.Unlock()
	}
}

// frames is how many 20 ms frames the phone heard so far.
func (e *phoneEar) frames() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got) / audio.FrameSamples
}

func (e *phoneEar) ulaw() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return bytes.Clone(e.got)
}

// TestSIPTwoPhonesOneNumber: two calls come in at once from the same
// number (a PBX's main number, or a withheld one) to two agents. They are
// two phones: each hears its own agent and only that agent, and neither
// call ends the other (each call's RTP leg is its own endpoint in the
// mixer, not the number's).
func TestSIPTwoPhonesOneNumber(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	m, _ := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "28200-28249")
	agents := []struct {
		name, number string
		hz           float64
	}{{"alice", "+14255550100", 1000}, {"bob", "+14255550101", 600}}
	ears := make([]*phoneEar, len(agents))
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // last: after the sockets close
	for i, a := range agents {
		routeNumber(t, m, a.number, a.name)
		m.mixer.Attach(calls.CommunicationUser(a.name).RawID(), audio.NewMemoryEndpoint(audio.NewTone(a.hz, -20)))
		token, next := online(t, m, a.name, calls.RoleAgent)
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		ears[i] = &phoneEar{conn: conn}
		wg.Go(ears[i].listen)
		t.Cleanup(func() { conn.Close() })
		carrier := sippWith(t, "carrier_listens.xml", "-set", "rtpport", strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port),
			"-s", a.number, "-p", sippPort(t), m.SIPAddr)
		id := waitIncoming(t, next)
		post(t, "http://"+m.Addr+"/api/incoming-calls/"+id+"/accept", token, "")
		t.Cleanup(func() {
			wantReason(t, waitCallEnded(t, next, id), 0, 5000) // the carrier's BYE, not a lost leg (410)
			carrier()
		})
	}
	time.Sleep(2 * time.Second)
	for i, ear := range ears {
		frames := ear.ulaw()
		counts := map[float64]int{}
		n := len(frames) / audio.FrameSamples
		for j := range n {
			var f audio.Frame
			audio.DecodeUlaw(&f, frames[j*audio.FrameSamples:(j+1)*audio.FrameSamples])
			for _, a := range agents {
				if audio.ToneLevel(&f, a.hz) > toneLevel {
					counts[a.hz]++
				}
			}
		}
		own, other := agents[i], agents[1-i]
		if counts[own.hz] < n/3 || counts[other.hz] != 0 {
			t.Errorf("the phone that called %s heard %s's tone in %d and %s's in %d of %d frames; want most and none",
				own.name, own.name, counts[own.hz], other.name, counts[other.hz], n)
		}
	}
}
