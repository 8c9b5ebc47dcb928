package calls_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestPeerChangeOfTransferred: in a caller's stand-in's view of a 1:1
// call (its history: the ended parties too), the party of the pair is the
// one the call was transferred to, not the agent who transferred it and
// left, so the new party's hold and mute reach the far node; in a group
// call the first party stays the pair's, as before.
func TestPeerChangeOfTransferred(t *testing.T) {
	transferred := calls.ReasonTransferred
	agent := calls.Participant{Identifier: alice.Identifier, RawID: alice.Identifier.RawID(), State: calls.ParticipantDisconnected, CallEndReason: &transferred}
	target := func(st calls.ParticipantState, muted bool) calls.Participant {
		return calls.Participant{Identifier: carol.Identifier, RawID: carol.Identifier.RawID(), State: st, IsMuted: muted}
	}
	view := func(kind calls.Kind, ps ...calls.Participant) calls.Call {
		return calls.Call{ID: "s1", Direction: calls.Outgoing, Kind: kind, State: calls.StateConnected,
			AgentID: bob.Identifier.RawID(), CallerInfo: calls.CallerInfo{Identifier: bob.Identifier}, RemoteParticipants: ps}
	}
	for _, c := range []struct {
		name            string
		prev, now       calls.Call
		wantHeld, wantM *bool
	}{
		{"1:1, the target holds", view(calls.OneToOne, agent, target(calls.ParticipantConnected, false)),
			view(calls.OneToOne, agent, target(calls.ParticipantHold, false)), new(true), nil},
		{"1:1, the target mutes", view(calls.OneToOne, agent, target(calls.ParticipantConnected, false)),
			view(calls.OneToOne, agent, target(calls.ParticipantConnected, true)), nil, new(true)},
		{"group: the first party is the pair's", view(calls.Group, agent, target(calls.ParticipantConnected, false)),
			view(calls.Group, agent, target(calls.ParticipantHold, false)), nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := calls.PeerChangeOf(&c.prev, c.now)
			if (ch.Held == nil) != (c.wantHeld == nil) || ch.Held != nil && *ch.Held != *c.wantHeld {
				t.Errorf("held %v, want %v", ch.Held, c.wantHeld)
			}
			if (ch.Muted == nil) != (c.wantM == nil) || ch.Muted != nil && *ch.Muted != *c.wantM {
				t.Errorf("muted %v, want %v", ch.Muted, c.wantM)
			}
		})
	}
}
