package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/queue"
)

// TestClusterQueues: a queue created through node b is in JetStream, so
// node a lists it and offers a call waiting there; an agent on a accepts
// it, and b's stats count it answered; when a shuts down, its waiting
// call leaves the shared store.
func TestClusterQueues(t *testing.T) {
	c := newTestCluster(t)
	t.Cleanup(func() {
		_, js := natstest.Connect(t, c.url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, b := range []string{queueBucket(c.cfg.SubjectPrefix), queueBucket(c.cfg.SubjectPrefix) + "_offers", queueBucket(c.cfg.SubjectPrefix) + "_agents"} {
			if err := js.DeleteKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
				t.Errorf("delete bucket %s: %v", b, err)
			}
		}
	})
	a, b := c.start("a"), c.start("b")
	ann, annNext := online(t, a, "ann", calls.RoleAgent)
	_, sueNext := online(t, b, "sue", calls.RoleSupervisor) // b owns sue
	_, samNext := online(t, a, "sam", calls.RoleSupervisor) // a owns sam
	if status, body, _ := send(t, b, "POST", "/api/queues", testAdminKey, `{"name":"support","members":[{"agent":"8:acs:ann"}],"ringTimeoutSeconds":30}`); status != http.StatusCreated {
		t.Fatalf("create the queue through b: %d %s", status, body)
	}
	status, body, _ := send(t, a, "GET", "/api/queues", testAdminKey, "")
	var qs []queue.Definition
	if status != http.StatusOK || json.Unmarshal([]byte(body), &qs) != nil || len(qs) != 1 || qs[0].Name != "support" {
		t.Fatalf("queues on a: %d %s", status, body)
	}
	carl := mint(t, "carl", calls.RoleCaller)
	if status, body, _ := send(t, a, "GET", "/api/me", carl, ""); status != http.StatusOK { // a owns carl
		t.Fatalf("carl on a: %d %s", status, body)
	}
	status, body, _ = send(t, a, "POST", "/api/calls", carl, `{"queue":"support"}`)
	if status != http.StatusCreated {
		t.Fatalf("carl queues: %d %s", status, body)
	}
	incoming := ringing(t, annNext)
	if status, body, _ := send(t, a, "POST", "/api/incoming-calls/"+incoming+"/accept", ann, ""); status != http.StatusOK {
		t.Fatalf("ann accepts: %d %s", status, body)
	}
	waitStats(t, b, func(st queue.Stats) bool { return st.Answered == 1 && st.Waiting == 0 })
	// Sue, a supervisor on b, sees a's stats live (the cluster's
	// supervised feed), each of them once.
	// Sam, on a, sees them too, once (not also delivered straight here).
	answered := func(st queue.Stats) bool { return st.Answered == 1 && st.Waiting == 0 }
	waitStatsEvent(t, sueNext, answered)
	waitStatsEvent(t, samNext, answered)
	if status, body, _ := send(t, b, "GET", "/api/queues/nope/stats", testAdminKey, ""); status != http.StatusNotFound {
		t.Errorf("unknown queue on b: %d %s", status, body)
	}

	// Cora waits on a (ann is busy); a shuts down: her waiting call
	// leaves the shared store, not a ghost in b's stats.
	cora := mint(t, "cora", calls.RoleCaller)
	if status, body, _ := send(t, a, "POST", "/api/calls", cora, `{"queue":"support"}`); status != http.StatusCreated {
		t.Fatalf("cora queues: %d %s", status, body)
	}
	waitStats(t, b, func(st queue.Stats) bool { return st.Waiting == 1 })
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStats(t, b, func(st queue.Stats) bool { return st.Waiting == 0 && st.Answered == 1 })
}

// waitStats polls b's stats of "support" until ok.
func waitStats(t *testing.T, m *Main, ok func(queue.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body, _ := send(t, m, "GET", "/api/queues/support/stats", testAdminKey, "")
		var st queue.Stats
		if status == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats: %d %s", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStatsEvent reads a supervisor's stream until a queueStatsChanged of
// "support" that is ok; it fails on an event delivered twice (the same
// seq, or the same event under two seqs).
func waitStatsEvent(t *testing.T, next func() (map[string]any, error), ok func(queue.Stats) bool) {
	t.Helper()
	seen, bodies := map[float64]bool{}, map[string]bool{}
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("no queueStatsChanged of support: %v", err)
		}
		if seq, isSeq := ev["seq"].(float64); isSeq {
			if seen[seq] {
				t.Fatalf("seq %v delivered twice: %v", seq, ev)
			}
			seen[seq] = true
		}
		if ev["type"] != "queueStatsChanged" {
			continue
		}
		delete(ev, "seq")
		key, err := json.Marshal(ev) // its "at" tells one from the next
		if err != nil {
			t.Fatal(err)
		}
		if bodies[string(key)] {
			t.Fatalf("queueStatsChanged delivered twice: %s", key)
		}
		bodies[string(key)] = true
		raw, err := json.Marshal(ev["data"])
		if err != nil {
			t.Fatal(err)
		}
		var st queue.Stats
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("queueStatsChanged data %s: %v", raw, err)
		}
		if st.Queue == "support" && ok(st) {
			return
		}
	}
}
