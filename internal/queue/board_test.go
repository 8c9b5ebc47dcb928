package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/routing"
)

// fakeAgents is one node's agents: an AgentSource and an AgentStatus
// whose status changes show in the source.
type fakeAgents struct {
	mu     sync.Mutex
	agents map[string]calls.OfferState
	asked  []string
}

func (f *fakeAgents) set(agent string, st calls.OfferState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agents[agent] = st
}

func (f *fakeAgents) OfferState(agent string) calls.OfferState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agents[agent]
}

func (f *fakeAgents) OfferAgents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a, st := range f.agents {
		if st.Connected {
			out = append(out, a)
		}
	}
	return out
}

func (f *fakeAgents) Offerable(string, int, time.Time) bool { return false }
func (f *fakeAgents) IdleSince(string) time.Time            { return time.Time{} }

func (f *fakeAgents) SetStatusBySystem(_ context.Context, agent string, req calls.SetStatusRequest) (calls.AgentStatusData, error) {
	return f.chose(agent, "away", req.Status)
}

func (f *fakeAgents) EnterWrapUp(_ context.Context, agent, _ string, _ int) (calls.AgentStatusData, error) {
	return f.chose(agent, "wrapUp", routing.WrapUp)
}

func (f *fakeAgents) chose(agent, what string, st routing.Status) (calls.AgentStatusData, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, what+" "+agent)
	os, ok := f.agents[agent]
	if !ok || !os.Connected {
		return calls.AgentStatusData{}, calls.Errorf(calls.CodeNotFound, "%s is not here", agent)
	}
	os.Chosen = st
	f.agents[agent] = os
	return calls.AgentStatusData{RawID: agent, Status: st, ChosenStatus: st}, nil
}

// TestBoard: node n1's agent is offerable on node n2 as n1 publishes her;
// n2's status changes for her run on n1 and are seen on n2 when they
// return; she leaves n2's view when she disconnects from n1 or n1 is no
// longer in the cluster.
func TestBoard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	bucket, subject := natstest.Name(t, "agents"), natstest.Name(t, "sb")
	var peersMu sync.Mutex
	n2Peers := []string{"n1"}
	open := func(node string, src *fakeAgents, peers func() []string) *Board {
		nc, js := natstest.Connect(t, srv.URL())
		b, err := OpenBoard(ctx, BoardConfig{JetStream: js, Conn: nc, Bucket: bucket, Storage: jetstream.MemoryStorage,
			Subject: subject, Node: node, Peers: peers, Source: src, Status: src, Resync: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); b.Run(runCtx) }()
		t.Cleanup(func() { stop(); <-done; _ = b.Close(context.Background()) })
		return b
	}
	idle := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src1 := &fakeAgents{agents: map[string]calls.OfferState{
		"8:acs:ann": {Connected: true, Chosen: routing.Available, IdleSince: idle},
	}}
	src2 := &fakeAgents{agents: map[string]calls.OfferState{}}
	b1 := open("n1", src1, func() []string { return []string{"n2"} })
	b2 := open("n2", src2, func() []string {
		peersMu.Lock()
		defer peersMu.Unlock()
		return n2Peers
	})
	av := b2.Availability(src2)
	now := time.Now()
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("never: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
		sameLook(t, what, av, []string{"8:acs:ann", "8:acs:bob"}, now)
	}
	eventually("ann offerable on n2", func() bool { return av.Offerable("8:acs:ann", 1, now) })
	if got := av.IdleSince("8:acs:ann"); !got.Equal(idle) {
		t.Errorf("IdleSince on n2 = %v, want %v", got, idle)
	}
	if av.Offerable("8:acs:bob", 1, now) {
		t.Error("bob, connected nowhere, is offerable")
	}

	// A call: busy under maxConcurrentCalls 1, offerable under 2.
	src1.set("8:acs:ann", calls.OfferState{Connected: true, Chosen: routing.Available, LiveCalls: 1, IdleSince: idle})
	b1.Touch("8:acs:ann")
	eventually("ann busy on n2", func() bool { return !av.Offerable("8:acs:ann", 1, now) })
	if !av.Offerable("8:acs:ann", 2, now) {
		t.Error("ann with one call is not offerable under maxConcurrentCalls 2")
	}
	src1.set("8:acs:ann", calls.OfferState{Connected: true, Chosen: routing.Available, IdleSince: idle})
	b1.Touch("8:acs:ann")
	eventually("ann free on n2", func() bool { return av.Offerable("8:acs:ann", 1, now) })

	// n2 marks her Away: n1 runs it, and n2 sees it as soon as it returns.
	st := b2.Status(src2)
	if _, err := st.SetStatusBySystem(ctx, "8:acs:ann", calls.SetStatusRequest{Status: routing.Away}); err != nil {
		t.Fatal(err)
	}
	if av.Offerable("8:acs:ann", 1, now) {
		t.Error("ann is offerable on n2 right after n1 set her Away")
	}
	if _, err := st.EnterWrapUp(ctx, "8:acs:ann", "call-1", 5); err != nil {
		t.Fatal(err)
	}
	src1.mu.Lock()
	asked := append([]string(nil), src1.asked...)
	src1.mu.Unlock()
	src2.mu.Lock()
	asked2 := len(src2.asked)
	src2.mu.Unlock()
	if len(asked) != 2 || asked[0] != "away 8:acs:ann" || asked[1] != "wrapUp 8:acs:ann" || asked2 != 0 {
		t.Errorf("n1 was asked %v, n2 %d times; want away then wrapUp on n1", asked, asked2)
	}

	// Available again; then n1 leaves the cluster as n2 sees it.
	src1.set("8:acs:ann", calls.OfferState{Connected: true, Chosen: routing.Available, IdleSince: idle})
	b1.Touch("8:acs:ann")
	eventually("ann Available on n2", func() bool { return av.Offerable("8:acs:ann", 1, now) })
	peersMu.Lock()
	n2Peers = nil
	peersMu.Unlock()
	eventually("ann gone with n1", func() bool { return !av.Offerable("8:acs:ann", 1, now) })
	peersMu.Lock()
	n2Peers = []string{"n1"}
	peersMu.Unlock()
	eventually("ann back with n1", func() bool { return av.Offerable("8:acs:ann", 1, now) })

	// She disconnects from n1: her key is removed.
	src1.set("8:acs:ann", calls.OfferState{})
	b1.Touch("8:acs:ann")
	eventually("ann's key removed", func() bool {
		_, err := b2.kv.Get(ctx, enc("8:acs:ann"))
		return err != nil
	})
	if av.Offerable("8:acs:ann", 1, now) || !av.IdleSince("8:acs:ann").IsZero() {
		t.Error("ann, disconnected, is still on n2's board")
	}
}

// sameLook fails t unless av's LookAll answers what its Offerable and
// IdleSince answer one agent at a time.
func sameLook(t *testing.T, what string, av Availability, agents []string, now time.Time) {
	t.Helper()
	l, ok := av.(Looker)
	if !ok {
		t.Fatalf("%s: %T is no Looker", what, av)
	}
	for _, maxConc := range []int{0, 1, 2} {
		offerable, idle := make([]bool, len(agents)), make([]time.Time, len(agents))
		l.LookAll(agents, maxConc, now, offerable, idle)
		for i, a := range agents {
			if offerable[i] != av.Offerable(a, maxConc, now) || !idle[i].Equal(av.IdleSince(a)) {
				t.Errorf("%s: LookAll(%s, max %d) = %v, %v; one by one %v, %v", what, a, maxConc,
					offerable[i], idle[i], av.Offerable(a, maxConc, now), av.IdleSince(a))
			}
		}
	}
}
