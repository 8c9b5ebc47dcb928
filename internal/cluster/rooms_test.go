package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// TestRooms: the first node to claim a room anchors it with its
// conversation; another node's claim answers that node and conversation;
// once released (a Claim on the releasing node waits for the release),
// the other node claims it with its own conversation.
func TestRooms(t *testing.T) {
	c := newTestCluster(t)
	t.Cleanup(func() {
		_, js := natstest.Connect(t, c.url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteKeyValue(ctx, roomBucket(c.bucket)); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete bucket: %v", err)
		}
	})
	ctx := ctxT(t)
	open := func(node string) *Rooms {
		r, err := c.join(t, node, "").OpenRooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		return r
	}
	a, b := open("a"), open("b")
	claim := func(r *Rooms, id string) string {
		t.Helper()
		node, anchorID, err := r.Claim(ctx, "r:standup", id)
		if err != nil {
			t.Fatal(err)
		}
		return node + " " + anchorID
	}
	if got := claim(a, "conv-a"); got != " conv-a" {
		t.Fatalf("a claims a free room: %q, want this node, conv-a", got)
	}
	if got := claim(b, "conv-b"); got != "a conv-a" {
		t.Fatalf("b claims a's room: %q, want a, conv-a", got)
	}
	if got := claim(a, "conv-x"); got != " conv-a" {
		t.Errorf("a claims its own room again: %q, want this node, conv-a", got)
	}
	if !a.Holds("r:standup", "conv-a") || a.Holds("r:standup", "conv-x") || b.Holds("r:standup", "conv-a") {
		t.Error("Holds: want a for conv-a only")
	}
	a.Release("r:standup", "conv-a")
	if a.Holds("r:standup", "conv-a") {
		t.Error("a still holds the room it released")
	}
	if got := claim(a, "conv-a2"); got != " conv-a2" {
		t.Errorf("a claims the room once released: %q, want this node, conv-a2", got)
	}
	a.Release("r:standup", "conv-a2")
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := claim(b, "conv-b")
		if got == " conv-b" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b claims the released room: %q, want this node, conv-b", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
