package sip_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/sip"
)

var alice = callstest.Agent("alice")

// The numbers the tests call.
const (
	routed   = "+14255550100" // to alice
	unrouted = "+14255550199"
	customer = "+14255550123" // the caller sipp claims to be
)

// events is a calls.Publisher that hands every event to a channel.
type events struct{ ch chan calls.Event }

func (e *events) Publish(ev calls.Event) {
	select {
	case e.ch <- ev:
	default:
		panic("test publisher: event queue full")
	}
}

// routes is calls.NumberRoutes' lookup, from a map.
type routes map[string]calls.NumberRoute

func (r routes) FindNumberRoute(_ context.Context, n string) (calls.NumberRoute, error) {
	if route, ok := r[n]; ok {
		return route, nil
	}
	return calls.NumberRoute{}, calls.ErrNumberNotRouted(n)
}

type harness struct {
	t      *testing.T
	f      *callstest.Fixture
	events *events
	srv    *sip.Server
}

// newHarness boots a switchboard with alice connected and the SIP server
// on a free port of 127.0.0.1, with the trunks given.
func newHarness(t *testing.T, trunks ...string) *harness {
	t.Helper()
	return newHarnessWith(t, nil, trunks...)
}

// newHarnessWith is newHarness with changes to the server's Config.
func newHarnessWith(t *testing.T, change func(*sip.Config), trunks ...string) *harness {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	ev := &events{ch: make(chan calls.Event, 4096)}
	later := &sip.Later{}
	f := callstest.New(t, calls.Config{Publisher: ev, Phones: later})
	f.Connect(t, alice)
	var ts []sip.Trunk
	for _, s := range trunks {
		tr, err := sip.ParseTrunk(s)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tr)
	}
	target := alice.Identifier
	cfg := sip.Config{
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: testLogLevel()})),
		Addr:   "127.0.0.1:0", Trunks: ts, Switchboard: f.Switchboard,
		Numbers: routes{routed: {Number: routed, Target: &target}},
	}
	if change != nil {
		change(&cfg)
	}
	srv, err := sip.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	later.Set(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &harness{t: t, f: f, events: ev, srv: srv}
}

// next waits for the next event of agent that matches typ.
func (h *harness) next(agent string, typ calls.EventType) calls.Event {
	h.t.Helper()
	deadline := time.After(20 * time.Second) // a hang, not a speed check
	for {
		select {
		case ev := <-h.events.ch:
			if ev.AgentID == agent && ev.Type == typ {
				return ev
			}
		case <-deadline:
			h.t.Fatalf("no %s event for %s", typ, agent)
		}
	}
}

// freePort is a port of 127.0.0.1 that was free a moment ago for both UDP
// and TCP, as sipp over TCP binds both: a port free for UDP alone may
// still be held by a TCP connection (TIME_WAIT), and sipp then cannot
// bind it.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// sipp is one run of sipp, as a carrier, against the server.
type sipp struct {
	cmd *exec.Cmd
	out bytes.Buffer
	dir string // where it runs and writes its traces
}

// startSipp runs one call of scenario to number over transport (u1 or t1).
func (h *harness) startSipp(scenario, number, transport string) *sipp {
	h.t.Helper()
	return h.sipp(scenario, "-s", number, "-t", transport, "-p", strconv.Itoa(freePort(h.t)), h.srv.Addr())
}

// startCarrier runs sipp as a carrier answering one call on port, over
// transport (u1 or t1).
func (h *harness) startCarrier(scenario string, port int, transport string) *sipp {
	h.t.Helper()
	return h.sipp(scenario, "-t", transport, "-p", strconv.Itoa(port))
}

func (h *harness) sipp(scenario string, args ...string) *sipp {
	h.t.Helper()
	s := &sipp{dir: h.t.TempDir()}
	if os.Getenv("SIP_TEST_DEBUG") != "" {
		s.dir, _ = os.MkdirTemp("", "sipp-") // kept for reading
		h.t.Logf("sipp runs in %s", s.dir)
	}
	xml, err := os.ReadFile(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, scenario), xml, 0o644); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	h.t.Cleanup(cancel)
	s.cmd = exec.CommandContext(ctx, "sipp",
		append([]string{"-sf", scenario, "-trace_err", "-trace_msg", "-m", "1",
			"-i", "127.0.0.1", "-mp", strconv.Itoa(freePort(h.t)),
			"-timeout", "30s", "-timeout_error", "-nostdin"}, args...)...)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// wait checks that sipp played its scenario through.
