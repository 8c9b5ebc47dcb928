package rtc

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSilentTURNServer: a TURN server that never answers delays an offer
// by the gathering timeout, no more, and the leg still connects on its
// host candidates; relay only, it fails.
func TestSilentTURNServer(t *testing.T) {
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	client, err := NewEngine(Config{Loopback: true, IPv4Only: true, GatherTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	servers := []ICEServer{{URLs: []string{"turn:" + silent.LocalAddr().String() + "?transport=udp"}, Username: "u", Credential: "p"}}
	start := time.Now()
	caller, offer, err := client.OfferWith(context.Background(), OfferOptions{ICEServers: servers})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the offer took %v; want about the gathering timeout (500 ms)", d)
	}
	if !strings.Contains(offer, "typ host") || strings.Contains(offer, "typ relay") {
		t.Fatalf("want host candidates alone:\n%s", offer)
	}
	server := testEngine(t)
	callee, answer, err := server.Answer(context.Background(), offer)
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()
	if err := caller.Accept(answer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-callee.Connected():
	case <-time.After(10 * time.Second):
		t.Fatal("no connection on the host candidates")
	}
	if _, _, err := client.OfferWith(context.Background(), OfferOptions{ICEServers: servers, Relay: true}); err == nil {
		t.Error("a relay-only offer without an answering TURN server was made")
	}
}
