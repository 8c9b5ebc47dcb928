package testnet

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHostReachesTheTestOverItsLink(t *testing.T) {
	h := NewHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	out, err := h.Command(ctx, "ip", "-4", "addr", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr in the namespace: %v: %s", err, out)
	}
	if !strings.Contains(string(out), h.Addr.String()+"/24") {
		t.Fatalf("the namespace's addresses lack %s:\n%s", h.Addr, out)
	}

	// No IPv6 address turns up later to tell a browser the network changed.
	if out, err := h.Command(ctx, "ip", "-6", "addr", "show").CombinedOutput(); err == nil && strings.Contains(string(out), "inet6") {
		t.Errorf("the namespace has IPv6 addresses:\n%s", out)
	}

	// TCP from the host to a server of the test's, on the link.
	ln, err := net.Listen("tcp", net.JoinHostPort(h.Peer.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte(c.RemoteAddr().String()))
	}()
	c, err := h.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial from the host: %v", err)
	}
	seen, _ := io.ReadAll(c)
	c.Close()
	if host, _, _ := net.SplitHostPort(string(seen)); host != h.Addr.String() {
		t.Fatalf("the server saw the host at %q, want %s", seen, h.Addr)
	}

	// UDP passes until the host's firewall drops it.
	pc, err := net.ListenPacket("udp", net.JoinHostPort(h.Peer.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	send := func() bool {
		u, err := h.Dial(ctx, "udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		if _, err := u.Write([]byte("hello")); err != nil {
			return false // the firewall may refuse it at once (EPERM)
		}
		_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 16)
		n, _, err := pc.ReadFrom(buf)
		return err == nil && string(buf[:n]) == "hello"
	}
	if !send() {
		t.Fatal("a datagram from the host did not arrive before any firewall")
	}
	h.DropUDP(t)
	if send() {
		t.Fatal("a datagram from the host arrived through the firewall that drops UDP")
	}
}
