package main

import (
	"testing"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
)

// callThenAway opens the event stream of name (token) on m, checks it
// begins with a snapshot, has agent start a call through m's API, reads
// name's stream up to that call, then closes it (a normal closure) and
// waits until m has name Disconnected. It answers the call and the last
// seq name saw.
func callThenAway(t *testing.T, m *Main, token, name, agent string) (call string, last uint64) {
	t.Helper()
	conn := dialEvents(t, m.Addr, token, nil)
	snap := readFrame(t, conn)
	if snap.Type != string(calls.EventSnapshot) {
		t.Fatalf("%s's first event on %s: %s", name, m.Config.Cluster.NodeID, snap.raw)
	}
	call = startCall(t, "http://"+m.Addr, agent)
	last = seqUntil(t, conn, snap.Seq, callSeen(call))
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	conn.Close()
	waitConnection(t, m, "8:acs:"+name, calls.Disconnected)
	return call, last
}

// isState reports whether f tells that call entered state.
func isState(f wsFrame, call, state string) bool {
	return f.Type == string(calls.EventStateChanged) && f.CallID == call && f.Data.State == state
}

// countState counts the frames that tell that call entered state.
func countState(frames []wsFrame, call, state string) int {
	n := 0
	for _, f := range frames {
		if isState(f, call, state) {
			n++
		}
	}
	return n
}

// seqUntil reads conn after seq prev, the seqs following on by one, up to
// the first event that stop holds for, and answers its seq.
func seqUntil(t *testing.T, conn *websocket.Conn, prev uint64, stop func(wsFrame) bool) uint64 {
	t.Helper()
	frames := framesUntil(t, conn, prev, stop)
	return frames[len(frames)-1].Seq
}

// callSeen holds for the callsUpdated that tells of call.
func callSeen(call string) func(wsFrame) bool {
	return func(f wsFrame) bool { return f.Type == string(calls.EventCallsUpdated) && f.CallID == call }
}

// inState holds for the stateChanged that tells that call entered state.
func inState(call, state string) func(wsFrame) bool {
	return func(f wsFrame) bool { return isState(f, call, state) }
}

// untilSecondHold reads conn after seq last up to call's second
// LocalHold: the events a console missed while the call was held,
// resumed and held again.
func untilSecondHold(t *testing.T, conn *websocket.Conn, last uint64, call string) []wsFrame {
	t.Helper()
	holds := 0
	return framesUntil(t, conn, last, func(f wsFrame) bool {
		if isState(f, call, "LocalHold") {
			holds++
		}
		return holds == 2
	})
}

// replaysSame reads len(want) events from oracle, a stream reopened with
// sinceSeq last, and fails t at the first that is not want's, byte for
// byte: node replayed want, oracleNode replays the events read.
func replaysSame(t *testing.T, oracle *websocket.Conn, last uint64, want []wsFrame, node, oracleNode string) {
	t.Helper()
	for i, w := range want {
		if got := readFrame(t, oracle); got.raw != w.raw {
			t.Fatalf("event %d after %d: %s replayed %s, %s replays %s", i, last, node, w.raw, oracleNode, got.raw)
		}
	}
}