func (s *sipp) wait(t *testing.T) {
	t.Helper()
	if err := s.cmd.Wait(); err != nil {
		var logs strings.Builder
		files, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			fmt.Fprintf(&logs, "--- %s\n%s\n", filepath.Base(f), b)
		}
		t.Fatalf("sipp failed (%v):\n%s", err, logs.String())
	}
}

// lastRecord is the last recorded state of a call.
func (h *harness) lastRecord(id string) calls.Call {
	h.t.Helper()
	recs := h.f.Store.Records(id)
	if len(recs) == 0 {
		h.t.Fatalf("call %s was never recorded", id)
	}
	return recs[len(recs)-1].Call
}

func (h *harness) wantEnded(id string, want calls.EndReason) {
	h.t.Helper()
	c := h.lastRecord(id)
	if c.State != calls.StateDisconnected || c.CallEndReason == nil ||
		c.CallEndReason.Code != want.Code || c.CallEndReason.SubCode != want.SubCode {
		h.t.Errorf("call %s: %s %+v, want Disconnected %d/%d", id, c.State, c.CallEndReason, want.Code, want.SubCode)
	}
}

// incoming waits for the call ringing for alice and checks it comes from
// the customer's phone number.
func (h *harness) incoming() calls.IncomingCall {
	h.t.Helper()
	ev := h.next(alice.Identifier.RawID(), calls.EventIncomingCall)
	in := ev.Data.(calls.IncomingCallData).IncomingCall
	if want := calls.PhoneNumber(customer); in.CallerInfo.Identifier != want || in.CallerInfo.DisplayName != "Customer" {
		h.t.Errorf("incoming call from %+v, want %s \"Customer\"", in.CallerInfo, want.RawID())
	}
	return in
}

// phoneCall is the customer's own call in the same conversation as the
// agent's call.
func (h *harness) phoneCall(agentCall string) calls.Call {
	h.t.Helper()
	recs := h.f.Store.Records("")
	var server string
	for _, r := range recs {
		if r.Call.ID == agentCall {
			server = r.Call.ServerCallID
		}
	}
	for _, r := range recs {
		if r.Call.ServerCallID == server && r.Call.AgentID == calls.PhoneNumber(customer).RawID() {
			return h.lastRecord(r.Call.ID)
		}
	}
	h.t.Fatalf("no phone call beside %s", agentCall)
	return calls.Call{}
}

