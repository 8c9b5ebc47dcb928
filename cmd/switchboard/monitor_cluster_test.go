package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestClusterMonitor: a supervisor's monitor request may reach any node,
// and her console may be on another node than the call. Alice, on node a,
// is in a call; sue, whose console is on a too, asks node c to listen: c
// forwards it to a, which runs the call, and she listens, then switches
// to whisper through node b. Sam, whose console is on node b, asks node c
// to listen: a, which runs the call, sends it on to b, where his monitor
// leg is a call of his (a stand-in for him on a); he switches to barge
// through a, his leg's events reach his stream on b, alice's timeline on
// a says he did it, and he leaves through c.
func TestClusterMonitor(t *testing.T) {
	x := newAcrossNodes(t)
	status, body, _ := send(t, x.a, "POST", "/api/calls", x.alice, `{"participants":[{"id":"8:echo123"}]}`)
	var call calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &call) != nil {
		t.Fatalf("alice calls the echo bot on a: %d %s", status, body)
	}
	sue, _ := online(t, x.a, "sue", calls.RoleSupervisor)
	sam, samNext := online(t, x.b, "sam", calls.RoleSupervisor)
	path := "/api/calls/" + call.ID + "/monitor"

	monitor := func(who, token string, via *Main, mode calls.MonitorMode) calls.Call {
		t.Helper()
		status, body, _ := send(t, via, "POST", path, token, `{"mode":"`+string(mode)+`"}`)
		var mon calls.Call
		if status != http.StatusOK || json.Unmarshal([]byte(body), &mon) != nil {
			t.Fatalf("%s's %s through %s: %d %s", who, mode, via.Addr, status, body)
		}
		if mon.MonitorMode != mode || mon.MonitoredCallID != call.ID || mon.State != calls.StateConnected {
			t.Fatalf("%s's %s: her leg %s %s of %s", who, mode, mon.MonitorMode, mon.State, mon.MonitoredCallID)
		}
		return mon
	}
	monitor("sue", sue, x.c, calls.MonitorListen)
	monitor("sue", sue, x.b, calls.MonitorWhisper)

	samLeg := monitor("sam", sam, x.c, calls.MonitorListen)
	if samLeg.ServerCallID != call.ServerCallID || !hasParticipant(samLeg, "8:acs:alice") {
		t.Errorf("sam's leg on b: conversation %s (want %s), participants %v", samLeg.ServerCallID, call.ServerCallID, samLeg.RemoteParticipants)
	}
	if got := monitor("sam", sam, x.a, calls.MonitorBarge); got.ID != samLeg.ID {
		t.Errorf("sam's barge made another leg %s, not %s", got.ID, samLeg.ID)
	}
	// His events on b: his monitor call, and its mode changed to barge.
	waitMonitorEvent(t, samNext, "sam's monitor leg in barge", func(ev map[string]any) bool {
		d, _ := ev["data"].(map[string]any)
		return ev["type"] == string(calls.EventMonitorChanged) && ev["callId"] == samLeg.ID && d["mode"] == "barge"
	})
	// Alice's call on a: his start and his barge, with him as the actor.
	waitTimeline(t, x.a, x.alice, call.ID, "sam", "barge")

	// A via forged by a client, through an entry node that forwards it to
	// his node as it is (no node runs the call it names), is refused.
	forged := `{"mode":"listen","via":{"node":"a","serverCallId":"` + call.ServerCallID +
		`","callId":"no-such-call","agent":{"identifier":{"communicationUserId":"alice"}}}}`
	if status, body, _ := send(t, x.c, "POST", "/api/calls/no-such-call/monitor", sam, forged); status != http.StatusBadRequest ||
		!strings.Contains(body, "nodes of a cluster alone") {
		t.Errorf("sam's forged via through c: %d %s, want 400", status, body)
	}

	status, body, _ = send(t, x.c, "DELETE", path, sam, "")
	if status != http.StatusOK {
		t.Errorf("sam stops through c: %d %s", status, body)
	}
	waitMonitorEvent(t, samNext, "sam's monitor leg ended on b", func(ev map[string]any) bool {
		return ev["type"] == string(calls.EventCallEnded) && ev["callId"] == samLeg.ID
	})
	waitTimeline(t, x.a, x.alice, call.ID, "sam", "")
	status, body, _ = send(t, x.b, "DELETE", path, sue, "")
	if status != http.StatusOK {
		t.Errorf("sue stops through b: %d %s", status, body)
	}
}

