package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/sip"
)

// callOf GETs call id with token through m and decodes it.
func callOf(t *testing.T, m *Main, token, id string) calls.Call {
	t.Helper()
	status, body, _ := send(t, m, "GET", "/api/calls/"+id, token, "")
	var c calls.Call
	if status != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
		t.Fatalf("GET /api/calls/%s via %s: %d %s", id, m.Config.Cluster.NodeID, status, body)
	}
	return c
}

// describe is a call's state, mute and its participants' states and mutes.
func describe(c calls.Call) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s muted=%v", c.State, c.IsMuted)
	for _, p := range c.RemoteParticipants {
		fmt.Fprintf(&b, " [%s %s muted=%v]", p.RawID, p.State, p.IsMuted)
	}
	return b.String()
}

// waitCall polls call id through m until it is described as want.
func waitCall(t *testing.T, m *Main, token, id, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got = describe(callOf(t, m, token, id)); got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s through %s is %q, want %q", id, m.Config.Cluster.NodeID, got, want)
		}
	}
}

// endedInPostgres waits until the calls are ended in the shared history
// and answers each one's end reason as code/subcode and its node.
func endedInPostgres(t *testing.T, dbURL string, ids ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	got := map[string]string{}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ended := 0
		for _, id := range ids {
			var node string
			var code, sub *int
			err := conn.QueryRow(ctx, `SELECT node, end_code, end_subcode FROM calls WHERE id = $1`, id).Scan(&node, &code, &sub)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				got[id] = "not recorded"
			case err != nil:
				t.Fatal(err)
			case code == nil || sub == nil:
				got[id] = "live on " + node
			default:
				got[id] = fmt.Sprintf("%d/%d on %s", *code, *sub, node)
				ended++
			}
		}
		if ended == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the calls in Postgres 15 s on: %v; want all ended", got)
		}
	}
	return got
}

// acrossNodes is alice online on node a and bob on node b, of a cluster of
// three nodes sharing one Postgres.
type acrossNodes struct {
	dbURL      string
	a, b, c    *Main
	alice, bob string
	bobNext    func() (map[string]any, error)
	aliceNext  func() (map[string]any, error)
}

func newAcrossNodes(t *testing.T) *acrossNodes {
	x := &acrossNodes{dbURL: freshSchema(t)}
	c := newTestCluster(t)
	x.a, x.b, x.c = c.startOn("a", x.dbURL), c.startOn("b", x.dbURL), c.startOn("c", x.dbURL)
	x.alice, x.aliceNext = online(t, x.a, "alice", calls.RoleAgent)
	x.bob, x.bobNext = online(t, x.b, "bob", calls.RoleAgent)
	return x
}

// call has alice call bob, through node c, and answers alice's call and
// bob's incoming call.
func (x *acrossNodes) call(t *testing.T) (aliceCall, bobCall string) {
	t.Helper()
	status, body, _ := send(t, x.c, "POST", "/api/calls", x.alice, `{"participants":[{"communicationUserId":"bob"}]}`)
	var c calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &c) != nil {
		t.Fatalf("alice calls bob via c: %d %s", status, body)
	}
	return c.ID, ringing(t, x.bobNext)
}

