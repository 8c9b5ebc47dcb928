package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// Flusher is implemented by a store whose Record only queues: Flush returns
// once everything recorded before it can be read by FindCalls and
// FindCallByID.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Run runs the suite against the store newStore returns. newStore is called
// once per subtest and must return a new, empty store; it registers with
// t.Cleanup whatever releases the store (Close, dropping a schema). The
// suite closes some stores itself, so Close must tolerate a second call.
func Run(t *testing.T, newStore func(t *testing.T) calls.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, func(*testing.T) calls.Store)
	}{
		{"Record", testRecord},
		{"Filters", testFilters},
		{"Order", testOrder},
		{"Pagination", testPagination},
		{"CursorStableUnderInserts", testCursorStable},
		{"MalformedCursor", testMalformedCursor},
		{"UnknownID", testUnknownID},
		{"CanceledContext", testCanceledContext},
		{"Ready", testReady},
		{"Close", testClose},
		{"Revocations", testRevocations},
		{"NumberRoutes", testNumberRoutes},
		{"MonitorTimeline", testMonitorTimeline},
		{"Recordings", testRecordings},
		{"LobbyTimeline", testLobbyTimeline},
		{"TransferTimeline", testTransferTimeline},
		{"DTMFTimeline", testDTMFTimeline},
		{"AgentStatus", testAgentStatus},
		{"WrapUpCodes", testWrapUpCodes},
		{"CallQueues", testCallQueues},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

func testRecord(t *testing.T, newStore func(*testing.T) calls.Store) {
	ringing := newCall("call-001", agentA, calls.Incoming, at(0, 1), p1)
	ringing.State, ringing.IsActive, ringing.ConnectedTime = calls.StateRinging, false, nil
	live := newCall("call-001", agentA, calls.Incoming, at(0, 1), p1)
	group := newCall("call-001", agentA, calls.Incoming, at(0, 1), p1, p2)
	done := ended(group, 0)
	other := newCall("call-002", agentB, calls.Outgoing, at(1, 0), p1)

	evIncoming := event(ringing, calls.EventIncomingCall, at(0, 1), actor(calls.ActorRemote, p1),
		calls.IncomingCallData{IncomingCall: calls.IncomingCall{ID: ringing.ID, AgentID: agentA, Kind: calls.OneToOne, StartTime: at(0, 1), CallerInfo: ringing.CallerInfo}})
	evAdded := event(ringing, calls.EventCallsUpdated, at(0, 2), nil,
		calls.CallsUpdatedData{Added: []calls.Call{ringing}, Removed: []calls.Call{}})
	evAccepted := event(live, calls.EventStateChanged, at(0, 900), actor(calls.ActorAgent, agentA),
		calls.StateChangedData{OldState: calls.StateRinging, State: calls.StateConnected, IsActive: true})
	evJoined := event(group, calls.EventRemoteParticipantsUpdated, at(1, 5), actor(calls.ActorSupervisor, super),
		calls.ParticipantsUpdatedData{Added: group.RemoteParticipants[1:], Removed: []calls.Participant{}})
	evKind := event(group, calls.EventKindChanged, at(1, 5), actor(calls.ActorSupervisor, super),
		calls.KindChangedData{Kind: calls.Group})
	evEnded := event(done, calls.EventCallEnded, at(1, 30), actor(calls.ActorSystem, ""),
		calls.CallEndedData{CallEndReason: *done.CallEndReason, Call: done})
	evNoData := event(done, calls.EventStateChanged, at(1, 31), nil, nil)
	evOther := event(other, calls.EventStateChanged, at(1, 0), actor(calls.ActorAgent, agentB),
		calls.StateChangedData{OldState: calls.StateConnecting, State: calls.StateConnected, IsActive: true})

	tests := []struct {
		name         string
		batches      [][]calls.Record // each one Record call
		id           string
		wantCall     calls.Call
		wantTimeline []calls.Event
	}{
		{
			name:         "once",
			batches:      [][]calls.Record{{{Call: ringing, Events: []calls.Event{evIncoming, evAdded}}}},
			id:           "call-001",
			wantCall:     ringing,
			wantTimeline: []calls.Event{evIncoming, evAdded},
		},
		{
			name: "again: the latest view wins, the timeline accumulates",
			batches: [][]calls.Record{
				{{Call: ringing, Events: []calls.Event{evIncoming, evAdded}}},
				{{Call: live, Events: []calls.Event{evAccepted}}},
				{{Call: group, Events: []calls.Event{evJoined, evKind}}},
				{{Call: done, Events: []calls.Event{evEnded, evNoData}}},
			},
			id:           "call-001",
			wantCall:     done,
			wantTimeline: []calls.Event{evIncoming, evAdded, evAccepted, evJoined, evKind, evEnded, evNoData},
		},
		{
			name: "in one batch with another call",
			batches: [][]calls.Record{
				{
					{Call: ringing, Events: []calls.Event{evIncoming, evAdded}},
					{Call: other, Events: []calls.Event{evOther}},
					{Call: live, Events: []calls.Event{evAccepted}},
				},
				{{Call: done, Events: []calls.Event{evEnded}}},
			},
			id:           "call-001",
			wantCall:     done,
			wantTimeline: []calls.Event{evIncoming, evAdded, evAccepted, evEnded},
		},
		{
			name: "the other call of a batch keeps its own timeline",
			batches: [][]calls.Record{
				{
					{Call: ringing, Events: []calls.Event{evIncoming, evAdded}},
					{Call: other, Events: []calls.Event{evOther}},
					{Call: live, Events: []calls.Event{evAccepted}},
				},
			},
			id:           "call-002",
			wantCall:     other,
			wantTimeline: []calls.Event{evOther},
		},
		{
			name: "a record without events changes the view only",
			batches: [][]calls.Record{
				{{Call: ringing, Events: []calls.Event{evIncoming}}},
				{{Call: live}},
			},
			id:           "call-001",
			wantCall:     live,
			wantTimeline: []calls.Event{evIncoming},
		},
		{
			name: "an ended call stays ended: a later live view adds its events only",
			batches: [][]calls.Record{
				{{Call: ringing, Events: []calls.Event{evIncoming}}},
				{{Call: done, Events: []calls.Event{evEnded}}},
				{{Call: live, Events: []calls.Event{evAccepted}}},
			},
			id:           "call-001",
			wantCall:     done,
			wantTimeline: []calls.Event{evIncoming, evEnded, evAccepted},
		},
		{
			name: "an ended call stays ended, in one batch",
			batches: [][]calls.Record{{
				{Call: ringing, Events: []calls.Event{evIncoming}},
				{Call: done, Events: []calls.Event{evEnded}},
				{Call: live, Events: []calls.Event{evAccepted}},
			}},
			id:           "call-001",
			wantCall:     done,
			wantTimeline: []calls.Event{evIncoming, evEnded, evAccepted},
		},
		{
			name:     "without any events",
			batches:  [][]calls.Record{{{Call: other}}},
			id:       "call-002",
			wantCall: other,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			for _, b := range tt.batches {
				record(t, s, b...)
			}
			h, err := s.FindCallByID(t.Context(), tt.id)
			if err != nil {
				t.Fatalf("FindCallByID(%q): %v", tt.id, err)
			}
			checkCall(t, h.Call, tt.wantCall)
			checkTimeline(t, h.Timeline, tt.wantTimeline)

			// History lists the call once, as it stands now.
			page := findCalls(t, s, calls.CallFilter{AgentID: tt.wantCall.AgentID})
			if got, want := idsOf(page.Items), []string{tt.id}; !slices.Equal(got, want) {
				t.Fatalf("FindCalls(agent %s) = %v, want %v", tt.wantCall.AgentID, got, want)
			}
			checkCall(t, page.Items[0], tt.wantCall)
		})
	}
}

