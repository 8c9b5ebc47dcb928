package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
)

// TestDrain boots the real program on port 0, its history in the SQLite
// file, with a live call between two agents, and drains it: new calls are
// refused with 503 draining and /readyz answers 503, while the live call
// can still be held and resumed. Either the call is hung up, and the drain
// ends before its grace with the call's own end reason, or the grace
// passes, and Close ends the call 503/1; history keeps which.
func TestDrain(t *testing.T) {
	tests := []struct {
		name string
		// hangUp: alice hangs up during the drain; else the grace passes.
		hangUp           bool
		aliceEnd, bobEnd calls.EndReason
	}{
		{"the live call ends before the grace", true, calls.ReasonHungUp, calls.ReasonRemoteHungUp},
		{"the grace passes with the call live", false, calls.ReasonShutdown, calls.ReasonShutdown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			m := &Main{
				Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, DataDir: dir},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })
			base := "http://" + m.Addr
			alice, aliceNext := online(t, m, "alice", calls.RoleAgent)
			bob, bobNext := online(t, m, "bob", calls.RoleAgent)
			aliceCall := post(t, base+"/api/calls", alice, `{"participants":[{"communicationUserId":"bob"}]}`)["id"].(string)
			bobCall := ringing(t, bobNext)
			post(t, base+"/api/incoming-calls/"+bobCall+"/accept", bob, "")

			// The drain has begun once Switchboard.Drain returned; Main.Drain
			// calls it again and waits on the same channel.
			if n, _ := m.switchboard.Drain(); n != 2 {
				t.Errorf("%d calls when the drain starts, want 2", n)
			}
			grace, passed := context.WithCancel(context.Background())
			defer passed()
			drained := make(chan error, 1)
			go func() { drained <- m.Drain(grace) }()

			refused := []struct{ path, body string }{
				{"/api/calls", `{"participants":[{"communicationUserId":"carol"}]}`},
				{"/api/calls/join", `{"roomId":"standup"}`},
				{"/api/calls/" + aliceCall + "/participants", `{"identifier":{"communicationUserId":"carol"}}`},
			}
			for _, r := range refused {
				status, raw := request(t, http.MethodPost, base+r.path, alice, r.body)
				if code := errorCode(raw); status != http.StatusServiceUnavailable || code != calls.CodeDraining {
					t.Errorf("POST %s while draining: %d %s, want 503 draining", r.path, status, raw)
				}
			}
			if status, raw := get(t, base+"/readyz", ""); status != http.StatusServiceUnavailable || string(raw) != "not ready\n" {
				t.Errorf("GET /readyz while draining: %d %q, want 503 not ready", status, raw)
			}
			if status, raw := get(t, base+"/readyz", testAdminKey); status != http.StatusServiceUnavailable || errorCode(raw) != calls.CodeDraining {
				t.Errorf("GET /readyz with the admin key while draining: %d %s, want 503 draining", status, raw)
			}
			if status, _ := get(t, base+"/healthz", ""); status != http.StatusOK {
				t.Errorf("GET /healthz while draining: %d, want 200", status)
			}
			for _, step := range []struct{ op, want string }{{"hold", "LocalHold"}, {"resume", "Connected"}} {
				if c := post(t, base+"/api/calls/"+aliceCall+"/"+step.op, alice, ""); c["state"] != step.want {
					t.Errorf("%s while draining: the call is %v, want %s", step.op, c["state"], step.want)
				}
			}
			select {
			case err := <-drained:
				t.Fatalf("Drain returned (%v) with a call live", err)
			default:
			}

			if tt.hangUp {
				post(t, base+"/api/calls/"+aliceCall+"/hangup", alice, "")
			} else {
				passed()
			}
			select {
			case err := <-drained:
				if tt.hangUp && err != nil || !tt.hangUp && !errors.Is(err, context.Canceled) {
					t.Errorf("Drain: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Drain did not return within 10 s")
			}
			closed := make(chan error, 1)
			go func() { closed <- m.Close(context.Background()) }()
			wantReason(t, waitCallEnded(t, aliceNext, aliceCall), float64(tt.aliceEnd.Code), float64(tt.aliceEnd.SubCode))
			wantReason(t, waitCallEnded(t, bobNext, bobCall), float64(tt.bobEnd.Code), float64(tt.bobEnd.SubCode))
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}

			history, err := store.OpenSQLite(context.Background(), filepath.Join(dir, historyFile), store.SQLiteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer history.Close(context.Background())
			for id, want := range map[string]calls.EndReason{aliceCall: tt.aliceEnd, bobCall: tt.bobEnd} {
				h, err := history.FindCallByID(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if r := h.Call.CallEndReason; r == nil || r.Code != want.Code || r.SubCode != want.SubCode {
					t.Errorf("history has call %s ended %+v, want %d/%d", id, r, want.Code, want.SubCode)
				}
			}
		})
	}
}

// ringing reads events until an incomingCall and answers its id.
func ringing(t *testing.T, next func() (map[string]any, error)) string {
	t.Helper()
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("no incomingCall: %v", err)
		}
		if ev["type"] == "incomingCall" {
			return ev["data"].(map[string]any)["incomingCall"].(map[string]any)["id"].(string)
		}
	}
}

