package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

func testCallQueues(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	l, ok := s.(calls.CallQueueLog)
	if !ok {
		t.Fatalf("%T keeps no queues of calls (calls.CallQueueLog)", s)
	}
	ctx := t.Context()
	c1 := ended(newCall("call-001", agentA, calls.Incoming, at(0, 1), p1), 0)
	c2 := ended(newCall("call-002", agentA, calls.Outgoing, at(1, 0), p2), 0)
	c3 := ended(newCall("call-003", agentB, calls.Incoming, at(2, 0), p1), 0)
	recordCalls(t, s, c1, c2, c3)
	for _, q := range []calls.CallQueue{
		{CallID: c1.ID, Queue: "support", At: at(3, 0)},
		{CallID: c1.ID, Queue: "sales", At: at(3, 1)}, // overflowed
		{CallID: c3.ID, Queue: "support", At: at(3, 2)},
		{CallID: c3.ID, Queue: "support", At: at(4, 0)},      // again: no change
		{CallID: "call-999", Queue: "support", At: at(4, 1)}, // not recorded (yet): never listed
	} {
		if err := l.PutCallQueue(ctx, q); err != nil {
			t.Fatalf("PutCallQueue(%+v): %v", q, err)
		}
	}
	tests := []struct {
		f    calls.CallFilter
		want []string
	}{
		{f: calls.CallFilter{Queue: "support"}, want: []string{"call-003", "call-001"}},
		{f: calls.CallFilter{Queue: "sales"}, want: []string{"call-001"}},
		{f: calls.CallFilter{Queue: "other"}, want: []string{}},
		{f: calls.CallFilter{Queue: "Support"}, want: []string{}}, // names are exact
		{f: calls.CallFilter{Queue: "support", AgentID: agentB}, want: []string{"call-003"}},
		{f: calls.CallFilter{Queue: "support", Direction: calls.Outgoing}, want: []string{}},
		{f: calls.CallFilter{Queue: "support", Participant: p1, Limit: 1}, want: []string{"call-003"}},
	}
	for _, tt := range tests {
		if got := idsOf(findCalls(t, s, tt.f).Items); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FindCalls(%+v) = %v, want %v", tt.f, got, tt.want)
		}
	}
	// Each call shows its queues, by name.
	queues := map[string][]string{}
	for _, c := range findCalls(t, s, calls.CallFilter{}).Items {
		queues[c.ID] = c.Queues
	}
	if want := map[string][]string{"call-001": {"sales", "support"}, "call-002": nil, "call-003": {"support"}}; !reflect.DeepEqual(queues, want) {
		t.Errorf("queues in history = %v, want %v", queues, want)
	}
	for id, want := range map[string][]string{"call-001": {"sales", "support"}, "call-002": nil} {
		h, err := s.FindCallByID(ctx, id)
		if err != nil || !reflect.DeepEqual(h.Call.Queues, want) {
			t.Errorf("FindCallByID(%s) queues = %v, %v; want %v", id, h.Call.Queues, err, want)
		}
	}
	// Paging through a queue's calls finds each once.
	first := findCalls(t, s, calls.CallFilter{Queue: "support", Limit: 1})
	if first.NextCursor == "" {
		t.Fatalf("FindCalls(queue support, limit 1): no next cursor")
	}
	next := findCalls(t, s, calls.CallFilter{Queue: "support", Limit: 1, Cursor: first.NextCursor})
	if got := append(idsOf(first.Items), idsOf(next.Items)...); !reflect.DeepEqual(got, []string{"call-003", "call-001"}) {
		t.Errorf("paged queue support = %v, want [call-003 call-001]", got)
	}

	if c, ok := s.(interface{ Close(context.Context) error }); ok {
		_ = c.Close(ctx)
		err := l.PutCallQueue(ctx, calls.CallQueue{CallID: c2.ID, Queue: "support", At: at(5, 0)})
		if ce, ok := errors.AsType[*calls.Error](err); !ok || ce.Code != calls.CodeUnavailable {
			t.Errorf("PutCallQueue on a closed store: %v, want %s", err, calls.CodeUnavailable)
		}
	}
}
