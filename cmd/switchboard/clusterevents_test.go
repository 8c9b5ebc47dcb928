package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// deleteEventStream deletes the event stream and the supervised feed of a
// cluster whose subjects start with prefix when the test ends (after its
// nodes closed, when it is called before they start).
func deleteEventStream(tb testing.TB, url, prefix string) {
	stream, _, _ := eventNames(prefix)
	feed, _ := feedNames(prefix)
	tb.Cleanup(func() {
		_, js := natstest.Connect(tb, url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range []string{stream, feed} {
			if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				tb.Errorf("delete stream %s: %v", s, err)
			}
		}
	})
}

// until reads events until one of the type for the identity, and answers
// it; it fails the test when the stream ends first.
func until(t *testing.T, next func() (map[string]any, error), typ, agentID string) map[string]any {
	t.Helper()
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("waiting for %s of %s: %v", typ, agentID, err)
		}
		if ev["type"] == typ && ev["agentId"] == agentID {
			return ev
		}
	}
}

// TestClusterSupervisors: a supervisor connected to node C sees, in its
// snapshot, the calls and agents of nodes A and B, then live the events
// of a call between two agents node A owns, and the seqs of its stream
// grow by one.
func TestClusterSupervisors(t *testing.T) {
	c := newTestCluster(t)
	a, b, cc := c.start("a"), c.start("b"), c.start("c")

	alice, _ := online(t, a, "alice", calls.RoleAgent)
	dave, daveNext := online(t, a, "dave", calls.RoleAgent)
	bob, _ := online(t, b, "bob", calls.RoleAgent)
	bobCall := post(t, "http://"+b.Addr+"/api/calls", bob, `{"participants":[{"id":"8:echo123"}]}`)["id"].(string)

	sue := mint(t, "sue", calls.RoleSupervisor)
	if status, body, _ := send(t, cc, "GET", "/api/me", sue, ""); status != http.StatusOK { // C takes sue
		t.Fatalf("GET /api/me of sue on c: %d %s", status, body)
	}
	next, _ := openEvents(t, cc.Addr, sue)
	snap, err := next()
	if err != nil || snap["type"] != "snapshot" {
		t.Fatalf("sue's first event on c: %v, %v", snap, err)
	}
	data := snap["data"].(map[string]any)
	var callIDs, agents []string
	for _, x := range data["calls"].([]any) {
		callIDs = append(callIDs, x.(map[string]any)["id"].(string))
	}
	for _, x := range data["agents"].([]any) {
		if x.(map[string]any)["connectionState"] == "Connected" {
			agents = append(agents, x.(map[string]any)["rawId"].(string))
		}
	}
	if !slices.Contains(callIDs, bobCall) {
		t.Errorf("sue's snapshot on c has calls %v, not bob's %s (on b)", callIDs, bobCall)
	}
	for _, want := range []string{"8:acs:alice", "8:acs:dave", "8:acs:bob", "8:acs:sue"} {
		if !slices.Contains(agents, want) {
			t.Errorf("sue's snapshot on c has connected agents %v, not %s", agents, want)
		}
	}
	seq := snap["seq"].(float64)

	// Alice calls dave through B (forwarded to A): sue sees it on C.
	aliceCall := post(t, "http://"+b.Addr+"/api/calls", alice, `{"participants":[{"communicationUserId":"dave"}]}`)["id"].(string)
	ring := until(t, next, "incomingCall", "8:acs:dave")
	daveCall := ringing(t, daveNext)
	if got := ring["data"].(map[string]any)["incomingCall"].(map[string]any)["id"]; got != daveCall {
		t.Fatalf("sue saw dave's incoming call %v, dave %s", got, daveCall)
	}
	post(t, "http://"+a.Addr+"/api/incoming-calls/"+daveCall+"/accept", dave, "")
	for {
		ev := until(t, next, "stateChanged", "8:acs:alice")
		if ev["callId"] == aliceCall && ev["data"].(map[string]any)["state"] == "Connected" {
			break
		}
	}
	post(t, "http://"+cc.Addr+"/api/calls/"+aliceCall+"/hangup", alice, "")
	ended := until(t, next, "callEnded", "8:acs:alice")
	if ended["callId"] != aliceCall {
		t.Fatalf("sue saw %v end, want alice's %s", ended["callId"], aliceCall)
	}
	if got := ended["seq"].(float64); got <= seq {
		t.Fatalf("seq %v after the snapshot's %v", got, seq)
	}

	// NATS traffic per event relayed, from node A's event connection:
	// a call of alice's held and resumed many times.
	statsBefore, relayBefore := a.events.conn.Stats(), a.events.relay.Stats()
	call2 := post(t, "http://"+a.Addr+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)["id"].(string)
	const rounds = 50
	for range rounds {
		post(t, "http://"+a.Addr+"/api/calls/"+call2+"/hold", alice, "")
		post(t, "http://"+a.Addr+"/api/calls/"+call2+"/resume", alice, "")
	}
	post(t, "http://"+a.Addr+"/api/calls/"+call2+"/hangup", alice, "")
	if ev := until(t, next, "callEnded", "8:acs:alice"); ev["callId"] != call2 {
		t.Fatalf("sue saw %v end, want %s", ev["callId"], call2)
	}
	// Sue's node has it, so A appended it; A's own follower may still
	// be reading.
	after, relayAfter := a.events.conn.Stats(), a.events.relay.Stats()
	relayed, payload := relayAfter.Appended-relayBefore.Appended, relayAfter.Bytes-relayBefore.Bytes
	if relayed < 2*rounds {
		t.Fatalf("%d events relayed for %d holds and resumes", relayed, 2*rounds)
	}
	out, outBytes := after.OutMsgs-statsBefore.OutMsgs, after.OutBytes-statsBefore.OutBytes
	in, inBytes := after.InMsgs-statsBefore.InMsgs, after.InBytes-statsBefore.InBytes
	t.Logf("node a relayed %d events of %.0f bytes on average: per event %.2f messages out (%.0f bytes), %.2f in (%.0f bytes)",
		relayed, float64(payload)/float64(relayed), float64(out)/float64(relayed), float64(outBytes)/float64(relayed),
		float64(in)/float64(relayed), float64(inBytes)/float64(relayed))
	if st := a.events.relay.Stats(); st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("relay of a: %+v", st)
	}
}

