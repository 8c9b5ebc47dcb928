package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) calls.Store {
		m := store.NewMemory()
		t.Cleanup(func() {
			if err := m.Close(t.Context()); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return m
	})
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// call is a minimal call of agent's with remote participants parts.
func call(id, agent string, start time.Time, parts ...string) calls.Call {
	c := calls.Call{
		ID: id, AgentID: agent, Direction: calls.Outgoing, Kind: calls.OneToOne,
		State: calls.StateConnected, IsActive: true, StartTime: start,
		RemoteParticipants: []calls.Participant{},
	}
	for _, p := range parts {
		c.RemoteParticipants = append(c.RemoteParticipants, calls.Participant{
			RawID: p, State: calls.ParticipantConnected,
			EndpointDetails: []calls.EndpointDetail{{ParticipantID: "ep-" + p}},
		})
	}
	return c
}

// walk reads every page of f, failing on an error.
func walk(t *testing.T, s calls.Store, f calls.CallFilter) []calls.Call {
	t.Helper()
	all, err := pages(t, s, f)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// pages reads every page of f; it may run on any goroutine.
func pages(t *testing.T, s calls.Store, f calls.CallFilter) ([]calls.Call, error) {
	var all []calls.Call
	for {
		page, err := s.FindCalls(t.Context(), f)
		if err != nil {
			return all, fmt.Errorf("FindCalls(%+v): %w", f, err)
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		f.Cursor = page.NextCursor
	}
}

// newestFirst reports whether cs is strictly in history order.
func newestFirst(cs []calls.Call) bool {
	for i := 1; i < len(cs); i++ {
		a, b := cs[i-1], cs[i]
		if c := a.StartTime.Compare(b.StartTime); c < 0 || c == 0 && a.ID <= b.ID {
			return false
		}
	}
	return true
}

// TestMemoryLongScan checks filters that match rarely, so that a page
// spans many lock releases.
func TestMemoryLongScan(t *testing.T) {
	m := store.NewMemory()
	const n = 20_000
	recs := make([]calls.Record, 0, n)
	var want []string
	for i := range n {
		id := fmt.Sprintf("call-%05d", i)
		parts := []string{"4:+15550100001"}
		if i%997 == 0 {
			parts = append(parts, "8:acs:rare")
		}
		recs = append(recs, calls.Record{Call: call(id, "8:acs:a", t0.Add(time.Duration(i)*time.Second), parts...)})
		if i%997 == 0 {
			want = append(want, id)
		}
	}
	m.Record(recs...)
	slices.Reverse(want)

	tests := []struct {
		name  string
		limit int
	}{
		{"by 1", 1},
		{"by 3", 3},
		{"in one page", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := walk(t, m, calls.CallFilter{Participant: "8:acs:rare", Limit: tt.limit})
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("ids = %v, want %v", ids, want)
			}
		})
	}
}

// TestMemoryMovedCall checks that a call recorded again with another start
// or agent moves in history rather than appearing twice.
func TestMemoryMovedCall(t *testing.T) {
	m := store.NewMemory()
	m.Record(
		calls.Record{Call: call("call-1", "8:acs:a", t0)},
		calls.Record{Call: call("call-2", "8:acs:a", t0.Add(time.Minute))},
		calls.Record{Call: call("call-3", "8:acs:a", t0.Add(2*time.Minute))},
	)
	m.Record(calls.Record{Call: call("call-1", "8:acs:b", t0.Add(time.Hour))})

	tests := []struct {
		agent string
		want  []string
	}{
		{"", []string{"call-1", "call-3", "call-2"}},
		{"8:acs:a", []string{"call-3", "call-2"}},
		{"8:acs:b", []string{"call-1"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range walk(t, m, calls.CallFilter{AgentID: tt.agent, Limit: 1}) {
			got = append(got, c.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("agent %q: ids = %v, want %v", tt.agent, got, tt.want)
		}
	}
}

// TestMemoryCopies checks that what the store answers shares nothing with
// what it keeps.
func TestMemoryCopies(t *testing.T) {
	m := store.NewMemory()
	c := call("call-1", "8:acs:a", t0, "4:+15550100001")
	end := t0.Add(time.Minute)
	c.EndTime, c.CallEndReason = &end, &calls.EndReason{Code: 0, Message: "hung up"}
	m.Record(calls.Record{Call: c, Events: []calls.Event{{Type: calls.EventCallEnded, At: end, Actor: &calls.Actor{Kind: calls.ActorAgent, RawID: "8:acs:a"}}}})

	page, err := m.FindCalls(t.Context(), calls.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	got := page.Items[0]
	got.RemoteParticipants[0].RawID = "changed"
	got.RemoteParticipants[0].EndpointDetails[0].ParticipantID = "changed"
	got.CallEndReason.Code = 999
	*got.EndTime = time.Time{}
	h, err := m.FindCallByID(t.Context(), "call-1")
	if err != nil {
		t.Fatal(err)
	}
	h.Timeline[0].Actor.RawID = "changed"

	h, err = m.FindCallByID(t.Context(), "call-1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := h.Call.RemoteParticipants[0].RawID, "4:+15550100001"; got != want {
		t.Errorf("participant rawId = %q after changing an answer, want %q", got, want)
	}
	if got, want := h.Call.RemoteParticipants[0].EndpointDetails[0].ParticipantID, "ep-4:+15550100001"; got != want {
		t.Errorf("endpoint = %q after changing an answer, want %q", got, want)
	}
	if got, want := h.Call.CallEndReason.Code, 0; got != want {
		t.Errorf("end code = %d after changing an answer, want %d", got, want)
	}
	if got, want := *h.Call.EndTime, end; !got.Equal(want) {
		t.Errorf("end time = %v after changing an answer, want %v", got, want)
	}
	if got, want := h.Timeline[0].Actor.RawID, "8:acs:a"; got != want {
		t.Errorf("actor rawId = %q after changing an answer, want %q", got, want)
	}
}

// TestMemoryConcurrent records from many goroutines while others page
// through history; run it with -race.
func TestMemoryConcurrent(t *testing.T) {
	m := store.NewMemory()
	const (
		writers  = 8
		perAgent = 50
		updates  = 4
		readers  = 3
	)
	agents := []string{"8:acs:a", "8:acs:b"}

	var written sync.WaitGroup
	for w := range writers {
		written.Go(func() {
			for i := range perAgent {
				id := fmt.Sprintf("w%d-call-%03d", w, i)
				// Starts collide across writers, so ties are exercised.
				start := t0.Add(time.Duration(i) * time.Second)
				for u := range updates {
					c := call(id, agents[w%2], start, "4:+15550100001")
					if u == updates-1 {
						c.State, c.CallEndReason = calls.StateDisconnected, &calls.EndReason{Code: 480}
					}
					m.Record(calls.Record{Call: c, Events: []calls.Event{
						{Type: calls.EventStateChanged, At: start.Add(time.Duration(u) * time.Millisecond), CallID: id},
					}})
				}
			}
		})
	}

	stop := make(chan struct{})
	var read sync.WaitGroup
	for r := range readers {
		read.Go(func() {
			code := 480
			filters := []calls.CallFilter{
				{Limit: 7},
				{AgentID: agents[r%2], Limit: 13},
				{EndCode: &code, Limit: 50},
				{Participant: "4:+15550100001", From: t0.Add(30 * time.Second), Limit: 20},
			}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				f := filters[n%len(filters)]
				got, err := pages(t, m, f)
				if err != nil {
					t.Error(err)
					return
				}
				if !newestFirst(got) {
					t.Errorf("FindCalls(%+v) while recording: not strictly newest first", f)
					return
				}
				if len(got) > 0 {
					if _, err := m.FindCallByID(t.Context(), got[len(got)/2].ID); err != nil {
						t.Errorf("FindCallByID(%q) of a listed call: %v", got[len(got)/2].ID, err)
						return
					}
				}
			}
		})
	}
	written.Wait()
	close(stop)
	read.Wait()

	all := walk(t, m, calls.CallFilter{Limit: calls.MaxHistoryLimit})
	if got, want := len(all), writers*perAgent; got != want {
		t.Fatalf("%d calls in history, want %d", got, want)
	}
	if !newestFirst(all) {
		t.Errorf("history is not strictly newest first")
	}
	for _, c := range all {
		h, err := m.FindCallByID(t.Context(), c.ID)
		if err != nil {
			t.Fatalf("FindCallByID(%q): %v", c.ID, err)
		}
		if got, want := len(h.Timeline), updates; got != want {
			t.Errorf("call %s has %d timeline entries, want %d", c.ID, got, want)
		}
		if h.Call.CallEndReason == nil || h.Call.CallEndReason.Code != 480 {
			t.Errorf("call %s end reason = %+v, want the last record's (480)", c.ID, h.Call.CallEndReason)
		}
	}
}

// benchCall is a realistic ended 1:1 call with one remote participant.
func benchCall(id, agent string, start time.Time, part string) calls.Call {
	c := call(id, agent, start, part)
	connected, end := start.Add(5*time.Second), start.Add(3*time.Minute)
	c.ConnectedTime, c.EndTime = &connected, &end
	c.State, c.IsActive = calls.StateDisconnected, false
	c.CallEndReason = &calls.EndReason{Code: 0, Message: "the agent hung up"}
	return c
}

// BenchmarkMemoryRecord is one Record of one call with two events, as the
// switchboard makes on every change: each call is recorded five times, so
// a fifth of the records add a call.
func BenchmarkMemoryRecord(b *testing.B) {
	const callsN, updates = 20_000, 5
	recs := make([]calls.Record, 0, callsN*updates)
	for i := range callsN {
		start := t0.Add(time.Duration(i) * time.Second)
		c := benchCall(fmt.Sprintf("call-%06d", i), fmt.Sprintf("8:acs:agent-%02d", i%100), start, "4:+15550100001")
		for u := range updates {
			at := start.Add(time.Duration(u) * time.Second)
			recs = append(recs, calls.Record{Call: c, Events: []calls.Event{
				{Type: calls.EventStateChanged, At: at, AgentID: c.AgentID, CallID: c.ID,
					Actor: &calls.Actor{Kind: calls.ActorAgent, RawID: c.AgentID},
					Data:  calls.StateChangedData{OldState: calls.StateRinging, State: calls.StateConnected, IsActive: true}},
				{Type: calls.EventIsMutedChanged, At: at, AgentID: c.AgentID, CallID: c.ID,
					Data: calls.MutedData{IsMuted: true}},
			}})
		}
	}
	m := store.NewMemory()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if i == len(recs) {
			// Start over, so the store's size does not depend on b.N.
			b.StopTimer()
			m, i = store.NewMemory(), 0
			b.StartTimer()
		}
		m.Record(recs[i])
		i++
	}
}

// BenchmarkMemoryFindCalls pages through 100,000 stored calls of 100
// agents, 50 at a time.
func BenchmarkMemoryFindCalls(b *testing.B) {
	const callsN, agentsN = 100_000, 100
	m := store.NewMemory()
	recs := make([]calls.Record, 0, callsN)
	for i := range callsN {
		part := "4:+15550100001"
		if i%100 == 7 {
			part = "8:acs:rare" // 1% of calls
		}
		recs = append(recs, calls.Record{Call: benchCall(
			fmt.Sprintf("call-%06d", i), fmt.Sprintf("8:acs:agent-%02d", i%agentsN),
			t0.Add(time.Duration(i)*time.Second), part)})
	}
	m.Record(recs...)

	deep := calls.CallFilter{AgentID: "8:acs:agent-42", Limit: 50}
	for range 10 {
		page, err := m.FindCalls(b.Context(), deep)
		if err != nil {
			b.Fatal(err)
		}
		deep.Cursor = page.NextCursor
	}

	benchmarks := []struct {
		name   string
		filter calls.CallFilter
	}{
		{"agent", calls.CallFilter{AgentID: "8:acs:agent-42", Limit: 50}},
		{"agent page 11", deep},
		{"participant 1% of calls", calls.CallFilter{Participant: "8:acs:rare", Limit: 50}},
		{"no filter", calls.CallFilter{Limit: 50}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, err := m.FindCalls(b.Context(), bm.filter)
				if err != nil {
					b.Fatal(err)
				}
				if len(page.Items) != 50 {
					b.Fatalf("%d calls, want 50", len(page.Items))
				}
			}
		})
	}
}
