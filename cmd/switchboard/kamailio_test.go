package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// The parts of the Kamailio tests, each on its own loopback address (all
// of 127.0.0.0/8 is local on Linux), since Kamailio tells them apart by
// their source address.
const (
	kamSwitchboardIP = "127.0.0.1"
	kamProxyIP       = "127.0.0.2"
	kamCarrierIP     = "127.0.0.3"
	kamStrangerIP    = "127.0.0.4"
)

// TestKamailio runs deploy/kamailio/kamailio.cfg in a real Kamailio between
// a carrier (sipp) and the real program, as the README tells operators to:
// the carrier's calls reach the agent through it (and its CANCEL) for the
// numbers it takes (NUMBERS; others get 404 from Kamailio), the
// agent's calls reach the carrier, either side hangs up along the recorded
// route set, and a stranger gets 403 from Kamailio without reaching the
// switchboard.
func TestKamailio(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	if kamailioBin() == "" {
		t.Skip("kamailio is not installed (Debian package kamailio)")
	}
	proxy := kamProxyIP + ":" + strconv.Itoa(int(freeUDPPort(t)))
	carrierPort := sippPort(t)
	m, history := startSIPSwitchboard(t, "kamailio=sip:"+proxy, "")
	startKamailio(t, proxy, "sip:"+kamCarrierIP+":"+carrierPort, "sip:"+m.SIPAddr, `NUMBERS="^[+]?1425555"`)
	routeNumber(t, m, "+14255550100", "alice")
	alice, next := online(t, m, "alice", calls.RoleAgent)

	recorded := func(t *testing.T, id string, code, sub int) {
		t.Helper()
		h, err := history.FindCallByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r := h.Call.CallEndReason; r == nil || r.Code != code || r.SubCode != sub {
			t.Errorf("history has %+v, want %d/%d", r, code, sub)
		}
	}

	// Run in order on one event stream: the stranger's call and the one
	// Kamailio refuses come first, so the agent's next incomingCall must be
	// the carrier's.
	t.Run("a stranger gets 403 from Kamailio", func(t *testing.T) {
		sippWith(t, "stranger_403.xml", "-s", "+14255550100", "-i", kamStrangerIP, "-p", sippPort(t), proxy)()
	})
	t.Run("the carrier calls a number not in NUMBERS: 404 from Kamailio", func(t *testing.T) {
		sippWith(t, "proxied_fails_404.xml", "-s", "+442071838750", "-i", kamCarrierIP, "-p", sippPort(t), proxy)()
	})
	for _, tt := range []struct {
		name      string
		scenario  string
		accept    bool
		hangUp    bool // the agent hangs up after accepting
		code, sub int
	}{
		{name: "the carrier calls in, the agent answers, the carrier hangs up", scenario: "proxied_carrier_hangs_up.xml", accept: true, code: 0, sub: 5000},
		{name: "the carrier calls in, the agent answers and hangs up", scenario: "proxied_agent_hangs_up.xml", accept: true, hangUp: true, code: 0, sub: 0},
		{name: "the carrier calls in and cancels before the answer", scenario: "proxied_cancel.xml", code: 487},
	} {
		t.Run(tt.name, func(t *testing.T) {
			carrier := sippWith(t, tt.scenario, "-s", "+14255550100", "-i", kamCarrierIP, "-p", sippPort(t), proxy)
			id := waitIncoming(t, next)
			if tt.accept {
				if call := post(t, "http://"+m.Addr+"/api/incoming-calls/"+id+"/accept", alice, ""); call["state"] != "Connected" {
					t.Errorf("accepted call is %v, want Connected", call["state"])
				}
			}
			if tt.hangUp {
				resp := postResponse(t, "http://"+m.Addr+"/api/calls/"+id+"/hangup", alice, "")
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("hang up: %d", resp.StatusCode)
				}
			}
			wantReason(t, waitCallEnded(t, next, id), float64(tt.code), float64(tt.sub))
			carrier()
			recorded(t, id, tt.code, tt.sub)
		})
	}
	t.Run("the agent calls out, the carrier answers and hangs up", func(t *testing.T) {
		carrier := sippWith(t, "proxied_answers_then_hangs_up.xml", "-i", kamCarrierIP, "-p", carrierPort)
		call := post(t, "http://"+m.Addr+"/api/calls", alice,
			`{"participants": [{"phoneNumber": "+14255550123"}], "alternateCallerId": {"phoneNumber": "+14255550100"}}`)
		id := call["id"].(string)
		wantReason(t, waitCallEnded(t, next, id), 0, 5000)
		carrier()
		recorded(t, id, 0, 5000)
	})
}

// kamailioBin is Kamailio's path: on PATH, or in /usr/sbin (where Debian
// puts it, and which a user's PATH may lack); "" when it is not installed.
func kamailioBin() string {
	for _, p := range []string{"kamailio", "/usr/sbin/kamailio"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// startKamailio runs Kamailio in the foreground with the repository's
// configuration, listening on listen (UDP), with the carrier's and the
// switchboard's URIs and any other defines (as -A takes them); it returns
// once Kamailio answers an OPTIONS from the switchboard's address, and
// stops it when the test ends (printing its log when the test failed).
func startKamailio(t *testing.T, listen, carrier, switchboard string, defines ...string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := filepath.Abs(filepath.Join("..", "..", "deploy", "kamailio", "kamailio.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", cfg, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"),
		"-w", dir, "-m", "32", "-M", "4",
		"-A", "LISTEN=udp:" + listen, "-A", `CARRIER="` + carrier + `"`, "-A", `SWITCHBOARD="` + switchboard + `"`}
	for _, d := range defines {
		args = append(args, "-A", d)
	}
	cmd := exec.Command(kamailioBin(), args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			t.Logf("kamailio's log:\n%s", log.String())
		}
	})

	// Kamailio is up once it answers an OPTIONS from the switchboard's
	// address (it answers them itself).
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(kamSwitchboardIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		t.Fatal(err)
	}
	from := conn.LocalAddr().String()
	options := "OPTIONS sip:" + listen + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + from + ";branch=z9hG4bK-ready\r\n" +
		"From: <sip:test@" + from + ">;tag=1\r\nTo: <sip:" + listen + ">\r\n" +
		"Call-ID: ready@" + from + "\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("kamailio exited (%v):\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("kamailio does not answer OPTIONS")
		}
		if _, err := conn.WriteToUDP([]byte(options), to); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _, err := conn.ReadFromUDP(buf); err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			return
		}
	}
}
