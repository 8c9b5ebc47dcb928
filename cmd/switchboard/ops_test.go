package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
)

// startOps runs the real program on port 0 with the embedded store, its
// log going to the returned buffer.
func startOps(t *testing.T, cfg Config) (*Main, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg.Addr, cfg.AdminKey, cfg.RingTimeout = "127.0.0.1:0", testAdminKey, time.Minute
	if cfg.Media.Grace == 0 {
		cfg.Media.Grace = time.Minute
	}
	m := &Main{
		Config: cfg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Stdout: io.Discard,
		Store: store.NewMemory(),
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, logs
}

// get sends a GET with token as bearer (none when empty) and answers the
// status and body.
func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := checkedClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// scrape reads /metrics with the admin key and parses it as Prometheus
// text.
func scrape(t *testing.T, m *Main) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := get(t, "http://"+m.Addr+"/metrics", testAdminKey)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, body)
	}
	return families
}

// value is the value of the family's metric whose labels include want
// (a histogram: its count); -1 when there is none.
func value(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
next:
	for _, mt := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range mt.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case mt.Counter != nil:
			return mt.Counter.GetValue()
		case mt.Gauge != nil:
			return mt.Gauge.GetValue()
		case mt.Histogram != nil:
			return float64(mt.Histogram.GetSampleCount())
		case mt.Untyped != nil:
			return mt.Untyped.GetValue()
		}
	}
	return -1
}

// TestMetrics scrapes /metrics from the real program before and after a
// call between two agents and a softphone's call to the echo bot: the
// named metrics parse as Prometheus text and move.
func TestMetrics(t *testing.T) {
	m, _ := startOps(t, Config{})
	base := "http://" + m.Addr
	if status, _ := get(t, base+"/metrics", ""); status != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the admin key: %d, want 401", status)
	}
	if status, _ := get(t, base+"/metrics", mint(t, "alice", calls.RoleSupervisor)); status != http.StatusUnauthorized {
		t.Errorf("GET /metrics with a supervisor's token: %d, want 401", status)
	}
	before := scrape(t, m)
	for _, name := range []string{
		"switchboard_calls", "switchboard_active_call_changes_total", "switchboard_events_published_total",
		"switchboard_media_legs", "switchboard_media_legs_opened_total", "switchboard_media_late_ticks_total",
		"switchboard_media_dropped_frames_total", "switchboard_media_mixer_ticks_total",
		"switchboard_store_queue_depth", "switchboard_http_request_duration_seconds", "switchboard_build_info",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if before[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if v := value(before, "switchboard_store_queue_depth", map[string]string{"place": "memory"}); v != 0 {
		t.Errorf("store queue depth (memory) %v, want 0", v)
	}

	alice, bob := mint(t, "alice", calls.RoleAgent), mint(t, "bob", calls.RoleAgent)
	nextA, _ := openEvents(t, m.Addr, alice)
	nextB, _ := openEvents(t, m.Addr, bob)
	_, _ = nextA()
	_, _ = nextB()
	call := post(t, base+"/api/calls", alice, `{"participants":[{"communicationUserId":"bob"}]}`)
	in := waitIncoming(t, nextB)
	post(t, base+"/api/incoming-calls/"+in+"/accept", bob, "")
	during := scrape(t, m)
	connected := map[string]string{"state": "Connected"}
	if got := value(during, "switchboard_calls", connected); got != 2 {
		t.Errorf("switchboard_calls{state=Connected} during the call: %v, want 2 (alice's view and bob's)", got)
	}
	post(t, base+"/api/calls/"+call["id"].(string)+"/hangup", alice, `{"forEveryone":true}`)
	waitCallEnded(t, nextB, in)

	// A softphone calls the echo bot: a WebRTC leg, mixer ticks.
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{
		"phone", "--url", base, "--token", mint(t, "customer", calls.RoleCaller),
		"--tone", "600", "--call", "8:echo123", "--duration", "1s",
	}, &out, &errOut, env(nil)); code != 0 {
		t.Fatalf("phone exited %d: %s%s", code, out.String(), errOut.String())
	}

	after := scrape(t, m)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		min    float64 // after - before must be at least this
	}{
		{"switchboard_active_call_changes_total", nil, 2},
		{"switchboard_events_published_total", map[string]string{"type": "incomingCall"}, 1},
		{"switchboard_events_published_total", map[string]string{"type": "callEnded"}, 2},
		{"switchboard_http_request_duration_seconds", map[string]string{"route": "/api/calls", "method": "POST", "status": "201"}, 1},
		{"switchboard_http_request_duration_seconds", map[string]string{"route": "/api/incoming-calls/:id/accept", "method": "POST", "status": "200"}, 1},
		{"switchboard_media_legs_opened_total", nil, 1},
		{"switchboard_media_mixer_ticks_total", nil, 25},
	} {
		b, a := max(0, value(before, tt.name, tt.labels)), value(after, tt.name, tt.labels)
		if a-b < tt.min {
			t.Errorf("%s%v went from %v to %v, want it up by %v or more", tt.name, tt.labels, b, a, tt.min)
		}
	}
	if got := value(after, "switchboard_calls", connected); got != 0 {
		t.Errorf("switchboard_calls{state=Connected} after the calls ended: %v, want 0", got)
	}
	if v := value(after, "switchboard_media_late_ticks_total", nil); v < 0 {
		t.Errorf("no late ticks counter")
	}
}

