package api

import (
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestFollowRemote: an identity's events from other nodes reach its remote
// stream only while a connection follows it, with the seqs the owner gave
// them; a connection subscribed after seq prev with its first events (the
// owner's snapshot, or events replayed from the log) then gets those
// delivered since FollowRemote that come after them, then live ones: each
// seq once, in order; a gap closes it; the identity's own stream here is
// untouched.
func TestFollowRemote(t *testing.T) {
	const alice = "8:acs:alice"
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	newRemote := func(h *Hub) *client {
		c := newClient(h, nil, nil, Session{Principal: calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent}}, wsTimings{}, discard)
		c.remote = true
		return c
	}
	ev := func(seq uint64) []byte { return []byte(`{"n":` + strconv.FormatUint(seq, 10) + `}`) }
	for _, tc := range []struct {
		name    string
		prev    uint64
		first   []uint64 // seqs of the first events
		pending []uint64 // delivered between FollowRemote and the subscribe
		live    []uint64 // delivered after it
		want    []uint64 // seqs queued
		closed  bool     // a gap closed it
	}{
		{"snapshot, then the events after it", 9, []uint64{10}, []uint64{9, 10, 11}, []uint64{12, 13}, []uint64{10, 11, 12, 13}, false},
		{"replayed, then the rest", 4, []uint64{5, 6, 7}, []uint64{6, 7, 8}, []uint64{9}, []uint64{5, 6, 7, 8, 9}, false},
		{"replayed beyond what was delivered", 4, []uint64{5, 6, 7}, []uint64{6}, []uint64{7, 8}, []uint64{5, 6, 7, 8}, false},
		{"resumed with nothing missed", 7, nil, nil, []uint64{8, 9}, []uint64{8, 9}, false},
		{"a gap after the first", 9, []uint64{10}, []uint64{12}, nil, []uint64{10}, true},
		{"a gap live", 9, []uint64{10}, nil, []uint64{11, 13}, []uint64{10, 11}, true},
		{"an event not in the owner's stream (no seq)", 9, []uint64{10}, []uint64{0}, []uint64{0, 11}, []uint64{10, 11}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub(nil, 0)
			h.DeliverRemote(alice, 1, false, ev(1)) // not followed: dropped
			fl := h.FollowRemote(alice)
			for _, seq := range tc.pending {
				h.DeliverRemote(alice, seq, false, ev(seq))
			}
			c := newRemote(h)
			var first []Entry
			for _, seq := range tc.first {
				first = append(first, Entry{Seq: seq, Payload: ev(seq)})
			}
			h.subscribeRemote(c, fl, tc.prev, first)
			for _, seq := range tc.live {
				h.DeliverRemote(alice, seq, false, ev(seq))
			}
			h.DeliverRemote("8:acs:bob", 100, false, ev(100))
			var got []uint64
			for len(c.queue) > 0 {
				e := <-c.queue
				if string(e.body) != string(ev(e.seq)) {
					t.Errorf("seq %d carries %s", e.seq, e.body)
				}
				got = append(got, e.seq)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("queued %v, want %v", got, tc.want)
			}
			if closed := c.isClosing(); closed != tc.closed {
				t.Errorf("closing %v, want %v", closed, tc.closed)
			}
			if own, err := h.events.Since(AgentStream(alice), 0); err == nil && len(own) > 0 {
				t.Errorf("alice's own stream here holds %d events from another node", len(own))
			}
			h.mu.RLock()
			recent := len(h.followed[alice].recent)
			h.mu.RUnlock()
			if recent != 0 {
				t.Errorf("%d events kept once no connection waits, want none", recent)
			}
			h.remove(c)
			fl.Stop()
			fl.Stop() // again: nothing
			if h.followedRemote(alice) {
				t.Error("alice still followed after stop")
			}
			h.LostRemote() // nothing followed: no panic
		})
	}
}

// TestHubLastResumable: the owner's answer to an attach says whether the
// seq the stream was opened with is one of its stream's, every event after
// it still held.
func TestHubLastResumable(t *testing.T) {
	h := NewHub(nil, 0)
	stream := AgentStream("8:acs:alice")
	begin, _, err := h.last(stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h.deliver(stream, []byte(`{}`))
	}
	seq := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		name  string
		since *uint64
		want  bool
	}{
		{"none asked", nil, false},
		{"the stream's beginning", seq(begin), true},
		{"within", seq(begin + 2), true},
		{"its last", seq(begin + 3), true},
		{"past its last", seq(begin + 4), false},
		{"of an earlier owner or run", seq(begin - 1), false},
		{"never given", seq(1), false},
	} {
		last, holds, err := h.last(stream, tc.since)
		if err != nil || last != begin+3 || holds != tc.want {
			t.Errorf("%s: last %d, holds %v, %v; want %d, %v", tc.name, last, holds, err, begin+3, tc.want)
		}
	}
}
