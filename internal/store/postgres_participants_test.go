package store

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestParticipantLeavesView: a participant a newer view of a call no
// longer has is no longer found by the participant filter.
func TestParticipantLeavesView(t *testing.T) {
	url := testDatabaseURL(t)
	p := mustOpenPostgres(t, url, PostgresOptions{SpoolDir: t.TempDir()})
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	part := func(raw string) calls.Participant {
		id, err := calls.ParseRawID(raw)
		if err != nil {
			t.Fatal(err)
		}
		return calls.Participant{Identifier: id, RawID: raw, State: calls.ParticipantConnected}
	}
	call := calls.Call{
		ID: "leave-1", ServerCallID: "s1", AgentID: "8:acs:alice", Direction: calls.Outgoing,
		Kind: calls.Group, State: calls.StateConnected, StartTime: start,
		CallerInfo:         calls.CallerInfo{Identifier: calls.CommunicationUser("alice")},
		RemoteParticipants: []calls.Participant{part("8:acs:bob"), part("8:acs:carol")},
	}
	p.Record(calls.Record{Call: call})
	mustFlush(t, p)
	find := func(raw string) int {
		page, err := p.FindCalls(context.Background(), calls.CallFilter{Participant: raw})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}
	if find("8:acs:carol") != 1 {
		t.Fatal("carol not found before she left the view")
	}
	call.RemoteParticipants = call.RemoteParticipants[:1]
	p.Record(calls.Record{Call: call})
	mustFlush(t, p)
	if n := find("8:acs:carol"); n != 0 {
		t.Errorf("carol still found in %d calls after the view dropped her", n)
	}
	if find("8:acs:bob") != 1 {
		t.Error("bob lost with carol")
	}
}
