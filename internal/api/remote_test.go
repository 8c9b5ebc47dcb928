package api

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestFollowRemote: an identity's events from other nodes reach its remote
// stream only while a connection follows it; a connection subscribed with
// the owner's snapshot gets it first, then the events delivered since
// FollowRemote (none lost), then live ones, with seqs growing by one; the
// identity's own stream here is untouched.
func TestFollowRemote(t *testing.T) {
	const alice = "8:acs:alice"
	h := NewHub(nil, 0)
	h.DeliverRemote(alice, 0, false, []byte(`{"n":0}`)) // not followed: dropped
	last, stop, err := h.FollowRemote(alice)
	if err != nil {
		t.Fatal(err)
	}
	h.DeliverRemote(alice, 0, false, []byte(`{"n":1}`)) // during the attach
	c := newClient(h, nil, nil, Session{Principal: calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent}}, wsTimings{},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.remote = true
	if err := h.subscribeRemote(c, last, []byte(`{"snapshot":1}`)); err != nil {
		t.Fatal(err)
	}
	h.DeliverRemote(alice, 0, false, []byte(`{"n":2}`))
	h.DeliverRemote("8:acs:bob", 0, false, []byte(`{"bob":1}`))
	var got []string
	for range 3 {
		ev := <-c.queue
		if want := last + uint64(len(got)); ev.seq != want {
			t.Errorf("event %s has seq %d, want %d", ev.body, ev.seq, want)
		}
		got = append(got, string(ev.body))
	}
	if want := []string{`{"snapshot":1}`, `{"n":1}`, `{"n":2}`}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if n := len(c.queue); n != 0 {
		t.Errorf("%d more queued, want none (bob's event is not alice's)", n)
	}
	if own, err := h.events.Since(AgentStream(alice), 0); err == nil && len(own) > 0 {
		t.Errorf("alice's own stream here holds %d events from another node", len(own))
	}
	h.remove(c)
	stop()
	stop() // again: nothing
	if h.followedRemote(alice) {
		t.Error("alice still followed after stop")
	}
	h.LostRemote() // nothing followed: no panic
}
