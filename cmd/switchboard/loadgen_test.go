package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLoadgenRejectsBadFlags(t *testing.T) {
	getenv := func(string) string { return "" }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no admin key", []string{"--legs", "1"}, "admin key"},
		{"no legs", []string{"--admin-key", "k", "--legs", "0"}, "positive"},
		{"no window", []string{"--admin-key", "k", "--duration", "0s"}, "positive"},
		{"negative sockets", []string{"--admin-key", "k", "--sockets", "-1"}, "negative"},
		{"no set-up timeout", []string{"--admin-key", "k", "--setup-timeout", "0s"}, "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			err := loadgen(context.Background(), tt.args, &out, &errs, getenv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// TestLoadgenCarriesMediaThroughTheEchoBot runs the load generator against
// the real program: three callers each call the echo bot and must get
// packets back, with sockets of their own or on shared, batching sockets
// (the server's too).
func TestLoadgenCarriesMediaThroughTheEchoBot(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 3 s a case")
	}
	for _, tt := range []struct {
		name    string
		media   MediaConfig
		sockets string
	}{
		{"sockets of their own", MediaConfig{Grace: time.Minute}, "0"},
		{"shared sockets", MediaConfig{Grace: time.Minute, SharedPort: freeUDPPorts(t, 3), SharedPorts: 3}, "1"},
	} {
		t.Run(tt.name, func(t *testing.T) { loadgenCarriesMedia(t, tt.media, tt.sockets) })
	}
}

func loadgenCarriesMedia(t *testing.T, media MediaConfig, sockets string) {
	m := startMediaServer(t, media)
	var out, errs bytes.Buffer
	args := []string{"--url", "http://" + m.Addr, "--admin-key", testAdminKey, "--legs", "3", "--ramp", "0s",
		"--warmup", "300ms", "--duration", "1s", "--sockets", sockets, "--json"}
	if err := loadgen(context.Background(), args, &out, &errs, func(string) string { return "" }); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, errs.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 3 || lines[1] != "loadgen: window start" || lines[2] != "loadgen: window end" {
		t.Fatalf("output %q: want the window lines before the summary", out.String())
	}
	var sum LoadgenSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("summary %q: %v", lines[len(lines)-1], err)
	}
	if sum.Connected != 3 || sum.Failed != 0 {
		t.Fatalf("connected %d, failed %d; want 3 and 0", sum.Connected, sum.Failed)
	}
	// A second is 50 packets a leg each way; under -race on a busy
	// machine the callers' own clock falls behind, so ask for a third.
	if w := sum.Window; w.Sent < 50 || w.Received < 50 {
		t.Errorf("window: sent %d, received %d; want at least 50 each", w.Sent, w.Received)
	}
	// Loopback loses nothing, but a frame the server's writers are more
	// than 80 ms late with is dropped, as a real-time path should; under
	// -race on a busy machine that happens. Half lost is a broken path.
	if w := sum.Window; w.Lost*2 > w.Received {
		t.Errorf("lost %d packets of %d on loopback", w.Lost, w.Received)
	} else if w.Lost > 0 {
		t.Logf("lost %d packets of %d (the writers fell behind)", w.Lost, w.Received)
	}
}

// TestLoadgenEndsWhenCallersFail makes callers fail at set-up and checks
// that the run still ends, with a report that counts them: the server
// refuses attaches it could not tell apart (one shared port, callers on one
// socket), or never answers (bounded by --setup-timeout and
// --setup-limit).
func TestLoadgenEndsWhenCallersFail(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: a few seconds")
	}
	stop := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // nothing is answered
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); hanging.Close() })
	tests := []struct {
		name string
		url  func(t *testing.T) string
		args []string
		// connected callers, and failed ones by a word of their reason
		connected int
		failed    map[string]int
		wantErr   string // empty: the run measured its window
	}{
		{
			name: "the server refuses callers it cannot tell apart",
			url: func(t *testing.T) string {
				m := startMediaServer(t, MediaConfig{Grace: time.Minute, SharedPort: freeUDPPorts(t, 1), SharedPorts: 1})
				return "http://" + m.Addr
			},
			args:      []string{"--legs", "3", "--sockets", "1", "--ramp", "0s"},
			connected: 1, failed: map[string]int{"503 unavailable": 2},
		},
		{
			name:    "the server never answers",
			url:     func(*testing.T) string { return hanging.URL },
			args:    []string{"--legs", "3", "--ramp", "0s", "--setup-timeout", "300ms"},
			failed:  map[string]int{"deadline exceeded": 3},
			wantErr: "none of 3 callers connected",
		},
		{
			name:    "the set-up phase ends at its limit",
			url:     func(*testing.T) string { return hanging.URL },
			args:    []string{"--legs", "3", "--ramp", "30s", "--setup-limit", "500ms"},
			failed:  map[string]int{"deadline exceeded": 1, "not started": 2},
			wantErr: "none of 3 callers connected",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"--url", tt.url(t), "--admin-key", testAdminKey,
				"--warmup", "200ms", "--duration", "500ms", "--json"}, tt.args...)
			start := time.Now()
			err := loadgen(context.Background(), args, &out, &errs, func(string) string { return "" })
			took := time.Since(start)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("loadgen: %v\n%s", err, errs.String())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("loadgen: %v, want an error with %q", err, tt.wantErr)
			}
			if took > 15*time.Second {
				t.Errorf("the run took %v", took)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var sum LoadgenSummary
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
				t.Fatalf("no summary at the end of %q: %v", out.String(), err)
			}
			total := 0
			for word, want := range tt.failed {
				got := 0
				for reason, n := range sum.Failures {
					if strings.Contains(reason, word) {
						got += n
					}
				}
				if got != want {
					t.Errorf("%d failures with %q, want %d; summary %+v", got, word, want, sum)
				}
				total += want
			}
			if sum.Legs != 3 || sum.Connected != tt.connected || sum.Failed != total {
				t.Errorf("legs %d, connected %d, failed %d; want 3, %d, %d", sum.Legs, sum.Connected, sum.Failed, tt.connected, total)
			}
			if tt.wantErr == "" && sum.Window.Received == 0 {
				t.Errorf("the connected callers got nothing in the window: %+v", sum.Window)
			}
		})
	}
}