// TestClusterSupervisorsNATSRestart: after NATS restarts under two nodes,
// a supervisor on node B still sees the events of an agent node A owns
// (the ordered consumer follows again, the appends go through).
func TestClusterSupervisorsNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	c := &testCluster{t: t, url: srv.URL(), cfg: ClusterConfig{URL: srv.URL(), LeaseBucket: "leases", LeaseTTL: 5 * time.Second, // longer than the restart
		SubjectPrefix: "sb", ForwardTimeout: time.Second}}
	a, b := c.start("a"), c.start("b")
	alice, _ := online(t, a, "alice", calls.RoleAgent)
	sue := mint(t, "sue", calls.RoleSupervisor)
	if status, body, _ := send(t, b, "GET", "/api/me", sue, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me of sue on b: %d %s", status, body)
	}
	next, _ := openEvents(t, b.Addr, sue)
	if ev, err := next(); err != nil || ev["type"] != "snapshot" {
		t.Fatalf("sue's first event: %v, %v", ev, err)
	}
	srv.Restart()
	// A call of alice's on A, once NATS is back or while it comes back
	// (the relay retries its appends): sue on B sees it end.
	id := post(t, "http://"+a.Addr+"/api/calls", alice, `{"participants":[{"id":"8:echo123"}]}`)["id"].(string)
	post(t, "http://"+a.Addr+"/api/calls/"+id+"/hangup", alice, "")
	if ev := until(t, next, "callEnded", "8:acs:alice"); ev["callId"] != id {
		t.Fatalf("sue saw %v end, want %s", ev["callId"], id)
	}
	if st := a.events.relay.Stats(); st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("relay of a: %+v", st)
	}
}
