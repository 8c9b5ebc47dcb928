package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/lease"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/queue"
)

// TestClusterQueuesAcrossNodes: on three nodes, callers enter the queue
// on node a while its agents are connected to b (ann) and c (bea). The
// longest-idle Available agent of any node is offered (ann, though bea
// comes first among the members); ann's wrap-up after the call, set on
// b, names her call there (she gives it a code) and keeps offers from
// her until it ends; two offers she lets ring out
// mark her Away on b; bea, Available again on c, takes the call; every
// node's stats add up to what happened. Then a node dies with a call
// waiting: the survivors take it out of the bucket, counted abandoned
// once.
func TestClusterQueuesAcrossNodes(t *testing.T) {
	c := newTestCluster(t) // its cleanup deletes the queue buckets
	bucket := queueBucket(c.cfg.SubjectPrefix)
	a, b, cc := c.start("a"), c.start("b"), c.start("c")
	const annRaw, beaRaw = "8:acs:ann", "8:acs:bea"
	ann, annNext := online(t, b, "ann", calls.RoleAgent)  // b owns ann
	bea, beaNext := online(t, cc, "bea", calls.RoleAgent) // c owns bea: idle since later
	// define creates or replaces the queue: offers ring for ring seconds
	// (1 s where they are to ring out, longer where one is to be
	// accepted on a loaded machine).
	define := func(ring int) {
		t.Helper()
		if status, body, _ := send(t, a, "POST", "/api/queues", testAdminKey, fmt.Sprintf(
			`{"name":"support","members":[{"agent":"8:acs:bea"},{"agent":"8:acs:ann"}],"ringTimeoutSeconds":%d,"wrapUpSeconds":2,"maxMisses":2}`, ring)); status != http.StatusCreated {
			t.Fatalf("define the queue: %d %s", status, body)
		}
	}
	define(30)
	enter := func(user string) {
		t.Helper()
		tok := mint(t, user, calls.RoleCaller)
		if status, body, _ := send(t, a, "GET", "/api/me", tok, ""); status != http.StatusOK { // a owns the caller
			t.Fatalf("%s on a: %d %s", user, status, body)
		}
		if status, body, _ := send(t, a, "POST", "/api/calls", tok, `{"queue":"support"}`); status != http.StatusCreated {
			t.Fatalf("%s queues on a: %d %s", user, status, body)
		}
	}
	accept := func(m *Main, token, incoming string) string {
		t.Helper()
		status, body, _ := send(t, m, "POST", "/api/incoming-calls/"+incoming+"/accept", token, "")
		var c calls.Call
		if status != http.StatusOK || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("accept %s at %v: %d %s", incoming, time.Now().UTC(), status, body)
		}
		return c.ID
	}
	bySystem := func(d map[string]any) {
		t.Helper()
		if by := d["changedBy"].(map[string]any)["kind"]; by != "system" {
			t.Errorf("%v set %s, want the system", by, d["status"])
		}
	}

	// Carl is offered to ann, on b: idle the longest.
	enter("carl")
	inc := ringing(t, annNext)
	t.Logf("DEBUG ringing seen at %v", time.Now().UTC())
	call := accept(b, ann, inc)
	waitStats(t, a, func(st queue.Stats) bool { return st.Answered == 1 && st.Waiting == 0 })
	if status, body, _ := send(t, a, "GET", "/api/queues/support/stats", testAdminKey, ""); status != http.StatusOK ||
		!strings.Contains(body, `"offered":1,`) || !strings.Contains(body, `"missed":0`) {
		t.Fatalf("carl was offered to someone before ann: %d %s", status, body)
	}
	// Bea goes Away; ann hangs up: her wrap-up, asked by a, runs on b.
	if status, body, _ := send(t, cc, "PUT", "/api/me/status", bea, `{"status":"Away"}`); status != http.StatusOK {
		t.Fatalf("bea Away: %d %s", status, body)
	}
	statusUntil(t, beaNext, beaRaw, "Away")
	post(t, "http://"+b.Addr+"/api/calls/"+call+"/hangup", ann, "")
	wrap := statusUntil(t, annNext, annRaw, "WrapUp")
	bySystem(wrap)
	// Her wrap-up names her own call on b, which she gives a code.
	if wrap["wrapUpCallId"] != call {
		t.Errorf("ann's wrap-up names call %v, want hers on b, %s", wrap["wrapUpCallId"], call)
	}
	if status, body, _ := send(t, b, "PUT", "/api/me/wrap-up", ann, `{"callId":"`+call+`","code":"sale"}`); status != http.StatusOK {
		t.Errorf("ann's wrap-up code for her queue call: %d %s", status, body)
	}

	// Cora waits: ann is offered her only once her wrap-up ended (an
	// offer before it would come before Available on her stream).
	define(1)
	enter("cora")
	bySystem(statusUntil(t, annNext, annRaw, "Available"))
	ringing(t, annNext)
	// Ann lets it ring out, twice: she is Away, set on b by the system.
	ringing(t, annNext)
	bySystem(statusUntil(t, annNext, annRaw, "Away"))
	waitStats(t, a, func(st queue.Stats) bool { return st.Missed == 2 && st.Waiting == 1 })

	// Bea, Available again on c, takes cora.
	define(30)
	if status, body, _ := send(t, cc, "PUT", "/api/me/status", bea, `{"status":"Available"}`); status != http.StatusOK {
		t.Fatalf("bea Available: %d %s", status, body)
	}
	accept(cc, bea, ringing(t, beaNext))
	want := func(st queue.Stats) bool {
		return st.Waiting == 0 && st.Answered == 2 && st.Missed == 2 && st.Offered == 4 && st.Abandoned == 0 && st.TimedOut == 0
	}
	for _, m := range []*Main{a, b, cc} {
		waitStats(t, m, want)
	}

	// A node dies with a call waiting (its lease and its entry, without
	// the node): the survivors take the call out, abandoned once.
	nc, js := natstest.Connect(t, c.url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ghost, err := lease.New(ctx, js, lease.Config{Bucket: c.cfg.LeaseBucket + "_nodes", Node: "ghost", TTL: c.cfg.LeaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ghost.Close(context.Background()) })
	if err := ghost.Acquire(ctx, "ghost"); err != nil {
		t.Fatal(err)
	}
	st, err := queue.OpenJetStream(ctx, js, bucket, jetstream.FileStorage)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.PutWaiting(ctx, queue.Waiting{CallID: "ghost-call", Queue: "support", Caller: "8:acs:gus",
		EnteredAt: now, FirstEnteredAt: now, Node: "ghost", Offer: &queue.Offer{Agent: annRaw, At: now}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.ClaimAgent(ctx, annRaw, "ghost-call"); err != nil || !ok {
		t.Fatalf("the ghost's claim on ann: %v %v", ok, err)
	}
	waitStats(t, b, func(st queue.Stats) bool { return st.Waiting == 1 })
	nc.Close() // it dies: its lease is no longer renewed
	gone := func(st queue.Stats) bool {
		return st.Waiting == 0 && st.Abandoned == 1 && st.Answered == 2
	}
	for _, m := range []*Main{a, b, cc} {
		waitStats(t, m, gone)
	}
	// Each survivor reaped; none counted it again.
	time.Sleep(c.cfg.LeaseTTL)
	for _, m := range []*Main{a, b, cc} {
		waitStats(t, m, gone)
	}
	_, js2 := natstest.Connect(t, c.url)
	st2, err := queue.OpenJetStream(ctx, js2, bucket, jetstream.FileStorage)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st2.ClaimAgent(ctx, annRaw, "another-call"); err != nil || !ok {
		t.Errorf("ann is still held by the dead node's offer: %v %v", ok, err)
	}

	// Node c stops: bea leaves the agents' bucket with it.
	agents, err := js2.KeyValue(ctx, bucket+"_agents")
	if err != nil {
		t.Fatal(err)
	}
	beaKey := base64.RawURLEncoding.EncodeToString([]byte(beaRaw))
	if _, err := agents.Get(ctx, beaKey); err != nil {
		t.Fatalf("bea is not on the board while c runs: %v", err)
	}
	if err := cc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := agents.Get(ctx, beaKey); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("bea's key after c stopped: %v, want none", err)
	}
}