// filterFixture is ten calls, each recorded twice (live without
// participants, then as it stands) except the live ones, so that filters
// must see the latest view.
func filterFixture(t *testing.T, s calls.Store) {
	t.Helper()
	type spec struct {
		id    string
		agent string
		dir   calls.Direction
		start time.Time
		code  int // -1: still live
		sub   int
		parts []string
	}
	specs := []spec{
		{"call-01", agentA, calls.Incoming, at(0, 0), 0, 0, []string{p1}},
		{"call-02", agentA, calls.Outgoing, at(1, 0), 480, 0, []string{p2}},
		{"call-03", agentB, calls.Incoming, at(2, 0), 0, 4097, []string{p1, p3}},
		{"call-04", agentB, calls.Outgoing, at(3, 0), -1, 0, []string{p2}},
		{"call-05", agentA, calls.Incoming, at(4, 0), 603, 0, []string{p3}},
		{"call-06", agentA, calls.Outgoing, at(5, 0), -1, 0, []string{p1, p2}},
		{"call-07", agentB, calls.Incoming, at(6, 0), 480, 0, []string{p1}},
		{"call-08", agentA, calls.Incoming, at(7, 0), 0, 5300, nil},
		{"call-09", agentB, calls.Outgoing, at(8, 0), 603, 0, []string{p3}},
		{"call-10", agentA, calls.Outgoing, at(9, 0), 480, 0, []string{p1, p3}},
	}
	var first, second []calls.Record
	for _, sp := range specs {
		c := newCall(sp.id, sp.agent, sp.dir, sp.start, sp.parts...)
		if sp.code < 0 {
			first = append(first, calls.Record{Call: c})
			continue
		}
		early := newCall(sp.id, sp.agent, sp.dir, sp.start)
		early.State, early.IsActive, early.ConnectedTime = calls.StateConnecting, false, nil
		first = append(first, calls.Record{Call: early})
		done := ended(c, sp.code)
		done.CallEndReason.SubCode = sp.sub
		second = append(second, calls.Record{Call: done})
	}
	record(t, s, first...)
	record(t, s, second...)
}

