package queue

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/routing"
)

// openTestBoard opens and runs a board for node over srv until the test
// ends.
func openTestBoard(t *testing.T, ctx context.Context, url, bucket, subject, node string, src *fakeAgents, peers []string, wake func(string)) *Board {
	t.Helper()
	nc, js := natstest.Connect(t, url)
	b, err := OpenBoard(ctx, BoardConfig{JetStream: js, Conn: nc, Bucket: bucket, Storage: jetstream.MemoryStorage,
		Subject: subject, Node: node, Peers: func() []string { return peers }, Source: src, Status: src, Resync: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if wake != nil {
		b.OnOfferable(wake)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done; _ = b.Close(context.Background()) })
	return b
}

// TestBoardWakesEngine: a call waits on n2 while n1's agent is Away; she
// turns Available on n1 and the call is offered to her, though n2's
// engine ticks once an hour: n2's board woke it, for her (WakeFor). With
// AgentWakes the engine's step looks at her alone, else at every member.
func TestBoardWakesEngine(t *testing.T) {
	for _, agentWakes := range []bool{false, true} {
		t.Run(fmt.Sprintf("agentWakes=%v", agentWakes), func(t *testing.T) {
			testBoardWakesEngine(t, agentWakes)
		})
	}
}

func testBoardWakesEngine(t *testing.T, agentWakes bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	bucket, subject := natstest.Name(t, "agents"), natstest.Name(t, "sb")
	const ann = "8:acs:ann"
	src1 := &fakeAgents{agents: map[string]calls.OfferState{ann: {Connected: true, Chosen: routing.Away}}}
	src2 := &fakeAgents{agents: map[string]calls.OfferState{}}
	b1 := openTestBoard(t, ctx, srv.URL(), bucket, subject, "n1", src1, []string{"n2"}, nil)

	sw := newFakeSwitch()
	b2 := openTestBoard(t, ctx, srv.URL(), bucket, subject, "n2", src2, []string{"n1"}, nil)
	e := NewEngine(WithStatus(EngineConfig{Store: NewMemory(), Switch: sw, Tick: time.Hour, AgentWakes: agentWakes}, b2.Status(src2)))
	var woke sync.Map // the agents n2's board named
	b2.OnOfferable(func(agent string) {
		woke.Store(agent, true)
		e.WakeFor(agent)
	})
	if _, err := e.Create(ctx, Definition{Name: "support", Members: []Member{{Agent: ann}}}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.Run(runCtx) }()
	defer func() { stop(); <-done }()

	// n2 sees her, Away.
	for {
		if _, ok := b2.remote(ann); ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("n2 never saw ann")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := e.Enter(ctx, "support", "call-1", "8:acs:caller", nil); err != nil {
		t.Fatal(err)
	}
	// Enter's step found nobody; the call waits with no offer.
	time.Sleep(100 * time.Millisecond)
	if got := sw.ringingNow(); len(got) != 0 {
		t.Fatalf("offered while ann is Away: %v", got)
	}
	src1.set(ann, calls.OfferState{Connected: true, Chosen: routing.Available, IdleSince: time.Now()})
	b1.Touch(ann)
	for sw.ringingNow()["call-1"] != ann {
		if ctx.Err() != nil {
			t.Fatalf("call-1 never offered to ann after she turned Available: %v", sw.ringingNow())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := woke.Load(ann); !ok {
		t.Error("n2's board woke the engine without naming ann")
	}
}
