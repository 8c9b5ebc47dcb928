package main

import (
	"bytes"
	"context"
	"encoding/json"
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
