package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestClusterMonitor: a supervisor's monitor request may reach any node.
// Alice, on node a, is in a call; sue, whose console is on a too, asks
// node c to listen: c forwards it to a, which runs the call, and she
// listens, then switches to whisper through node b. Sam, whose console is
// on node b, asks too: the call's node answers 501 not_implemented, since
// monitoring across nodes (a stand-in for the supervisor) is not built.
func TestClusterMonitor(t *testing.T) {
	x := newAcrossNodes(t)
	status, body, _ := send(t, x.a, "POST", "/api/calls", x.alice, `{"participants":[{"id":"8:echo123"}]}`)
	var call calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &call) != nil {
		t.Fatalf("alice calls the echo bot on a: %d %s", status, body)
	}
	sue, _ := online(t, x.a, "sue", calls.RoleSupervisor)
	sam, _ := online(t, x.b, "sam", calls.RoleSupervisor)
	path := "/api/calls/" + call.ID + "/monitor"

	for _, step := range []struct {
		via  *Main
		mode calls.MonitorMode
	}{{x.c, calls.MonitorListen}, {x.b, calls.MonitorWhisper}} {
		status, body, _ := send(t, step.via, "POST", path, sue, `{"mode":"`+string(step.mode)+`"}`)
		var mon calls.Call
		if status != http.StatusOK || json.Unmarshal([]byte(body), &mon) != nil {
			t.Fatalf("sue's %s through %s: %d %s", step.mode, step.via.Addr, status, body)
		}
		if mon.MonitorMode != step.mode || mon.MonitoredCallID != call.ID || mon.State != calls.StateConnected {
			t.Fatalf("sue's %s: her leg %s %s of %s", step.mode, mon.MonitorMode, mon.State, mon.MonitoredCallID)
		}
	}
	status, body, _ = send(t, x.c, "POST", path, sam, `{"mode":"listen"}`)
	if status != http.StatusNotImplemented || !strings.Contains(body, `"not_implemented"`) {
		t.Errorf("sam, served by b, monitors a call on a: %d %s, want 501 not_implemented", status, body)
	}
	status, body, _ = send(t, x.b, "DELETE", path, sue, "")
	if status != http.StatusOK {
		t.Errorf("sue stops through b: %d %s", status, body)
	}
}