// TestClusterCallAcrossNodes: alice, on node a, calls bob, on node b,
// through the HTTP API of node c; bob's console rings on b and he accepts
// there; each side's hold shows RemoteHold on the other, each side's mute
// shows on the other, and hang-ups each way end both calls with the
// reasons one node gives, recorded in the shared Postgres by each node.
func TestClusterCallAcrossNodes(t *testing.T) {
	x := newAcrossNodes(t)
	aliceCall, bobCall := x.call(t)
	waitCall(t, x.a, x.alice, aliceCall, "Ringing muted=false [8:acs:bob Ringing muted=false]")
	post(t, "http://"+x.b.Addr+"/api/incoming-calls/"+bobCall+"/accept", x.bob, "")

	for _, step := range []struct {
		name       string
		node       *Main
		token, id  string
		op         string
		alice, bob string
	}{
		{"answered", nil, "", "", "",
			"Connected muted=false [8:acs:bob Connected muted=false]", "Connected muted=false [8:acs:alice Connected muted=false]"},
		{"bob holds", x.b, x.bob, bobCall, "hold",
			"RemoteHold muted=false [8:acs:bob Hold muted=false]", "LocalHold muted=false [8:acs:alice Connected muted=false]"},
		{"alice holds too", x.a, x.alice, aliceCall, "hold",
			"LocalHold muted=false [8:acs:bob Hold muted=false]", "LocalHold muted=false [8:acs:alice Hold muted=false]"},
		{"bob resumes", x.b, x.bob, bobCall, "resume",
			"LocalHold muted=false [8:acs:bob Connected muted=false]", "RemoteHold muted=false [8:acs:alice Hold muted=false]"},
		{"alice resumes", x.a, x.alice, aliceCall, "resume",
			"Connected muted=false [8:acs:bob Connected muted=false]", "Connected muted=false [8:acs:alice Connected muted=false]"},
		{"bob mutes himself", x.b, x.bob, bobCall, "mute",
			"Connected muted=false [8:acs:bob Connected muted=true]", "Connected muted=true [8:acs:alice Connected muted=false]"},
		{"alice mutes herself", x.a, x.alice, aliceCall, "mute",
			"Connected muted=true [8:acs:bob Connected muted=true]", "Connected muted=true [8:acs:alice Connected muted=true]"},
	} {
		if step.node != nil {
			if status, body, _ := send(t, step.node, "POST", "/api/calls/"+step.id+"/"+step.op, step.token, ""); status != http.StatusOK {
				t.Fatalf("%s: %d %s", step.name, status, body)
			}
		}
		// Each through the node that owns it, and through the third.
		waitCall(t, x.a, x.alice, aliceCall, step.alice)
		waitCall(t, x.b, x.bob, bobCall, step.bob)
		if got := describe(callOf(t, x.c, x.bob, bobCall)); got != step.bob {
			t.Errorf("%s: bob's call via c is %q, want %q", step.name, got, step.bob)
		}
	}

	// Alice keys tones through c: bob's history on b records them (how
	// many, by alice), as alice's does.
	if status, body, _ := send(t, x.c, "POST", "/api/calls/"+aliceCall+"/dtmf", x.alice, `{"tones":"1234"}`); status != http.StatusOK {
		t.Fatalf("alice keys tones: %d %s", status, body)
	}
	sue := mint(t, "sue", calls.RoleSupervisor)
	waitHistoryEvents(t, x.c, sue, aliceCall, "alice", calls.EventDTMF, "count", []string{"4 by agent:8:acs:alice"})
	waitHistoryEvents(t, x.c, sue, bobCall, "bob", calls.EventDTMF, "count", []string{"4 by remote:8:acs:alice"})

	// Alice hangs up: bob's call ends, the remote side hung up.
	if status, body, _ := send(t, x.a, "POST", "/api/calls/"+aliceCall+"/hangup", x.alice, ""); status != http.StatusOK {
		t.Fatalf("alice hangs up: %d %s", status, body)
	}
	wantReason(t, waitCallEnded(t, x.bobNext, bobCall), 0, 5000)

	// Then bob calls alice back and hangs up himself.
	status, body, _ := send(t, x.b, "POST", "/api/calls", x.bob, `{"participants":[{"communicationUserId":"alice"}]}`)
	var back calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &back) != nil {
		t.Fatalf("bob calls alice: %d %s", status, body)
	}
	aliceBack := ringing(t, x.aliceNext)
	post(t, "http://"+x.a.Addr+"/api/incoming-calls/"+aliceBack+"/accept", x.alice, "")
	waitCall(t, x.b, x.bob, back.ID, "Connected muted=false [8:acs:alice Connected muted=false]")
	if status, body, _ := send(t, x.b, "POST", "/api/calls/"+back.ID+"/hangup", x.bob, ""); status != http.StatusOK {
		t.Fatalf("bob hangs up: %d %s", status, body)
	}
	wantReason(t, waitCallEnded(t, x.aliceNext, aliceBack), 0, 5000)

	got := endedInPostgres(t, x.dbURL, aliceCall, bobCall, back.ID, aliceBack)
	want := map[string]string{aliceCall: "0/0 on a", bobCall: "0/5000 on b", back.ID: "0/0 on b", aliceBack: "0/5000 on a"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("call %s in Postgres: ended %s, want %s", id, got[id], w)
		}
	}
}

// TestClusterCallAcrossNodesDeclined: bob declines alice's call from
// another node; both calls end 603 as on one node.
func TestClusterCallAcrossNodesDeclined(t *testing.T) {
	x := newAcrossNodes(t)
	aliceCall, bobCall := x.call(t)
	post(t, "http://"+x.b.Addr+"/api/incoming-calls/"+bobCall+"/reject", x.bob, "")
	wantReason(t, waitCallEnded(t, x.aliceNext, aliceCall), 603, 0)
	got := endedInPostgres(t, x.dbURL, aliceCall, bobCall)
	if got[aliceCall] != "603/0 on a" || got[bobCall] != "603/0 on b" {
		t.Errorf("in Postgres: alice's call %s, bob's %s; want 603/0 on each node", got[aliceCall], got[bobCall])
	}
}

