package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
)

const testAdminKey = "e2e-admin-key-0123456789abcdefghij"

// TestMain lets the test binary be the switchboard process itself, for the
// tests that send it signals.
func TestMain(m *testing.M) {
	if args := os.Getenv("SWITCHBOARD_TEST_RUN"); args != "" {
		ctx, stop := signalContext()
		defer stop()
		os.Exit(run(ctx, strings.Fields(args), os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func mint(t *testing.T, user string, role calls.Role) string {
	t.Helper()
	m, err := api.NewTokens(testAdminKey, nil).Mint(api.TokenRequest{
		Identity: calls.CommunicationUser(user), DisplayName: user, Role: role,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m.Token
}

// events opens the event stream and returns a function reading the next
// event (type, callId, data).
func openEvents(t *testing.T, addr, token string) (func() (map[string]any, error), *websocket.Conn) {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/events", http.Header{"Authorization": {"Bearer " + token}})
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

// postResponse sends a POST with the token through the checking client;
// the caller closes the answer's body.
func postResponse(t *testing.T, url, token, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := checkedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// post sends a POST that must succeed and answers its JSON body.
func post(t *testing.T, url, token, body string) map[string]any {
	t.Helper()
	resp := postResponse(t, url, token, body)
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

// waitCallEnded reads events until callEnded for call and returns its
// reason.
func waitCallEnded(t *testing.T, next func() (map[string]any, error), call string) map[string]any {
	t.Helper()
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("event stream ended before callEnded of %s: %v", call, err)
		}
		if ev["type"] == "callEnded" && ev["callId"] == call {
			return ev["data"].(map[string]any)["callEndReason"].(map[string]any)
		}
	}
}

func wantReason(t *testing.T, reason map[string]any, code, sub float64) {
	t.Helper()
	if reason["code"] != code || reason["subCode"] != sub {
		t.Fatalf("callEndReason %v, want %v/%v", reason, code, sub)
	}
}

// TestMainShutdown boots the real program on port 0 and closes it with a
// live call: the call ends 503/1, the agent is told before the stream
// closes, and history keeps it.
func TestMainShutdown(t *testing.T) {
	history := store.NewMemory()
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
		Store: stillOpen{history},
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close(context.Background())
		}
	})
	alice := mint(t, "alice", calls.RoleAgent)
	next, _ := openEvents(t, m.Addr, alice)
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("first event %v, %v", ev, err)
	}
	call := post(t, "http://"+m.Addr+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)
	id := call["id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	wantReason(t, waitCallEnded(t, next, id), 503, 1)
	h, err := history.FindCallByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.Call.CallEndReason; r == nil || r.Code != 503 || r.SubCode != 1 {
		t.Fatalf("history has %+v, want 503/1", r)
	}
}

// stillOpen is a store whose Close leaves it readable, so a test can look
// at what shutdown wrote.
type stillOpen struct{ calls.Store }

func (stillOpen) Close(context.Context) error { return nil }

func TestRun(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"no command", nil, nil, 2, "", "usage"},
		{"unknown command", []string{"dance"}, nil, 2, "", "unknown command"},
		{"version", []string{"version"}, nil, 0, "switchboard ", ""},
		{"help", []string{"help"}, nil, 0, "commands:", ""},
		{"token", []string{"token", "--user", "alice"}, map[string]string{"SWITCHBOARD_ADMIN_KEY": testAdminKey}, 0, "eyJ", ""},
		{"token with a link", []string{"token", "--user", "alice", "--url", "http://127.0.0.1:8080"}, map[string]string{"SWITCHBOARD_ADMIN_KEY": testAdminKey}, 0, "http://127.0.0.1:8080/?token=eyJ", ""},
		{"token without the admin key", []string{"token", "--user", "alice"}, nil, 1, "", "admin key"},
		{"token with two identities", []string{"token", "--user", "a", "--teams", "b", "--admin-key", testAdminKey}, nil, 1, "", "exactly one"},
		{"token with a bad role", []string{"token", "--user", "a", "--role", "root", "--admin-key", testAdminKey}, nil, 1, "", "role"},
		{"token for a phone caller", []string{"token", "--phone", "+14255550123", "--role", "caller", "--admin-key", testAdminKey}, nil, 0, "eyJ", ""},
		{"serve with a bad flag", []string{"serve", "--nope"}, nil, 2, "", "flag provided but not defined"},
		{"serve with a bad duration", []string{"serve", "--ring-timeout", "soon"}, nil, 1, "", "ring-timeout"},
		{"serve with a negative drain grace", []string{"serve", "--drain-grace", "-1s"}, nil, 1, "", `--drain-grace "-1s" is not a duration of 0 or more`},
		{"serve on a Postgres that is not there", []string{"serve", "--addr", "127.0.0.1:0", "--postgres-wait", "1s"}, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", "SWITCHBOARD_ADMIN_KEY": testAdminKey}, 1, "", "Postgres"},
		{"serve with a bad trusted proxy", []string{"serve", "--trusted-proxies", "caddy"}, nil, 1, "", `--trusted-proxies: "caddy" is neither an address nor a CIDR prefix`},
		{"serve with a short admin key", []string{"serve", "--addr", "127.0.0.1:0"}, map[string]string{"SWITCHBOARD_ADMIN_KEY": "change-me"}, 1, "", "SWITCHBOARD_ADMIN_KEY is 9 characters long; it must be at least 32: make one with `openssl rand -base64 32`"},
		{"serve a cluster without an admin key", []string{"serve", "--addr", "127.0.0.1:0", "--cluster", "nats://127.0.0.1:1", "--node-id", "a"}, nil, 1, "", "--cluster needs SWITCHBOARD_ADMIN_KEY, the same on every node"},
		{"serve with a certificate that is not there", []string{"serve", "--addr", "127.0.0.1:0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, nil, 1, "", "--tls-cert: stat /nonexistent/cert.pem: no such file"},
		{"serve with a key that is not a key", []string{"serve", "--addr", "127.0.0.1:0", "--tls-cert", "main_test.go", "--tls-key", "main_test.go"}, nil, 1, "", "load --tls-cert main_test.go and --tls-key main_test.go"},
		{"serve with --tls-cert alone", []string{"serve", "--tls-cert", "c.pem"}, nil, 1, "", "--tls-cert and --tls-key go together"},
		{"migrate without a database", []string{"migrate"}, nil, 1, "", "DATABASE_URL"},
		{"serve with a malformed trunk", []string{"serve", "--sip-addr", "127.0.0.1:0", "--sip-trunk", "carrier"}, nil, 1, "", "--sip-trunk"},
		{"serve with a trunk and no SIP address", []string{"serve", "--sip-trunk", "carrier=sip:10.0.0.1"}, nil, 1, "", "--sip-trunk needs --sip-addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			vars := map[string]string{"SWITCHBOARD_DATA_DIR": t.TempDir()} // never ./switchboard-data
			maps.Copy(vars, tt.env)
			code := run(context.Background(), tt.args, &out, &errOut, env(vars))
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr %s", code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("stdout %q, want it to contain %q", out.String(), tt.wantOut)
			}
			if !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errOut.String(), tt.wantErr)
			}
		})
	}
}

func TestTokenVerifies(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"token", "--user", "bob", "--role", "supervisor", "--name", "Bob"}, &out, io.Discard, env(map[string]string{"SWITCHBOARD_ADMIN_KEY": testAdminKey})); code != 0 {
		t.Fatalf("exit %d", code)
	}
	sess, err := api.NewTokens(testAdminKey, nil).Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if sess.Identifier.RawID() != "8:acs:bob" || sess.Role != calls.RoleSupervisor || sess.DisplayName != "Bob" {
		t.Fatalf("token holds %+v", sess)
	}
	if _, err := api.NewTokens("another key", nil).Verify(strings.TrimSpace(out.String())); err == nil {
		t.Fatal("a token verified under another admin key")
	}
}

func TestServeFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(Config) error
	}{
		{"defaults", nil, nil, func(c Config) error {
			if c.Addr != "127.0.0.1:8080" || c.RingTimeout != calls.DefaultRingTimeout || c.ResumeLastHeld ||
				c.DrainGrace != 30*time.Second || c.ShutdownGrace != 10*time.Second {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
		{"environment", nil, map[string]string{"SWITCHBOARD_ADDR": ":9000", "SWITCHBOARD_RING_TIMEOUT": "5s", "SWITCHBOARD_RESUME_LAST_HELD": "true", "SWITCHBOARD_ALLOWED_ORIGINS": "https://a.example, https://b.example"}, func(c Config) error {
			if c.Addr != ":9000" || c.RingTimeout != 5*time.Second || !c.ResumeLastHeld || len(c.AllowedOrigins) != 2 {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
		{"flags win over the environment", []string{"--addr", ":9001", "--ring-timeout", "7s"}, map[string]string{"SWITCHBOARD_ADDR": ":9000"}, func(c Config) error {
			if c.Addr != ":9001" || c.RingTimeout != 7*time.Second {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
		{"drain grace", []string{"--drain-grace", "0"}, map[string]string{"SWITCHBOARD_DRAIN_GRACE": "2m"}, func(c Config) error {
			if c.DrainGrace != 0 {
				return fmt.Errorf("DrainGrace %s, want 0 (the flag wins)", c.DrainGrace)
			}
			return nil
		}},
		{"drain grace from the environment", nil, map[string]string{"SWITCHBOARD_DRAIN_GRACE": "2m"}, func(c Config) error {
			if c.DrainGrace != 2*time.Minute {
				return fmt.Errorf("DrainGrace %s, want 2m", c.DrainGrace)
			}
			return nil
		}},
		{"UDP ports", []string{"--udp-ports", "41000-41099"}, map[string]string{"SWITCHBOARD_UDP_PORT": "40000"}, func(c Config) error {
			if m := c.Media; m.PortMin != 41000 || m.PortMax != 41099 || m.SharedPort != 40000 || m.SharedPorts != 1 {
				return fmt.Errorf("%+v", m)
			}
			return nil
		}},
		{"HTTPS from the environment", nil, map[string]string{"SWITCHBOARD_TLS_CERT": "c.pem", "SWITCHBOARD_TLS_KEY": "k.pem", "SWITCHBOARD_HTTP_ADDR": ":80"}, func(c Config) error {
			if t := c.TLS; !t.On() || t.CertFile != "c.pem" || t.KeyFile != "k.pem" || t.HTTPAddr != ":80" {
				return fmt.Errorf("%+v", t)
			}
			return nil
		}},
		{"ACME", []string{"--acme-domain", "a.example, b.example", "--acme-email", "ops@example.com"}, map[string]string{"SWITCHBOARD_ACME_CACHE": "/var/cache/acme"}, func(c Config) error {
			if t := c.TLS; !t.On() || len(t.ACMEDomains) != 2 || t.ACMEDomains[1] != "b.example" || t.ACMEDirectory != "https://acme-v02.api.letsencrypt.org/directory" || t.ACMECache != "/var/cache/acme" || t.ACMEEmail != "ops@example.com" {
				return fmt.Errorf("%+v", t)
			}
			return nil
		}},
		{"plain HTTP by default", nil, nil, func(c Config) error {
			if c.TLS.On() || c.TLS.HTTPAddr != "" {
				return fmt.Errorf("%+v", c.TLS)
			}
			return nil
		}},
		{"SIP", []string{"--sip-addr", "0.0.0.0:5060", "--sip-trunk", "carrier=sip:u:p@sip.example:5080", "--sip-trunk", "pbx=sip:10.0.0.2"}, nil, func(c Config) error {
			if s := c.SIP; s.Addr != "0.0.0.0:5060" || len(s.Trunks) != 2 || s.Trunks[0].Host != "sip.example" || s.Trunks[0].Port != 5080 ||
				s.Trunks[0].User != "u" || s.Trunks[0].Password != "p" || s.Trunks[1].Port != 5060 {
				return fmt.Errorf("%+v", s)
			}
			return nil
		}},
		{"SIP from the environment", nil, map[string]string{"SWITCHBOARD_SIP_ADDR": ":5060", "SWITCHBOARD_SIP_TRUNKS": "a=sip:10.0.0.1 b=sip:10.0.0.2"}, func(c Config) error {
			if s := c.SIP; s.Addr != ":5060" || len(s.Trunks) != 2 || s.Trunks[1].Name != "b" {
				return fmt.Errorf("%+v", s)
			}
			return nil
		}},
		{"memory store", []string{"--store", "memory"}, nil, func(c Config) error {
			if c.HistoryStore != "memory" {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
		{"data directory", nil, nil, func(c Config) error {
			if c.DataDir != DefaultDataDir || c.HistoryStore != "" || len(c.TrustedProxies) != 0 {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
		{"data directory and trusted proxies from the environment", nil, map[string]string{"SWITCHBOARD_DATA_DIR": "/var/lib/sb", "SWITCHBOARD_TRUSTED_PROXIES": "172.16.0.0/12, 127.0.0.1,::1,10.1.2.3/8"}, func(c Config) error {
			want := []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8")}
			if c.DataDir != "/var/lib/sb" || !slices.Equal(c.TrustedProxies, want) {
				return fmt.Errorf("%+v", c)
			}
			return nil
		}},
		{"shared UDP ports", []string{"--udp-port", "40000-40007"}, nil, func(c Config) error {
			if m := c.Media; m.SharedPort != 40000 || m.SharedPorts != 8 {
				return fmt.Errorf("%+v", m)
			}
			return nil
		}},
		{"ICE-TCP on the shared port", []string{"--udp-port", "40000-40007"}, nil, func(c Config) error {
			if m := c.Media; !m.TCP || m.TCPPort != 40000 {
				return fmt.Errorf("%+v", m)
			}
			return nil
		}},
		{"no ICE-TCP without a shared port", []string{"--udp-ports", "41000-41099"}, nil, func(c Config) error {
			if m := c.Media; m.TCP {
				return fmt.Errorf("%+v", m)
			}
			return nil
		}},
		{"ICE-TCP port given", nil, map[string]string{"SWITCHBOARD_TCP_PORT": "443"}, func(c Config) error {
			if m := c.Media; !m.TCP || m.TCPPort != 443 {
				return fmt.Errorf("%+v", m)
			}
			return nil
		}},
		{"ICE-TCP off", []string{"--udp-port", "40000", "--tcp-port", "off"}, nil, func(c Config) error {
			if m := c.Media; m.TCP {
				return fmt.Errorf("%+v", m)
			}
			return nil
		}},
		{"TURN", []string{"--turn-addr", "0.0.0.0:3478", "--turn-relay-ports", "49160-49199", "--turn-ttl", "30m"}, nil, func(c Config) error {
			if i := c.Media.ICE; i.TURNAddr != "0.0.0.0:3478" || i.TURNRelayPortMin != 49160 || i.TURNRelayPortMax != 49199 || i.CredentialTTL != 30*time.Minute || i.TURNRealm != "switchboard" {
				return fmt.Errorf("%+v", i)
			}
			return nil
		}},
		{"TURN off by default", nil, nil, func(c Config) error {
			if i := c.Media.ICE; i.TURNAddr != "" || i.CredentialTTL != time.Hour || len(i.Servers) != 0 {
				return fmt.Errorf("%+v", i)
			}
			return nil
		}},
		{"ICE servers: flags replace the environment's", []string{"--ice-servers", "stun:a.example", "--ice-servers", "turn:b.example,secret=s"}, map[string]string{"SWITCHBOARD_ICE_SERVERS": "stun:env.example"}, func(c Config) error {
			if s := c.Media.ICE.Servers; len(s) != 2 || s[0].URLs[0] != "stun:a.example" || s[1].Secret != "s" {
				return fmt.Errorf("%+v", s)
			}
			return nil
		}},
		{"cluster from the environment, flags win", []string{"--node-id", "n2"}, map[string]string{"SWITCHBOARD_CLUSTER": "nats://127.0.0.1:4222", "SWITCHBOARD_NODE_ID": "n1"}, func(c Config) error {
			if cl := c.Cluster; !cl.On() || cl.URL != "nats://127.0.0.1:4222" || cl.NodeID != "n2" {
				return fmt.Errorf("%+v", cl)
			}
			return nil
		}},
		{"cluster node id defaults to the hostname", []string{"--cluster", "nats://127.0.0.1:4222"}, nil, func(c Config) error {
			if host, _ := os.Hostname(); c.Cluster.NodeID != host || host == "" {
				return fmt.Errorf("node id %q, hostname %q", c.Cluster.NodeID, host)
			}
			return nil
		}},
		{"no cluster by default", nil, nil, func(c Config) error {
			if c.Cluster.On() || c.Cluster.NodeID != "" {
				return fmt.Errorf("%+v", c.Cluster)
			}
			return nil
		}},
		{"ICE servers from the environment", nil, map[string]string{"SWITCHBOARD_ICE_SERVERS": "stun:a.example;turn:b.example,username=u,credential=p"}, func(c Config) error {
			if s := c.Media.ICE.Servers; len(s) != 2 || s[1].Username != "u" {
				return fmt.Errorf("%+v", s)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeFlags(tt.args, io.Discard, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.want(cfg); err != nil {
				t.Error(err)
			}
		})
	}
	for _, args := range [][]string{
		{"--udp-ports", "40100-40000"}, {"--udp-ports", "40000"},
		{"--udp-port", "0"}, {"--udp-port", "70000"}, {"--udp-port", "40000-40099"},
		{"--udp-port", "40007-40000"}, {"--udp-port", "40000-"}, {"--udp-port", "65535-65536"},
		{"--tcp-port", "0"}, {"--tcp-port", "on"}, {"--turn-addr", "3478"}, {"--turn-relay-ports", "49199-49160"},
		{"--turn-ttl", "0s"}, {"--ice-servers", "turn:a.example"},
	} {
		if _, err := parseServeFlags(args, io.Discard, env(nil)); err == nil {
			t.Errorf("serve %v was accepted", args)
		}
	}
	for _, tt := range []struct {
		args    []string
		env     map[string]string
		wantErr string
	}{
		{[]string{"--tls-cert", "c.pem"}, nil, "--tls-cert and --tls-key go together"},
		{[]string{"--store", "sqlite"}, nil, `--store "sqlite"`},
		{[]string{"--tls-key", "k.pem"}, nil, "--tls-cert and --tls-key go together"},
		{nil, map[string]string{"SWITCHBOARD_TLS_CERT": "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--acme-domain", "a.example", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, nil, "not both"},
		{[]string{"--http-addr", ":80"}, nil, "--http-addr redirects to HTTPS: it needs --tls-cert or --acme-domain"},
		{[]string{"--acme-domain", "a.example", "--acme-directory", ""}, nil, "--acme-directory is empty"},
		{[]string{"--cluster", "http://127.0.0.1:4222"}, nil, "--cluster"},
		{[]string{"--cluster", "127.0.0.1:4222"}, nil, "nats://"},
		{nil, map[string]string{"SWITCHBOARD_CLUSTER": "nats://h:4222", "SWITCHBOARD_NODE_ID": "a.b"}, "--node-id"},
		{[]string{"--node-id", "a"}, nil, "--node-id needs --cluster"},
	} {
		_, err := parseServeFlags(tt.args, io.Discard, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("serve %v %v: %v, want an error saying %q", tt.args, tt.env, err, tt.wantErr)
		}
	}
}

// TestEventsCommand prints a live stream with the events command.
func TestEventsCommand(t *testing.T) {
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"events", "--url", "http://" + m.Addr, "--token", mint(t, "alice", calls.RoleAgent)}, pw, io.Discard, env(nil))
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.Contains(line, `"type":"snapshot"`) {
		t.Fatalf("first line %q, %v; want the snapshot", line, err)
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if code := <-done; code != 0 {
		t.Fatalf("events exited %d", code)
	}
}
