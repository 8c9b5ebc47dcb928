package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/api"
)

// TestHTTPTimeouts boots the real program with short limits: idle and
// half-sent connections are closed by the server's timeouts, an oversized
// header is refused, and an event connection outlives the timeouts.
func TestHTTPTimeouts(t *testing.T) {
	const (
		headerTimeout = 300 * time.Millisecond
		readTimeout   = 600 * time.Millisecond
		idleTimeout   = 400 * time.Millisecond
	)
	m := &Main{
		Config: Config{
			Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute,
			Limits: LimitsConfig{ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: 4 << 10},
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })

	t.Run("connections", func(t *testing.T) {
		tests := []struct {
			name string
			send string
			// answered is whether an answer comes before the close.
			answered bool
			after    time.Duration // the timeout that closes it
		}{
			{"idle", "", false, headerTimeout},
			{"half-sent header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1", false, headerTimeout},
			{"half-sent body", "POST /api/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testAdminKey +
				"\r\nContent-Length: 100\r\n\r\n{\"identity\":", true, readTimeout},
			{"kept alive, idle", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", true, idleTimeout},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				conn, err := net.Dial("tcp", m.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				start := time.Now()
				if _, err := io.WriteString(conn, tt.send); err != nil {
					t.Fatal(err)
				}
				// The server closes it; the test gives up after 10 s.
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				got, err := io.ReadAll(conn)
				took := time.Since(start)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("still open after %v (read %q)", took, got)
				}
				if answered := len(got) > 0; answered != tt.answered {
					t.Errorf("answered %q before the close, want an answer: %v", got, tt.answered)
				}
				if took < tt.after*3/4 || took > tt.after+3*time.Second {
					t.Errorf("closed after %v, want about its timeout (%v)", took, tt.after)
				}
				t.Logf("closed after %v (timeout %v)", took, tt.after)
			})
		}
	})

	t.Run("oversized header", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+m.Addr+"/healthz", nil)
		req.Header.Set("X-Big", strings.Repeat("x", 16<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want %d", resp.StatusCode, http.StatusRequestHeaderFieldsTooLarge)
		}
	})

	t.Run("event connection outlives them", func(t *testing.T) {
		alice := mint(t, "alice", "agent")
		next, _ := openEvents(t, m.Addr, alice)
		if ev, err := next(); err != nil || ev["type"] != "snapshot" {
			t.Fatalf("first event %v, %v", ev, err)
		}
		// Time must pass here: every timeout of the server, twice over.
		<-time.After(2 * readTimeout)
		call := post(t, "http://"+m.Addr+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
		for {
			ev, err := next()
			if err != nil {
				t.Fatalf("event connection closed after %v: %v", 2*readTimeout, err)
			}
			if ev["callId"] == call["id"] {
				break
			}
		}
	})
}

// TestLimitFlags: the event connection caps come from flags or the
// environment, and are checked.
func TestLimitFlags(t *testing.T) {
	tests := []struct {
		args      []string
		env       map[string]string
		per, tot  int
		wantError bool
	}{
		{nil, nil, defaultWSPerIdentity, defaultWSTotal, false},
		{[]string{"--max-websockets-per-identity", "2", "--max-websockets", "50"}, nil, 2, 50, false},
		{nil, map[string]string{"SWITCHBOARD_MAX_WEBSOCKETS_PER_IDENTITY": "3", "SWITCHBOARD_MAX_WEBSOCKETS": "7"}, 3, 7, false},
		{[]string{"--max-websockets", "0"}, nil, 0, 0, true},
		{[]string{"--max-websockets-per-identity", "many"}, nil, 0, 0, true},
	}
	for _, tt := range tests {
		cfg, err := parseServeFlags(tt.args, io.Discard, env(tt.env))
		if (err != nil) != tt.wantError {
			t.Errorf("%v %v: error %v, want error: %v", tt.args, tt.env, err, tt.wantError)
			continue
		}
		if err == nil && (cfg.Limits.WSPerIdentity != tt.per || cfg.Limits.WSTotal != tt.tot) {
			t.Errorf("%v %v: caps %d per identity, %d in all; want %d, %d", tt.args, tt.env, cfg.Limits.WSPerIdentity, cfg.Limits.WSTotal, tt.per, tt.tot)
		}
	}
}

// TestEventRetentionFlags: how long and how many events are kept for
// replay come from flags or the environment, and are checked.
func TestEventRetentionFlags(t *testing.T) {
	tests := []struct {
		args      []string
		env       map[string]string
		want      api.Retention
		wantError bool
	}{
		{nil, nil, api.DefaultRetention, false},
		{[]string{"--event-retention", "30s", "--event-retention-events", "50"}, nil, api.Retention{MaxAge: 30 * time.Second, MaxEvents: 50}, false},
		{nil, map[string]string{"SWITCHBOARD_EVENT_RETENTION": "1h", "SWITCHBOARD_EVENT_RETENTION_EVENTS": "7"}, api.Retention{MaxAge: time.Hour, MaxEvents: 7}, false},
		{[]string{"--event-retention", "0s"}, nil, api.Retention{}, true},
		{[]string{"--event-retention", "soon"}, nil, api.Retention{}, true},
		{[]string{"--event-retention-events", "0"}, nil, api.Retention{}, true},
	}
	for _, tt := range tests {
		cfg, err := parseServeFlags(tt.args, io.Discard, env(tt.env))
		if (err != nil) != tt.wantError {
			t.Errorf("%v %v: error %v, want error: %v", tt.args, tt.env, err, tt.wantError)
			continue
		}
		if err == nil && cfg.Limits.EventRetention != tt.want {
			t.Errorf("%v %v: retention %+v, want %+v", tt.args, tt.env, cfg.Limits.EventRetention, tt.want)
		}
	}
}
