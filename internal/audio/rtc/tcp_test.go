package rtc

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"

	"github.com/switchboard/switchboard/internal/audio"
)

// TestICETCP: a caller that sends nothing over UDP reaches an answering
// engine through its ICE-TCP passive candidates, with its own UDP sockets
// or shared ones, and audio flows both ways over the TCP pair.
func TestICETCP(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"sockets per leg", Config{}},
		{"shared UDP port", Config{Shared: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.TCP, cfg.Loopback, cfg.IPv4Only = true, true, true
			cfg.DisconnectedAfter, cfg.FailedAfter, cfg.KeepAlive = time.Second, 3*time.Second, 200*time.Millisecond
			server, err := NewEngine(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer closeEngine(t, server)
			client := testEngine(t)
			ctx := context.Background()
			caller, offer, err := client.OfferWith(ctx, OfferOptions{TCPOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer caller.Close()
			if strings.Contains(offer, "a=candidate:") {
				t.Fatalf("a TCP-only offer carries candidates:\n%s", offer)
			}
			callee, answer, err := server.Answer(ctx, offer)
			if err != nil {
				t.Fatal(err)
			}
			defer callee.Close()
			port := strconv.Itoa(server.TCPAddr().(*net.TCPAddr).Port)
			if !hasCandidate(answer, "tcp", port, "tcptype passive") || !hasCandidate(answer, "udp", "", "") {
				t.Fatalf("the answer lacks a UDP candidate or an ICE-TCP passive one on port %s:\n%s", port, answer)
			}
			if err := caller.Accept(answer); err != nil {
				t.Fatal(err)
			}
			for _, l := range []*Leg{caller, callee} {
				select {
				case <-l.Connected():
				case <-time.After(10 * time.Second):
					t.Fatal("ICE-TCP did not connect in 10 s")
				}
			}
			for who, l := range map[string]*Leg{"caller": caller, "callee": callee} {
				pair, err := l.SelectedPair()
				if err != nil {
					t.Fatal(err)
				}
				if !pair.Local.NetworkType().IsTCP() || !pair.Remote.NetworkType().IsTCP() {
					t.Errorf("%s's pair %s is not TCP", who, pair)
				}
				if who == "caller" && (pair.Local.Type() != ice.CandidateTypeHost || pair.Remote.Type() != ice.CandidateTypeHost) {
					t.Errorf("caller's pair %s: want host to host", pair)
				}
			}
			hearEachOther(t, caller, callee)
		})
	}
}

// hearEachOther plays a tone each way for a second; each side must hear
// the other's in most frames.
func hearEachOther(t *testing.T, caller, callee *Leg) {
	t.Helper()
	up, down := audio.NewTone(400, -20), audio.NewTone(800, -20)
	var f audio.Frame
	heardUp, heardDown := 0, 0
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	for range 50 {
		<-tick.C
		up.Next(&f)
		caller.Play(audio.Output{PCM: &f})
		down.Next(&f)
		callee.Play(audio.Output{PCM: &f})
		if callee.Capture(&f) {
			if i, ok := audio.Dominant(&f, 1e-3, 400, 800); ok && i == 0 {
				heardUp++
			}
		}
		if caller.Capture(&f) {
			if i, ok := audio.Dominant(&f, 1e-3, 400, 800); ok && i == 1 {
				heardDown++
			}
		}
	}
	if heardUp < 35 || heardDown < 35 {
		t.Errorf("frames with the tone in 1 s: callee %d, caller %d; want at least 35 each", heardUp, heardDown)
	}
}

// hasCandidate tells whether desc has a candidate of transport on port
// (any when empty) whose line contains extra.
func hasCandidate(desc, transport, port, extra string) bool {
	for line := range strings.SplitSeq(desc, "\r\n") {
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "a=candidate:") || len(f) < 8 {
			continue
		}
		if strings.EqualFold(f[2], transport) && (port == "" || f[5] == port) && strings.Contains(line, extra) {
			return true
		}
	}
	return false
}

// TestICETCPPublicAddress: with a public address, the ICE-TCP candidates
// carry it, as the UDP ones do.
func TestICETCPPublicAddress(t *testing.T) {
	e, err := NewEngine(Config{Shared: true, TCP: true, PublicIPs: []string{"203.0.113.7"}, IPv4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, e)
	client := testEngine(t)
	caller, offer, err := client.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	callee, answer, err := e.Answer(context.Background(), offer)
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()
	n := 0
	for line := range strings.SplitSeq(answer, "\r\n") {
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "a=candidate:") || len(f) < 8 {
			continue
		}
		if !strings.Contains(f[4], ":") && f[4] != "203.0.113.7" {
			t.Errorf("candidate %q: want the public address", line)
		}
		if strings.EqualFold(f[2], "tcp") {
			n++
		}
	}
	if n == 0 {
		t.Errorf("no ICE-TCP candidate in the answer:\n%s", answer)
	}
}