// TestMetricsPublic: with --metrics-public, /metrics needs no key.
func TestMetricsPublic(t *testing.T) {
	m, _ := startOps(t, Config{Ops: OpsConfig{MetricsPublic: true}})
	status, body := get(t, "http://"+m.Addr+"/metrics", "")
	if status != http.StatusOK || !strings.Contains(string(body), "switchboard_calls") {
		t.Fatalf("GET /metrics without a key: %d %.200s, want 200 and the metrics", status, body)
	}
}

// TestAccessLog: every request is logged with its route, status and
// identity, and tokens never are, whether in the Authorization header or
// in the access_token query parameter.
func TestAccessLog(t *testing.T) {
	m, logs := startOps(t, Config{Ops: OpsConfig{AccessLog: true}})
	base := "http://" + m.Addr
	alice := mint(t, "alice", calls.RoleAgent)
	const secret = "SECRET-in-the-query"

	if status, _ := get(t, base+"/api/calls?access_token="+secret, alice); status != http.StatusOK {
		t.Fatalf("GET /api/calls: %d", status)
	}
	if status, _ := get(t, base+"/api/events?access_token="+secret, ""); status != http.StatusUnauthorized {
		t.Fatalf("GET /api/events with a forged query token: %d, want 401", status)
	}
	next, conn := openEventsQuery(t, m.Addr, alice)
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("first event %v, %v", ev, err)
	}
	conn.Close()
	if status, _ := get(t, base+"/api/nope", "Bearer-"+secret); status != http.StatusNotFound {
		t.Fatalf("GET /api/nope: %d, want 404", status)
	}
	if status, _ := get(t, base+"/metrics", secret); status != http.StatusUnauthorized {
		t.Fatalf("GET /metrics with a wrong key: %d, want 401", status)
	}
	waitFor(t, "the websocket's access line", func() bool { return strings.Contains(logs.String(), "route=/api/events status=101") })

	out := logs.String()
	for _, bad := range []string{secret, alice, testAdminKey, "access_token"} {
		if strings.Contains(out, bad) {
			t.Errorf("the log prints %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{
		"msg=\"http request\" log=access method=GET route=/api/calls status=200",
		"client=127.0.0.1 identity=8:acs:alice",
		"route=/api/events status=401",
		"route=/api/events status=101",
		"route=/metrics status=401",
		"status=404",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %q:\n%s", want, out)
		}
	}
}

// openEventsQuery opens the event stream as a browser does, with the
// token in the access_token query parameter.
func openEventsQuery(t *testing.T, addr, token string) (func() (map[string]any, error), *websocket.Conn) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/events?access_token="+token, nil)
	if err != nil {
		t.Fatalf("dial events: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() (map[string]any, error) {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ev map[string]any
		err := conn.ReadJSON(&ev)
		return ev, err
	}, conn
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDebugListenerNeedsTheAdminKey: pprof and the media stats on
// --debug-addr answer 401 without the admin key and their data with it.
func TestDebugListenerNeedsTheAdminKey(t *testing.T) {
	m, _ := startOps(t, Config{Media: MediaConfig{DebugAddr: "127.0.0.1:0"}})
	base := "http://" + m.DebugAddr
	for _, tt := range []struct {
		path, want string
	}{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/cmdline", ""},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile"},
		{"/debug/pprof/symbol", "num_symbols"},
		{"/debug/media", `"mixer"`},
	} {
		for _, key := range []string{"", "wrong-key"} {
			if status, body := get(t, base+tt.path, key); status != http.StatusUnauthorized {
				t.Errorf("GET %s with key %q: %d %.100s, want 401", tt.path, key, status, body)
			}
		}
		status, body := get(t, base+tt.path, testAdminKey)
		if status != http.StatusOK || !strings.Contains(string(body), tt.want) {
			t.Errorf("GET %s with the admin key: %d %.100s, want 200 and %q", tt.path, status, body, tt.want)
		}
	}
}

