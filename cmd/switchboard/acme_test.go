package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// acmeDomain is the name the tests obtain certificates for; a DNS server
// of the test's own answers 127.0.0.1 for it.
const acmeDomain = "switchboard.test"

// TestACME obtains a certificate from Pebble, Let's Encrypt's test ACME
// server, run in-process and validating for real: its validation
// authority resolves the domain through the test's DNS server and
// connects to the switchboard. First by TLS-ALPN-01 on the HTTPS listener;
// then, with TLS-ALPN-01 pointed at a closed port, by HTTP-01 on the
// redirect listener. The switchboard serves the certificate it got: it
// names the domain and chains to Pebble's root.
func TestACME(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	resolver := dnsServer(t)
	closed := closedPort(t)
	for _, tt := range []struct {
		name string
		// redirect: serve the plain HTTP listener (HTTP-01).
		redirect bool
		// alpnToHTTPS: Pebble validates TLS-ALPN-01 on the HTTPS
		// listener; otherwise on a closed port, so that it fails.
		alpnToHTTPS bool
	}{
		{"tls-alpn-01 on the HTTPS listener", false, true},
		{"http-01 on the redirect listener", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var pebbleLog syncBuffer
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("pebble's log:\n%s", pebbleLog.String())
				}
			})
			// The ACME server's handler is set once the switchboard's
			// ports, which its validation authority dials, are known.
			var handler atomic.Pointer[http.Handler]
			acmeSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				(*handler.Load()).ServeHTTP(w, r)
			}))
			t.Cleanup(acmeSrv.Close)

			cfg := TLSConfig{
				ACMEDomains:   []string{acmeDomain},
				ACMEDirectory: acmeSrv.URL + wfe.DirectoryPath,
				ACMECache:     t.TempDir(),
			}
			if tt.redirect {
				cfg.HTTPAddr = "127.0.0.1:0"
			}
			m := &Main{
				Config:         Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, TLS: cfg},
				Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
				Stdout:         io.Discard,
				ACMEHTTPClient: acmeSrv.Client(),
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })

			tlsPort, httpPort := closed, closed
			if tt.alpnToHTTPS {
				tlsPort = port(t, m.Addr)
			}
			if tt.redirect {
				httpPort = port(t, m.HTTPAddr)
			}
			logger := log.New(&pebbleLog, "pebble ", 0)
			store := db.NewMemoryStore()
			authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
			validator := va.New(logger, httpPort, tlsPort, false, resolver, store)
			pebbleWFE := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
			var h http.Handler = pebbleWFE.Handler()
			handler.Store(&h)

			// The first handshake for the domain obtains the certificate.
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Minute}, "tcp", m.Addr, &tls.Config{
				ServerName:         acmeDomain,
				InsecureSkipVerify: true, // verified below, against Pebble's root
			})
			if err != nil {
				t.Fatalf("TLS handshake for %s: %v", acmeDomain, err)
			}
			served := conn.ConnectionState().PeerCertificates
			conn.Close()

			roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(authority.GetRootCert(0).Cert)
			for _, c := range served[1:] {
				intermediates.AddCert(c)
			}
			chains, err := served[0].Verify(x509.VerifyOptions{DNSName: acmeDomain, Roots: roots, Intermediates: intermediates})
			if err != nil {
				t.Fatalf("the served certificate (%s, issued by %s) does not verify against Pebble's root: %v", served[0].DNSNames, served[0].Issuer, err)
			}
			if got, want := chains[0][1].Subject.String(), authority.GetIntermediateCert(0).Cert.Subject.String(); got != want {
				t.Errorf("issued by %s, want Pebble's intermediate %s", got, want)
			}

			// A client that trusts Pebble's root gets the API over it.
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: acmeDomain},
			}}
			resp, err := client.Get("https://" + m.Addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /healthz: %d", resp.StatusCode)
			}
		})
	}
}

// dnsServer answers every A question with 127.0.0.1 (and AAAA with no
// address), over TCP as Pebble's validation authority asks; it returns
// its address.
func dnsServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		reply := new(dns.Msg)
		reply.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				reply.Answer = append(reply.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(reply)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("DNS server: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// closedPort is a local TCP port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := port(t, ln.Addr().String())
	ln.Close()
	return p
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// syncBuffer is a bytes.Buffer that several goroutines may write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
