package main

import (
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
	firstSnapshots(t, amyNext, sueNext)

	ctx, connect := softphones(t, base)
	cust, amy, sue := connect(custTok, monCustomerHz), connect(amyTok, monAgentHz), connect(sueTok, monSuperHz)

	amyCall := answered(t, ctx, base, cust, amy, monCustomerHz, monAgentHz, amyTok, amyNext)

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