// TestClusterCallAcrossNodesCalleeNodeStops: node b drains (SIGTERM's
// path: Drain, then Close once the grace passed) with bob on a call with
// alice: a new call from alice to bob is refused there and ends 503/1 on
// a; the live one goes on through the drain and ends 503/1 on both nodes
// when b closes, recorded by each.
func TestClusterCallAcrossNodesCalleeNodeStops(t *testing.T) {
	x := newAcrossNodes(t)
	aliceCall, bobCall := x.call(t)
	post(t, "http://"+x.b.Addr+"/api/incoming-calls/"+bobCall+"/accept", x.bob, "")
	waitCall(t, x.a, x.alice, aliceCall, "Connected muted=false [8:acs:bob Connected muted=false]")

	grace, passed := context.WithCancel(context.Background())
	drained := make(chan error, 1)
	go func() { drained <- x.b.Drain(grace) }()
	waitUntil(context.Background(), t, "b to drain", func() (bool, error) { return x.b.switchboard.Draining(), nil })

	status, body, _ := send(t, x.a, "POST", "/api/calls", x.alice, `{"participants":[{"communicationUserId":"bob"}]}`)
	var second calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &second) != nil {
		t.Fatalf("alice calls bob while b drains: %d %s", status, body)
	}
	wantReason(t, waitCallEnded(t, x.aliceNext, second.ID), 503, 1)
	// The live call (on hold since alice's second call) still works
	// through the drain.
	if status, body, _ := send(t, x.a, "POST", "/api/calls/"+aliceCall+"/resume", x.alice, ""); status != http.StatusOK {
		t.Fatalf("alice resumes while b drains: %d %s", status, body)
	}
	waitCall(t, x.a, x.alice, aliceCall, "Connected muted=false [8:acs:bob Connected muted=false]")
	if status, body, _ := send(t, x.b, "POST", "/api/calls/"+bobCall+"/hold", x.bob, ""); status != http.StatusOK {
		t.Fatalf("bob holds while b drains: %d %s", status, body)
	}
	waitCall(t, x.a, x.alice, aliceCall, "RemoteHold muted=false [8:acs:bob Hold muted=false]")

	passed()
	<-drained
	began := time.Now()
	if err := x.b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("b closed in %v", time.Since(began))
	wantReason(t, waitCallEnded(t, x.aliceNext, aliceCall), 503, 1)
	got := endedInPostgres(t, x.dbURL, aliceCall, bobCall, second.ID)
	want := map[string]string{aliceCall: "503/1 on a", bobCall: "503/1 on b", second.ID: "503/1 on a"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("call %s in Postgres: ended %s, want %s", id, got[id], w)
		}
	}
}

// TestClusterCallAcrossNodesCalleeNodeLost: node b, a `serve --cluster`
// process of its own, is killed with -9 while bob, on it, is on a call
// with alice, on node a. Once b is taken for dead (its node lease
// expired, its heartbeat stale), a ends alice's call 503/0 and records
// it; bob's call is ended 503/0 by a survivor (RecoverNode).
func TestClusterCallAcrossNodesCalleeNodeLost(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real switchboard")
	}
	dbURL := freshSchema(t)
	natsSrv := natstest.Start(t)
	bin := buildSwitchboard(t)
	b := &crashServer{t: t, bin: bin,
		env: []string{"DATABASE_URL=" + dbURL, "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey},
		args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--cluster", natsSrv.URL(), "--node-id", "lost-b"}}
	b.start()
	c := &testCluster{t: t, url: natsSrv.URL(), cfg: ClusterConfig{URL: natsSrv.URL(), ForwardTimeout: time.Second}}
	a := c.startOn("lost-a", dbURL)

	alice, aliceNext := online(t, a, "alice", calls.RoleAgent)
	bob := mint(t, "bob", calls.RoleAgent)
	bobNext, _ := openEvents(t, strings.TrimPrefix(b.base, "http://"), bob)
	if ev, err := bobNext(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("bob's first event on b: %v, %v", ev, err)
	}
	status, body, _ := send(t, a, "POST", "/api/calls", alice, `{"participants":[{"communicationUserId":"bob"}]}`)
	var aliceCall calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &aliceCall) != nil {
		t.Fatalf("alice calls bob: %d %s", status, body)
	}
	bobCall := ringing(t, bobNext)
	post(t, b.base+"/api/incoming-calls/"+bobCall+"/accept", bob, "")
	waitCall(t, a, alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")

	// Both calls in the shared history before the kill (b's journal writes
	// within milliseconds, but a kill may come first).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitUntil(ctx, t, "both calls in Postgres", func() (bool, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM calls WHERE id = ANY($1)`, []string{aliceCall.ID, bobCall}).Scan(&n)
		return n == 2, err
	})

	killed := b.kill()
	wantReason(t, waitCallEnded(t, aliceNext, aliceCall.ID), 503, 0)
	endedAfter := time.Since(killed)
	got := endedInPostgres(t, dbURL, aliceCall.ID, bobCall)
	if got[aliceCall.ID] != "503/0 on lost-a" || got[bobCall] != "503/0 on lost-b" {
		t.Errorf("in Postgres: alice's call %s, bob's %s; want 503/0 on each node", got[aliceCall.ID], got[bobCall])
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("kill -9 of bob's node: alice's call ended 503/0 on hers after %v (lease TTL 3 s, then a stale heartbeat); load average %s",
		endedAfter.Round(time.Millisecond), strings.TrimSpace(string(load)))
}

