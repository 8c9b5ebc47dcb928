package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/relay"
)

// TestEventsSince: a node's events are read back by the seqs its hub gave
// them, exactly those after the seq asked for; a seq the log cannot answer
// in full and without a gap (never given, older than its first, past its
// last, too many, or across an event lost on its way) answers ErrGone.
func TestEventsSince(t *testing.T) {
	url := natstest.SharedURL(t)
	stream := newStream(t, url)
	a, _ := startNode(t, url, stream, "a", calls.Snapshot{})
	const alice = "8:acs:alice"
	relayed := uint64(0)
	send := func(seqs ...uint64) {
		t.Helper()
		for _, seq := range seqs {
			a.RelaySeq(alice, seq, false, fmt.Appendf(nil, `{"n":%d}`, seq))
		}
		relayed += uint64(len(seqs))
		for deadline := time.Now().Add(guard); a.Stats().Appended < relayed; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("appended %+v, want %d", a.Stats(), relayed)
			}
		}
	}
	check := func(name, identity string, since uint64, limit int, want []uint64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		got, err := a.EventsSince(ctx, identity, since, limit)
		if want == nil {
			if !errors.Is(err, relay.ErrGone) {
				t.Errorf("%s: since %d: %v, %v; want ErrGone", name, since, got, err)
			}
			return
		}
		if err != nil {
			t.Errorf("%s: since %d: %v", name, since, err)
			return
		}
		if len(got) != len(want) {
			t.Errorf("%s: since %d: %d events, want %d", name, since, len(got), len(want))
			return
		}
		for i, e := range got {
			if e.Seq != want[i] || string(e.Body) != fmt.Sprintf(`{"n":%d}`, want[i]) {
				t.Errorf("%s: since %d: event %d is %d %s, want %d", name, since, i, e.Seq, e.Body, want[i])
			}
		}
	}

	send(101, 102, 103, 104, 105)
	for _, tc := range []struct {
		name     string
		identity string
		since    uint64
		limit    int
		want     []uint64 // nil: ErrGone
	}{
		{"all", alice, 100, 100, []uint64{101, 102, 103, 104, 105}},
		{"some", alice, 103, 100, []uint64{104, 105}},
		{"none after the last", alice, 105, 100, []uint64{}},
		{"past the last", alice, 106, 100, nil},
		{"before the first", alice, 99, 100, nil},
		{"never given", alice, 0, 100, nil},
		{"more than the limit", alice, 100, 4, nil},
		{"exactly the limit", alice, 101, 4, []uint64{102, 103, 104, 105}},
		{"no events", "8:acs:bob", 100, 100, nil},
	} {
		check(tc.name, tc.identity, tc.since, tc.limit, tc.want)
	}

	// 106 was lost on its way: no replay crosses the gap; one from 106 (a
	// console on the node that published it saw it) or later does. An
	// event relayed without a seq (not in alice's stream) is left out.
	send(107)
	a.Relay(alice, true, []byte(`{"recovered":1}`))
	relayed++
	send(108)
	for _, tc := range []struct {
		name  string
		since uint64
		want  []uint64
	}{
		{"across the gap", 103, nil},
		{"just before the gap", 105, nil},
		{"at the gap", 106, []uint64{107, 108}},
		{"after the gap", 107, []uint64{108}},
	} {
		check(tc.name, alice, tc.since, 100, tc.want)
	}
}