func testFilters(t *testing.T, newStore func(*testing.T) calls.Store) {
	code := func(c int) *int { return &c }
	tests := []struct {
		name   string
		filter calls.CallFilter
		want   []string
	}{
		{"none", calls.CallFilter{}, []string{"call-10", "call-09", "call-08", "call-07", "call-06", "call-05", "call-04", "call-03", "call-02", "call-01"}},

		{"agent A", calls.CallFilter{AgentID: agentA}, []string{"call-10", "call-08", "call-06", "call-05", "call-02", "call-01"}},
		{"agent B", calls.CallFilter{AgentID: agentB}, []string{"call-09", "call-07", "call-04", "call-03"}},
		{"unknown agent", calls.CallFilter{AgentID: "8:acs:nobody"}, nil},

		{"from (inclusive)", calls.CallFilter{From: at(3, 0)}, []string{"call-10", "call-09", "call-08", "call-07", "call-06", "call-05", "call-04"}},
		{"to (exclusive)", calls.CallFilter{To: at(3, 0)}, []string{"call-03", "call-02", "call-01"}},
		{"from and to", calls.CallFilter{From: at(2, 0), To: at(6, 0)}, []string{"call-06", "call-05", "call-04", "call-03"}},
		{"from a microsecond after a start", calls.CallFilter{From: at(8, 1)}, []string{"call-10"}},
		{"to a microsecond after a start", calls.CallFilter{To: at(0, 1)}, []string{"call-01"}},
		{"from equals to", calls.CallFilter{From: at(4, 0), To: at(4, 0)}, nil},
		{"from after to", calls.CallFilter{From: at(6, 0), To: at(2, 0)}, nil},
		{"from after every call", calls.CallFilter{From: at(60, 0)}, nil},
		{"from in another zone", calls.CallFilter{From: at(8, 0).In(time.FixedZone("UTC+5", 5*3600))}, []string{"call-10", "call-09"}},

		{"incoming", calls.CallFilter{Direction: calls.Incoming}, []string{"call-08", "call-07", "call-05", "call-03", "call-01"}},
		{"outgoing", calls.CallFilter{Direction: calls.Outgoing}, []string{"call-10", "call-09", "call-06", "call-04", "call-02"}},

		{"end code 0 (live calls excluded)", calls.CallFilter{EndCode: code(0)}, []string{"call-08", "call-03", "call-01"}},
		{"end code 480", calls.CallFilter{EndCode: code(480)}, []string{"call-10", "call-07", "call-02"}},
		{"end code 603", calls.CallFilter{EndCode: code(603)}, []string{"call-09", "call-05"}},
		{"end code nobody has", calls.CallFilter{EndCode: code(999)}, nil},
		{"ended for everyone (0/4097)", calls.CallFilter{EndCode: code(0), EndSubCode: code(4097)}, []string{"call-03"}},
		{"removed (0/5300)", calls.CallFilter{EndCode: code(0), EndSubCode: code(5300)}, []string{"call-08"}},
		{"sub code 0 of any code", calls.CallFilter{EndSubCode: code(0)}, []string{"call-10", "call-09", "call-07", "call-05", "call-02", "call-01"}},
		{"sub code nobody has", calls.CallFilter{EndSubCode: code(-3)}, nil},

		{"participant 1", calls.CallFilter{Participant: p1}, []string{"call-10", "call-07", "call-06", "call-03", "call-01"}},
		{"participant 2", calls.CallFilter{Participant: p2}, []string{"call-06", "call-04", "call-02"}},
		{"participant 3", calls.CallFilter{Participant: p3}, []string{"call-10", "call-09", "call-05", "call-03"}},
		{"participant who is an agent", calls.CallFilter{Participant: agentA}, nil},
		{"unknown participant", calls.CallFilter{Participant: "4:+15550199999"}, nil},

		{"agent and direction", calls.CallFilter{AgentID: agentA, Direction: calls.Outgoing}, []string{"call-10", "call-06", "call-02"}},
		{"agent, end code and participant", calls.CallFilter{AgentID: agentA, EndCode: code(480), Participant: p1}, []string{"call-10"}},
		{"agent, from and direction", calls.CallFilter{AgentID: agentB, From: at(3, 0), Direction: calls.Incoming}, []string{"call-07"}},
		{"agent, direction, to and participant", calls.CallFilter{AgentID: agentA, Direction: calls.Incoming, To: at(7, 0), Participant: p3}, []string{"call-05"}},
		{"direction and end code", calls.CallFilter{Direction: calls.Incoming, EndCode: code(0)}, []string{"call-08", "call-03", "call-01"}},
		{"participant and time", calls.CallFilter{Participant: p1, From: at(2, 0), To: at(9, 0)}, []string{"call-07", "call-06", "call-03"}},
		{"every filter", calls.CallFilter{AgentID: agentB, From: at(1, 0), To: at(7, 0), Direction: calls.Incoming, EndCode: code(0), Participant: p3}, []string{"call-03"}},
		{"filters nobody passes together", calls.CallFilter{AgentID: agentB, Participant: p2, EndCode: code(0)}, nil},
	}
	s := newStore(t)
	filterFixture(t, s)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := findCalls(t, s, tt.filter)
			if got := idsOf(page.Items); !slices.Equal(got, tt.want) {
				t.Errorf("FindCalls ids = %v, want %v", got, tt.want)
			}
			if page.NextCursor != "" {
				t.Errorf("NextCursor = %q, want none: every match fits one page", page.NextCursor)
			}
			// The same filter, a page of 2 at a time, finds the same calls.
			f := tt.filter
			f.Limit = 2
			var got []string
			for _, p := range walk(t, s, f) {
				got = append(got, idsOf(p)...)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("FindCalls by pages of 2 ids = %v, want %v", got, tt.want)
			}
		})
	}
}

