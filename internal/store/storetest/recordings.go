package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

func recordingsOf(t *testing.T, s calls.Store) calls.Recordings {
	t.Helper()
	r, ok := s.(calls.Recordings)
	if !ok {
		t.Fatalf("%T does not keep recordings (calls.Recordings)", s)
	}
	return r
}

func ptime(t time.Time) *time.Time { return &t }

// recording is a fixture: started at minute start, stopped at minute stop
// (negative: still live), on node.
func recording(id, call, node string, start, stop int) calls.Recording {
	r := calls.Recording{ID: id, CallID: call, AgentID: agentA, State: calls.RecordingActive,
		File: id + ".wav", Node: node, StartedBy: calls.Actor{Kind: calls.ActorAgent, RawID: agentA},
		StartedAt: at(start, 7), Paused: []calls.PausedSpan{}}
	if stop >= 0 {
		r.State, r.StoppedAt, r.DurationMs = calls.RecordingStopped, ptime(at(stop, 3)), int64(stop-start)*60000
		r.StoppedBy = &calls.Actor{Kind: calls.ActorSystem}
		r.Paused = []calls.PausedSpan{{Start: at(start, 100), End: ptime(at(start, 900)),
			PausedBy:  &calls.Actor{Kind: calls.ActorSupervisor, RawID: super, DisplayName: "Sue"},
			ResumedBy: &calls.Actor{Kind: calls.ActorAgent, RawID: agentA}}}
	}
	return r
}

func testRecordings(t *testing.T, newStore func(*testing.T) calls.Store) {
	deleted := recording("r5", "c3", "", 1, 2)
	deleted.DeletedAt = ptime(at(50, 0))
	superStarted := recording("r6", "c4", "", 3, -1)
	superStarted.State = calls.RecordingPaused
	superStarted.StartedBy = calls.Actor{Kind: calls.ActorSupervisor, RawID: super}
	superStarted.Paused = []calls.PausedSpan{{Start: at(4, 0)}}
	all := []calls.Recording{
		recording("r2", "c1", "", 10, 20),
		recording("r1", "c1", "", 5, 8),
		recording("r3", "c2", "", 6, -1),
		recording("r4", "c2", "node-b", 7, 9),
		deleted,
		superStarted,
	}
	tests := []struct {
		name   string
		filter calls.RecordingFilter
		want   []string // ids, in order
	}{
		{"all, oldest start first", calls.RecordingFilter{}, []string{"r5", "r6", "r1", "r3", "r4", "r2"}},
		{"one call's", calls.RecordingFilter{CallID: "c1"}, []string{"r1", "r2"}},
		{"no such call", calls.RecordingFilter{CallID: "c9"}, []string{}},
		{"limit", calls.RecordingFilter{Limit: 2}, []string{"r5", "r6"}},
		{"this node's unfinished", calls.RecordingFilter{Unfinished: true}, []string{"r6", "r3"}},
		{"another node's unfinished", calls.RecordingFilter{Unfinished: true, Node: "node-b"}, []string{}},
		{"this node's stopped before, not deleted", calls.RecordingFilter{StoppedBefore: at(20, 3)}, []string{"r1"}},
		{"stopped before, a little later", calls.RecordingFilter{StoppedBefore: at(20, 4)}, []string{"r1", "r2"}},
		{"another node's stopped before", calls.RecordingFilter{StoppedBefore: at(60, 0), Node: "node-b"}, []string{"r4"}},
	}
	s := newStore(t)
	rs := recordingsOf(t, s)
	ctx := t.Context()
	// Written twice: the second put replaces the first.
	for _, r := range all {
		first := r.Clone()
		first.State, first.StoppedAt, first.DeletedAt = calls.RecordingActive, nil, nil
		if err := rs.PutRecording(ctx, first); err != nil {
			t.Fatalf("PutRecording(%s): %v", r.ID, err)
		}
	}
	for _, r := range all {
		if err := rs.PutRecording(ctx, r); err != nil {
			t.Fatalf("PutRecording(%s): %v", r.ID, err)
		}
	}
	byID := map[string]calls.Recording{}
	for _, r := range all {
		byID[r.ID] = r
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rs.FindRecordings(ctx, tt.filter)
			if err != nil {
				t.Fatalf("FindRecordings: %v", err)
			}
			if got == nil {
				t.Fatal("FindRecordings answered nil")
			}
			ids := []string{}
			for _, r := range got {
				ids = append(ids, r.ID)
				if want := byID[r.ID]; !sameRecording(r, want) {
					t.Errorf("recording %s came back as\n%+v\nwant\n%+v", r.ID, r, want)
				}
			}
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("FindRecordings(%+v) = %v, want %v", tt.filter, ids, tt.want)
			}
		})
	}
	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := rs.PutRecording(ctx, all[0]); !errors.Is(err, context.Canceled) {
			t.Errorf("PutRecording with a canceled context: %v, want context.Canceled", err)
		}
		if _, err := rs.FindRecordings(ctx, calls.RecordingFilter{}); !errors.Is(err, context.Canceled) {
			t.Errorf("FindRecordings with a canceled context: %v, want context.Canceled", err)
		}
	})
}

// sameRecording compares two recordings, their times as instants.
func sameRecording(a, b calls.Recording) bool {
	eq := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	if !a.StartedAt.Equal(b.StartedAt) || !eq(a.StoppedAt, b.StoppedAt) || !eq(a.DeletedAt, b.DeletedAt) ||
		len(a.Paused) != len(b.Paused) {
		return false
	}
	for i := range a.Paused {
		if !a.Paused[i].Start.Equal(b.Paused[i].Start) || !eq(a.Paused[i].End, b.Paused[i].End) ||
			!reflect.DeepEqual(a.Paused[i].PausedBy, b.Paused[i].PausedBy) || !reflect.DeepEqual(a.Paused[i].ResumedBy, b.Paused[i].ResumedBy) {
			return false
		}
	}
	a.StartedAt, a.StoppedAt, a.DeletedAt, a.Paused = time.Time{}, nil, nil, nil
	b.StartedAt, b.StoppedAt, b.DeletedAt, b.Paused = time.Time{}, nil, nil, nil
	return reflect.DeepEqual(a, b)
}
