package relay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/relay"
)

// TestEndRuns: a node's end marker is written after an identity's last
// event only when that event is the node's own with the seq it says it
// gave last; RunEnd reads it back, and EventsSince reads across it into
// the next owner's events numbered on from it. An identity whose last
// event is another node's, or not the seq given, gets no marker.
func TestEndRuns(t *testing.T) {
	url := natstest.SharedURL(t)
	stream := newStream(t, url)
	a, _ := startNode(t, url, stream, "a", calls.Snapshot{})
	b, _ := startNode(t, url, stream, "b", calls.Snapshot{})
	const alice, bob, carol = "8:acs:alice", "8:acs:bob", "8:acs:carol"
	send := func(r *relay.Relay, identity string, seqs ...uint64) {
		t.Helper()
		want := r.Stats().Appended + uint64(len(seqs))
		for _, seq := range seqs {
			r.RelaySeq(identity, seq, false, fmt.Appendf(nil, `{"n":%d}`, seq))
		}
		for deadline := time.Now().Add(guard); r.Stats().Appended < want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("appended %+v, want %d", r.Stats(), want)
			}
		}
	}
	send(a, alice, 10, 11, 12)
	send(a, bob, 20)
	send(b, bob, 500) // bob moved to b
	send(a, carol, 30, 31)
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	n, err := a.EndRuns(ctx, map[string]uint64{alice: 12, bob: 20, carol: 32})
	if err != nil || n != 1 {
		t.Fatalf("ended %d runs (%v), want alice's only", n, err)
	}
	for identity, want := range map[string]uint64{alice: 12, bob: 0, carol: 0} {
		end, ok, err := b.RunEnd(ctx, identity)
		if err != nil || ok != (want != 0) || end != want {
			t.Errorf("run end of %s: %d %v %v, want %d", identity, end, ok, err, want)
		}
	}
	// Her next owner numbers on from 12.
	send(b, alice, 13, 14)
	got, err := b.EventsSince(ctx, alice, 10, 100)
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]relay.Event{{Seq: 11, Body: []byte(`{"n":11}`)}, {Seq: 12, Body: []byte(`{"n":12}`)},
		{Seq: 13, Body: []byte(`{"n":13}`)}, {Seq: 14, Body: []byte(`{"n":14}`)}}) {
		t.Fatalf("alice since 10 across the end marker: %v, %v", got, err)
	}
	if got, err := b.EventsSince(ctx, alice, 12, 100); err != nil || len(got) != 2 || got[0].Seq != 13 {
		t.Fatalf("alice since 12: %v, %v", got, err)
	}
	if _, _, err := a.RunEnd(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.RunEnd(ctx, alice); ok {
		t.Error("alice's run end still read after b's events")
	}
}