// TestInbound: a carrier (sipp) calls a routed number; the agent's phone
// rings with an incomingCall from a phoneNumber participant, and each way
// the call ends is the right SIP answer and the right end reasons.
func TestInbound(t *testing.T) {
	tests := []struct {
		name      string
		scenario  string
		transport string
		act       func(h *harness, in calls.IncomingCall)
		agent     calls.EndReason // alice's call's end
		phone     calls.EndReason // the phone's call's end
	}{
		{
			name: "answered, the carrier hangs up", scenario: "carrier_hangs_up.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				c := callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
				if c.State != calls.StateConnected || len(c.RemoteParticipants) != 1 ||
					c.RemoteParticipants[0].RawID != "4:"+customer {
					h.t.Errorf("accepted call = %+v, want Connected with the phone number", c)
				}
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{
			name: "answered over TCP, the carrier hangs up", scenario: "carrier_hangs_up.xml", transport: "t1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{
			name: "delayed offer: the 200 offers, the ACK answers", scenario: "delayed_offer.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{
			name: "delayed offer over TCP", scenario: "delayed_offer.xml", transport: "t1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{
			name: "answered, the phone holds and resumes, then hangs up", scenario: "carrier_holds.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
				h.waitState(alice.Identifier.RawID(), in.ID, calls.StateRemoteHold)
				h.waitState(alice.Identifier.RawID(), in.ID, calls.StateConnected)
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{
			name: "answered, the agent holds and resumes, then hangs up", scenario: "agent_holds.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				ctx := context.Background()
				callstest.Must[calls.Call](h.t)(h.f.Accept(ctx, alice, in.ID))
				callstest.Must[calls.Call](h.t)(h.f.Hold(ctx, alice, in.ID))
				callstest.Must[calls.Call](h.t)(h.f.Resume(ctx, alice, in.ID))
				callstest.Must[calls.Call](h.t)(h.f.HangUp(ctx, alice, in.ID, false))
			},
			agent: calls.ReasonHungUp, phone: calls.ReasonRemoteHungUp,
		},
		{
			name: "muted by a supervisor, the phone keys *6 by SIP INFO", scenario: "phone_unmutes.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				ctx := context.Background()
				callstest.Must[calls.Call](h.t)(h.f.Accept(ctx, alice, in.ID))
				if _, err := h.f.MuteParticipant(ctx, callstest.Supervisor("sue"), in.ID, "4:"+customer); err != nil {
					h.t.Fatal(err)
				}
				// The hold and resume re-INVITEs tell sipp the phone is muted by now.
				callstest.Must[calls.Call](h.t)(h.f.Hold(ctx, alice, in.ID))
				callstest.Must[calls.Call](h.t)(h.f.Resume(ctx, alice, in.ID))
				for {
					ev := h.next(alice.Identifier.RawID(), calls.EventIsMutedChanged)
					if d := ev.Data.(calls.MutedData); d.Participant == "4:"+customer && !d.IsMuted {
						if ev.Actor == nil || ev.Actor.RawID != "4:"+customer {
							h.t.Errorf("unmuted by %+v, want the phone itself", ev.Actor)
						}
						break
					}
				}
				callstest.Must[calls.Call](h.t)(h.f.HangUp(ctx, alice, in.ID, false))
			},
			agent: calls.ReasonHungUp, phone: calls.ReasonRemoteHungUp,
		},
		{
			name: "answered, the agent sends DTMF by SIP INFO", scenario: "agent_sends_tones.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
				callstest.Must[calls.Call](h.t)(h.f.SendTones(context.Background(), alice, in.ID, "1#"))
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{
			name: "answered, the agent hangs up", scenario: "agent_hangs_up.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
				callstest.Must[calls.Call](h.t)(h.f.HangUp(context.Background(), alice, in.ID, false))
			},
			agent: calls.ReasonHungUp, phone: calls.ReasonRemoteHungUp,
		},
		{
			name: "answered over TCP, the agent hangs up", scenario: "agent_hangs_up.xml", transport: "t1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Accept(context.Background(), alice, in.ID))
				callstest.Must[calls.Call](h.t)(h.f.HangUp(context.Background(), alice, in.ID, false))
			},
			agent: calls.ReasonHungUp, phone: calls.ReasonRemoteHungUp,
		},
		{
			name: "rejected: 603", scenario: "fails_603.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				callstest.Must[calls.Call](h.t)(h.f.Reject(context.Background(), alice, in.ID))
			},
			agent: calls.ReasonDeclined, phone: calls.ReasonDeclined,
		},
		{
			name: "nobody answers: 480", scenario: "fails_480.xml", transport: "u1",
			act: func(h *harness, in calls.IncomingCall) {
				h.f.Clock.Advance(calls.DefaultRingTimeout)
			},
			agent: calls.ReasonNoAnswer, phone: calls.ReasonNoAnswer,
		},
		{
			name: "canceled before the answer: 487", scenario: "cancel.xml", transport: "u1",
			agent: calls.ReasonCanceled, phone: calls.ReasonCanceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "carrier=sip:127.0.0.1")
			run := h.startSipp(tt.scenario, routed, tt.transport)
			in := h.incoming()
			if tt.act != nil {
				tt.act(h, in)
			}
			ended := h.next(alice.Identifier.RawID(), calls.EventCallEnded)
			run.wait(t)
			if ended.CallID != in.ID {
				t.Fatalf("callEnded for %s, want %s", ended.CallID, in.ID)
			}
			h.wantEnded(in.ID, tt.agent)
			pc := h.phoneCall(in.ID)
			h.wantEnded(pc.ID, tt.phone)
			if pc.Direction != calls.Outgoing || pc.CallerInfo.Identifier != calls.PhoneNumber(customer) {
				t.Errorf("phone call %+v, want an Outgoing call of %s", pc, customer)
			}
		})
	}
}

