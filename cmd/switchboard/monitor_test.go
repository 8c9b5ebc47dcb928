package main

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
)

// The tones of the monitor test: the customer's (A), the agent's (B) and
// the supervisor's (C).
const (
	monCustomerHz = 400
	monAgentHz    = 1000
	monSuperHz    = 600
)

// framesSince is what p heard from time from on.
func framesSince(p *phone.Phone, from time.Time) []audio.Frame {
	var out []audio.Frame
	for _, h := range p.Heard() {
		if !h.At.Before(from) {
			out = append(out, h.Frame)
		}
	}
	return out
}

// phoneHears waits up to 5 s for a second of frames on p, heard after
// from, of which at least 40 (want) or at most 2 (!want) carry hz.
func phoneHears(p *phone.Phone, from time.Time, hz float64, want bool) bool {
	return within(5*time.Second, func() bool {
		heard := framesSince(p, from)
		if len(heard) < 50 {
			return false
		}
		n := countTone(heard[len(heard)-50:], hz)
		if want {
			return n >= 40
		}
		return n <= 2
	})
}

// monFramesUntil counts the frames p heard from from on before the first
// that carries hz (present) or lacks it (absent): how long a switch took
// to be heard, in 20 ms frames; -1 if it never was.
func monFramesUntil(p *phone.Phone, from time.Time, hz float64, present bool) int {
	for i, f := range framesSince(p, from) {
		if (audio.ToneLevel(&f, hz) > toneLevel) == present {
			return i
		}
	}
	return -1
}

// TestMonitorMedia is the per-frame proof of listen, whisper and barge,
// with three pion WebRTC softphones: the customer speaks tone A, the agent
// B, the supervisor C (Goertzel per 20 ms frame, audio.ToneLevel). In
// listen the supervisor hears A and B and nobody hears C; in whisper the
// agent hears C and the customer never does; in barge both do; each
// switch, live on the same leg, is heard within a few frames; after she
// leaves nobody hears C and the call goes on.
func TestMonitorMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 10 s")
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	custTok := mint(t, "cust", calls.RoleCaller)
	amyTok := mint(t, "amy", calls.RoleAgent)
	sueTok := mint(t, "sue", calls.RoleSupervisor)
	amyNext, _ := openEvents(t, m.Addr, amyTok)
	sueNext, _ := openEvents(t, m.Addr, sueTok)
	for _, next := range []func() (map[string]any, error){amyNext, sueNext} {
		if ev, err := next(); err != nil || ev["type"] != "snapshot" {
			t.Fatalf("first event %v, %v", ev, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	engine := phoneEngine(t)
	var phones []*phone.Phone
	done := make(chan struct{}, 3)
	defer func() {
		cancel()
		for range phones {
			<-done
		}
		for _, p := range phones {
			p.Close()
		}
	}()
	connect := func(tok string, hz float64) *phone.Phone {
		p, err := phone.Connect(ctx, engine, base, tok, phone.Options{Mic: audio.NewTone(hz, -20), KeepHeard: true})
		if err != nil {
			t.Fatal(err)
		}
		phones = append(phones, p)
		go func() { p.Run(ctx); done <- struct{}{} }()
		return p
	}
	cust, amy, sue := connect(custTok, monCustomerHz), connect(amyTok, monAgentHz), connect(sueTok, monSuperHz)

	if _, err := cust.Call(ctx, "8:acs:amy"); err != nil {
		t.Fatal(err)
	}
	amyCall := waitIncoming(t, amyNext)
	post(t, base+"/api/incoming-calls/"+amyCall+"/accept", amyTok, "")
	start := time.Now()
	if !phoneHears(cust, start, monAgentHz, true) || !phoneHears(amy, start, monCustomerHz, true) {
		t.Fatal("the customer and the agent do not hear each other")
	}

	monitor := func(mode calls.MonitorMode) time.Time {
		t.Helper()
		res := post(t, base+"/api/calls/"+amyCall+"/monitor", sueTok, `{"mode":"`+string(mode)+`"}`)
		if res["monitorMode"] != string(mode) || res["state"] != "Connected" {
			t.Fatalf("monitor %s: %v", mode, res)
		}
		return time.Now()
	}
	var figures []string
	took := func(what string, p *phone.Phone, from time.Time, hz float64, present bool) {
		figures = append(figures, what+" "+strconv.Itoa(monFramesUntil(p, from, hz, present)))
	}

	// Listen: she hears A and B; nobody hears C.
	listenAt := monitor(calls.MonitorListen)
	if !phoneHears(sue, listenAt, monCustomerHz, true) || !phoneHears(sue, listenAt, monAgentHz, true) {
		t.Fatal("listening, the supervisor does not hear both the customer and the agent")
	}
	if !phoneHears(amy, listenAt, monSuperHz, false) || !phoneHears(cust, listenAt, monSuperHz, false) {
		t.Fatal("someone hears the supervisor while she listens")
	}
	if !phoneHears(amy, listenAt, monCustomerHz, true) || !phoneHears(cust, listenAt, monAgentHz, true) {
		t.Fatal("the customer and the agent stopped hearing each other once she listens")
	}

	// Whisper: the agent hears C, the customer does not.
	whisperAt := monitor(calls.MonitorWhisper)
	if !phoneHears(amy, whisperAt, monSuperHz, true) {
		t.Fatal("the agent does not hear the supervisor's whisper")
	}
	took("whisper reached the agent after", amy, whisperAt, monSuperHz, true)
	if !phoneHears(amy, whisperAt, monCustomerHz, true) || !phoneHears(sue, whisperAt, monCustomerHz, true) {
		t.Fatal("during the whisper the agent or the supervisor lost the customer")
	}

	// Barge: everyone hears C. Until then, not one frame the customer
	// heard carried it.
	bargeAt := monitor(calls.MonitorBarge)
	var custBefore []audio.Frame
	for _, h := range cust.Heard() {
		if h.At.Before(bargeAt) {
			custBefore = append(custBefore, h.Frame)
		}
	}
	if n := countTone(custBefore, monSuperHz); n > 0 {
		t.Errorf("the customer heard the supervisor in %d of %d frames before she barged (listen and whisper)", n, len(custBefore))
	}
	if !phoneHears(cust, bargeAt, monSuperHz, true) || !phoneHears(amy, bargeAt, monSuperHz, true) {
		t.Fatal("after barging, the customer or the agent does not hear the supervisor")
	}
	took("barge reached the customer after", cust, bargeAt, monSuperHz, true)

	// Back to whisper, live: the customer stops hearing C, the agent not.
	backAt := monitor(calls.MonitorWhisper)
	if !phoneHears(cust, backAt, monSuperHz, false) {
		t.Fatal("the customer still hears the supervisor after she went back to whisper")
	}
	took("whisper again left the customer after", cust, backAt, monSuperHz, false)
	if !phoneHears(amy, backAt, monSuperHz, true) {
		t.Fatal("the agent stopped hearing the whisper")
	}

	// She leaves: nobody hears C, the customer and the agent go on.
	req, err := http.NewRequest(http.MethodDelete, base+"/api/calls/"+amyCall+"/monitor", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+sueTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE monitor: %d", resp.StatusCode)
	}
	leftAt := time.Now()
	if !phoneHears(amy, leftAt, monSuperHz, false) || !phoneHears(cust, leftAt, monAgentHz, true) || !phoneHears(amy, leftAt, monCustomerHz, true) {
		t.Fatal("after she left, the agent still hears her or the call stopped")
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("frames (20 ms) from the API's answer to the change heard: %s; load average %s",
		strings.Join(figures, ", "), strings.TrimSpace(string(load)))
}
