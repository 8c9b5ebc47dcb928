package queue

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// line is a queue's waiting calls in order, oldest first (EnteredAt, then
// CallID): the order Store.Waiting answers and the engine offers in.
// Calls enter mostly at its end, so adding and removing cost a binary
// search and a move of the slice's tail, not a sort of the backlog. Its
// owner guards it.
type line struct {
	keys []lineKey
}

type lineKey struct {
	at time.Time
	id string
}

func compareKeys(a, b lineKey) int {
	return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id))
}

// add puts the call in its place (once: adding it again changes nothing).
func (l *line) add(at time.Time, id string) {
	k := lineKey{at, id}
	i, found := slices.BinarySearchFunc(l.keys, k, compareKeys)
	if !found {
		l.keys = slices.Insert(l.keys, i, k)
	}
}

// remove takes the call out (no-op when it is not in line). Calls leave
// mostly at its head (offered oldest first): the shorter side of the
// slice moves, so a call leaving the head of a line of 10,000 moves none.
func (l *line) remove(at time.Time, id string) {
	i, found := slices.BinarySearchFunc(l.keys, lineKey{at, id}, compareKeys)
	switch {
	case !found:
	case i < len(l.keys)/2:
		copy(l.keys[1:i+1], l.keys[:i])
		l.keys[0] = lineKey{} // no hold on the id
		l.keys = l.keys[1:]
	default:
		l.keys = slices.Delete(l.keys, i, i+1)
	}
}

func (l *line) len() int { return len(l.keys) }

// oldest answers when the first call entered; false when the line is
// empty.
func (l *line) oldest() (time.Time, bool) {
	if len(l.keys) == 0 {
		return time.Time{}, false
	}
	return l.keys[0].at, true
}

// Summary is what a queue's stats need of its waiting calls: how many
// wait, and since when the oldest has.
type Summary struct {
	Count  int
	Oldest time.Time // zero when none waits
}

// Summarizer is a Store that answers a queue's Summary without listing its
// waiting calls (Memory and JetStream do): the engine's stats and the
// position of a call that enters then cost the same whatever the backlog.
type Summarizer interface {
	WaitingSummary(ctx context.Context, queue string) (Summary, error)
}
