package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
)

// fakeStatus records what WithStatus asks of agent status.
type fakeStatus struct {
	mu     sync.Mutex
	set    []string // agent:status
	wrapUp []string // agent:callID
}

func (f *fakeStatus) Offerable(string, int, time.Time) bool { return true }
func (f *fakeStatus) IdleSince(string) time.Time            { return time.Time{} }
func (f *fakeStatus) SetStatusBySystem(_ context.Context, agent string, req calls.SetStatusRequest) (calls.AgentStatusData, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append(f.set, agent+":"+string(req.Status))
	return calls.AgentStatusData{}, nil
}
func (f *fakeStatus) EnterWrapUp(_ context.Context, agent, callID string, _ int) (calls.AgentStatusData, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wrapUp = append(f.wrapUp, agent+":"+callID)
	return calls.AgentStatusData{}, nil
}

// TestWithStatus: the hooks WithStatus sets go to agent status: misses
// set Away, a queue call's end enters wrap-up unless the queue has none.
func TestWithStatus(t *testing.T) {
	st := &fakeStatus{}
	cfg := queue.WithStatus(queue.EngineConfig{}, st)
	if cfg.Availability != queue.Availability(st) || cfg.Misses == nil || cfg.WrapUp == nil {
		t.Fatalf("WithStatus left %+v", cfg)
	}
	cfg.Misses("8:acs:ann")
	cfg.WrapUp(context.Background(), "8:acs:bob", "c1", 30)
	cfg.WrapUp(context.Background(), "8:acs:bob", "c2", 0)
	if len(st.set) != 1 || st.set[0] != "8:acs:ann:"+string(routing.Away) {
		t.Errorf("misses set %v, want ann Away", st.set)
	}
	if len(st.wrapUp) != 1 || st.wrapUp[0] != "8:acs:bob:c1" {
		t.Errorf("wrap-ups %v, want bob's after c1 only (c2's queue has none)", st.wrapUp)
	}
}
