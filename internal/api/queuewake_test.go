package api_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// countingSwitch is the API's queue switch that counts the engine's
// looks at waiting calls (Status), so that a test knows a look passed.
type countingSwitch struct {
	*api.QueueSwitch
	looks atomic.Int64
}

func (c *countingSwitch) Status(ctx context.Context, w queue.Waiting, agent string) (queue.Status, error) {
	defer c.looks.Add(1)
	return c.QueueSwitch.Status(ctx, w, agent)
}

// TestQueueWakeOnHangup: the engine runs with a tick of an hour and the
// fake clock stands still; ann is busy on a call of her own while carl
// waits. When she hangs up, the switchboard's callEnded wakes the engine
// (QueueWake), which offers her carl at once: without the wake no look
// would come within the test.
func TestQueueWakeOnHangup(t *testing.T) {
	s := newQueueServer(t)
	ann := s.token("ann", calls.RoleAgent)
	sa := s.connect(ann)
	sa.waitFor(calls.EventSnapshot, "")
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support", "members": []map[string]any{{"agent": "8:acs:ann"}}}, http.StatusCreated, nil)
	var own calls.Call
	s.do(http.MethodPost, "/api/calls", ann, map[string]any{"participants": []map[string]any{{"id": "8:echo123"}}}, http.StatusCreated, &own)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.engine.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	s.do(http.MethodPost, "/api/calls", s.token("carl", calls.RoleCaller), map[string]any{"queue": "support"}, http.StatusCreated, nil)
	// The look that Enter asks for: it finds ann busy (her pool is taken
	// before the waiting call's Status), so it offers nothing.
	deadline := time.Now().Add(10 * time.Second)
	for s.sw.looks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the engine never looked at carl's waiting call after he entered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var st queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &st)
	if st.Offered != 0 || st.Waiting != 1 {
		t.Fatalf("while ann is on a call: %+v, want no offer", st)
	}
	s.do(http.MethodPost, "/api/calls/"+own.ID+"/hangup", ann, nil, http.StatusOK, nil)
	sa.waitFor(calls.EventIncomingCall, "")
	s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &st)
	if st.Offered != 1 {
		t.Fatalf("after ann hung up: %+v, want one offer", st)
	}
}

// TestQueueAbandonSeenByEvent: the engine asks after a waiting call only
// when its call changed (no sweep within the test, see newQueueServer).
// Three callers wait while the only agent is Away; a step with nothing new
// looks at none of them. When one hangs up, the switchboard's callEnded
// reaches the engine through QueueWake (Engine.Changed), and the next
// step looks at that call alone and counts it abandoned.
func TestQueueAbandonSeenByEvent(t *testing.T) {
	s := newQueueServer(t)
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support", "members": []map[string]any{{"agent": "8:acs:ann"}}}, http.StatusCreated, nil)
	s.do(http.MethodPut, "/api/agents/8:acs:ann/status", s.token("sue", calls.RoleSupervisor), map[string]any{"status": "Away"}, http.StatusOK, nil)
	var ids []string
	var tokens []string
	for _, name := range []string{"carl", "cora", "cid"} {
		tok := s.token(name, calls.RoleCaller)
		var c calls.Call
		s.do(http.MethodPost, "/api/calls", tok, map[string]any{"queue": "support"}, http.StatusCreated, &c)
		ids, tokens = append(ids, c.ID), append(tokens, tok)
	}
	s.step() // the entries' first looks
	before := s.sw.looks.Load()
	s.step()
	if n := s.sw.looks.Load() - before; n != 0 {
		t.Fatalf("a step with nothing new looked at %d calls, want 0", n)
	}
	s.do(http.MethodPost, "/api/calls/"+ids[1]+"/hangup", tokens[1], nil, http.StatusOK, nil)
	before = s.sw.looks.Load()
	s.step()
	if n := s.sw.looks.Load() - before; n != 1 {
		t.Errorf("the step after cora hung up looked at %d calls, want 1", n)
	}
	var st queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &st)
	if st.Abandoned != 1 || st.Waiting != 2 {
		t.Fatalf("after cora hung up: %+v, want 1 abandoned, 2 waiting", st)
	}
}