// TestInboundRefused: calls that never ring anyone get the SIP answer
// that says why.
func TestInboundRefused(t *testing.T) {
	tests := []struct {
		name     string
		trunk    string
		scenario string
		number   string
	}{
		{name: "unrouted number: 404", trunk: "carrier=sip:127.0.0.1", scenario: "fails_404.xml", number: unrouted},
		{name: "no PCMU in the offer: 488", trunk: "carrier=sip:127.0.0.1", scenario: "fails_488.xml", number: routed},
		{name: "an offer that is not SDP: 400", trunk: "carrier=sip:127.0.0.1", scenario: "fails_400.xml", number: routed},
		{name: "not a trunk, no credentials to challenge for: 403", trunk: "carrier=sip:127.0.0.2", scenario: "fails_403.xml", number: routed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.trunk)
			h.startSipp(tt.scenario, tt.number, "u1").wait(t)
			if recs := h.f.Store.Records(""); len(recs) != 0 {
				t.Errorf("a refused INVITE made calls: %+v", recs)
			}
		})
	}
}

// TestInboundDigest: a carrier calling from an address that is no trunk's
// is challenged, and answers with the trunk's user and password.
func TestInboundDigest(t *testing.T) {
	h := newHarness(t, "carrier=sip:carrier:secret@127.0.0.2")
	run := h.startSipp("digest.xml", routed, "u1")
	in := h.incoming()
	callstest.Must[calls.Call](t)(h.f.Accept(context.Background(), alice, in.ID))
	h.next(alice.Identifier.RawID(), calls.EventCallEnded)
	run.wait(t)
	h.wantEnded(in.ID, calls.ReasonRemoteHungUp)
}

// exchange sends one datagram to the server and answers the status line of
// its answer, or "" when none comes.
func exchange(t *testing.T, addr string, msg string) string {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg = strings.ReplaceAll(msg, "SENDER", c.LocalAddr().String())
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second)) // a lost answer, not a speed check
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

// TestMalformed: malformed requests and unknown methods get a correct
// answer, garbage gets none, and the server goes on serving.
func TestMalformed(t *testing.T) {
	h := newHarness(t, "carrier=sip:127.0.0.1")
	addr := h.srv.Addr()
	request := func(method, extra string) string {
		return method + " sip:" + routed + "@" + addr + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP SENDER;rport;branch=z9hG4bK-" + method + strconv.Itoa(len(extra)) + "\r\n" +
			"From: <sip:" + customer + "@127.0.0.1>;tag=1\r\n" +
			"To: <sip:" + routed + "@" + addr + ">\r\n" +
			"Call-ID: malformed-" + method + "\r\n" + extra +
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	}
	tests := []struct {
		name string
		msg  string
		want string // the status line; "" for no answer
	}{
		{name: "no CSeq", msg: request("INVITE", ""), want: "SIP/2.0 400 Bad Request"},
		{name: "unknown method", msg: request("FROBNICATE", "CSeq: 1 FROBNICATE\r\n"), want: "SIP/2.0 405 Method Not Allowed"},
		{name: "REGISTER", msg: request("REGISTER", "CSeq: 1 REGISTER\r\n"), want: "SIP/2.0 405 Method Not Allowed"},
		{name: "BYE outside a dialog", msg: request("BYE", "CSeq: 1 BYE\r\n"), want: "SIP/2.0 481 Call/Transaction Does Not Exist"},
		{name: "INVITE without Contact", msg: request("INVITE", "CSeq: 1 INVITE\r\nP-Asserted-Identity: <sip:"+customer+"@127.0.0.1>\r\n"), want: "SIP/2.0 400 Bad Request"},
		{name: "garbage", msg: "\x00\x01garbage\r\n\r\n", want: ""},
		{name: "an oversized datagram", msg: request("OPTIONS", "CSeq: 1 OPTIONS\r\nX-Pad: "+strings.Repeat("a", 60000)+"\r\n"), want: ""},
		{name: "OPTIONS still answered", msg: request("OPTIONS", "CSeq: 1 OPTIONS\r\n"), want: "SIP/2.0 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exchange(t, addr, tt.msg); got != tt.want {
				t.Errorf("answer %q, want %q", got, tt.want)
			}
		})
	}
	if recs := h.f.Store.Records(""); len(recs) != 0 {
		t.Errorf("malformed requests made calls: %+v", recs)
	}
}

