package calls_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// TestPeerDTMFAsOnOneNode: tones keyed on one node are a dtmf event (who
// keyed, how many, the keyer as the actor; never the digits) in the
// timelines of those who hear them on every node that holds a part of
// the conversation, as on one node: the far party of a 1:1 call (either
// way), the others of a room anchored on a third node (the keyer on the
// anchor, or on a mirror whose tones go through the anchor to the other
// mirror), and a supervisor listening from another node.
func TestPeerDTMFAsOnOneNode(t *testing.T) {
	const card = "4111111111111111#"
	tests := []struct {
		name string
		run  func(t *testing.T, cluster bool) []string // each party's dtmf timeline
	}{
		{"1:1, the caller keys", func(t *testing.T, cluster bool) []string {
			w := newWorld(t, cluster)
			w.b.Connect(t, bob)
			w.call()
			w.answer()
			mustCall(t)(w.a.SendDTMF(ctx, alice, w.aliceCall, card))
			w.flush()
			noDigits(t, w.a, card)
			noDigits(t, w.b, card)
			return []string{"alice " + dtmfLine(t, w.a, w.aliceCall), "bob " + dtmfLine(t, w.b, w.bobCall)}
		}},
		{"1:1, the callee keys twice", func(t *testing.T, cluster bool) []string {
			w := newWorld(t, cluster)
			w.b.Connect(t, bob)
			w.call()
			w.answer()
			mustCall(t)(w.b.SendDTMF(ctx, bob, w.bobCall, "12"))
			mustCall(t)(w.b.SendTones(ctx, bob, w.bobCall, "3"))
			w.flush()
			return []string{"alice " + dtmfLine(t, w.a, w.aliceCall), "bob " + dtmfLine(t, w.b, w.bobCall)}
		}},
		{"room, each party keys once", func(t *testing.T, cluster bool) []string {
			w := newRoomWorld(t, cluster)
			for _, p := range []calls.Principal{alice, bob, carol} {
				w.join(p)
				w.flush()
			}
			for _, p := range []calls.Principal{alice, bob, carol} { // the anchor's, then each mirror's
				mustCall(t)(w.of(p).SendDTMF(ctx, p, w.callIDs[p.Identifier.RawID()], card))
				w.flush()
			}
			var out []string
			for _, p := range []calls.Principal{alice, bob, carol} {
				out = append(out, p.DisplayName+" "+dtmfLine(t, w.of(p), w.callIDs[p.Identifier.RawID()]))
				noDigits(t, w.of(p), card)
			}
			return out
		}},
		{"a supervisor listens from another node", func(t *testing.T, cluster bool) []string {
			w := newMonitorWorld(t, cluster)
			w.monitor(calls.MonitorListen)
			mustCall(t)(w.a.SendDTMF(ctx, alice, w.aliceCall, card))
			mustCall(t)(w.a.SendDTMF(ctx, carol, w.carCall, "0"))
			w.flush()
			noDigits(t, w.b, card)
			return []string{"alice " + dtmfLine(t, w.a, w.aliceCall), "carol " + dtmfLine(t, w.a, w.carCall), "sue " + dtmfLine(t, w.b, w.sueLeg)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, cluster := tt.run(t, false), tt.run(t, true)
			for i := range one {
				if strings.HasSuffix(one[i], "[]") {
					t.Fatalf("on one node %s: no dtmf at all", one[i])
				}
			}
			if fmt.Sprint(one) != fmt.Sprint(cluster) {
				t.Errorf("across nodes:\n  %s\nwant, as on one node:\n  %s", strings.Join(cluster, "\n  "), strings.Join(one, "\n  "))
			}
		})
	}
}

// dtmfLine is dtmfOf as one line.
func dtmfLine(t *testing.T, f *callstest.Fixture, id string) string {
	t.Helper()
	return fmt.Sprint(dtmfOf(t, f, id))
}
