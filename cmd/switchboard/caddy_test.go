package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestCaddyProxy runs Caddy on deploy/Caddyfile, with the environment
// compose gives it, in front of a real switchboard, as docker compose
// does (on free ports instead of 80 and 443): a client that trusts Caddy's
// internal root gets the API and a wss:// event stream through it, by the
// LAN address (no server name, as browsers send for an address), and
// plain HTTP redirects to HTTPS. It needs Debian's caddy (.ci/run installs
// it) and skips without it.
func TestCaddyProxy(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (apt-get install caddy): the compose HTTPS proxy is not tried")
	}
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })

	c := startCaddy(t, caddy, "caddy", "Caddyfile", "SWITCHBOARD_UPSTREAM="+m.Addr)
	httpPort := c.httpPort
	if code, err := c.get("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /healthz through Caddy: %d %v", code, err)
	}

	c.wantSnapshot(t)

	// Plain HTTP redirects to HTTPS, same host and path. (Caddy names no
	// port, which is right for compose's 443.)
	resp, err := noRedirects.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)) + "/history?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode/100 != 3 || err != nil || loc.Scheme != "https" || loc.Hostname() != "127.0.0.1" || loc.RequestURI() != "/history?x=1" {
		t.Errorf("plain HTTP through Caddy: %d Location %q, want a redirect to https://127.0.0.1/history?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCaddyClusterProxy runs Caddy on deploy/Caddyfile.cluster in front of
// three real switchboards, as the compose profile cluster does (on free
// ports, the upstreams named by SWITCHBOARD_UPSTREAMS): requests are spread
// over the three, a wss:// event stream passes through, and once a node
// drains (its /readyz answers 503) Caddy sends it nothing new. It needs
// Debian's caddy (.ci/run installs it) and skips without it.
func TestCaddyClusterProxy(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (apt-get install caddy): the cluster's HTTPS entry is not tried")
	}
	var nodes []*Main
	var logs []*syncBuffer
	var upstreams []string
	for range 3 {
		var log syncBuffer
		m := &Main{
			Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, Ops: OpsConfig{AccessLog: true}},
			Logger: slog.New(slog.NewTextHandler(&log, nil)), Stdout: io.Discard,
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		nodes, logs, upstreams = append(nodes, m), append(logs, &log), append(upstreams, m.Addr)
	}
	// served counts the requests for /version each node answered.
	served := func() []int {
		var n []int
		for _, l := range logs {
			n = append(n, strings.Count(l.String(), "route=/version"))
		}
		return n
	}

	c := startCaddy(t, caddy, "caddy-cluster", "Caddyfile.cluster", "SWITCHBOARD_UPSTREAMS="+strings.Join(upstreams, " "))
	get := c.get

	// Every node gets requests.
	for i := 0; ; i++ {
		if code, err := get("/version"); err != nil || code != http.StatusOK {
			t.Fatalf("GET /version through Caddy: %d %v", code, err)
		}
		if !slices.Contains(served(), 0) {
			break
		}
		if i == 300 {
			t.Fatalf("after 300 requests the nodes answered %v: Caddy does not spread them", served())
		}
	}

	// The first node drains: once Caddy's health check has seen its
	// /readyz answer 503, it gets nothing new, and the others take all.
	if err := nodes[0].Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs[0].String(), "route=/readyz status=503") {
		if time.Now().After(deadline) {
			t.Fatal("30 s after the first node began draining Caddy has not asked its /readyz")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Caddy marks it down once it has read that answer: 10 requests in a
	// row answered elsewhere.
	for quiet := 0; quiet < 10; {
		before := served()[0]
		if code, err := get("/version"); err != nil || code != http.StatusOK {
			t.Fatalf("GET /version through Caddy while a node drains: %d %v", code, err)
		}
		if quiet++; served()[0] != before {
			quiet = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the first node began draining Caddy still sends it requests (%v)", served())
		}
	}
	before := served()
	for range 60 {
		if code, err := get("/version"); err != nil || code != http.StatusOK {
			t.Fatalf("GET /version through Caddy while a node drains: %d %v", code, err)
		}
	}
	if after := served(); after[0] != before[0] {
		t.Errorf("60 requests while the first node drains were answered %v (before %v): the draining node still gets some", after, before)
	}

	// The event stream through the cluster's entry.
	c.wantSnapshot(t)
}

// caddyProxy is a Caddy started by startCaddy, and a client that trusts
// its internal root.
type caddyProxy struct {
	site                string // https://127.0.0.1:<httpsPort>
	httpsPort, httpPort int
	tls                 *tls.Config
	client              *http.Client
}

// get fetches path through Caddy and answers the status.
func (c *caddyProxy) get(path string) (int, error) {
	resp, err := c.client.Get(c.site + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// wantSnapshot opens the event stream through Caddy as the console does
// (wss://, Origin the page's) and wants the snapshot first.
func (c *caddyProxy) wantSnapshot(t *testing.T) {
	t.Helper()
	dialer := websocket.Dialer{TLSClientConfig: c.tls, HandshakeTimeout: 10 * time.Second}
	conn, _, err := dialer.Dial("wss://127.0.0.1:"+strconv.Itoa(c.httpsPort)+"/api/events", http.Header{
		"Authorization": {"Bearer " + mint(t, "alice", calls.RoleAgent)},
		"Origin":        {c.site},
	})
	if err != nil {
		t.Fatalf("wss through Caddy: %v", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ev map[string]any
	if err := conn.ReadJSON(&ev); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("first event through Caddy %v, %v; want the snapshot", ev, err)
	}
}

// startCaddy runs Caddy on deploy/<caddyfile> with the environment compose
// gives service (with the cluster profile on, so either service is
// there) and upstream, on free ports, and waits until its internal root is
// written and /healthz answers through it (any status).
func startCaddy(t *testing.T, caddy, service, caddyfile, upstream string) *caddyProxy {
	t.Helper()
	root, p := loadCompose(t, []string{"SWITCHBOARD_PUBLIC_IP=127.0.0.1"}, "cluster")
	svc, err := p.GetService(service)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	c := &caddyProxy{httpsPort: closedPort(t), httpPort: closedPort(t)}
	c.site = "https://127.0.0.1:" + strconv.Itoa(c.httpsPort)
	environ := []string{
		"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home,
		upstream, "CADDY_ADMIN=off",
		"CADDY_HTTPS_PORT=" + strconv.Itoa(c.httpsPort), "CADDY_HTTP_PORT=" + strconv.Itoa(c.httpPort),
	}
	for k, v := range svc.Environment {
		if v != nil {
			environ = append(environ, k+"="+*v)
		}
	}
	var caddyLog syncBuffer
	cmd := exec.Command(caddy, "run", "--config", filepath.Join(root, "deploy", caddyfile), "--adapter", "caddyfile")
	cmd.Env, cmd.Stdout, cmd.Stderr = environ, &caddyLog, &caddyLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("caddy's log:\n%s", caddyLog.String())
		}
	})

	// Caddy makes its CA and the address's certificate at start.
	rootFile := filepath.Join(home, "caddy", "pki", "authorities", "local", "root.crt")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pemData, err := os.ReadFile(rootFile); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pemData) {
				c.tls = &tls.Config{RootCAs: pool}
				c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c.tls}}
				_, err := c.get("/healthz")
				if err == nil {
					return c
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET /healthz through Caddy: %v", err)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy wrote no root certificate at %s within 30 s", rootFile)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
