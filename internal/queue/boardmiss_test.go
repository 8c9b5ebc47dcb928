package queue

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/routing"
)

// TestBoardMisses: ann is connected to n1; the offers n1, n2 and n3 let
// ring out count together, on n1, and an answer on any node starts her
// count again.
func TestBoardMisses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	bucket, subject := natstest.Name(t, "agents"), natstest.Name(t, "sb")
	const ann = "8:acs:ann"
	src1 := &fakeAgents{agents: map[string]calls.OfferState{ann: {Connected: true, Chosen: routing.Available}}}
	boards := map[string]*Board{
		"n1": openTestBoard(t, ctx, srv.URL(), bucket, subject, "n1", src1, []string{"n2", "n3"}, nil),
		"n2": openTestBoard(t, ctx, srv.URL(), bucket, subject, "n2", &fakeAgents{agents: map[string]calls.OfferState{}}, []string{"n1", "n3"}, nil),
		"n3": openTestBoard(t, ctx, srv.URL(), bucket, subject, "n3", &fakeAgents{agents: map[string]calls.OfferState{}}, []string{"n1", "n2"}, nil),
	}
	for _, n := range []string{"n2", "n3"} {
		for {
			if _, ok := boards[n].remote(ann); ok {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never saw ann", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	steps := []struct {
		node     string
		answered bool
		wantAway bool
	}{
		{node: "n2"},
		{node: "n3"},
		{node: "n1", wantAway: true}, // the third in a row, n1's own
		{node: "n2"},
		{node: "n3", answered: true},
		{node: "n2"},
		{node: "n3"},
		{node: "n2", wantAway: true},
	}
	for i, s := range steps {
		m := boards[s.node].Misses()
		if s.answered {
			if err := m.Answered(ctx, ann); err != nil {
				t.Fatalf("step %d: answered on %s: %v", i, s.node, err)
			}
			continue
		}
		away, err := m.Missed(ctx, ann, 3)
		if err != nil {
			t.Fatalf("step %d: missed on %s: %v", i, s.node, err)
		}
		if away != s.wantAway {
			t.Errorf("step %d: a miss on %s: away %v, want %v", i, s.node, away, s.wantAway)
		}
	}
}
