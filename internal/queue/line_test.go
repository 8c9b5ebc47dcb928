package queue

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLineKeepsOrder drives a line with random adds and removes (at its
// head, its tail, its middle, of calls not in it) and checks it against
// a sorted list after every one.
func TestLineKeepsOrder(t *testing.T) {
	tests := []struct {
		name      string
		seed      uint64
		steps     int
		headShare int // percent of removes that take the oldest call
	}{
		{name: "mostly the head leaves", seed: 1, steps: 5000, headShare: 90},
		{name: "anyone leaves", seed: 2, steps: 5000, headShare: 0},
		{name: "half and half", seed: 3, steps: 5000, headShare: 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tt.seed, 0))
			base := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			var l line
			var want []lineKey
			for step := range tt.steps {
				switch {
				case len(want) == 0 || rng.IntN(100) < 55:
					// Mostly later than all, sometimes the same instant
					// or earlier (another node's call).
					k := lineKey{base.Add(time.Duration(step-rng.IntN(20)) * time.Millisecond), fmt.Sprintf("c%05d", rng.IntN(tt.steps))}
					l.add(k.at, k.id)
					if i, found := slices.BinarySearchFunc(want, k, compareKeys); !found {
						want = slices.Insert(want, i, k)
					}
				case rng.IntN(100) < tt.headShare:
					l.remove(want[0].at, want[0].id)
					want = want[1:]
				case rng.IntN(10) == 0:
					l.remove(base.Add(-time.Hour), "absent") // not in line
				default:
					i := rng.IntN(len(want))
					l.remove(want[i].at, want[i].id)
					want = slices.Delete(want, i, i+1)
				}
				if !slices.Equal(l.keys, want) {
					t.Fatalf("step %d: line %v, want %v", step, l.keys, want)
				}
				if at, ok := l.oldest(); ok != (len(want) > 0) || ok && !at.Equal(want[0].at) {
					t.Fatalf("step %d: oldest %v %v, want %v", step, at, ok, want)
				}
			}
		})
	}
}
