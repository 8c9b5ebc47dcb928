package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/lease"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// joinRoom has token's identity join room through m and answers its call.
func joinRoom(t *testing.T, m *Main, token, room string) calls.Call {
	t.Helper()
	status, body, _ := send(t, m, "POST", "/api/calls/join", token, `{"roomId":"`+room+`"}`)
	var c calls.Call
	if status != http.StatusCreated && status != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
		t.Fatalf("join %s via %s: %d %s", room, m.Config.Cluster.NodeID, status, body)
	}
	return c
}

// TestClusterRoomAcrossNodes: alice, bob and carol, owned by nodes a, b
// and c, join one room (bob's request reaching node c): it is one
// conversation, anchored on a, the first joiner's node. Each sees the
// other two, with the same serverCallId; bob's hold shows as Hold to
// alice and carol; each hears the other two's tones (per 20 ms frame)
// and not a held party's; carol leaving is seen by both others; and each
// node records its own party's call in the shared Postgres, once.
func TestClusterRoomAcrossNodes(t *testing.T) {
	const aliceHz, bobHz, carolHz = 600, 1000, 1400
	x := newAcrossNodes(t)
	carol, carolNext := online(t, x.c, "carol", calls.RoleAgent)
	devs := map[string]*audio.MemoryEndpoint{}
	for _, p := range []struct {
		m    *Main
		name string
		hz   float64
	}{{x.a, "alice", aliceHz}, {x.b, "bob", bobHz}, {x.c, "carol", carolHz}} {
		devs[p.name] = audio.NewMemoryEndpoint(audio.NewTone(p.hz, -20))
		p.m.mixer.Attach(calls.CommunicationUser(p.name).RawID(), devs[p.name])
	}

	aliceCall := joinRoom(t, x.a, x.alice, "standup")
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false")
	bobCall := joinRoom(t, x.c, x.bob, "standup") // forwarded to b, bob's node
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=false]")
	carolCall := joinRoom(t, x.c, carol, "standup")
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false] [8:acs:carol Connected muted=false]")
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:carol Connected muted=false]")
	waitCall(t, x.c, carol, carolCall.ID, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:bob Connected muted=false]")
	if bobCall.ServerCallID != aliceCall.ServerCallID || carolCall.ServerCallID != aliceCall.ServerCallID {
		t.Errorf("serverCallIds: alice %s, bob %s, carol %s; want one", aliceCall.ServerCallID, bobCall.ServerCallID, carolCall.ServerCallID)
	}

	for _, h := range []struct {
		who string
		hz  float64
	}{{"alice", bobHz}, {"alice", carolHz}, {"bob", aliceHz}, {"bob", carolHz}, {"carol", aliceHz}, {"carol", bobHz}} {
		if !hearsTone(devs[h.who], h.hz) {
			t.Errorf("%s does not hear the %v Hz tone of the room", h.who, h.hz)
		}
	}

	msgsBefore, bytesBefore := peerCallTraffic(x.a, x.b, x.c)
	if status, body, _ := send(t, x.b, "POST", "/api/calls/"+bobCall.ID+"/hold", x.bob, ""); status != http.StatusOK {
		t.Fatalf("bob holds: %d %s", status, body)
	}
	waitCall(t, x.b, x.bob, bobCall.ID, "LocalHold muted=false [8:acs:alice Connected muted=false] [8:acs:carol Connected muted=false]")
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Hold muted=false] [8:acs:carol Connected muted=false]")
	waitCall(t, x.c, carol, carolCall.ID, "Connected muted=false [8:acs:alice Connected muted=false] [8:acs:bob Hold muted=false]")
	msgs, bytes := peerCallTraffic(x.a, x.b, x.c)
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("bob's hold in a room of three nodes: %d NATS messages, %d bytes between the nodes' call connections (requests and answers); load average %s",
		msgs-msgsBefore, bytes-bytesBefore, strings.TrimSpace(string(load)))
	if !hearsNo(devs["alice"], bobHz) || !hearsNo(devs["carol"], bobHz) {
		t.Error("alice or carol still hears bob while he holds")
	}
	if !hearsTone(devs["carol"], aliceHz) {
		t.Error("carol no longer hears alice while bob holds")
	}
	if status, body, _ := send(t, x.b, "POST", "/api/calls/"+bobCall.ID+"/resume", x.bob, ""); status != http.StatusOK {
		t.Fatalf("bob resumes: %d %s", status, body)
	}
	if !hearsTone(devs["alice"], bobHz) || !hearsTone(devs["carol"], bobHz) {
		t.Error("alice or carol does not hear bob once he resumed")
	}

	if status, body, _ := send(t, x.c, "POST", "/api/calls/"+carolCall.ID+"/hangup", carol, ""); status != http.StatusOK {
		t.Fatalf("carol leaves: %d %s", status, body)
	}
	wantReason(t, waitCallEnded(t, carolNext, carolCall.ID), 0, 0)
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=false]")
	post(t, "http://"+x.a.Addr+"/api/calls/"+aliceCall.ID+"/hangup", x.alice, "")
	wantReason(t, waitCallEnded(t, x.aliceNext, aliceCall.ID), 0, 0)
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false")
	post(t, "http://"+x.b.Addr+"/api/calls/"+bobCall.ID+"/hangup", x.bob, "")
	wantReason(t, waitCallEnded(t, x.bobNext, bobCall.ID), 0, 0)

	got := endedInPostgres(t, x.dbURL, aliceCall.ID, bobCall.ID, carolCall.ID)
	want := map[string]string{aliceCall.ID: "0/0 on a", bobCall.ID: "0/0 on b", carolCall.ID: "0/0 on c"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("call %s in Postgres: %s, want %s", id, got[id], w)
		}
	}
	for _, m := range []*Main{x.a, x.b, x.c} {
		waitUntil(context.Background(), t, "the audio legs to close on "+m.Config.Cluster.NodeID, func() (bool, error) {
			return m.peerCalls.media.engine.Open() == 0, nil
		})
	}
}