// hasParticipant reports whether c shows rawID among its participants.
func hasParticipant(c calls.Call, rawID string) bool {
	for _, p := range c.RemoteParticipants {
		if p.RawID == rawID {
			return true
		}
	}
	return false
}

// waitMonitorEvent reads next until an event matches, for 10 s at most.
func waitMonitorEvent(t *testing.T, next func() (map[string]any, error), what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ev, err := next()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if match(ev) {
			return ev
		}
	}
	t.Fatalf("%s: no such event in 10 s", what)
	return nil
}

// waitTimeline waits until the timeline of the call id (GET
// /api/history/calls/{id}, as token on m) has a monitorChanged to
// mode ("" for leaving) by the supervisor sup as its actor.
func waitTimeline(t *testing.T, m *Main, token, id, sup, mode string) {
	t.Helper()
	var last string
	if !within(10*time.Second, func() bool {
		status, body, _ := send(t, m, "GET", "/api/history/calls/"+id, token, "")
		last = body
		if status != http.StatusOK {
			return false
		}
		var h calls.CallHistory
		if json.Unmarshal([]byte(body), &h) != nil {
			return false
		}
		for _, ev := range h.Timeline {
			raw, _ := json.Marshal(ev.Data)
			var d calls.MonitorChangedData
			if ev.Type != calls.EventMonitorChanged || json.Unmarshal(raw, &d) != nil {
				continue
			}
			if d.Supervisor == "8:acs:"+sup && string(d.Mode) == mode && ev.Actor != nil &&
				ev.Actor.Kind == calls.ActorSupervisor && ev.Actor.RawID == "8:acs:"+sup {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("call %s's timeline has no monitorChanged to %q by supervisor %s: %s", id, mode, sup, last)
	}
}

// TestClusterMonitorNodeStops: a monitor leg across nodes ends cleanly
// when either node stops. Alice is in a call on node a; sam, on node b,
// whispers in it and sue, on node c, listens. b stops: sam's stand-in on
// a ends, so alice no longer sees him and her timeline says he left; sue
// goes on. a stops: sue's leg on c ends with the call (0/5000, as a
// monitor leg ends with the call it monitors).
func TestClusterMonitorNodeStops(t *testing.T) {
	x := newAcrossNodes(t)
	status, body, _ := send(t, x.a, "POST", "/api/calls", x.alice, `{"participants":[{"id":"8:echo123"}]}`)
	var call calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &call) != nil {
		t.Fatalf("alice calls the echo bot on a: %d %s", status, body)
	}
	sam, _ := online(t, x.b, "sam", calls.RoleSupervisor)
	sue, sueNext := online(t, x.c, "sue", calls.RoleSupervisor)
	path := "/api/calls/" + call.ID + "/monitor"
	if status, body, _ := send(t, x.b, "POST", path, sam, `{"mode":"whisper"}`); status != http.StatusOK {
		t.Fatalf("sam whispers from b: %d %s", status, body)
	}
	status, body, _ = send(t, x.c, "POST", path, sue, `{"mode":"listen"}`)
	var sueLeg calls.Call
	if status != http.StatusOK || json.Unmarshal([]byte(body), &sueLeg) != nil {
		t.Fatalf("sue listens from c: %d %s", status, body)
	}
	waitCall(t, x.a, x.alice, call.ID, "Connected muted=false [8:echo123 Connected muted=false] [8:acs:sam Connected muted=false] [8:acs:sue Connected muted=false]")

	if err := x.b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitCall(t, x.a, x.alice, call.ID, "Connected muted=false [8:echo123 Connected muted=false] [8:acs:sue Connected muted=false]")
	waitTimeline(t, x.a, x.alice, call.ID, "sam", "")

	if err := x.a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := waitMonitorEvent(t, sueNext, "sue's monitor leg on c ended with the call", func(ev map[string]any) bool {
		return ev["type"] == string(calls.EventCallEnded) && ev["callId"] == sueLeg.ID
	})
	// As on one node: a's stop ends alice's call (503/1), and a monitor
	// leg ends with the call it monitors, 0/5000.
	d, _ := ev["data"].(map[string]any)
	if r, _ := d["callEndReason"].(map[string]any); r["code"] != float64(0) || r["subCode"] != float64(5000) {
		t.Errorf("sue's leg ended %v, want 0/5000", d["callEndReason"])
	}
}