// errorCode is the code of an error body in the contract's format.
func errorCode(raw []byte) calls.Code {
	var body struct {
		Error struct{ Code calls.Code } `json:"error"`
	}
	_ = json.Unmarshal(raw, &body)
	return body.Error.Code
}

// TestSIGTERM runs the switchboard as a real process with a live call and
// sends SIGTERM: it drains (a new call is 503 draining, /readyz 503, the
// live call can still be held); a second SIGTERM ends the drain at once,
// the call ends 503/1 on the agent's stream, and the process exits 0.
func TestSIGTERM(t *testing.T) {
	cmd, addr := startServe(t)
	base := "http://" + addr
	alice := mint(t, "alice", calls.RoleAgent)
	next, _ := openEvents(t, addr, alice)
	if _, err := next(); err != nil {
		t.Fatal(err)
	}
	id := post(t, base+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)["id"].(string)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitNotReady(t, base)
	if status, raw := request(t, http.MethodPost, base+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`); status != http.StatusServiceUnavailable || errorCode(raw) != calls.CodeDraining {
		t.Errorf("a new call while draining: %d %s, want 503 draining", status, raw)
	}
	if c := post(t, base+"/api/calls/"+id+"/hold", alice, ""); c["state"] != "LocalHold" {
		t.Errorf("hold while draining: %v, want LocalHold", c["state"])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wantReason(t, waitCallEnded(t, next, id), 503, 1)
	waitExit(t, cmd)
}

// TestSIGTERMDrainGrace: the drain grace passes with a call live; the
// call ends 503/1, the process exits 0, and history keeps the reason: in
// the SQLite file, and in Postgres when SWITCHBOARD_TEST_DATABASE_URL
// names one.
func TestSIGTERMDrainGrace(t *testing.T) {
	tests := []struct {
		name string
		// open answers the serve's environment for its store, and a
		// function opening that store once serve exited.
		open func(t *testing.T) ([]string, func() (calls.Store, error))
	}{
		{"sqlite", func(t *testing.T) ([]string, func() (calls.Store, error)) {
			dir := t.TempDir()
			return []string{"DATABASE_URL=", "SWITCHBOARD_STORE=", "SWITCHBOARD_DATA_DIR=" + dir}, func() (calls.Store, error) {
				return store.OpenSQLite(context.Background(), filepath.Join(dir, historyFile), store.SQLiteOptions{})
			}
		}},
		{"postgres", func(t *testing.T) ([]string, func() (calls.Store, error)) {
			url := freshSchema(t)
			spool := t.TempDir()
			return []string{"DATABASE_URL=" + url, "SWITCHBOARD_SPOOL_DIR=" + spool}, func() (calls.Store, error) {
				return store.OpenPostgres(context.Background(), url, store.PostgresOptions{SpoolDir: spool})
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, open := tt.open(t)
			cmd, addr := startServe(t, append(env, "SWITCHBOARD_DRAIN_GRACE=1s")...)
			alice := mint(t, "alice", calls.RoleAgent)
			next, _ := openEvents(t, addr, alice)
			if _, err := next(); err != nil {
				t.Fatal(err)
			}
			id := post(t, "http://"+addr+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)["id"].(string)
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			wantReason(t, waitCallEnded(t, next, id), 503, 1)
			waitExit(t, cmd)
			history, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer history.Close(context.Background())
			h, err := history.FindCallByID(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if r := h.Call.CallEndReason; r == nil || *r != calls.ReasonShutdown {
				t.Errorf("history has %+v, want %+v", r, calls.ReasonShutdown)
			}
		})
	}
}

// freshSchema answers the URL of a new schema in the database
// SWITCHBOARD_TEST_DATABASE_URL names, dropped when t ends; without one it
// skips t.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("SWITCHBOARD_TEST_DATABASE_URL")
	if base == "" {
		t.Skip("SWITCHBOARD_TEST_DATABASE_URL is not set")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("SWITCHBOARD_TEST_DATABASE_URL: %v", err)
	}
	schema := fmt.Sprintf("sbdrain_%d", time.Now().UnixNano())
	do := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := do("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := do("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// waitNotReady asks /readyz until it answers 503: the drain has begun.
func waitNotReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		status, _ := get(t, base+"/readyz", "")
		if status == http.StatusServiceUnavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %d 10 s after SIGTERM", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExit waits for the process to exit 0.
func waitExit(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("switchboard exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("switchboard did not exit within 15 s")
	}
}

// TestSIPDrain: a carrier's INVITE to a draining switchboard gets 503 with
// Retry-After (sipp checks both), and rings nobody.
func TestSIPDrain(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	m, history := startSIPSwitchboard(t, "carrier=sip:127.0.0.1", "")
	routeNumber(t, m, "+14255550100", "alice")
	online(t, m, "alice", calls.RoleAgent)
	m.switchboard.Drain()
	runSipp(t, "draining_503.xml", "+14255550100", m.SIPAddr)()
	page, err := history.FindCalls(context.Background(), calls.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("a call refused while draining made calls: %+v", page.Items)
	}
}