// hearsNo waits up to 5 s for a second of frames on the device with next
// to none carrying a tone at hz.
func hearsNo(device *audio.MemoryEndpoint, hz float64) bool {
	from := device.Played()
	return within(5*time.Second, func() bool {
		heard, _ := device.Heard(from)
		if len(heard) < 50 {
			return false
		}
		return countTone(heard[len(heard)-50:], hz) <= 2
	})
}

// TestClusterCallAcrossNodesMedia: the audio of a call across nodes goes
// through the node-to-node RTP leg both ways, and only while the call is
// active for the listener: alice's device on node a hears bob's tone
// from node b once he answered, not while he holds, again once he
// resumes, and not after the call ended; bob's hears hers likewise.
// (Tones found by a Goertzel filter per 20 ms frame, audio.ToneLevel.)
func TestClusterCallAcrossNodesMedia(t *testing.T) {
	const aliceHz, bobHz = 600, 1000
	x := newAcrossNodes(t)
	aliceDev := audio.NewMemoryEndpoint(audio.NewTone(aliceHz, -20))
	bobDev := audio.NewMemoryEndpoint(audio.NewTone(bobHz, -20))
	x.a.mixer.Attach(calls.CommunicationUser("alice").RawID(), aliceDev)
	x.b.mixer.Attach(calls.CommunicationUser("bob").RawID(), bobDev)

	aliceCall, bobCall := x.call(t)
	if !hearsNo(aliceDev, bobHz) {
		t.Error("alice hears bob while his console rings")
	}
	post(t, "http://"+x.b.Addr+"/api/incoming-calls/"+bobCall+"/accept", x.bob, "")
	if !hearsTone(aliceDev, bobHz) {
		t.Fatal("alice, on a, does not hear bob, on b, once he answered")
	}
	if !hearsTone(bobDev, aliceHz) {
		t.Fatal("bob, on b, does not hear alice, on a, once he answered")
	}
	post(t, "http://"+x.b.Addr+"/api/calls/"+bobCall+"/hold", x.bob, "")
	if !hearsNo(aliceDev, bobHz) {
		t.Error("alice still hears bob while he holds")
	}
	if !hearsNo(bobDev, aliceHz) {
		t.Error("bob still hears alice while he holds")
	}
	post(t, "http://"+x.b.Addr+"/api/calls/"+bobCall+"/resume", x.bob, "")
	if !hearsTone(aliceDev, bobHz) || !hearsTone(bobDev, aliceHz) {
		t.Fatal("alice and bob do not hear each other again once he resumed")
	}
	post(t, "http://"+x.a.Addr+"/api/calls/"+aliceCall+"/hangup", x.alice, "")
	if !hearsNo(aliceDev, bobHz) || !hearsNo(bobDev, aliceHz) {
		t.Error("alice and bob still hear each other after the call ended")
	}
	for _, m := range []*Main{x.a, x.b} {
		if n := m.peerCalls.media.engine.Open(); n != 0 {
			waitUntil(context.Background(), t, "the audio legs to close", func() (bool, error) {
				return m.peerCalls.media.engine.Open() == 0, nil
			})
		}
	}
}

