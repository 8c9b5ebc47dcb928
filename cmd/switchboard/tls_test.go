package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Switchboard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a server certificate for 127.0.0.1, localhost and any
// more addresses, with this serial number, to certFile and keyFile.
func (ca *testCA) issue(t *testing.T, serial int64, certFile, keyFile string, more ...net.IP) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "switchboard"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  append([]net.IP{net.IPv4(127, 0, 0, 1)}, more...),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// The key first: a reload between the two writes sees a mismatch and
	// keeps the old pair.
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// TestHTTPS serves the real program over HTTPS with a certificate from a
// CA made here: a client that trusts the CA gets /healthz and a wss://
// event stream, one that does not is refused, plain HTTP redirects to
// HTTPS, the events command takes an https:// URL with --ca-cert, and a
// certificate replaced on disk is served without a restart.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	ca := newTestCA(t)
	ca.issue(t, 100, certFile, keyFile)
	writeFile(t, caFile, ca.pem)

	m := &Main{
		Config: Config{
			Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute,
			TLS: TLSConfig{CertFile: certFile, KeyFile: keyFile, HTTPAddr: "127.0.0.1:0"},
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	tlsConf := &tls.Config{RootCAs: ca.pool()}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}

	t.Run("healthz over HTTPS", func(t *testing.T) {
		resp, err := client.Get("https://" + m.Addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil {
			t.Fatalf("GET /healthz: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
		}
	})

	t.Run("a client that does not trust the CA is refused", func(t *testing.T) {
		_, err := (&http.Client{Timeout: 10 * time.Second}).Get("https://" + m.Addr + "/healthz")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("got %v, want an unknown authority error", err)
		}
		resp, err := client.Get("http://" + m.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("the HTTPS listener answered plain HTTP with 200")
			}
		}
	})

	t.Run("wss event stream", func(t *testing.T) {
		dialer := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: 10 * time.Second}
		conn, _, err := dialer.Dial("wss://"+m.Addr+"/api/events", http.Header{
			"Authorization": {"Bearer " + mint(t, "alice", calls.RoleAgent)},
			"Origin":        {"https://" + m.Addr},
		})
		if err != nil {
			t.Fatalf("dial wss: %v", err)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ev map[string]any
		if err := conn.ReadJSON(&ev); err != nil || ev["type"] != "snapshot" {
			t.Fatalf("first event %v, %v; want the snapshot", ev, err)
		}
	})

	t.Run("plain HTTP redirects to HTTPS", func(t *testing.T) {
		if m.HTTPAddr == "" {
			t.Fatal("no redirect listener")
		}
		_, port, _ := net.SplitHostPort(m.Addr)
		for _, tt := range []struct{ method, path, host, want string }{
			{http.MethodGet, "/", "", "https://127.0.0.1:" + port + "/"},
			{http.MethodGet, "/history?agent=alice&x=1", "", "https://127.0.0.1:" + port + "/history?agent=alice&x=1"},
			{http.MethodPost, "/api/calls", "", "https://127.0.0.1:" + port + "/api/calls"},
			{http.MethodGet, "/call.html", "switchboard.example:80", "https://switchboard.example:" + port + "/call.html"},
		} {
			req, _ := http.NewRequest(tt.method, "http://"+m.HTTPAddr+tt.path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != tt.want {
				t.Errorf("%s %s (Host %q): %d Location %q, want 308 %q", tt.method, tt.path, tt.host, resp.StatusCode, resp.Header.Get("Location"), tt.want)
			}
		}
		// Following the redirect with a trusting client ends at the page.
		resp, err := client.Get("http://" + m.HTTPAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil {
			t.Fatalf("followed redirect: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
		}
	})

	t.Run("events command over https with --ca-cert", func(t *testing.T) {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		var stderr strings.Builder
		go func() {
			done <- run(ctx, []string{"events", "--url", "https://" + m.Addr, "--ca-cert", caFile, "--token", mint(t, "bob", calls.RoleAgent)}, pw, &stderr, env(nil))
			pw.Close()
		}()
		line, err := bufio.NewReader(pr).ReadString('\n')
		cancel()
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		code := <-done
		if err != nil || !strings.Contains(line, `"type":"snapshot"`) {
			t.Fatalf("first line %q, %v (exit %d, stderr %s); want the snapshot", line, err, code, stderr.String())
		}
		if code != 0 {
			t.Fatalf("events exited %d: %s", code, stderr.String())
		}
	})

	t.Run("a replaced certificate is served without a restart", func(t *testing.T) {
		ca.issue(t, 200, certFile, keyFile)
		deadline := time.Now().Add(10 * time.Second)
		for {
			conn, err := tls.Dial("tcp", m.Addr, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			serial := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
			conn.Close()
			if serial == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("still serving serial %d 10 s after the files changed", serial)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestClientsOverHTTPS: phone and loadgen take an https:// --url and
// trust the server's CA with --ca-cert; without it they refuse the server.
// The phone answers through a wss:// event stream too.
func TestClientsOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	ca := newTestCA(t)
	ca.issue(t, 1, certFile, keyFile)
	writeFile(t, caFile, ca.pem)
	m := &Main{
		Config: Config{
			Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute,
			Media: MediaConfig{Grace: time.Minute},
			TLS:   TLSConfig{CertFile: certFile, KeyFile: keyFile},
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	base := "https://" + m.Addr

	t.Run("phone calls the echo bot", func(t *testing.T) {
		var out, errOut strings.Builder
		code := run(context.Background(), []string{
			"phone", "--url", base, "--ca-cert", caFile, "--token", mint(t, "customer", calls.RoleCaller),
			"--call", "8:echo123", "--duration", "500ms",
		}, &out, &errOut, env(nil))
		if code != 0 || !strings.Contains(out.String(), "in call") {
			t.Fatalf("phone exited %d: %s%s", code, out.String(), errOut.String())
		}
	})

	t.Run("phone without the CA is refused", func(t *testing.T) {
		var errOut strings.Builder
		code := run(context.Background(), []string{
			"phone", "--url", base, "--token", mint(t, "customer", calls.RoleCaller), "--call", "8:echo123", "--duration", "500ms",
		}, io.Discard, &errOut, env(nil))
		if code == 0 || !strings.Contains(errOut.String(), "certificate") {
			t.Fatalf("phone exited %d: %s; want a certificate error", code, errOut.String())
		}
	})

	t.Run("phone answers", func(t *testing.T) {
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(context.Background(), []string{
				"phone", "--url", base, "--ca-cert", caFile, "--token", mint(t, "bob", calls.RoleAgent),
				"--answer", "--duration", "3s",
			}, &out, &errOut, env(nil))
		}()
		// Call bob until his phone's event stream is open (before, a
		// call to him ends at once with 480).
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
		alice := mint(t, "alice", calls.RoleAgent)
		deadline := time.Now().Add(10 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodPost, base+"/api/calls", strings.NewReader(`{"participants":[{"communicationUserId":"bob"}]}`))
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var call struct{ State string }
			err = json.NewDecoder(resp.Body).Decode(&call)
			resp.Body.Close()
			if err != nil || resp.StatusCode >= 300 {
				t.Fatalf("POST /api/calls: %d %v", resp.StatusCode, err)
			}
			if call.State != "Disconnected" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("bob's phone did not connect its event stream within 10 s: %s", errOut.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if code := <-done; code != 0 || !strings.Contains(out.String(), "in call") {
			t.Fatalf("phone exited %d: %s%s", code, out.String(), errOut.String())
		}
	})

	t.Run("loadgen", func(t *testing.T) {
		var out, errs strings.Builder
		args := []string{"--url", base, "--ca-cert", caFile, "--admin-key", testAdminKey, "--legs", "1", "--ramp", "0s",
			"--warmup", "100ms", "--duration", "500ms", "--json"}
		if err := loadgen(context.Background(), args, &out, &errs, func(string) string { return "" }); err != nil {
			t.Fatalf("loadgen: %v\n%s", err, errs.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		var sum LoadgenSummary
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Connected != 1 {
			t.Fatalf("summary %q (%v): want 1 leg connected", lines[len(lines)-1], err)
		}
	})
}
