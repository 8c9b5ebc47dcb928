package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// Token ids as the API gives them (UUIDs).
const (
	tokenA = "6f1d3c1e-0000-4000-8000-00000000000a"
	tokenB = "6f1d3c1e-0000-4000-8000-00000000000b"
	tokenC = "6f1d3c1e-0000-4000-8000-00000000000c"
)

// revocationsAt answers FindRevokedTokens(now) sorted by id, with times in
// UTC at microsecond precision.
func revocationsAt(t *testing.T, s calls.TokenRevocations, now time.Time) []calls.RevokedToken {
	t.Helper()
	got, err := s.FindRevokedTokens(t.Context(), now)
	if err != nil {
		t.Fatalf("FindRevokedTokens: %v", err)
	}
	if got == nil {
		t.Fatal("FindRevokedTokens answered nil, want a slice (empty when none)")
	}
	for i := range got {
		got[i].ExpiresAt = got[i].ExpiresAt.UTC().Truncate(time.Microsecond)
	}
	slices.SortFunc(got, func(a, b calls.RevokedToken) int { return strings.Compare(a.ID, b.ID) })
	return got
}

func rv(id string, exp time.Time) calls.RevokedToken {
	return calls.RevokedToken{ID: id, ExpiresAt: exp}
}

func revoke(t *testing.T, s calls.TokenRevocations, id string, exp time.Time) {
	t.Helper()
	if err := s.RevokeToken(t.Context(), id, exp); err != nil {
		t.Fatalf("RevokeToken(%s): %v", id, err)
	}
}

