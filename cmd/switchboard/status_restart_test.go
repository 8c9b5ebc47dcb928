package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store/pgtest"
)

// TestAgentStatusSurvivesRestart: on the embedded SQLite store and on
// Postgres, the status an agent chose and its changes outlive the
// process: after a restart she is Offline until she connects, then Away
// as she chose; her changes before the restart are in the status
// history.
func TestAgentStatusSurvivesRestart(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  func(t *testing.T) Config
	}{
		{"sqlite", func(t *testing.T) Config { return Config{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) Config {
			return Config{DataDir: t.TempDir(), DatabaseURL: pgtest.Start(t).URL()}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg(t)
			cfg.Addr, cfg.AdminKey, cfg.RingTimeout = "127.0.0.1:0", testAdminKey, time.Minute
			start := func() *Main {
				m := &Main{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard}
				if err := m.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = m.Close(context.Background()) })
				return m
			}
			statusOf := func(m *Main, token, path string) calls.AgentStatusData {
				t.Helper()
				status, body, _ := send(t, m, "GET", path, token, "")
				var st calls.AgentStatusData
				if status != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
					t.Fatalf("GET %s: %d %s", path, status, body)
				}
				return st
			}
			alice, sue := mint(t, "alice", calls.RoleAgent), mint(t, "sue", calls.RoleSupervisor)
			m := start()
			online(t, m, "alice", calls.RoleAgent)
			if status, body, _ := send(t, m, "PUT", "/api/me/status", alice, `{"status":"Away"}`); status != http.StatusOK {
				t.Fatalf("PUT Away: %d %s", status, body)
			}
			if err := m.Close(context.Background()); err != nil {
				t.Fatal(err)
			}

			m = start()
			if st := statusOf(m, sue, "/api/agents/8:acs:alice/status"); st.Status != "Offline" || st.ChosenStatus != "Away" {
				t.Errorf("after the restart, before she connects: %s (chosen %s), want Offline (Away)", st.Status, st.ChosenStatus)
			}
			online(t, m, "alice", calls.RoleAgent)
			if st := statusOf(m, alice, "/api/me/status"); st.Status != "Away" {
				t.Errorf("after the restart, connected: %s, want Away", st.Status)
			}
			var hist struct {
				Items []struct {
					Status string `json:"status"`
				} `json:"items"`
			}
			status, body, _ := send(t, m, "GET", "/api/history/agent-status?agent=8:acs:alice", sue, "")
			if status != http.StatusOK || json.Unmarshal([]byte(body), &hist) != nil {
				t.Fatalf("status history: %d %s", status, body)
			}
			var got []string
			for _, it := range hist.Items {
				got = append(got, it.Status)
			}
			// Newest first: before the restart Available, Away, Offline (the
			// close); after it Away once she connected (maybe not written yet).
			want := []string{"Offline", "Away", "Available"}
			if len(got) < 3 || !equalTail(got, want) {
				t.Errorf("status history %v, want it to end with %v", got, want)
			}
		})
	}
}

func equalTail(got, want []string) bool {
	if len(got) < len(want) {
		return false
	}
	tail := got[len(got)-len(want):]
	for i := range want {
		if tail[i] != want[i] {
			return false
		}
	}
	return true
}
