package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
)

// The write benchmarks measure events persisted per second, end to end:
// BenchmarkPostgresRecord records b.N events (eventsPerRecord to a record,
// round robin over benchCalls calls, each record a fresh view of its call
// with two participants) and flushes; BenchmarkRawCopy COPYs the same
// event rows, already encoded, straight into call_events: the most Postgres
// could take. Run them with a fixed count, e.g.
//
//	SWITCHBOARD_TEST_DATABASE_URL=... go test -run '^$' -bench 'PostgresRecord|RawCopy' -benchtime 200000x ./internal/store
const (
	benchCalls      = 1000
	eventsPerRecord = 4
)

// benchRecords is records carrying n events in all.
func benchRecords(n int) []calls.Record {
	views := make([]calls.Call, benchCalls)
	for i := range views {
		views[i] = benchCall(i, tBase.Add(time.Duration(i)*time.Second))
	}
	recs := make([]calls.Record, 0, n/eventsPerRecord+1)
	for k := 0; k < n; k += eventsPerRecord {
		c := views[len(recs)%benchCalls]
		at := c.StartTime.Add(time.Duration(len(recs)) * time.Millisecond)
		var evs []calls.Event
		for j := range min(eventsPerRecord, n-k) {
			ev := calls.Event{At: at, AgentID: c.AgentID, CallID: c.ID, Supervised: true,
				Actor: &calls.Actor{Kind: calls.ActorAgent, RawID: c.AgentID}}
			switch j % 4 {
			case 0:
				ev.Type, ev.Data = calls.EventStateChanged, calls.StateChangedData{OldState: calls.StateConnected, State: calls.StateLocalHold}
			case 1:
				ev.Type, ev.Data = calls.EventIsMutedChanged, calls.MutedData{IsMuted: true}
			case 2:
				ev.Type, ev.Data = calls.EventParticipantStateChanged, calls.ParticipantStateData{
					Participant: c.RemoteParticipants[0].RawID, OldState: calls.ParticipantConnected, State: calls.ParticipantHold}
			default:
				ev.Type, ev.Data = calls.EventIsSpeakingChanged, calls.SpeakingData{Participant: c.RemoteParticipants[1].RawID, IsSpeaking: true}
			}
			evs = append(evs, ev)
		}
		recs = append(recs, calls.Record{Call: c, Events: evs})
	}
	return recs
}

// benchCall is a live group call of an agent with a phone caller and a
// colleague.
func benchCall(i int, start time.Time) calls.Call {
	phone := fmt.Sprintf("+1555%07d", pick(i, 1, 100_000))
	agent := fmt.Sprintf("agent-%03d", pick(i, 2, 100))
	connected := start.Add(4 * time.Second)
	c := calls.Call{
		ID: fmt.Sprintf("%08x-5c1e-4f7a-9d3b-%012x", i, i), ServerCallID: fmt.Sprintf("srv-%010d", i),
		AgentID: "8:acs:" + agent, Direction: calls.Incoming, Kind: calls.Group,
		State: calls.StateConnected, IsActive: true,
		CallerInfo: calls.CallerInfo{Identifier: calls.PhoneNumber(phone)},
		RemoteParticipants: []calls.Participant{
			{Identifier: calls.PhoneNumber(phone), RawID: "4:" + phone, State: calls.ParticipantConnected,
				EndpointDetails: []calls.EndpointDetail{{ParticipantID: fmt.Sprintf("leg-%d-a", i)}}},
			{Identifier: calls.CommunicationUser("expert"), RawID: "8:acs:expert", DisplayName: "Expert",
				State: calls.ParticipantConnected, EndpointDetails: []calls.EndpointDetail{{ParticipantID: fmt.Sprintf("leg-%d-b", i)}}},
		},
		StartTime: start, ConnectedTime: &connected,
	}
	if pick(i, 3, 2) == 1 {
		c.Direction = calls.Outgoing
	}
	return c
}

// pick is a number in [0, n) drawn from i and salt, so that the picks of
// one call are independent of each other.
func pick(i, salt, n int) int {
	h := uint64(i)*0x9E3779B97F4A7C15 + uint64(salt)*0xBF58476D1CE4E5B9
	h ^= h >> 31
	h *= 0x94D049BB133111EB
	h ^= h >> 29
	return int(h % uint64(n))
}