// peerCallTraffic is the messages and bytes the nodes' connections for
// calls between nodes sent.
func peerCallTraffic(nodes ...*Main) (msgs, bytes uint64) {
	for _, m := range nodes {
		st := m.peerCalls.conn.Stats()
		msgs += st.OutMsgs
		bytes += st.OutBytes
	}
	return msgs, bytes
}

// TestClusterRoomAnchorLost: node x, a `serve --cluster` process of its
// own, anchors a room (alice, on it, joined first) that bob, on node b,
// joined. x is killed with -9: once it is taken for dead, bob's call ends
// 503/0, as a call across nodes does; the dead node's claim expires with
// its leases, and bob and carol then meet in a new conversation of the
// same room, anchored on b.
func TestClusterRoomAnchorLost(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real switchboard")
	}
	dbURL := freshSchema(t)
	natsSrv := natstest.Start(t)
	x := &crashServer{t: t, bin: buildSwitchboard(t),
		env: []string{"DATABASE_URL=" + dbURL, "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey},
		args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--cluster", natsSrv.URL(), "--node-id", "room-x"}}
	x.start()
	c := &testCluster{t: t, url: natsSrv.URL(), cfg: ClusterConfig{URL: natsSrv.URL(), ForwardTimeout: time.Second}}
	b, cc := c.startOn("room-b", dbURL), c.startOn("room-c", dbURL)
	bob, bobNext := online(t, b, "bob", calls.RoleAgent)
	carol, _ := online(t, cc, "carol", calls.RoleAgent)

	alice := mint(t, "alice", calls.RoleAgent)
	aliceNext, _ := openEvents(t, strings.TrimPrefix(x.base, "http://"), alice)
	if ev, err := aliceNext(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("alice's first event on x: %v, %v", ev, err)
	}
	post(t, x.base+"/api/calls/join", alice, `{"roomId":"standup"}`)
	bobCall := joinRoom(t, b, bob, "standup")
	waitCall(t, b, bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=false]")

	x.kill()
	wantReason(t, waitCallEnded(t, bobNext, bobCall.ID), 503, 0)

	// The claim expires with x's leases (a TTL unrenewed).
	_, js := natstest.Connect(t, natsSrv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "switchboard_leases_rooms")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the dead anchor's claim to expire", func() (bool, error) {
		_, err := kv.Get(ctx, lease.Key("r:standup"))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return true, nil
		}
		return false, err
	})
	again := joinRoom(t, b, bob, "standup")
	carolCall := joinRoom(t, cc, carol, "standup")
	if again.ServerCallID == bobCall.ServerCallID {
		t.Errorf("bob's new call is in the dead conversation %s", bobCall.ServerCallID)
	}
	waitCall(t, b, bob, again.ID, "Connected muted=false [8:acs:carol Connected muted=false]")
	waitCall(t, cc, carol, carolCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	if carolCall.ServerCallID != again.ServerCallID {
		t.Errorf("carol's serverCallId %s, bob's %s: want one conversation", carolCall.ServerCallID, again.ServerCallID)
	}
}