func testOrder(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	var cs []calls.Call
	for i := range 30 {
		// Starts cluster in threes, so a third of the order is the id
		// tiebreak; ids are recorded shuffled.
		start := at(i/3, 0)
		cs = append(cs, newCall(fmt.Sprintf("call-%03d", (i*7)%30), agentA, calls.Incoming, start, p1))
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	recordCalls(t, s, cs...)

	page := findCalls(t, s, calls.CallFilter{Limit: calls.MaxHistoryLimit})
	if got, want := idsOf(page.Items), idsOf(newestFirst(cs)); !slices.Equal(got, want) {
		t.Errorf("FindCalls ids =\n %v\nwant newest first, then id descending:\n %v", got, want)
	}
}

func testPagination(t *testing.T, newStore func(*testing.T) calls.Store) {
	tests := []struct {
		name      string
		n         int                   // calls recorded
		start     func(i int) time.Time // call i's start
		agent     func(i int) string    // call i's agent
		filter    calls.CallFilter      // Limit included
		wantSizes []int                 // page sizes
	}{
		{
			name:      "25 calls by 10",
			n:         25,
			filter:    calls.CallFilter{Limit: 10},
			wantSizes: []int{10, 10, 5},
		},
		{
			name:      "20 calls by 10: no empty last page",
			n:         20,
			filter:    calls.CallFilter{Limit: 10},
			wantSizes: []int{10, 10},
		},
		{
			name:      "3 calls by 1",
			n:         3,
			filter:    calls.CallFilter{Limit: 1},
			wantSizes: []int{1, 1, 1},
		},
		{
			name:      "fewer calls than the limit",
			n:         4,
			filter:    calls.CallFilter{Limit: 10},
			wantSizes: []int{4},
		},
		{
			name:      "no calls",
			n:         0,
			filter:    calls.CallFilter{Limit: 10},
			wantSizes: []int{0},
		},
		{
			name:      "limit 0 is the default",
			n:         calls.DefaultHistoryLimit + 7,
			filter:    calls.CallFilter{},
			wantSizes: []int{calls.DefaultHistoryLimit, 7},
		},
		{
			name:      "25 calls sharing one start, by 10",
			n:         25,
			start:     func(int) time.Time { return at(5, 0) },
			filter:    calls.CallFilter{Limit: 10},
			wantSizes: []int{10, 10, 5},
		},
		{
			name:      "starts shared in threes, pages of 4 split them",
			n:         25,
			start:     func(i int) time.Time { return at(i/3, 0) },
			filter:    calls.CallFilter{Limit: 4},
			wantSizes: []int{4, 4, 4, 4, 4, 4, 1},
		},
		{
			name:      "one agent of two, by 5",
			n:         25,
			agent:     func(i int) string { return []string{agentA, agentB}[i%2] },
			filter:    calls.CallFilter{AgentID: agentA, Limit: 5},
			wantSizes: []int{5, 5, 3},
		},
		{
			name:      "a time window, by 4",
			n:         25,
			filter:    calls.CallFilter{From: at(5, 0), To: at(15, 0), Limit: 4},
			wantSizes: []int{4, 4, 2},
		},
		{
			name:      "a shared start and an agent, by 3",
			n:         25,
			start:     func(int) time.Time { return at(5, 0) },
			agent:     func(i int) string { return []string{agentA, agentB}[i%2] },
			filter:    calls.CallFilter{AgentID: agentB, Limit: 3},
			wantSizes: []int{3, 3, 3, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			var cs []calls.Call
			for i := range tt.n {
				start, agent := at(i, 0), agentA
				if tt.start != nil {
					start = tt.start(i)
				}
				if tt.agent != nil {
					agent = tt.agent(i)
				}
				cs = append(cs, newCall(fmt.Sprintf("call-%03d", i), agent, calls.Outgoing, start, p2))
			}
			rand.New(rand.NewPCG(3, 4)).Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
			recordCalls(t, s, cs...)

			var want []calls.Call
			for _, c := range newestFirst(cs) {
				f := tt.filter
				if (f.AgentID == "" || c.AgentID == f.AgentID) &&
					(f.From.IsZero() || !c.StartTime.Before(f.From)) &&
					(f.To.IsZero() || c.StartTime.Before(f.To)) {
					want = append(want, c)
				}
			}

			pages := walk(t, s, tt.filter)
			var sizes []int
			var got []calls.Call
			for _, p := range pages {
				sizes = append(sizes, len(p))
				got = append(got, p...)
			}
			if !slices.Equal(sizes, tt.wantSizes) {
				t.Errorf("page sizes = %v, want %v", sizes, tt.wantSizes)
			}
			seen := make(map[string]bool)
			for _, c := range got {
				if seen[c.ID] {
					t.Errorf("call %s is on two pages", c.ID)
				}
				seen[c.ID] = true
			}
			if g, w := idsOf(got), idsOf(want); !slices.Equal(g, w) {
				t.Errorf("ids over all pages =\n %v\nwant\n %v", g, w)
			}
		})
	}
}

func testCursorStable(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	var cs []calls.Call
	for i := range 10 {
		cs = append(cs, newCall(fmt.Sprintf("call-%03d", i), agentA, calls.Incoming, at(i, 0), p1))
	}
	recordCalls(t, s, cs...)
	first := findCalls(t, s, calls.CallFilter{Limit: 4})
	if got, want := idsOf(first.Items), []string{"call-009", "call-008", "call-007", "call-006"}; !slices.Equal(got, want) {
		t.Fatalf("page 1 ids = %v, want %v", got, want)
	}

	// A newer call, one sharing the last start of page 1 with a lower id,
	// and an update of a call on page 1 arrive before page 2.
	recordCalls(t, s,
		newCall("call-100", agentA, calls.Incoming, at(30, 0), p1),
		newCall("call-005a", agentA, calls.Incoming, at(6, 0), p1),
		ended(cs[8], 0),
	)
	var got []string
	for _, p := range walk(t, s, calls.CallFilter{Limit: 4, Cursor: first.NextCursor}) {
		got = append(got, idsOf(p)...)
	}
	if want := []string{"call-005a", "call-005", "call-004", "call-003", "call-002", "call-001", "call-000"}; !slices.Equal(got, want) {
		t.Errorf("ids after page 1 = %v, want %v", got, want)
	}
}

func testMalformedCursor(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	var cs []calls.Call
	for i := range 5 {
		cs = append(cs, newCall(fmt.Sprintf("call-%03d", i), agentA, calls.Incoming, at(i, 0), p1))
	}
	recordCalls(t, s, cs...)
	valid := findCalls(t, s, calls.CallFilter{Limit: 2}).NextCursor
	if valid == "" {
		t.Fatalf("page 1 of 5 calls by 2 has no NextCursor")
	}

	tests := []struct {
		name   string
		cursor string
	}{
		{"not base64", "!!!"},
		{"spaces", "a b c"},
		{"three zero bytes", "AAAA"},
		{"base64 of text", base64.RawURLEncoding.EncodeToString([]byte("hello, world"))},
		{"base64 of JSON", base64.RawURLEncoding.EncodeToString([]byte(`{"startTime":"yesterday"}`))},
		{"half of a valid cursor", valid[:len(valid)/2]},
		{"a valid cursor and more", valid + "x"},
		{"a valid cursor, padded", valid + "=="},
		{"a NUL", "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.FindCalls(t.Context(), calls.CallFilter{Cursor: tt.cursor, Limit: 2})
			if err == nil {
				t.Fatalf("FindCalls(cursor %q) = %v, want an error", tt.cursor, idsOf(page.Items))
			}
			if got, want := calls.ErrorCode(err), calls.CodeInvalidRequest; got != want {
				t.Errorf("FindCalls(cursor %q) code = %s (%v), want %s", tt.cursor, got, err, want)
			}
		})
	}
}

