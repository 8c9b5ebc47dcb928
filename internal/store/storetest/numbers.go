package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

func numbersOf(t *testing.T, s calls.Store) calls.NumberRoutes {
	t.Helper()
	nr, ok := s.(calls.NumberRoutes)
	if !ok {
		t.Fatalf("%T does not keep number routes (calls.NumberRoutes)", s)
	}
	return nr
}

func target(id calls.Identifier) *calls.Identifier { return &id }

func testNumberRoutes(t *testing.T, newStore func(*testing.T) calls.Store) {
	alice := calls.CommunicationUser("alice")
	teams := calls.Identifier{Kind: calls.KindTeamsUser, ID: "u1", Cloud: calls.CloudGCCH}
	tests := []struct {
		name    string
		put     []calls.NumberRoute // in order
		delete  []string
		want    []calls.NumberRoute // by number
		missing string              // a number FindNumberRoute must not find
	}{
		{name: "none", want: []calls.NumberRoute{}, missing: "+14255550123"},
		{
			name: "targets and queues, by number",
			put: []calls.NumberRoute{
				{Number: "+442071838750", Queue: "sales"},
				{Number: "+14255550123", Target: target(alice)},
				{Number: "+33123456789", Target: target(teams)},
				{Number: "+3312345678", Target: target(calls.EchoBot)},
			},
			want: []calls.NumberRoute{
				{Number: "+14255550123", Target: target(alice)},
				{Number: "+3312345678", Target: target(calls.EchoBot)},
				{Number: "+33123456789", Target: target(teams)},
				{Number: "+442071838750", Queue: "sales"},
			},
			missing: "+14255550124",
		},
		{
			name: "a put replaces the route",
			put: []calls.NumberRoute{
				{Number: "+14255550123", Target: target(alice)},
				{Number: "+14255550123", Queue: "support"},
				{Number: "+442071838750", Queue: "sales"},
				{Number: "+442071838750", Target: target(alice)},
			},
			want: []calls.NumberRoute{
				{Number: "+14255550123", Queue: "support"},
				{Number: "+442071838750", Target: target(alice)},
			},
		},
		{
			name: "delete",
			put: []calls.NumberRoute{
				{Number: "+14255550123", Target: target(alice)},
				{Number: "+442071838750", Queue: "sales"},
			},
			delete:  []string{"+14255550123"},
			want:    []calls.NumberRoute{{Number: "+442071838750", Queue: "sales"}},
			missing: "+14255550123",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			nr := numbersOf(t, s)
			ctx := t.Context()
			for _, r := range tt.put {
				if err := nr.PutNumberRoute(ctx, r); err != nil {
					t.Fatalf("PutNumberRoute(%s): %v", r.Number, err)
				}
			}
			for _, n := range tt.delete {
				if err := nr.DeleteNumberRoute(ctx, n); err != nil {
					t.Fatalf("DeleteNumberRoute(%s): %v", n, err)
				}
			}
			got, err := nr.FindNumberRoutes(ctx)
			if err != nil {
				t.Fatalf("FindNumberRoutes: %v", err)
			}
			if got == nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FindNumberRoutes = %+v, want %+v", got, tt.want)
			}
			for _, want := range tt.want {
				r, err := nr.FindNumberRoute(ctx, want.Number)
				if err != nil || !reflect.DeepEqual(r, want) {
					t.Errorf("FindNumberRoute(%s) = %+v, %v; want %+v", want.Number, r, err, want)
				}
			}
			if tt.missing != "" {
				if _, err := nr.FindNumberRoute(ctx, tt.missing); calls.ErrorCode(err) != calls.CodeNotFound {
					t.Errorf("FindNumberRoute(%s) of a number without a route: %v, want not_found", tt.missing, err)
				}
				if err := nr.DeleteNumberRoute(ctx, tt.missing); calls.ErrorCode(err) != calls.CodeNotFound {
					t.Errorf("DeleteNumberRoute(%s) of a number without a route: %v, want not_found", tt.missing, err)
				}
			}
		})
	}
	t.Run("canceled context", func(t *testing.T) {
		nr := numbersOf(t, newStore(t))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := nr.PutNumberRoute(ctx, calls.NumberRoute{Number: "+14255550123", Queue: "q"}); !errors.Is(err, context.Canceled) {
			t.Errorf("PutNumberRoute with a canceled context: %v, want context.Canceled", err)
		}
		if _, err := nr.FindNumberRoutes(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("FindNumberRoutes with a canceled context: %v, want context.Canceled", err)
		}
	})
}
