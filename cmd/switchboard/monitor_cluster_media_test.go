package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
)

// TestClusterMonitorMedia is TestMonitorMedia's per-frame proof across
// nodes: the customer and the agent amy are on node a, the supervisor sue
// on node b, each with a pion WebRTC softphone on their own node, and
// sue's audio crosses between the nodes in her monitor leg's stand-in
// (Goertzel per 20 ms frame, audio.ToneLevel). In listen she hears the
// customer (A) and amy (B) and nobody hears her (C); in whisper amy hears
// C and the customer never does; in barge both do; each switch, live on
// the same leg, is heard; after she leaves nobody hears C. The customer's
// timeline never shows a monitor notice, nor sue before she barged. She
// monitors again, amy hangs up: sue's leg on b ends with the call.
func TestClusterMonitorMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media across nodes end to end: about 15 s")
	}
	cl := newTestCluster(t)
	withMedia := func(cfg *Config) { cfg.Media = MediaConfig{Grace: time.Minute} }
	a, b := cl.startWith("a", withMedia), cl.startWith("b", withMedia)
	baseA, baseB := "http://"+a.Addr, "http://"+b.Addr
	custTok := mint(t, "cust", calls.RoleCaller)
	amyTok, amyNext := online(t, a, "amy", calls.RoleAgent)
	sueTok, sueNext := online(t, b, "sue", calls.RoleSupervisor)

	ctx, connectA := softphones(t, baseA)
	_, connectB := softphones(t, baseB)
	cust, amy := connectA(custTok, monCustomerHz), connectA(amyTok, monAgentHz)
	sue := connectB(sueTok, monSuperHz)

	custCall, err := cust.Call(ctx, "8:acs:amy")
	if err != nil {
		t.Fatal(err)
	}
	amyCall := waitIncoming(t, amyNext)
	post(t, baseA+"/api/incoming-calls/"+amyCall+"/accept", amyTok, "")
	start := time.Now()
	if !phoneHears(cust, start, monAgentHz, true) || !phoneHears(amy, start, monCustomerHz, true) {
		t.Fatal("the customer and the agent do not hear each other")
	}

	var sueLeg string
	monitor := func(base string, mode calls.MonitorMode) time.Time {
		t.Helper()
		res := post(t, base+"/api/calls/"+amyCall+"/monitor", sueTok, `{"mode":"`+string(mode)+`"}`)
		if res["monitorMode"] != string(mode) || res["state"] != "Connected" || res["monitoredCallId"] != amyCall {
			t.Fatalf("monitor %s: %v", mode, res)
		}
		if id, _ := res["id"].(string); sueLeg == "" {
			sueLeg = id
		} else if id != sueLeg {
			t.Fatalf("monitor %s: another leg %s, not %s", mode, id, sueLeg)
		}
		return time.Now()
	}
	var figures []string
	took := func(what string, p *phone.Phone, from time.Time, hz float64, present bool) {
		figures = append(figures, what+" "+strconv.Itoa(monFramesUntil(p, from, hz, present)))
	}

	// Listen, asked of her own node b: she hears A and B; nobody hears C.
	listenAt := monitor(baseB, calls.MonitorListen)
	if !phoneHears(sue, listenAt, monCustomerHz, true) || !phoneHears(sue, listenAt, monAgentHz, true) {
		t.Fatal("listening from b, the supervisor does not hear both the customer and the agent on a")
	}
	took("listen reached the supervisor after", sue, listenAt, monAgentHz, true)
	if !phoneHears(amy, listenAt, monSuperHz, false) || !phoneHears(cust, listenAt, monSuperHz, false) {
		t.Fatal("someone hears the supervisor while she listens")
	}
	if !phoneHears(amy, listenAt, monCustomerHz, true) || !phoneHears(cust, listenAt, monAgentHz, true) {
		t.Fatal("the customer and the agent stopped hearing each other once she listens")
	}

	// Whisper, asked of the call's node a: amy hears C, the customer not.
	whisperAt := monitor(baseA, calls.MonitorWhisper)
	if !phoneHears(amy, whisperAt, monSuperHz, true) {
		t.Fatal("the agent does not hear the supervisor's whisper from b")
	}
	took("whisper reached the agent after", amy, whisperAt, monSuperHz, true)
	if !phoneHears(amy, whisperAt, monCustomerHz, true) || !phoneHears(sue, whisperAt, monCustomerHz, true) {
		t.Fatal("during the whisper the agent or the supervisor lost the customer")
	}

	// Barge: everyone hears C. Until then, not one frame the customer
	// heard carried it.
	bargeAsked := time.Now()
	bargeAt := monitor(baseB, calls.MonitorBarge)
	custBefore := framesBetween(cust, start, bargeAt)
	if n := countTone(custBefore, monSuperHz); n > 0 {
		t.Errorf("the customer heard the supervisor in %d of %d frames before she barged (listen and whisper)", n, len(custBefore))
	}
	if !phoneHears(cust, bargeAt, monSuperHz, true) || !phoneHears(amy, bargeAt, monSuperHz, true) {
		t.Fatal("after barging, the customer or the agent does not hear the supervisor")
	}
	took("barge reached the customer after", cust, bargeAt, monSuperHz, true)

	// Back to whisper, live: the customer stops hearing C, amy not.
	backAt := monitor(baseA, calls.MonitorWhisper)
	if !phoneHears(cust, backAt, monSuperHz, false) {
		t.Fatal("the customer still hears the supervisor after she went back to whisper")
	}
	took("whisper again left the customer after", cust, backAt, monSuperHz, false)
	if !phoneHears(amy, backAt, monSuperHz, true) {
		t.Fatal("the agent stopped hearing the whisper")
	}

	// She leaves: nobody hears C, the customer and amy go on.
	if status, body, _ := send(t, b, "DELETE", "/api/calls/"+amyCall+"/monitor", sueTok, ""); status != http.StatusOK {
		t.Fatalf("DELETE monitor through b: %d %s", status, body)
	}
	leftAt := time.Now()
	if !phoneHears(amy, leftAt, monSuperHz, false) || !phoneHears(cust, leftAt, monAgentHz, true) || !phoneHears(amy, leftAt, monCustomerHz, true) {
		t.Fatal("after she left, the agent still hears her or the call stopped")
	}
	waitMonitorEvent(t, sueNext, "sue's monitor leg ended on b", func(ev map[string]any) bool {
		return ev["type"] == string(calls.EventCallEnded) && ev["callId"] == sueLeg
	})

	// The customer was never told of listen or whisper: no monitor notice
	// at all, and no sign of sue before she barged.
	// (A caller has no history: a supervisor on a reads the customer's.)
	status, body, _ := send(t, a, "GET", "/api/history/calls/"+custCall, mint(t, "boss", calls.RoleSupervisor), "")
	var h calls.CallHistory
	if status != http.StatusOK || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("the customer's history: %d %s", status, body)
	}
	for _, e := range h.Timeline {
		data, _ := json.Marshal(e.Data)
		if e.Type == calls.EventMonitorChanged || e.At.Before(bargeAsked) && strings.Contains(string(data), "sue") {
			t.Errorf("the customer was told of the supervisor: %s at %s %s", e.Type, e.At.Format(time.RFC3339Nano), data)
		}
	}

	// Monitoring again, until amy hangs up: sue's leg ends with the call.
	sueLeg = ""
	monitor(baseB, calls.MonitorListen)
	post(t, baseA+"/api/calls/"+amyCall+"/hangup", amyTok, "")
	waitMonitorEvent(t, sueNext, "sue's second monitor leg ended on b with amy's call", func(ev map[string]any) bool {
		return ev["type"] == string(calls.EventCallEnded) && ev["callId"] == sueLeg
	})
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("frames (20 ms) from the API's answer to the change heard, across nodes: %s; load average %s",
		strings.Join(figures, ", "), strings.TrimSpace(string(load)))
}