func testUnknownID(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	recordCalls(t, s, newCall("call-001", agentA, calls.Incoming, at(0, 0), p1))
	for _, id := range []string{"call-002", "CALL-001", "call-00", "", "call-001 "} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			h, err := s.FindCallByID(t.Context(), id)
			if err == nil {
				t.Fatalf("FindCallByID(%q) = %+v, want an error", id, h.Call)
			}
			if _, ok := errors.AsType[*calls.Error](err); !ok {
				t.Errorf("FindCallByID(%q) error %v (%T), want a *calls.Error", id, err, err)
			}
			if got, want := calls.ErrorCode(err), calls.CodeCallNotFound; got != want {
				t.Errorf("FindCallByID(%q) code = %s (%v), want %s", id, got, err, want)
			}
		})
	}
}

func testCanceledContext(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	recordCalls(t, s, newCall("call-001", agentA, calls.Incoming, at(0, 0), p1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.FindCalls(ctx, calls.CallFilter{}); !errors.Is(err, context.Canceled) {
		t.Errorf("FindCalls(cancelled) error = %v, want one wrapping context.Canceled", err)
	}
	if _, err := s.FindCallByID(ctx, "call-001"); !errors.Is(err, context.Canceled) {
		t.Errorf("FindCallByID(cancelled) error = %v, want one wrapping context.Canceled", err)
	}
}

func testReady(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("Ready of an empty store = %v, want nil", err)
	}
	recordCalls(t, s, newCall("call-001", agentA, calls.Incoming, at(0, 0), p1))
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("Ready after a record = %v, want nil", err)
	}
}

func testClose(t *testing.T, newStore func(*testing.T) calls.Store) {
	s := newStore(t)
	recordCalls(t, s, newCall("call-001", agentA, calls.Incoming, at(0, 0), p1))
	s.Record(calls.Record{Call: newCall("call-002", agentA, calls.Incoming, at(1, 0), p1)})
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Errorf("Close again = %v, want nil", err)
	}
	if err := s.Ready(t.Context()); err == nil {
		t.Errorf("Ready after Close = nil, want an error")
	}
}
