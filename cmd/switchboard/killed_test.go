package main

import (
	"encoding/json"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// testKilledWithLiveCalls is the crash test of both stores: it starts
// serve with env, starts three calls, waits until history shows them,
// kills the switchboard (SIGKILL) and starts it again with the same env.
// Each call then shows in history as ended with 503/0 by the system,
// between its start and the kill, and the live-call routes no longer know
// it.
func testKilledWithLiveCalls(t *testing.T, env ...string) {
	t.Helper()
	cmd, addr := startServe(t, env...)
	base := "http://" + addr
	alice := mint(t, "alice", calls.RoleAgent)
	var ids []string
	for range 3 {
		ids = append(ids, startCall(t, base, alice))
	}
	// Wait until history shows the calls: they are in the store.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, raw := request(t, "GET", base+"/api/history/calls", alice, "")
		var page calls.CallPage
		_ = json.Unmarshal(raw, &page)
		if len(page.Items) == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history has %s, want %d calls", raw, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	killedAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, addr = startServe(t, env...)
	base = "http://" + addr
	for _, id := range ids {
		h := historyOf(t, base, alice, id)
		r := h.Call.CallEndReason
		if h.Call.State != calls.StateDisconnected || r == nil || *r != calls.ReasonSwitchboardDied {
			t.Fatalf("call %s after the crash: %s %+v, want Disconnected %+v", id, h.Call.State, r, calls.ReasonSwitchboardDied)
		}
		if h.Call.EndTime == nil || h.Call.EndTime.After(killedAt) || h.Call.EndTime.Before(h.Call.StartTime) {
			t.Errorf("call %s started at %v ended at %v; it was killed at %v", id, h.Call.StartTime, h.Call.EndTime, killedAt)
		}
		last := h.Timeline[len(h.Timeline)-1]
		if last.Type != calls.EventCallEnded || last.Actor == nil || last.Actor.Kind != calls.ActorSystem {
			t.Errorf("call %s's last event: %s by %+v, want callEnded by the system", id, last.Type, last.Actor)
		}
	}
	// The live-call routes no longer know them.
	if status, _ := request(t, "GET", base+"/api/calls/"+ids[0], alice, ""); status != http.StatusNotFound {
		t.Errorf("GET the crashed call: %d, want 404", status)
	}
}