func BenchmarkPostgresRecord(b *testing.B) {
	for _, bc := range []struct {
		name  string
		queue int
	}{
		{"queue=default", 0},         // more than 16384 changes waiting spill to the spool
		{"queue=unbounded", 1 << 30}, // never spills: Postgres alone
	} {
		b.Run(bc.name, func(b *testing.B) {
			databaseURL := testDatabaseURL(b)
			p := mustOpenPostgres(b, databaseURL, PostgresOptions{QueueSize: bc.queue})
			recs := benchRecords(b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for _, r := range recs {
				p.Record(r) // one change at a time, as the switchboard does
			}
			mustFlush(b, p)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkPostgresRecordCall measures Record alone: what a call operation
// pays, under the switchboard's locks, for history.
func BenchmarkPostgresRecordCall(b *testing.B) {
	p := mustOpenPostgres(b, testDatabaseURL(b), PostgresOptions{QueueSize: 1 << 30})
	recs := benchRecords(b.N * eventsPerRecord)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.Record(recs[i])
	}
	b.StopTimer()
	mustFlush(b, p)
}

func BenchmarkRawCopy(b *testing.B) {
	databaseURL := testDatabaseURL(b)
	if err := Migrate(context.Background(), databaseURL, quietLogger()); err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(b.N)
	batch := make([]change, len(recs))
	for i := range recs {
		batch[i] = newChange(&recs[i], int64(i+1), tBase, quietLogger())
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	b.ResetTimer()
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"call_events"}, eventColumns, &eventSource{batch: batch, j: -1})
	b.StopTimer()
	if err != nil || int(n) != b.N {
		b.Fatalf("CopyFrom = %d, %v; want %d", n, err, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkHistory measures history queries on a large history. Seeding
// takes a while, so it runs only when SWITCHBOARD_BENCH_HISTORY is set: to
// 1 for a million calls, or to the number of calls. It seeds with COPY:
// 100 agents, calls three seconds apart, each with its caller (one of
// 100,000 numbers) and, in one call of ten, the queue's number; end codes
// 0 (90%), 480, 487, 603 and 503 (1 in 500), each drawn independently;
// timelines for the newest 10,000 calls. Run -v to see each query's plan.
func BenchmarkHistory(b *testing.B) {
	n := historyBenchSize(b)
	databaseURL := testDatabaseURL(b)
	p := mustOpenPostgres(b, databaseURL, PostgresOptions{})
	began := time.Now()
	seedHistory(b, databaseURL, n)
	b.Logf("seeded %d calls in %s", n, time.Since(began).Round(time.Millisecond))

	code := func(c int) *int { return &c }
	newest := tBase.Add(time.Duration(n-1) * 3 * time.Second)
	deep := calls.CallFilter{Limit: 50}
	for range 100 { // the cursor of page 101
		page, err := p.FindCalls(context.Background(), deep)
		if err != nil {
			b.Fatal(err)
		}
		deep.Cursor = page.NextCursor
	}
	tests := []struct {
		name string
		f    calls.CallFilter
	}{
		{"newest", calls.CallFilter{}},
		{"page 101", deep},
		{"agent", calls.CallFilter{AgentID: "8:acs:agent-042"}},
		{"agent, outgoing", calls.CallFilter{AgentID: "8:acs:agent-042", Direction: calls.Outgoing}},
		{"agent, a day", calls.CallFilter{AgentID: "8:acs:agent-042", From: newest.Add(-48 * time.Hour), To: newest.Add(-24 * time.Hour)}},
		{"a day", calls.CallFilter{From: newest.Add(-48 * time.Hour), To: newest.Add(-24 * time.Hour)}},
		{"incoming", calls.CallFilter{Direction: calls.Incoming}},
		{"endCode 503 (rare)", calls.CallFilter{EndCode: code(503)}},
		{"endCode 480", calls.CallFilter{EndCode: code(480)}},
		{"participant (a caller)", calls.CallFilter{Participant: "4:+15550004242"}},
		{"participant (the queue)", calls.CallFilter{Participant: "4:+15559999999"}},
		{"participant and agent", calls.CallFilter{Participant: "4:+15559999999", AgentID: "8:acs:agent-042"}},
		{"agent, endCode 503", calls.CallFilter{AgentID: "8:acs:agent-042", EndCode: code(503)}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			logPlan(b, databaseURL, tt.f)
			found := 0
			for b.Loop() {
				page, err := p.FindCalls(context.Background(), tt.f)
				if err != nil {
					b.Fatal(err)
				}
				found = len(page.Items)
			}
			b.ReportMetric(float64(found), "calls/page")
		})
	}
	b.Run("FindCallByID", func(b *testing.B) {
		i := 0
		for b.Loop() {
			id := benchCall(n-1-i%10_000, time.Time{}).ID
			if _, err := p.FindCallByID(context.Background(), id); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func historyBenchSize(b *testing.B) int {
	v := os.Getenv("SWITCHBOARD_BENCH_HISTORY")
	switch v {
	case "":
		b.Skip("SWITCHBOARD_BENCH_HISTORY is not set: set it to 1 for a million calls, or to a number of calls")
	case "1":
		return 1_000_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10_000 {
		b.Fatalf("SWITCHBOARD_BENCH_HISTORY=%q: want 1 or a number of calls of at least 10000", v)
	}
	return n
}

// seedHistory COPYs n ended calls, their participants, and timelines for
// the newest 10,000, then analyzes the tables.
func seedHistory(b *testing.B, databaseURL string, n int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	codes := []calls.EndReason{calls.ReasonRemoteHungUp, calls.ReasonNoAnswer, calls.ReasonCanceled, calls.ReasonDeclined}
	call := func(i int) (calls.Call, change) {
		c := benchCall(i, tBase.Add(time.Duration(i)*3*time.Second))
		c.RemoteParticipants = c.RemoteParticipants[:1]
		if pick(i, 4, 10) == 0 {
			c.RemoteParticipants = append(c.RemoteParticipants, calls.Participant{
				Identifier: calls.PhoneNumber("+15559999999"), RawID: "4:+15559999999", State: calls.ParticipantDisconnected})
		}
		r := calls.ReasonHungUp
		switch k := pick(i, 5, 1000); {
		case k < 2:
			r = calls.ReasonSwitchboardDied
		case k < 100:
			r = codes[k%len(codes)]
		}
		end := c.StartTime.Add(time.Duration(30+i%600) * time.Second)
		c.State, c.IsActive, c.CallEndReason, c.EndTime = calls.StateDisconnected, false, &r, &end
		for k := range c.RemoteParticipants {
			c.RemoteParticipants[k].State = calls.ParticipantDisconnected
			c.RemoteParticipants[k].CallEndReason = &r
		}
		return c, newChange(&calls.Record{Call: c}, int64(i+1), tBase, quietLogger())
	}
	copyRows := func(table string, cols []string, rows func(i int) [][]any) {
		var buf [][]any
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			for len(buf) == 0 {
				if i == n {
					return nil, nil
				}
				buf = rows(i)
				i++
			}
			row := buf[0]
			buf = buf[1:]
			return row, nil
		})
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, src); err != nil {
			b.Fatalf("seed %s: %v", table, err)
		}
	}
	copyRows("calls", stageCallColumns, func(i int) [][]any {
		_, ch := call(i)
		c := &ch.call
		return [][]any{{c.id, ch.version, c.serverCallID, c.agentID, c.direction, c.kind, c.state,
			c.start, c.end, c.endCode, c.endSubCode, c.endMessage, c.view}}
	})
	copyRows("participants", append(stagePartColumns[:len(stagePartColumns):len(stagePartColumns)], "start_time"), func(i int) [][]any {
		_, ch := call(i)
		var rows [][]any
		for _, r := range ch.parts {
			rows = append(rows, []any{ch.call.id, r.rawID, r.position, r.displayName, r.state, r.isMuted,
				r.endCode, r.endSubCode, r.endMessage, ch.call.start})
		}
		return rows
	})
	copyRows("call_events", eventColumns, func(i int) [][]any {
		if i < n-10_000 {
			return nil
		}
		c, ch := call(i)
		var rows [][]any
		for j, typ := range []calls.EventType{calls.EventIncomingCall, calls.EventCallsUpdated, calls.EventStateChanged, calls.EventIsMutedChanged, calls.EventCallEnded} {
			data, _ := json.Marshal(calls.CallEndedData{CallEndReason: *c.CallEndReason, Call: c})
			rows = append(rows, []any{ch.call.id, ch.version, int32(j), string(typ), c.StartTime.Add(time.Duration(j) * time.Second),
				string(calls.ActorAgent), c.AgentID, data})
		}
		return rows
	})
	if _, err := conn.Exec(ctx, "ANALYZE calls; ANALYZE participants; ANALYZE call_events"); err != nil {
		b.Fatal(err)
	}
}

// logPlan logs how Postgres runs f's query.
func logPlan(b *testing.B, databaseURL string, f calls.CallFilter) {
	if !testing.Verbose() {
		return
	}
	var after *position
	if f.Cursor != "" {
		pos, err := decodeCursor(f.Cursor)
		if err != nil {
			b.Fatal(err)
		}
		after = &pos
	}
	query, args, _ := historyQuery(&f, after, calls.DefaultHistoryLimit+1)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+query, args...)
	if err != nil {
		b.Fatal(err)
	}
	plan := ""
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		plan += "\n" + line
	}
	b.Logf("%s%s", query, plan)
}