func testRevocations(t *testing.T, newStore func(*testing.T) calls.Store) {
	base := at(0, 0)
	tests := []struct {
		name   string
		revoke []calls.RevokedToken // in order
		now    time.Time
		want   []calls.RevokedToken
	}{
		{name: "none", now: base, want: []calls.RevokedToken{}},
		{
			name:   "unexpired ones",
			revoke: []calls.RevokedToken{rv(tokenA, base.Add(time.Hour)), rv(tokenB, base.Add(2*time.Hour))},
			now:    base,
			want:   []calls.RevokedToken{rv(tokenA, base.Add(time.Hour)), rv(tokenB, base.Add(2*time.Hour))},
		},
		{
			name:   "an expired one is not answered",
			revoke: []calls.RevokedToken{rv(tokenA, base.Add(time.Hour)), rv(tokenB, base.Add(3*time.Hour))},
			now:    base.Add(2 * time.Hour),
			want:   []calls.RevokedToken{rv(tokenB, base.Add(3*time.Hour))},
		},
		{
			name:   "expiring exactly now is expired",
			revoke: []calls.RevokedToken{rv(tokenA, base.Add(time.Hour))},
			now:    base.Add(time.Hour),
			want:   []calls.RevokedToken{},
		},
		{
			name:   "revoked again: the later expiry wins",
			revoke: []calls.RevokedToken{rv(tokenA, base.Add(2*time.Hour)), rv(tokenA, base.Add(time.Hour)), rv(tokenC, base.Add(time.Hour)), rv(tokenC, base.Add(3*time.Hour))},
			now:    base,
			want:   []calls.RevokedToken{rv(tokenA, base.Add(2*time.Hour)), rv(tokenC, base.Add(3*time.Hour))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			for _, r := range tt.revoke {
				revoke(t, s, r.ID, r.ExpiresAt)
			}
			if got := revocationsAt(t, s, tt.now); !slices.Equal(got, tt.want) {
				t.Errorf("FindRevokedTokens(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}

	t.Run("history does not touch them", func(t *testing.T) {
		s := newStore(t)
		revoke(t, s, tokenA, base.Add(time.Hour))
		recordCalls(t, s, newCall("call-001", agentA, calls.Incoming, at(0, 0), p1))
		want := []calls.RevokedToken{rv(tokenA, base.Add(time.Hour))}
		if got := revocationsAt(t, s, base); !slices.Equal(got, want) {
			t.Errorf("FindRevokedTokens = %v, want %v", got, want)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		s := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.RevokeToken(ctx, tokenA, base.Add(time.Hour)); !errors.Is(err, context.Canceled) {
			t.Errorf("RevokeToken(cancelled) error = %v, want one wrapping context.Canceled", err)
		}
		if _, err := s.FindRevokedTokens(ctx, base); !errors.Is(err, context.Canceled) {
			t.Errorf("FindRevokedTokens(cancelled) error = %v, want one wrapping context.Canceled", err)
		}
	})

	t.Run("closed store", func(t *testing.T) {
		s := newStore(t)
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(t.Context(), tokenA, base.Add(time.Hour)); calls.ErrorCode(err) != calls.CodeUnavailable {
			t.Errorf("RevokeToken after Close error = %v, want CodeUnavailable", err)
		}
		if _, err := s.FindRevokedTokens(t.Context(), base); calls.ErrorCode(err) != calls.CodeUnavailable {
			t.Errorf("FindRevokedTokens after Close error = %v, want CodeUnavailable", err)
		}
	})
}

// RunDurable runs the part of the suite for stores that keep what they
// are given for good (Postgres, a file): what one store wrote, the next
// store opened on the same storage reads (revocations, and history,
// including what was recorded just before Close). newStorage prepares fresh, empty
// storage for the test and answers how to open a store on it; the suite
// closes each store it opens before opening the next.
func RunDurable(t *testing.T, newStorage func(t *testing.T) (open func(t *testing.T) calls.Store)) {
	t.Helper()
	t.Run("RevocationsSurviveRestart", func(t *testing.T) {
		open := newStorage(t)
		now := time.Now().UTC().Truncate(time.Microsecond)
		s := open(t)
		revoke(t, s, tokenA, now.Add(time.Hour))
		revoke(t, s, tokenB, now.Add(-time.Minute)) // already expired
		if err := s.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = open(t)
		defer func() { _ = s.Close(context.Background()) }()
		want := []calls.RevokedToken{rv(tokenA, now.Add(time.Hour))}
		if got := revocationsAt(t, s, now); !slices.Equal(got, want) {
			t.Errorf("after a restart FindRevokedTokens = %v, want %v", got, want)
		}
	})
	t.Run("NumberRoutesSurviveRestart", func(t *testing.T) {
		open := newStorage(t)
		s := open(t)
		alice := calls.CommunicationUser("alice")
		want := []calls.NumberRoute{
			{Number: "+14255550123", Target: &alice},
			{Number: "+442071838750", Queue: "sales"},
		}
		for _, r := range want {
			if err := numbersOf(t, s).PutNumberRoute(t.Context(), r); err != nil {
				t.Fatalf("PutNumberRoute: %v", err)
			}
		}
		if err := s.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = open(t)
		defer func() { _ = s.Close(context.Background()) }()
		got, err := numbersOf(t, s).FindNumberRoutes(t.Context())
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("after a restart FindNumberRoutes = %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("HistorySurvivesRestart", func(t *testing.T) {
		open := newStorage(t)
		s := open(t)
		live := newCall("call-001", agentA, calls.Incoming, at(0, 0), p1)
		done := ended(newCall("call-002", agentB, calls.Outgoing, at(1, 0), p2), 487)
		evs := []calls.Event{
			event(live, calls.EventIncomingCall, at(0, 0), actor(calls.ActorRemote, p1), nil),
			event(live, calls.EventStateChanged, at(0, 1), actor(calls.ActorAgent, agentA), calls.StateChangedData{State: calls.StateConnected}),
		}
		record(t, s, calls.Record{Call: live, Events: evs[:1]}, calls.Record{Call: done})
		// Recorded but maybe not written yet: Close writes it.
		s.Record(calls.Record{Call: live, Events: evs[1:]})
		if err := s.Close(t.Context()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = open(t)
		defer func() { _ = s.Close(context.Background()) }()
		page := findCalls(t, s, calls.CallFilter{})
		if got, want := idsOf(page.Items), []string{"call-002", "call-001"}; !slices.Equal(got, want) {
			t.Fatalf("after a restart FindCalls = %v, want %v", got, want)
		}
		checkCall(t, page.Items[0], done)
		checkCall(t, page.Items[1], live)
		h, err := s.FindCallByID(t.Context(), live.ID)
		if err != nil {
			t.Fatalf("after a restart FindCallByID: %v", err)
		}
		checkTimeline(t, h.Timeline, evs)
	})
}
