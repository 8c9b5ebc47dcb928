package calls_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestPeerJoinAnswerAsOnOneNode: with JoinWait set, a join on a node that
// does not anchor the room answers with the others in it (alice on the
// anchor, carol on a third node), as one node's join does; bob's join
// waits for the anchor's roster while the cluster's messages flow.
func TestPeerJoinAnswerAsOnOneNode(t *testing.T) {
	run := func(threeNodes bool) string {
		w := newRoomWorldWith(t, threeNodes, calls.Config{JoinWait: 10 * time.Second})
		// join has p join while the cluster's messages flow.
		join := func(p calls.Principal) calls.Call {
			done := make(chan calls.Call, 1)
			go func() { done <- w.join(p) }()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				w.flush()
				select {
				case c := <-done:
					return c
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s's join did not answer", p.Identifier.RawID())
				}
			}
		}
		join(alice)
		join(carol)
		c := join(bob)
		var parts []string
		for _, p := range c.RemoteParticipants {
			parts = append(parts, fmt.Sprintf("[%s %s muted=%v]", strings.TrimPrefix(p.RawID, "8:acs:"), p.State, p.IsMuted))
		}
		slices.Sort(parts)
		return fmt.Sprintf("%s %s", c.State, strings.Join(parts, " "))
	}
	one, three := run(false), run(true)
	if one != three || !strings.Contains(three, "alice") || !strings.Contains(three, "carol") {
		t.Errorf("bob's join answered:\none node:    %s\nthree nodes: %s", one, three)
	}
}
