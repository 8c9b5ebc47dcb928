package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/routing"
)

func statusLogOf(t *testing.T, s calls.Store) calls.AgentStatusLog {
	t.Helper()
	l, ok := s.(calls.AgentStatusLog)
	if !ok {
		t.Fatalf("%T keeps no agent status (calls.AgentStatusLog)", s)
	}
	return l
}

func testAgentStatus(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	l := statusLogOf(t, s)
	ctx := t.Context()
	if _, err := l.LastStatusChange(ctx, agentA); calls.ErrorCode(err) != calls.CodeNotFound {
		t.Fatalf("LastStatusChange with none: %v, want not_found", err)
	}
	if got, err := l.FindStatusChanges(ctx, calls.StatusFilter{}); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("FindStatusChanges with none = %v, %v; want [] (not nil)", got, err)
	}
	sup := calls.Actor{Kind: calls.ActorSupervisor, RawID: p1}
	changes := []calls.StatusChange{ // in the order they happened
		{AgentID: agentA, Status: routing.Available, Chosen: routing.Available, At: at(0, 0), By: calls.Actor{Kind: calls.ActorAgent, RawID: agentA}},
		{AgentID: agentB, Status: routing.Away, Chosen: routing.Away, At: at(0, 1), By: sup},
		{AgentID: agentA, Status: routing.Busy, Chosen: routing.Available, At: at(1, 0), By: calls.Actor{Kind: calls.ActorAgent, RawID: agentA}},
		{AgentID: agentA, Status: routing.WrapUp, Chosen: routing.WrapUp, At: at(2, 0), By: calls.Actor{Kind: calls.ActorSystem}},
		{AgentID: agentA, Status: routing.Offline, Chosen: routing.WrapUp, At: at(3, 0), By: calls.Actor{Kind: calls.ActorSystem}},
	}
	// One, then the rest in one batch, in order.
	var named []calls.StatusChange
	for _, c := range changes {
		c.By.DisplayName = "not kept"
		named = append(named, c)
	}
	if err := l.RecordStatusChanges(ctx, named[0]); err != nil {
		t.Fatalf("RecordStatusChanges(%+v): %v", named[0], err)
	}
	if err := l.RecordStatusChanges(ctx, named[1:]...); err != nil {
		t.Fatalf("RecordStatusChanges(4 changes): %v", err)
	}
	tests := []struct {
		name string
		f    calls.StatusFilter
		want []int // indexes in changes, newest first
	}{
		{name: "all", want: []int{4, 3, 2, 1, 0}},
		{name: "one agent", f: calls.StatusFilter{AgentID: agentA}, want: []int{4, 3, 2, 0}},
		{name: "limit", f: calls.StatusFilter{AgentID: agentA, Limit: 2}, want: []int{4, 3}},
		{name: "window", f: calls.StatusFilter{From: at(0, 1), To: at(3, 0)}, want: []int{3, 2, 1}},
		{name: "nobody", f: calls.StatusFilter{AgentID: p2}, want: []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.FindStatusChanges(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			want := []calls.StatusChange{}
			for _, i := range tt.want {
				want = append(want, changes[i])
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("FindStatusChanges(%+v) =\n%+v\nwant\n%+v", tt.f, got, want)
			}
		})
	}
	last, err := l.LastStatusChange(ctx, agentA)
	if err != nil || !reflect.DeepEqual(last, changes[4]) {
		t.Errorf("LastStatusChange(a) = %+v, %v; want %+v", last, err, changes[4])
	}
	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := l.RecordStatusChanges(ctx, changes[0]); !errors.Is(err, context.Canceled) {
			t.Errorf("RecordStatusChanges with a canceled context: %v, want context.Canceled", err)
		}
	})
}

func testWrapUpCodes(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	l := statusLogOf(t, s)
	ctx := t.Context()
	c1 := ended(newCall("call-001", agentA, calls.Incoming, at(0, 1), p1), 0)
	c2 := ended(newCall("call-002", agentA, calls.Outgoing, at(1, 0), p2), 0)
	c3 := ended(newCall("call-003", agentB, calls.Incoming, at(2, 0), p1), 0)
	recordCalls(t, s, c1, c2, c3)
	for _, w := range []calls.WrapUpCode{
		{CallID: c1.ID, AgentID: agentA, Code: "sale", At: at(5, 0)},
		{CallID: c2.ID, AgentID: agentA, Code: "no-sale", At: at(5, 1)},
		{CallID: c3.ID, AgentID: agentB, Code: "callback", At: at(5, 2)},
		{CallID: c2.ID, AgentID: agentA, Code: "sale", At: at(6, 0)}, // replaces
	} {
		if err := l.PutWrapUpCode(ctx, w); err != nil {
			t.Fatalf("PutWrapUpCode(%+v): %v", w, err)
		}
	}
	tests := []struct {
		f    calls.CallFilter
		want []string
	}{
		{f: calls.CallFilter{WrapUpCode: "sale"}, want: []string{"call-002", "call-001"}},
		{f: calls.CallFilter{WrapUpCode: "sale", AgentID: agentB}, want: []string{}},
		{f: calls.CallFilter{WrapUpCode: "callback"}, want: []string{"call-003"}},
		{f: calls.CallFilter{WrapUpCode: "no-sale"}, want: []string{}},
		{f: calls.CallFilter{WrapUpCode: "sale", Participant: p2}, want: []string{"call-002"}},
	}
	for _, tt := range tests {
		page := findCalls(t, s, tt.f)
		if got := idsOf(page.Items); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FindCalls(%+v) = %v, want %v", tt.f, got, tt.want)
		}
		for _, c := range page.Items {
			if c.WrapUpCode != tt.f.WrapUpCode {
				t.Errorf("FindCalls(%+v): call %s has wrapUpCode %q", tt.f, c.ID, c.WrapUpCode)
			}
		}
	}
	all := findCalls(t, s, calls.CallFilter{})
	codes := map[string]string{}
	for _, c := range all.Items {
		codes[c.ID] = c.WrapUpCode
	}
	if want := map[string]string{"call-001": "sale", "call-002": "sale", "call-003": "callback"}; !reflect.DeepEqual(codes, want) {
		t.Errorf("wrap-up codes in history = %v, want %v", codes, want)
	}
	h, err := s.FindCallByID(ctx, "call-003")
	if err != nil || h.Call.WrapUpCode != "callback" {
		t.Errorf("FindCallByID(call-003) wrapUpCode = %q, %v; want callback", h.Call.WrapUpCode, err)
	}
}