// TestInviteFlood: INVITEs from an address that is no trunk's are limited:
// past the burst they are answered 503 with Retry-After, and none makes a
// call; a trunk's INVITEs are not limited.
func TestInviteFlood(t *testing.T) {
	const burst = 5
	h := newHarnessWith(t, func(c *sip.Config) {
		c.InviteBurst, c.InviteEvery = burst, time.Hour // no refill within the test
	}, "carrier=sip:127.0.0.2")
	invite := func(i int) string {
		return "INVITE sip:" + routed + "@" + h.srv.Addr() + " SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP SENDER;rport;branch=z9hG4bK-flood" + strconv.Itoa(i) + "\r\n" +
			"From: <sip:" + customer + "@127.0.0.1>;tag=f" + strconv.Itoa(i) + "\r\n" +
			"To: <sip:" + routed + "@" + h.srv.Addr() + ">\r\n" +
			"Call-ID: flood-" + strconv.Itoa(i) + "\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <sip:" + customer + "@SENDER>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	}
	var got []string
	for i := range burst + 3 {
		got = append(got, exchange(t, h.srv.Addr(), invite(i)))
	}
	for i, line := range got {
		want := "SIP/2.0 403 Forbidden"
		if i >= burst {
			want = "SIP/2.0 503 Service Unavailable"
		}
		if line != want {
			t.Errorf("INVITE %d answered %q, want %q", i+1, line, want)
		}
	}
	if recs := h.f.Store.Records(""); len(recs) != 0 {
		t.Errorf("a flood made calls: %+v", recs)
	}

	trusted := newHarnessWith(t, func(c *sip.Config) { c.InviteBurst, c.InviteEvery = 1, time.Hour }, "carrier=sip:127.0.0.1")
	for i := range 3 {
		msg := strings.Replace(invite(i), h.srv.Addr(), trusted.srv.Addr(), -1)
		msg = strings.Replace(msg, "sip:"+routed, "sip:"+unrouted, -1)
		if line := exchange(t, trusted.srv.Addr(), msg); line != "SIP/2.0 404 Not Found" {
			t.Errorf("trunk's INVITE %d answered %q, want 404 (not limited)", i+1, line)
		}
	}
}

// waitState waits until the agent's call is in state.
func (h *harness) waitState(agent, call string, state calls.CallState) {
	h.t.Helper()
	for {
		ev := h.next(agent, calls.EventStateChanged)
		if d := ev.Data.(calls.StateChangedData); ev.CallID == call && d.State == state {
			return
		}
	}
}

// TestOutbound: an agent calls a phone number; the call leaves through the
// trunk (sipp as the carrier) with the alternateCallerId in From and
// P-Asserted-Identity (sipp checks), and the carrier's answers become the
// agent's states and end reasons.
func TestOutbound(t *testing.T) {
	busy, notFound := calls.EndReason{Code: 486}, calls.EndReason{Code: 404}
	tests := []struct {
		name     string
		scenario string
		tcp      bool
		act      func(h *harness, call string)
		agent    calls.EndReason
		phone    calls.EndReason
	}{
		{
			name: "over TCP: 200, then the carrier hangs up", scenario: "answers_then_hangs_up.xml", tcp: true,
			act: func(h *harness, call string) {
				h.waitState(alice.Identifier.RawID(), call, calls.StateConnected)
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{
			name: "180, 183 with early media, 200; the agent hangs up", scenario: "answers_early.xml",
			act: func(h *harness, call string) {
				h.waitState(alice.Identifier.RawID(), call, calls.StateEarlyMedia)
				h.waitState(alice.Identifier.RawID(), call, calls.StateConnected)
				callstest.Must[calls.Call](h.t)(h.f.HangUp(context.Background(), alice, call, false))
			},
			agent: calls.ReasonHungUp, phone: calls.ReasonRemoteHungUp,
		},
		{
			name: "200, then the carrier hangs up", scenario: "answers_then_hangs_up.xml",
			act: func(h *harness, call string) {
				h.waitState(alice.Identifier.RawID(), call, calls.StateConnected)
			},
			agent: calls.ReasonRemoteHungUp, phone: sip.ReasonPhoneHungUp,
		},
		{name: "busy: 486", scenario: "answers_busy.xml", agent: busy, phone: busy},
		{name: "no such number: 404", scenario: "answers_404.xml", agent: notFound, phone: notFound},
		{
			name: "the agent gives up while it rings: CANCEL", scenario: "answers_ringing.xml",
			act: func(h *harness, call string) {
				callstest.Must[calls.Call](h.t)(h.f.HangUp(context.Background(), alice, call, false))
			},
			agent: calls.ReasonHungUp, phone: calls.ReasonCanceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := freePort(t)
			trunk, transport := "carrier=sip:127.0.0.1:"+strconv.Itoa(port), "u1"
			if tt.tcp {
				trunk, transport = trunk+";transport=tcp", "t1"
			}
			h := newHarness(t, trunk)
			carrier := h.startCarrier(tt.scenario, port, transport)
			if tt.tcp {
				waitListening(t, "127.0.0.1:"+strconv.Itoa(port))
			}
			alt := calls.PhoneNumber(routed)
			c := callstest.Must[calls.Call](t)(h.f.StartCall(context.Background(), alice, calls.StartCallRequest{
				Participants: []calls.Identifier{calls.PhoneNumber(customer)}, AlternateCallerID: &alt}))
			if tt.act != nil {
				tt.act(h, c.ID)
			}
			for {
				if ev := h.next(alice.Identifier.RawID(), calls.EventCallEnded); ev.CallID == c.ID {
					break
				}
			}
			carrier.wait(t)
			h.wantEnded(c.ID, tt.agent)
			pc := h.phoneCallOut(c.ID)
			h.wantEnded(pc.ID, tt.phone)
		})
	}
}

// phoneCallOut is the phone's call in the conversation of the agent's
// call to it.
func (h *harness) phoneCallOut(agentCall string) calls.Call {
	h.t.Helper()
	var server string
	for _, r := range h.f.Store.Records(agentCall) {
		server = r.Call.ServerCallID
	}
	for _, r := range h.f.Store.Records("") {
		if r.Call.ServerCallID == server && r.Call.AgentID == calls.PhoneNumber(customer).RawID() {
			return h.lastRecord(r.Call.ID)
		}
	}
	h.t.Fatalf("no phone call beside %s", agentCall)
	return calls.Call{}
}

// testLogLevel is warn, or debug with SIP_TEST_DEBUG set.
func testLogLevel() slog.Level {
	if os.Getenv("SIP_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// waitListening waits until something accepts TCP connections on addr
// (sipp, once started): readiness, not a speed check.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventLeg is a media leg that reports digits and its end, as package
// audio/rtp's legs do, driven by the test.
type eventLeg struct {
	sip.MediaLeg
	done   chan struct{}
	digits chan rune
}

func (l *eventLeg) Done() <-chan struct{} { return l.done }
func (l *eventLeg) DTMF() <-chan rune     { return l.digits }

// eventMedia hands out one eventLeg per call, on a channel.
type eventMedia struct{ legs chan *eventLeg }

func (m eventMedia) NewLeg(ctx context.Context, phone calls.Identifier) (sip.MediaLeg, error) {
	base, err := sip.NoMedia{}.NewLeg(ctx, phone)
	if err != nil {
		return nil, err
	}
	l := &eventLeg{MediaLeg: base, done: make(chan struct{}), digits: make(chan rune, 4)}
	m.legs <- l
	return l, nil
}

// TestMediaLegEvents: digits the media leg reports (RFC 4733) reach the
// switchboard (*6 unmutes a muted phone), and a leg that ends by itself
// (silence) ends the call with 410 and a BYE.
func TestMediaLegEvents(t *testing.T) {
	media := eventMedia{legs: make(chan *eventLeg, 1)}
	h := newHarnessWith(t, func(c *sip.Config) { c.Media = media }, "carrier=sip:127.0.0.1")
	run := h.startSipp("agent_hangs_up.xml", routed, "u1")
	in := h.incoming()
	leg := <-media.legs
	ctx := context.Background()
	callstest.Must[calls.Call](t)(h.f.Accept(ctx, alice, in.ID))
	if _, err := h.f.MuteParticipant(ctx, callstest.Supervisor("sue"), in.ID, "4:"+customer); err != nil {
		t.Fatal(err)
	}
	leg.digits <- '*'
	leg.digits <- '6'
	for {
		ev := h.next(alice.Identifier.RawID(), calls.EventIsMutedChanged)
		if d := ev.Data.(calls.MutedData); d.Participant == "4:"+customer && !d.IsMuted {
			break
		}
	}
	close(leg.done)
	h.next(alice.Identifier.RawID(), calls.EventCallEnded)
	run.wait(t)
	h.wantEnded(in.ID, calls.ReasonMediaLost)
}

// TestHoldOffers: the agent holding and resuming a phone's call sends
// re-INVITEs whose offers are the media leg's own (sipp checks sendonly,
// then sendrecv), and the o= version of the switchboard's descriptions
// rises with each: the answer, the hold, the resume.
func TestHoldOffers(t *testing.T) {
	h := newHarness(t, "carrier=sip:127.0.0.1")
	run := h.startSipp("agent_holds.xml", routed, "u1")
	in := h.incoming()
	ctx := context.Background()
	callstest.Must[calls.Call](t)(h.f.Accept(ctx, alice, in.ID))
	callstest.Must[calls.Call](t)(h.f.Hold(ctx, alice, in.ID))
	callstest.Must[calls.Call](t)(h.f.Resume(ctx, alice, in.ID))
	callstest.Must[calls.Call](t)(h.f.HangUp(ctx, alice, in.ID, false))
	h.next(alice.Identifier.RawID(), calls.EventCallEnded)
	run.wait(t)
	versions := run.originVersions(t, "switchboard")
	if len(versions) != 3 {
		t.Fatalf("the switchboard's o= versions %v, want 3 (answer, hold, resume)", versions)
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Errorf("o= versions %v: the re-INVITE %d did not raise it", versions, i)
		}
	}
}

// originVersions reads sipp's message trace for the session versions of
// the o= lines of user's descriptions, in the order sipp received them
// (sipp logs a retransmission again: repeats are dropped).
func (s *sipp) originVersions(t *testing.T, user string) []uint64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.dir, "*_messages.log"))
	if len(files) != 1 {
		t.Fatalf("sipp's message trace: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimSpace(line))
		if len(f) < 3 || f[0] != "o="+user || seen[line] {
			continue
		}
		seen[line] = true
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("o= line %q: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

// sendrecvMedia's legs are NoMedia's, but offer sendrecv (as an RTP leg
// does), with a version that rises with each offer.
type sendrecvMedia struct{}

type sendrecvLeg struct {
	sip.MediaLeg
	version atomic.Uint64
}

func (sendrecvMedia) NewLeg(ctx context.Context, phone calls.Identifier) (sip.MediaLeg, error) {
	base, err := sip.NoMedia{}.NewLeg(ctx, phone)
	return &sendrecvLeg{MediaLeg: base}, err
}

func (l *sendrecvLeg) Offer() ([]byte, error) {
	return fmt.Appendf(nil, "v=0\r\no=switchboard 1 %d IN IP4 127.0.0.1\r\ns=switchboard\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", l.version.Add(1)), nil
}

// TestOfferlessReinvite: the phone holds and resumes by re-INVITEs without
// SDP; each 200 carries the leg's offer (sipp checks it), and each ACK's
// answer (sendonly, then sendrecv) holds and resumes the agent's side.
func TestOfferlessReinvite(t *testing.T) {
	h := newHarnessWith(t, func(c *sip.Config) { c.Media = sendrecvMedia{} }, "carrier=sip:127.0.0.1")
	run := h.startSipp("carrier_holds_offerless.xml", routed, "u1")
	in := h.incoming()
	callstest.Must[calls.Call](t)(h.f.Accept(context.Background(), alice, in.ID))
	h.waitState(alice.Identifier.RawID(), in.ID, calls.StateRemoteHold)
	h.waitState(alice.Identifier.RawID(), in.ID, calls.StateConnected)
	h.next(alice.Identifier.RawID(), calls.EventCallEnded)
	run.wait(t)
	h.wantEnded(in.ID, calls.ReasonRemoteHungUp)
}

// TestOutboundByPrefix: a call out leaves through the trunk whose
// ;prefix= matches its number, not the first trunk (sipp, as that trunk's
// carrier, answers 486).
func TestOutboundByPrefix(t *testing.T) {
	port, elsewhere := freePort(t), freePort(t)
	h := newHarness(t, "other=sip:127.0.0.1:"+strconv.Itoa(elsewhere),
		"us=sip:127.0.0.1:"+strconv.Itoa(port)+";prefix=+44,+1425")
	carrier := h.startCarrier("answers_busy.xml", port, "u1")
	alt := calls.PhoneNumber(routed)
	c := callstest.Must[calls.Call](t)(h.f.StartCall(context.Background(), alice, calls.StartCallRequest{
		Participants: []calls.Identifier{calls.PhoneNumber(customer)}, AlternateCallerID: &alt}))
	for {
		if ev := h.next(alice.Identifier.RawID(), calls.EventCallEnded); ev.CallID == c.ID {
			break
		}
	}
	carrier.wait(t)
	h.wantEnded(c.ID, calls.EndReason{Code: 486})
}