// TestClusterPhoneCallAcrossNodes: a carrier's INVITE (sipp) reaches node
// a for a number routed to bob, whose console is on node b: bob rings on
// b and answers there, the phone hears bob's tone, carried from b to a
// over the leg between the nodes and on to the phone over its own RTP, and
// the carrier's BYE ends bob's call (0/5000).
func TestClusterPhoneCallAcrossNodes(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	const bobHz = 1000
	dbURL := freshSchema(t)
	c := newTestCluster(t)
	trunk, err := sip.ParseTrunk("carrier=sip:127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	a := c.startWith("a", func(cfg *Config) {
		cfg.DatabaseURL, cfg.DataDir = dbURL, t.TempDir()
		cfg.Media = MediaConfig{Grace: time.Minute}
		cfg.SIP = SIPConfig{Addr: "127.0.0.1:0", Trunks: []sip.Trunk{trunk}, RTPPorts: "28300-28349"}
	})
	b := c.startOn("b", dbURL)
	routeNumber(t, a, "+14255550102", "bob")
	b.mixer.Attach(calls.CommunicationUser("bob").RawID(), audio.NewMemoryEndpoint(audio.NewTone(bobHz, -20)))
	bob, bobNext := online(t, b, "bob", calls.RoleAgent)

	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	heard := &phoneEar{conn: phone}
	var wg sync.WaitGroup
	wg.Go(heard.listen)
	t.Cleanup(func() { phone.Close(); wg.Wait() })
	carrier := sippWith(t, "carrier_listens.xml", "-set", "rtpport", strconv.Itoa(phone.LocalAddr().(*net.UDPAddr).Port),
		"-s", "+14255550102", "-p", sippPort(t), a.SIPAddr)
	id := waitIncoming(t, bobNext)
	post(t, "http://"+b.Addr+"/api/incoming-calls/"+id+"/accept", bob, "")
	answered := heard.frames()
	time.Sleep(2 * time.Second)
	frames := heard.ulaw()[answered*audio.FrameSamples:]
	n, toned := len(frames)/audio.FrameSamples, 0
	for j := range n {
		var f audio.Frame
		audio.DecodeUlaw(&f, frames[j*audio.FrameSamples:(j+1)*audio.FrameSamples])
		if audio.ToneLevel(&f, bobHz) > toneLevel {
			toned++
		}
	}
	if n < 50 || toned < n/2 {
		t.Errorf("the phone heard bob's tone in %d of the %d frames since he answered; want most", toned, n)
	}
	wantReason(t, waitCallEnded(t, bobNext, id), 0, 5000)
	carrier()
}

// TestClusterCallAcrossNodesNATSRestart: NATS restarts (shorter than the
// leases' life) during a call across nodes; a hold made on alice's node
// meanwhile reaches bob's once NATS is back, and the call goes on.
func TestClusterCallAcrossNodesNATSRestart(t *testing.T) {
	dbURL := freshSchema(t)
	srv := natstest.Start(t)
	c := &testCluster{t: t, url: srv.URL(), cfg: ClusterConfig{URL: srv.URL(), LeaseBucket: "leases", LeaseTTL: 5 * time.Second,
		SubjectPrefix: "sb", ForwardTimeout: time.Second}}
	a, b := c.startOn("nr-a", dbURL), c.startOn("nr-b", dbURL)
	alice, _ := online(t, a, "alice", calls.RoleAgent)
	bob, bobNext := online(t, b, "bob", calls.RoleAgent)
	status, body, _ := send(t, a, "POST", "/api/calls", alice, `{"participants":[{"communicationUserId":"bob"}]}`)
	var aliceCall calls.Call
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &aliceCall) != nil {
		t.Fatalf("alice calls bob: %d %s", status, body)
	}
	bobCall := ringing(t, bobNext)
	post(t, "http://"+b.Addr+"/api/incoming-calls/"+bobCall+"/accept", bob, "")
	waitCall(t, a, alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")

	srv.Shutdown()
	if status, body, _ := send(t, a, "POST", "/api/calls/"+aliceCall.ID+"/hold", alice, ""); status != http.StatusOK {
		t.Fatalf("alice holds while NATS is down: %d %s", status, body)
	}
	time.Sleep(2 * time.Second)
	srv.Restart()
	waitCall(t, b, bob, bobCall, "RemoteHold muted=false [8:acs:alice Hold muted=false]")
	if status, body, _ := send(t, a, "POST", "/api/calls/"+aliceCall.ID+"/resume", alice, ""); status != http.StatusOK {
		t.Fatalf("alice resumes after the restart: %d %s", status, body)
	}
	waitCall(t, b, bob, bobCall, "Connected muted=false [8:acs:alice Connected muted=false]")
}
