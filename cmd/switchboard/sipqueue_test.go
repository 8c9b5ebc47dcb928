package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/sip"
	"github.com/switchboard/switchboard/internal/store"
)

// TestSIPQueue: sipp calls, as a carrier, a number routed to a queue, its
// audio at a UDP socket the test reads and talks from. The call is
// answered at once (200, no ringing needed); the phone hears the queue
// music and the position prompt while it waits; then, per case, an agent
// accepts the offer (the phone's tone reaches her through the RTP leg and
// the mixer, and her hang-up sends the phone BYE), or the phone hangs up
// while it waits (abandoned, the agent's offer withdrawn), or the queue's
// max wait ends it (BYE from the switchboard). The queue's stats add up
// to what happened.
func TestSIPQueue(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	const musicHz, phoneHz, voiceHz = 700, 1000, 1300
	tests := []struct {
		name     string
		scenario string
		maxWait  int
		agent    bool // alice is online and offered the call
		voice    bool // the position prompt in the operator's voice (--queue-prompts)
		accept   bool
		want     func(queue.Stats) bool
	}{
		{name: "answered by the agent, who hangs up", scenario: "queue_waits_for_bye.xml", agent: true, accept: true,
			want: func(s queue.Stats) bool {
				return s.Offered == 1 && s.Answered == 1 && s.Abandoned == 0 && s.TimedOut == 0
			}},
		{name: "the phone hangs up while it waits: abandoned", scenario: "queue_hangs_up.xml", agent: true,
			want: func(s queue.Stats) bool {
				return s.Offered == 1 && s.Answered == 0 && s.Abandoned == 1 && s.TimedOut == 0
			}},
		{name: "the max wait ends it: BYE; the prompt in the operator's voice", scenario: "queue_waits_for_bye.xml", maxWait: 4, voice: true,
			want: func(s queue.Stats) bool {
				return s.Offered == 0 && s.Answered == 0 && s.Abandoned == 0 && s.TimedOut == 1
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			music := writeToneWAV(t, t.TempDir(), musicHz, 2)
			ports := strconv.Itoa(28300+i*50) + "-" + strconv.Itoa(28349+i*50)
			hold := QueueHoldConfig{MusicWAV: music, PromptEvery: time.Minute}
			if tt.voice {
				hold.PromptsDir = writeVoice(t, voiceHz)
			}
			m := startSIPQueueSwitchboard(t, ports, hold)
			base := "http://" + m.Addr
			post(t, base+"/api/queues", testAdminKey, `{"name":"support","members":[{"agent":"8:acs:alice"}],"ringTimeoutSeconds":60,"maxWaitSeconds":`+strconv.Itoa(tt.maxWait)+`}`)
			routeNumberTo(t, m, "+14255550100", `{"queue": "support"}`)
			device := audio.NewMemoryEndpoint(nil)
			m.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)
			var alice string
			var next func() (map[string]any, error)
			if tt.agent {
				alice, next = online(t, m, "alice", calls.RoleAgent)
			}

			ear := listenPhone(t, phoneHz)
			carrier := sippWith(t, tt.scenario, "-set", "rtpport", strconv.Itoa(ear.port()),
				"-s", "+14255550100", "-p", sippPort(t), m.SIPAddr)
			waitStats(t, m, func(s queue.Stats) bool { return s.Waiting == 1 || s.Abandoned+s.TimedOut > 0 })

			// While it waits: the music, and the prompt (frames of sound
			// that are not the music).
			heard := func() (musicFrames, prompt int) {
				for _, f := range ear.heard() {
					switch {
					case audio.ToneLevel(&f, musicHz) > toneLevel:
						musicFrames++
					case f.DBov() > -45:
						prompt++
					}
				}
				return musicFrames, prompt
			}
			if !within(10*time.Second, func() bool { mu, pr := heard(); return mu >= 25 && pr >= 25 }) {
				mu, pr := heard()
				t.Fatalf("the waiting phone heard %d frames of the music and %d of the prompt, want 25 of each", mu, pr)
			}
			if tt.voice {
				if n := countTone(ear.heard(), voiceHz); n < 25 {
					t.Errorf("the phone heard the operator's voice (%v Hz) in %d frames, want 25", float64(voiceHz), n)
				}
			}
			if tt.agent {
				id := waitIncoming(t, next)
				if tt.accept {
					post(t, base+"/api/incoming-calls/"+id+"/accept", alice, "")
					at := device.Played()
					if !within(10*time.Second, func() bool {
						fs, _ := device.Heard(at)
						return countTone(fs, phoneHz) >= 25
					}) {
						t.Error("the agent never heard the phone's tone")
					}
					post(t, base+"/api/calls/"+id+"/hangup", alice, "")
				}
				waitCallEnded(t, next, id) // hung up, or withdrawn as the phone hung up
			}
			carrier()
			waitStats(t, m, func(s queue.Stats) bool { return s.Waiting == 0 && tt.want(s) })
		})
	}
}

