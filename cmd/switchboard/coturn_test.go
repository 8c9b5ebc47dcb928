package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/pion/ice/v4"

	"github.com/switchboard/switchboard/internal/phone"
)

// TestCoturn: an external TURN server (coturn, use-auth-secret) configured
// with --ice-servers relays a softphone's call to the echo bot, with
// credentials the switchboard mints from the shared secret, over UDP and
// over TCP.
func TestCoturn(t *testing.T) {
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		t.Skip("coturn is not installed (apt-get install -y coturn; .ci/run does)")
	}
	port := freeUDPTCPPort(t)
	const secret = "coturn-test-secret"
	var log bytes.Buffer
	cmd := exec.Command(bin, "-n", "--no-cli", "--no-tls", "--no-dtls", "--log-file=stdout", "--simple-log",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port="+strconv.Itoa(int(port)),
		"--min-port=49152", "--max-port=65535", "--allow-loopback-peers",
		"--use-auth-secret", "--static-auth-secret="+secret, "--realm=switchboard.test", "--fingerprint")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("coturn's log:\n%s", log.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coturn does not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling for coturn to listen
	}
	servers, err := parseICEServers("turn:" + addr + "?transport=udp,turn:" + addr + "?transport=tcp,secret=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute, ICE: ICEConfig{CredentialTTL: time.Hour, Servers: servers}})
	for _, tt := range []struct {
		name  string
		opts  phone.Options
		proto string
	}{
		{"UDP", phone.Options{Relay: true}, "udp"},
		{"TCP", phone.Options{Relay: true, TCPOnly: true}, "tcp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, pair, proto := customerPhone(t, ctx, m.Addr, tt.opts)
			if pair.Local.Type() != ice.CandidateTypeRelay || proto != tt.proto {
				t.Fatalf("selected pair %s; want a relayed local candidate over %s", pair, tt.proto)
			}
			hearEcho(t, ctx, p)
		})
	}
}
