package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// feedLog is a SupervisedLog holding the cluster's feed from its first seq.
type feedLog struct {
	mu    sync.Mutex
	first uint64
	feed  []api.Entry // first, first+1, …
	reads int
}

func (f *feedLog) SupervisedSince(_ context.Context, seq uint64, limit int) ([]api.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	last := f.first + uint64(len(f.feed)) - 1
	if seq+1 < f.first || seq > last || int(last-seq) > limit {
		return nil, fmt.Errorf("since %d: %w", seq, api.ErrGone)
	}
	return append([]api.Entry(nil), f.feed[seq+1-f.first:]...), nil
}

// feedEvent is the encoded event of the feed's seq.
func feedEvent(seq uint64) []byte {
	return fmt.Appendf(nil, `{"type":"isMutedChanged","agentId":"8:acs:alice","callId":"c%d"}`, seq)
}

// TestSupervisedNumberedByCluster: once the cluster numbers the
// supervisors' stream (StartSupervised), a supervisor sees the hub's own
// supervised events only as the feed delivers them, with the feed's seqs;
// reconnecting it resumes from memory, or from the SupervisedLog for what
// memory lacks (joined with memory without a gap or a repeat); a loss
// marker closes it and no replay crosses it; seq 0 and a seq past the
// last get a snapshot.
func TestSupervisedNumberedByCluster(t *testing.T) {
	s := newServer(t, serverOptions{})
	log := &feedLog{first: 1}
	for seq := uint64(1); seq <= 100; seq++ {
		log.feed = append(log.feed, api.Entry{Seq: seq, Payload: feedEvent(seq)})
	}
	s.hub.StartSupervised(100)
	s.hub.SetSupervisedLog(log)
	top := uint64(100) // the feed's last
	deliver := func(seq uint64) {
		top = seq
		log.mu.Lock()
		log.feed = append(log.feed, api.Entry{Seq: seq, Payload: feedEvent(seq)})
		log.mu.Unlock()
		s.hub.DeliverSupervised(seq, feedEvent(seq))
	}
	sueTok := s.token("sue", calls.RoleSupervisor)
	sue := s.connect(sueTok)
	if ev := sue.next(); ev.Type != calls.EventSnapshot || ev.Seq != 100 {
		t.Fatalf("sue's first event: %s %d, want the snapshot at 100", ev.Type, ev.Seq)
	}
	marker(s, "8:acs:alice", "local") // the relay's to number: not delivered here
	deliver(101)
	s.hub.DeliverSupervised(101, feedEvent(101)) // twice: skipped
	deliver(102)
	if ev := sue.next(); ev.CallID != "c101" {
		t.Fatalf("sue got %s %s, want the feed's 101 (the hub's own event comes from the feed)", ev.Type, ev.CallID)
	}
	if ev := sue.next(); ev.CallID != "c102" {
		t.Fatalf("sue got %s %s at 102", ev.Type, ev.CallID)
	}

	cases := []struct {
		name      string
		since     uint64
		from      uint64 // first seq replayed; 0: a snapshot
		readsFeed bool
	}{
		{"memory holds them", 100, 101, false},
		{"nothing missed", 102, 103, false},
		{"memory lacks them: from the feed, then memory", 40, 41, true},
		{"0 is no place", 0, 0, false},
		{"past the last", 500, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log.mu.Lock()
			before := log.reads
			log.mu.Unlock()
			st := s.connectSince(sueTok, tc.since)
			deliver(top + 1)
			ev := st.next()
			log.mu.Lock()
			read := log.reads > before
			log.mu.Unlock()
			if tc.from == 0 {
				if ev.Type != calls.EventSnapshot {
					t.Fatalf("since %d: %s %d, want a snapshot", tc.since, ev.Type, ev.Seq)
				}
				return
			}
			if ev.Type == calls.EventSnapshot || ev.Seq != tc.from || ev.CallID != fmt.Sprintf("c%d", tc.from) {
				t.Fatalf("since %d: %s %d %s, want c%d", tc.since, ev.Type, ev.Seq, ev.CallID, tc.from)
			}
			for want := tc.from + 1; want <= top; want++ { // st.next checks the seqs follow on
				if ev := st.next(); ev.CallID != fmt.Sprintf("c%d", want) {
					t.Fatalf("since %d: %s at %d", tc.since, ev.CallID, ev.Seq)
				}
			}
			if read != tc.readsFeed {
				t.Errorf("since %d: read the feed %v, want %v", tc.since, read, tc.readsFeed)
			}
			_ = st.conn.Close()
		})
	}

	// A loss marker: sue is closed; her last seq gets a snapshot.
	next := top + 1
	s.hub.LostSupervised(next)
	if err := sue.closed(); err == nil {
		t.Fatal("sue's stream was not closed by the loss")
	}
	st := s.connectSince(sueTok, next-1)
	if ev := st.next(); ev.Type != calls.EventSnapshot || ev.Seq != next {
		t.Fatalf("across the marker %d: %s %d, want a snapshot at %d", next, ev.Type, ev.Seq, next)
	}
}
