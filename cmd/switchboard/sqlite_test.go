package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// historyOf answers a call's history, failing t unless it is found.
func historyOf(t *testing.T, base, token, id string) calls.CallHistory {
	t.Helper()
	status, raw := request(t, "GET", base+"/api/history/calls/"+id, token, "")
	var h calls.CallHistory
	if status != http.StatusOK || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("history of %s: %d %s", id, status, raw)
	}
	return h
}

func startCall(t *testing.T, base, token string) string {
	t.Helper()
	status, raw := request(t, "POST", base+"/api/calls", token, `{"participants":[{"id":"8:echo123"}]}`)
	var c calls.Call
	if status != http.StatusCreated || json.Unmarshal(raw, &c) != nil {
		t.Fatalf("start call: %d %s", status, raw)
	}
	return c.ID
}

// TestSQLiteHistorySurvivesRestart: serve without DATABASE_URL keeps
// history in a file under the data directory; after a stop and a start,
// a call that ended is there with its timeline, and one that was live at
// the stop ended with 503/1.
func TestSQLiteHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() *Main {
		m := &Main{
			Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, DataDir: dir},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		return m
	}
	m := start()
	base := "http://" + m.Addr
	alice := mint(t, "alice", calls.RoleAgent)
	ended, live := startCall(t, base, alice), startCall(t, base, alice)
	if status, raw := request(t, "POST", base+"/api/calls/"+ended+"/hangup", alice, `{}`); status != http.StatusOK {
		t.Fatalf("hang up: %d %s", status, raw)
	}
	// History lags a little behind the calls: wait for the call to be
	// written (the rest of its timeline may still be queued; Close writes it).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, _ := request(t, "GET", base+"/api/history/calls/"+ended, alice, ""); status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call %s is not in history after 10 s", ended)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := historyOf(t, base, alice, ended)
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, historyFile)); err != nil {
		t.Fatalf("the history file: %v", err)
	}

	m = start()
	base = "http://" + m.Addr
	h := historyOf(t, base, alice, ended)
	if h.Call.State != calls.StateDisconnected || h.Call.CallEndReason == nil || h.Call.CallEndReason.Code == 503 {
		t.Errorf("the call hung up before the restart: %s %+v, want Disconnected by the hang-up", h.Call.State, h.Call.CallEndReason)
	}
	if !slices.ContainsFunc(h.Timeline, func(e calls.TimelineEntry) bool { return e.Type == calls.EventCallEnded }) || len(h.Timeline) < len(before.Timeline) {
		t.Errorf("its timeline after the restart: %+v (%d entries before), want the entries before and callEnded", h.Timeline, len(before.Timeline))
	}
	h = historyOf(t, base, alice, live)
	if r := h.Call.CallEndReason; r == nil || *r != calls.ReasonShutdown {
		t.Errorf("the call live at the stop: %+v, want %+v", r, calls.ReasonShutdown)
	}
	status, raw := request(t, "GET", base+"/api/history/calls", alice, "")
	var page calls.CallPage
	if status != http.StatusOK || json.Unmarshal(raw, &page) != nil || len(page.Items) != 2 {
		t.Errorf("history after the restart: %d %s, want the 2 calls", status, raw)
	}
}

// TestSQLiteKilledWithLiveCalls kills the switchboard (SIGKILL) with live
// calls on the embedded store; at the next start those calls show 503/0
// in history, ended between their last event and the kill.
func TestSQLiteKilledWithLiveCalls(t *testing.T) {
	testKilledWithLiveCalls(t, "DATABASE_URL=", "SWITCHBOARD_STORE=", "SWITCHBOARD_DATA_DIR="+t.TempDir())
}
