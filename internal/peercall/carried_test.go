package peercall

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestMessageCarries: what a dial and a change say reaches the far node
// whole: a joiner's role, a change's tones (who, how many) and a
// transfer's step; each such change says something (is not dropped as
// empty).
func TestMessageCarries(t *testing.T) {
	tests := []struct {
		name string
		m    message
	}{
		{"a supervisor's join", message{Dial: &dial{ServerCallID: "c1", Caller: calls.CallerInfo{Identifier: sup.Identifier},
			Join: true, RoomID: "standup", Role: calls.RoleSupervisor}}},
		{"tones", message{Change: &calls.PeerChange{Tones: &calls.DTMFData{Participant: alice.Identifier.RawID(), Count: 4}}}},
		{"a transfer's step", message{Change: &calls.PeerChange{Transfer: &calls.TransferData{Step: calls.StepBlind,
			Agent: alice.Identifier.RawID(), Target: carol.Identifier.RawID()}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			var got message
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.m) {
				t.Errorf("%s came as %+v, want %+v", b, got, tt.m)
			}
			if got.Change != nil && got.Change.IsZero() {
				t.Errorf("%s says nothing (IsZero)", b)
			}
		})
	}
}

// TestTonesAndTransferAcross: over NATS, tones alice keys in her call
// with bob are a dtmf event in bob's history on his node, and her blind
// transfer of bob to sue a transferUpdated step there, each as on one
// node.
func TestTonesAndTransferAcross(t *testing.T) {
	tests := []struct {
		name string
		step func(w *world)
		want calls.EventType
	}{
		{"tones", func(w *world) {
			mustCall(w.t)(w.a.SendDTMF(ctx, alice, w.aliceCall, "1234"))
		}, calls.EventDTMF},
		{"blind transfer", func(w *world) {
			id := sup.Identifier
			mustCall(w.t)(w.a.Transfer(ctx, alice, w.aliceCall, calls.TransferRequest{Target: &id, Mode: calls.TransferBlind}))
		}, calls.EventTransferUpdated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := func(twoNodes bool) []string {
				w := newWorld(t, twoNodes)
				w.b.Connect(t, bob)
				w.call()
				w.answer()
				tt.step(w)
				w.flush()
				var out []string
				for _, r := range w.b.Store.Records(w.bobCall) {
					for _, ev := range r.Events {
						if ev.Type == tt.want {
							out = append(out, fmt.Sprintf("%s by %s:%s %+v", ev.Type, ev.Actor.Kind, ev.Actor.RawID, ev.Data))
						}
					}
				}
				return out
			}
			one, two := run(false), run(true)
			if len(one) == 0 || fmt.Sprint(one) != fmt.Sprint(two) {
				t.Errorf("bob's history on two nodes: %v, want %v as on one node", two, one)
			}
		})
	}
}
