// Package natstest gives tests the two NATS servers they run against: the
// shared one named by SWITCHBOARD_TEST_NATS_URL (127.0.0.1:4222 by default,
// JetStream on), and an in-process nats-server with JetStream in a
// temporary directory that a test can shut down and restart. It is for
// tests only.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// URLEnv names the shared NATS server for tests.
const URLEnv = "SWITCHBOARD_TEST_NATS_URL"

// DefaultURL is used when URLEnv is unset.
const DefaultURL = "nats://127.0.0.1:4222"

// SharedURL answers the shared server's URL when it answers with
// JetStream. Without one the test skips, except under CI=true, where it
// fails: CI must never skip these tests silently (.ci/run starts a server).
func SharedURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(URLEnv)
	if url == "" {
		url = DefaultURL
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err == nil {
		defer nc.Close()
		js, jerr := jetstream.New(nc)
		if jerr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = js.AccountInfo(ctx)
		} else {
			err = jerr
		}
	}
	if err != nil {
		msg := fmt.Sprintf("no NATS with JetStream at %s (%s): %v", url, URLEnv, err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg + "; under CI=true this is a failure (.ci/run starts nats-server -js)")
		}
		tb.Skip(msg)
	}
	return url
}

// Connect connects to url with quick reconnects (a restarted server is
// found again within tens of milliseconds), closed when tb ends.
func Connect(tb testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.Timeout(2*time.Second),
	)
	if err != nil {
		tb.Fatalf("connect to %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Name answers prefix plus random hex: a bucket or stream name no other
// test (or test run) uses.
func Name(tb testing.TB, prefix string) string {
	tb.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// Server is an in-process nats-server with JetStream whose store is in a
// test's temporary directory, so that it survives Restart.
type Server struct {
	tb   testing.TB
	opts server.Options
	srv  *server.Server
}

// Start starts a server on a free port, shut down when tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	s.start()
	// The same port after a restart, so that clients reconnect to it.
	addr, ok := s.srv.Addr().(*net.TCPAddr)
	if !ok {
		tb.Fatalf("nats-server address %v is not TCP", s.srv.Addr())
	}
	s.opts.Port = addr.Port
	tb.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.tb.Fatalf("nats-server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.tb.Fatal("nats-server: not ready for connections within 10 s")
	}
	s.srv = srv
}

// URL is the server's client URL (the same across restarts).
func (s *Server) URL() string { return s.srv.ClientURL() }

// Shutdown stops the server and waits for it; a no-op when stopped.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart shuts the server down and starts it again on the same port and
// store directory.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Shutdown()
	s.start()
}

// Traffic is what the server counted since it started: messages and bytes
// in and out, all clients together.
func (s *Server) Traffic() (msgs, bytes int64) {
	s.tb.Helper()
	v, err := s.srv.Varz(nil)
	if err != nil {
		s.tb.Fatalf("nats-server varz: %v", err)
	}
	return v.InMsgs + v.OutMsgs, v.InBytes + v.OutBytes
}