// TestVersion: the build's version and VCS revision are printed by
// `switchboard version`, answered by GET /version and logged at start.
func TestVersion(t *testing.T) {
	defer func(v, r, tm, mod string) { version, revision, revisionTime, revisionModified = v, r, tm, mod }(version, revision, revisionTime, revisionModified)
	version, revision, revisionTime, revisionModified = "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-12-04T17:00:00Z", "true"

	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, io.Discard, env(nil)); code != 0 {
		t.Fatalf("version exited %d", code)
	}
	if want := "switchboard v1.2.3 (revision 0123456789ab, 2026-12-04T17:00:00Z, modified, go"; !strings.HasPrefix(out.String(), want) {
		t.Errorf("version printed %q, want it to start with %q", out.String(), want)
	}

	m, logs := startOps(t, Config{})
	status, body := get(t, "http://"+m.Addr+"/version", "")
	var got struct {
		Version, Revision, Time, GoVersion string
		Modified                           bool
	}
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
		t.Fatalf("GET /version: %d %s %v", status, body, err)
	}
	if got.Version != version || got.Revision != revision || got.Time != revisionTime || !got.Modified || !strings.HasPrefix(got.GoVersion, "go") {
		t.Errorf("GET /version: %+v, want the stamped build", got)
	}
	if want := "version=v1.2.3 revision=" + revision + " revision_time=2026-12-04T17:00:00Z modified=true"; !strings.Contains(logs.String(), want) {
		t.Errorf("the start log has no %q:\n%s", want, logs.String())
	}
}

// TestHealthcheck: the healthcheck command exits 0 on a healthy
// switchboard, 1 on a 503 or when nothing answers.
func TestHealthcheck(t *testing.T) {
	m, _ := startOps(t, Config{})
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tt := range []struct {
		name, url string
		code      int
		stderr    string
	}{
		{"healthy", "http://" + m.Addr + "/healthz", 0, ""},
		{"503", sick.URL + "/healthz", 1, "503 Service Unavailable"},
		{"nothing listens", gone.URL + "/healthz", 1, "connection refused"},
		{"bad flag", "", 2, "flag provided but not defined"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"healthcheck", "--url", tt.url, "--timeout", "5s"}
			if tt.url == "" {
				args = []string{"healthcheck", "--nope"}
			}
			var out, errOut bytes.Buffer
			if code := run(context.Background(), args, &out, &errOut, env(nil)); code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q", errOut.String(), tt.stderr)
			}
		})
	}
}

// TestClientsReadSwitchboardURL: without --url, the client commands take
// the switchboard's address from SWITCHBOARD_URL.
func TestClientsReadSwitchboardURL(t *testing.T) {
	m, _ := startOps(t, Config{})
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	goneHost := strings.TrimPrefix(gone.URL, "http://")
	alice := mint(t, "alice", calls.RoleAgent)
	for _, tt := range []struct {
		name string
		args []string
		url  string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{"token prints the console link", []string{"token", "--user", "alice", "--admin-key", testAdminKey}, "http://" + m.Addr, 0, "http://" + m.Addr + "/?token=eyJ", ""},
		{"events", []string{"events", "--token", alice}, gone.URL, 1, "", goneHost},
		{"phone", []string{"phone", "--token", alice, "--duration", "1s"}, gone.URL, 1, "", goneHost},
		{"loadgen", []string{"loadgen", "--admin-key", testAdminKey, "--legs", "1", "--ramp", "0s", "--duration", "1s"}, gone.URL, 1, "", goneHost},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			code := run(ctx, tt.args, &out, &errOut, env(map[string]string{"SWITCHBOARD_URL": tt.url}))
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errOut.String(), tt.err) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, %q in stdout and %q in stderr", code, out.String(), errOut.String(), tt.code, tt.out, tt.err)
			}
		})
	}
	// And events reaches a live switchboard by it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"events", "--token", alice}, lines, io.Discard, env(map[string]string{"SWITCHBOARD_URL": "http://" + m.Addr}))
	}()
	waitFor(t, "events to print the snapshot", func() bool { return strings.Contains(lines.String(), `"type":"snapshot"`) })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("events exited %d", code)
	}
}