// TestClusterGroupByGUIDAcrossNodes: alice, on node a, and bob, on node
// b, join one group call by GUID, through node c: one conversation; bob,
// whose node does not anchor it, ends it for everyone: alice's call ends
// 0/4097 and his 0/0, as on one node, each recorded by its own node, and
// bob's history shows alice's 0/4097.
func TestClusterGroupByGUIDAcrossNodes(t *testing.T) {
	x := newAcrossNodes(t)
	const guid = `{"groupId":"0f8fad5b-d9cb-469f-a165-70867728950e"}`
	status, body, _ := send(t, x.c, "POST", "/api/calls/join", x.alice, guid)
	var aliceCall, bobCall calls.Call
	if status >= 300 || json.Unmarshal([]byte(body), &aliceCall) != nil {
		t.Fatalf("alice joins: %d %s", status, body)
	}
	status, body, _ = send(t, x.c, "POST", "/api/calls/join", x.bob, guid)
	if status >= 300 || json.Unmarshal([]byte(body), &bobCall) != nil {
		t.Fatalf("bob joins: %d %s", status, body)
	}
	waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
	waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=false]")
	if aliceCall.ServerCallID != bobCall.ServerCallID || aliceCall.Kind != calls.Group {
		t.Errorf("alice's call %s (%s), bob's %s: want one group call", aliceCall.ServerCallID, aliceCall.Kind, bobCall.ServerCallID)
	}
	if status, body, _ := send(t, x.b, "POST", "/api/calls/"+bobCall.ID+"/hangup", x.bob, `{"forEveryone":true}`); status != http.StatusOK {
		t.Fatalf("bob ends it for everyone: %d %s", status, body)
	}
	wantReason(t, waitCallEnded(t, x.aliceNext, aliceCall.ID), 0, 4097)
	wantReason(t, waitCallEnded(t, x.bobNext, bobCall.ID), 0, 0)
	got := endedInPostgres(t, x.dbURL, aliceCall.ID, bobCall.ID)
	if got[aliceCall.ID] != "0/4097 on a" || got[bobCall.ID] != "0/0 on b" {
		t.Errorf("in Postgres: alice's call %s, bob's %s", got[aliceCall.ID], got[bobCall.ID])
	}
	// Bob's history shows alice's end as one node's does.
	var parts string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var body string
		status, body, _ = send(t, x.b, "GET", "/api/history/calls/"+bobCall.ID, x.bob, "")
		var h calls.CallHistory
		if status == http.StatusOK && json.Unmarshal([]byte(body), &h) == nil {
			parts = ""
			for _, p := range h.Call.RemoteParticipants {
				parts += fmt.Sprintf("[%s %s", p.RawID, p.State)
				if p.CallEndReason != nil {
					parts += fmt.Sprintf(" %d/%d", p.CallEndReason.Code, p.CallEndReason.SubCode)
				}
				parts += "]"
			}
			if parts == "[8:acs:alice Disconnected 0/4097]" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's history shows %q (%d), want alice ended 0/4097", parts, status)
		}
	}
}

// joinAsync has token's identity join room through m, off the test's
// goroutine.
func joinAsync(m *Main, token, room string) (calls.Call, error) {
	req, err := http.NewRequest("POST", "http://"+m.Addr+"/api/calls/join", strings.NewReader(`{"roomId":"`+room+`"}`))
	if err != nil {
		return calls.Call{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return calls.Call{}, err
	}
	defer resp.Body.Close()
	var c calls.Call
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode >= 300 {
		return calls.Call{}, fmt.Errorf("join %s via %s: %d %v", room, m.Config.Cluster.NodeID, resp.StatusCode, err)
	}
	return c, nil
}

// TestClusterRoomFirstJoinsRace: alice, on node a, and bob, on node b,
// join a room nobody is in at the same moment, five rooms in a row: each
// time one node's claim wins and both are in one conversation.
func TestClusterRoomFirstJoinsRace(t *testing.T) {
	x := newAcrossNodes(t)
	for i := range 5 {
		room := "race-" + strconv.Itoa(i)
		var aliceCall, bobCall calls.Call
		var aliceErr, bobErr error
		var wg sync.WaitGroup
		wg.Go(func() { aliceCall, aliceErr = joinAsync(x.a, x.alice, room) })
		wg.Go(func() { bobCall, bobErr = joinAsync(x.b, x.bob, room) })
		wg.Wait()
		if aliceErr != nil || bobErr != nil {
			t.Fatalf("%s: alice joins: %v; bob joins: %v", room, aliceErr, bobErr)
		}
		if aliceCall.ServerCallID != bobCall.ServerCallID {
			t.Fatalf("%s: alice's conversation %s, bob's %s: want one", room, aliceCall.ServerCallID, bobCall.ServerCallID)
		}
		waitCall(t, x.a, x.alice, aliceCall.ID, "Connected muted=false [8:acs:bob Connected muted=false]")
		waitCall(t, x.b, x.bob, bobCall.ID, "Connected muted=false [8:acs:alice Connected muted=false]")
		post(t, "http://"+x.a.Addr+"/api/calls/"+aliceCall.ID+"/hangup", x.alice, "")
		post(t, "http://"+x.b.Addr+"/api/calls/"+bobCall.ID+"/hangup", x.bob, "")
		wantReason(t, waitCallEnded(t, x.aliceNext, aliceCall.ID), 0, 0)
		wantReason(t, waitCallEnded(t, x.bobNext, bobCall.ID), 0, 0)
	}
}