// writeVoice writes a position-prompt voice for --queue-prompts: each
// piece (caller.wav, 0.wav ... 20.wav) one second of a tone of hz.
func writeVoice(t *testing.T, hz float64) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"caller", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
		"11", "12", "13", "14", "15", "16", "17", "18", "19", "20"} {
		if err := os.Rename(writeToneWAV(t, dir, hz, 1), filepath.Join(dir, name+".wav")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSIPQueueManyCallers: sipp places 100 calls at once to a number
// routed to a queue of 10 agents, who accept each offer and hang up (no
// wrap-up). Every call is answered by 200 at once, offered to an agent
// that is free, answered, and ended by the agent's hang-up with a BYE that
// sipp answers; each agent takes some; the stats add up.
func TestSIPQueueManyCallers(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	const nAgents, nCalls = 10, 100
	m := startSIPQueueSwitchboard(t, "28500-28799", QueueHoldConfig{PromptEvery: time.Minute})
	base := "http://" + m.Addr
	var members []string
	for i := range nAgents {
		members = append(members, `{"agent":"8:acs:agent`+strconv.Itoa(i)+`"}`)
	}
	post(t, base+"/api/queues", testAdminKey, `{"name":"support","ringTimeoutSeconds":30,"members":[`+strings.Join(members, ",")+`]}`)
	routeNumberTo(t, m, "+14255550100", `{"queue": "support"}`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel
	taken := make([]int, nAgents)
	for i := range nAgents {
		tok := mint(t, "agent"+strconv.Itoa(i), calls.RoleAgent)
		events := eventChan(t, m.Addr, tok)
		if ev := <-events; ev["type"] != "snapshot" {
			t.Fatalf("agent%d's first event: %v", i, ev)
		}
		wg.Go(func() { // accepts each offer and hangs up, until ctx ends
			for {
				var ev map[string]any
				var open bool
				select {
				case <-ctx.Done():
					return
				case ev, open = <-events:
				}
				if !open {
					return
				}
				if ev["type"] != "incomingCall" {
					continue
				}
				id := ev["callId"].(string)
				for _, op := range []string{"/api/incoming-calls/" + id + "/accept", "/api/calls/" + id + "/hangup"} {
					resp, err := apiPost(base+op, tok)
					if err != nil || resp >= 300 {
						t.Errorf("agent%d: POST %s: %d %v", i, op, resp, err)
					}
				}
				taken[i]++
			}
		})
	}
	ear := listenPhone(t, 1000)
	carrier := sippRunCalls(t, "queue_waits_for_bye.xml", nil, nCalls, "-set", "rtpport", strconv.Itoa(ear.port()),
		"-s", "+14255550100", "-p", sippPort(t), m.SIPAddr)
	carrier() // every call answered 200, then BYE from the switchboard
	waitStats(t, m, func(s queue.Stats) bool {
		return s.Waiting == 0 && s.Offered == nCalls && s.Answered == nCalls && s.Abandoned == 0 && s.TimedOut == 0
	})
	cancel()
	wg.Wait()
	total := 0
	for i, n := range taken {
		if n == 0 {
			t.Errorf("agent%d took no call", i)
		}
		total += n
	}
	if total != nCalls {
		t.Errorf("the agents took %d calls, want %d", total, nCalls)
	}
}

// apiPost sends a POST with the token from any goroutine (no t.Fatal),
// answering the status.
func apiPost(url, token string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(""))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := checkedClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// startSIPQueueSwitchboard is startSIPSwitchboard with queue music;
// configure, if any, changes its Config before it starts.
func startSIPQueueSwitchboard(t *testing.T, rtpPorts string, hold QueueHoldConfig, configure ...func(*Config)) *Main {
	t.Helper()
	tr, err := sip.ParseTrunk("carrier=sip:127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute,
			Media: MediaConfig{Grace: time.Minute, QueueHold: hold},
			SIP:   SIPConfig{Addr: "127.0.0.1:0", Trunks: []sip.Trunk{tr}, RTPPorts: rtpPorts}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
		Store: openMemory{store.NewMemory()},
	}
	for _, c := range configure {
		c(&m.Config)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// routeNumberTo routes number as the JSON route says, through the API.
func routeNumberTo(t *testing.T, m *Main, number, route string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+m.Addr+"/api/numbers/"+number, strings.NewReader(route))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := checkedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		t.Fatalf("PUT /api/numbers/%s: %d %v", number, resp.StatusCode, body)
	}
}

// talkingPhone is a phone's RTP socket: it keeps the PCMU it hears and,
// once it heard from the switchboard, sends it a tone (symmetric RTP: from
// the address the switchboard sends to).
type talkingPhone struct {
	conn *net.UDPConn
	hz   float64
	mu   sync.Mutex
	got  []audio.Frame
	peer *net.UDPAddr
}

// listenPhone opens a phone's socket that talks a tone of hz; the test's
// cleanup closes it.
func listenPhone(t *testing.T, hz float64) *talkingPhone {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &talkingPhone{conn: conn, hz: hz}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(p.listen)
	wg.Go(func() { p.talk(stop) })
	t.Cleanup(func() { close(stop); conn.Close(); wg.Wait() })
	return p
}

func (p *talkingPhone) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *talkingPhone) listen() {
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != 0 || len(pkt.Payload) != audio.FrameSamples {
			continue
		}
		var f audio.Frame
		audio.DecodeUlaw(&f, pkt.Payload)
		p.mu.Lock()
		p.got = append(p.got, f)
		p.peer = from
		p.mu.Unlock()
	}
}

// talk sends the tone every 20 ms to where the switchboard sends from.
func (p *talkingPhone) talk(stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	src := audio.NewTone(p.hz, -20)
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0x5107e, PayloadType: 0}}
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		peer := p.peer
		p.mu.Unlock()
		if peer == nil {
			continue
		}
		var f audio.Frame
		src.Next(&f)
		payload := make([]byte, audio.FrameSamples)
		audio.EncodeUlaw(payload, &f)
		pkt.Payload = payload
		pkt.SequenceNumber++
		pkt.Timestamp += audio.FrameSamples
		b, err := pkt.Marshal()
		if err != nil {
			return
		}
		_, _ = p.conn.WriteToUDP(b, peer)
	}
}

// heard is every frame the phone heard so far.
func (p *talkingPhone) heard() []audio.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]audio.Frame(nil), p.got...)
}
