package api_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// endsRelay is a Relay that keeps the callEnded events it is given.
type endsRelay struct {
	mu  sync.Mutex
	got []string // identity, supervised
}

func (r *endsRelay) Relay(identity string, supervised bool, body []byte) {
	if !strings.Contains(string(body), `"type":"callEnded"`) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if supervised {
		identity += " supervised"
	}
	r.got = append(r.got, identity)
}

// PublishRecovered: a dead node's call ended here reaches the supervisors
// and the relay, not the identity's own stream; an event supervisors do
// not see goes nowhere.
func TestPublishRecovered(t *testing.T) {
	s := newServer(t, serverOptions{})
	relay := &endsRelay{}
	s.hub.SetRelay(relay) // before any event
	sue := s.connect(s.token("sue", calls.RoleSupervisor))
	alice := s.connect(s.token("alice", calls.RoleAgent))
	for _, st := range []*stream{sue, alice} {
		if ev := st.next(); ev.Type != "snapshot" {
			t.Fatalf("first event %s, want a snapshot", ev.Type)
		}
	}
	reason := calls.ReasonSwitchboardDied
	ended := func(id string, supervised bool) calls.Event {
		at := time.Now()
		return calls.Event{Type: calls.EventCallEnded, At: at, AgentID: "8:acs:alice", CallID: id,
			Actor: &calls.Actor{Kind: calls.ActorSystem}, Supervised: supervised,
			Data: calls.CallEndedData{CallEndReason: reason, Call: calls.Call{ID: id, AgentID: "8:acs:alice",
				State: calls.StateDisconnected, CallEndReason: &reason, EndTime: &at}}}
	}
	s.hub.PublishRecovered(ended("unsupervised", false))
	s.hub.PublishRecovered(ended("dead-node-call", true))

	// Sue may first see alice connect (and her status); the unsupervised
	// end, published first, must not come.
	ev := sue.next()
	for ev.Type == calls.EventConnectionStateChanged || ev.Type == calls.EventAgentStatusChanged {
		ev = sue.next()
	}
	if ev.Type != calls.EventCallEnded || ev.CallID != "dead-node-call" {
		t.Fatalf("sue's next event: %s of %s; want callEnded of dead-node-call", ev.Type, ev.CallID)
	}
	var d struct{ CallEndReason calls.EndReason }
	if err := json.Unmarshal(ev.Data, &d); err != nil || d.CallEndReason != reason {
		t.Errorf("sue's callEnded: %+v, %v; want %+v", d.CallEndReason, err, reason)
	}
	relay.mu.Lock()
	if got := relay.got; len(got) != 1 || got[0] != "8:acs:alice supervised" {
		t.Errorf("relayed %q, want the supervised event of 8:acs:alice once", got)
	}
	relay.mu.Unlock()

	// Alice's own stream has neither: her next event is her new call's.
	c, err := s.sb.StartCall(t.Context(), calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent},
		calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}})
	if err != nil {
		t.Fatal(err)
	}
	ev = alice.next()
	for ev.Type == calls.EventConnectionStateChanged {
		ev = alice.next()
	}
	if ev.CallID != c.ID {
		t.Errorf("alice's first call event after the snapshot: %s of %s; want one of her new call %s", ev.Type, ev.CallID, c.ID)
	}
}
