package api_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestDurableAnswers: an answer that changed a call waits for the store to
// say the change is on disk; when it cannot say so in time the answer is
// 503 unavailable, and the change was made all the same. Reads, failed
// requests and routes that record no history do not wait.
func TestDurableAnswers(t *testing.T) {
	var (
		asked  atomic.Int32
		broken atomic.Bool
	)
	durable := func(ctx context.Context) error {
		asked.Add(1)
		if broken.Load() {
			<-ctx.Done()
			return errors.New("the journal's disk is gone")
		}
		return nil
	}
	s := newServer(t, serverOptions{durable: durable, durableWait: 100 * time.Millisecond})
	alice := s.token("alice", calls.RoleAgent)
	start := map[string]any{"participants": []any{map[string]any{"id": "8:echo123"}}}

	tests := []struct {
		name      string
		run       func(t *testing.T)
		wantAsked int32
	}{
		{"a start waits for the disk", func(t *testing.T) {
			s.do(http.MethodPost, "/api/calls", alice, start, http.StatusCreated, nil)
		}, 1},
		{"a read does not", func(t *testing.T) {
			s.do(http.MethodGet, "/api/calls", alice, nil, http.StatusOK, nil)
		}, 0},
		{"a failed request does not", func(t *testing.T) {
			s.wantError(http.MethodPost, "/api/calls/nope/hold", alice, nil, http.StatusNotFound, calls.CodeCallNotFound)
		}, 0},
		{"a token records no history", func(t *testing.T) {
			s.token("carol", calls.RoleAgent)
		}, 0},
		{"a disk that does not answer: 503, the change made", func(t *testing.T) {
			broken.Store(true)
			defer broken.Store(false)
			s.wantError(http.MethodPost, "/api/calls", alice, start, http.StatusServiceUnavailable, calls.CodeUnavailable)
			var list []calls.Call
			s.do(http.MethodGet, "/api/calls", alice, nil, http.StatusOK, &list)
			if len(list) != 2 {
				t.Errorf("after the 503, alice has %d calls, want 2 (the change was made)", len(list))
			}
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked.Store(0)
			tt.run(t)
			if got := asked.Load(); got != tt.wantAsked {
				t.Errorf("the store was asked %d times, want %d", got, tt.wantAsked)
			}
		})
	}
}
