package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
)

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

// BenchmarkHistory measures history queries on a large history, end to end
// through FindCalls, in Postgres and, for comparison, in the embedded
// store. Seeding takes a while, so it runs only when
// SWITCHBOARD_BENCH_HISTORY is set: to 1 for a million calls, or to the
// number of calls. It seeds with COPY (see historyCall), then vacuums and
// analyzes, as autovacuum would have by the time a history is that long.
//
// Each query reports its latency's p50 and p99 (ns/op is the mean). Most
// vary from one query to the next (see historyQueries), so that they read
// all over the tables rather than one hot page; run with -benchtime 1000x
// for a thousand queries each. Run -v to see each query's plan.
func BenchmarkHistory(b *testing.B) {
	n := historyBenchSize(b)
	databaseURL := testDatabaseURL(b)
	p := mustOpenPostgres(b, databaseURL, PostgresOptions{})
	began := time.Now()
	seedHistory(b, databaseURL, n)
	b.Logf("seeded %d calls in %s", n, time.Since(began).Round(time.Millisecond))
	logPostgres(b, databaseURL)

	queries := historyQueries(n)
	b.Run("store=postgres", func(b *testing.B) {
		for _, q := range queries {
			b.Run(q.name, func(b *testing.B) {
				logPlan(b, databaseURL, q.filter(0))
				runQueries(b, p, q)
			})
		}
		b.Run("FindCallByID", func(b *testing.B) { runFindByID(b, p, n) })
	})
	b.Run("store=memory", func(b *testing.B) {
		m := NewMemory()
		defer m.Close(context.Background())
		began := time.Now()
		for i := range n {
			m.Record(historyRecord(i, n))
		}
		b.Logf("recorded %d calls in %s", n, time.Since(began).Round(time.Millisecond))
		for _, q := range queries {
			b.Run(q.name, func(b *testing.B) { runQueries(b, m, q) })
		}
		b.Run("FindCallByID", func(b *testing.B) { runFindByID(b, m, n) })
	})
}

// benchQuery is a history query that may vary from one run to the next.
type benchQuery struct {
	name   string
	filter func(q int) calls.CallFilter // for the qth run
}

// historyQueries is the queries BenchmarkHistory runs on n seeded calls,
// each for a page of 50. An agent is one of the 100, drawn anew for each
// query; a window (an hour, a day) starts at a whole second drawn anew
// within the seeded span; a deep page starts after a call drawn anew,
// anywhere in history. Without those, a query is the same each time.
func historyQueries(n int) []benchQuery {
	span := time.Duration(n) * historyGap
	agent := func(q int) string { return fmt.Sprintf("8:acs:agent-%03d", pick(q, 20, 100)) }
	window := func(q int, d time.Duration) (time.Time, time.Time) {
		from := tBase.Add(time.Duration(pick(q, 21, int(max(span-d, time.Second)/time.Second))) * time.Second)
		return from, from.Add(d)
	}
	after := func(i int) string {
		c := historyCall(i)
		return encodeCursor(positionOf(c.StartTime, c.ID))
	}
	deep := func(q int) int { return 50 + pick(q, 22, n-50) }
	code := func(c int) *int { return &c }
	const queue = "4:+15559999999"
	return []benchQuery{
		{"newest", func(int) calls.CallFilter { return calls.CallFilter{Limit: 50} }},
		{"agent", func(q int) calls.CallFilter { return calls.CallFilter{AgentID: agent(q), Limit: 50} }},
		{"an hour", func(q int) calls.CallFilter {
			from, to := window(q, time.Hour)
			return calls.CallFilter{From: from, To: to, Limit: 50}
		}},
		{"agent, an hour", func(q int) calls.CallFilter {
			from, to := window(q, time.Hour)
			return calls.CallFilter{AgentID: agent(q), From: from, To: to, Limit: 50}
		}},
		{"agent, a day", func(q int) calls.CallFilter {
			from, to := window(q, 24*time.Hour)
			return calls.CallFilter{AgentID: agent(q), From: from, To: to, Limit: 50}
		}},
		{"deep page", func(q int) calls.CallFilter { return calls.CallFilter{Cursor: after(deep(q)), Limit: 50} }},
		{"agent, deep page", func(q int) calls.CallFilter {
			i := deep(q)
			return calls.CallFilter{AgentID: historyCall(i).AgentID, Cursor: after(i), Limit: 50}
		}},
		{"agent, outgoing", func(q int) calls.CallFilter {
			return calls.CallFilter{AgentID: agent(q), Direction: calls.Outgoing, Limit: 50}
		}},
		{"incoming", func(int) calls.CallFilter { return calls.CallFilter{Direction: calls.Incoming, Limit: 50} }},
		{"endCode 503 (rare)", func(int) calls.CallFilter { return calls.CallFilter{EndCode: code(503), Limit: 50} }},
		{"endCode 480", func(int) calls.CallFilter { return calls.CallFilter{EndCode: code(480), Limit: 50} }},
		{"agent, endCode 503", func(q int) calls.CallFilter {
			return calls.CallFilter{AgentID: agent(q), EndCode: code(503), Limit: 50}
		}},
		{"participant (a caller)", func(q int) calls.CallFilter {
			return calls.CallFilter{Participant: fmt.Sprintf("4:+1555%07d", pick(q, 23, 100_000)), Limit: 50}
		}},
		{"participant (the queue)", func(int) calls.CallFilter { return calls.CallFilter{Participant: queue, Limit: 50} }},
		{"participant (the queue), agent", func(q int) calls.CallFilter {
			return calls.CallFilter{Participant: queue, AgentID: agent(q), Limit: 50}
		}},
	}
}

// runQueries runs q b.N times on st, after a few runs to warm up, and
// reports the latency's percentiles and the calls a page held.
func runQueries(b *testing.B, st calls.Store, q benchQuery) {
	ctx := context.Background()
	for w := range 5 {
		if _, err := st.FindCalls(ctx, q.filter(-1-w)); err != nil {
			b.Fatal(err)
		}
	}
	var took []time.Duration
	found, i := 0, 0
	for b.Loop() {
		f := q.filter(i)
		start := time.Now()
		page, err := st.FindCalls(ctx, f)
		took = append(took, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		found += len(page.Items)
		i++
	}
	reportLatency(b, took)
	b.ReportMetric(float64(found)/float64(i), "calls/page")
}

// runFindByID reads one of the newest 10,000 calls, with its timeline, b.N
// times.
func runFindByID(b *testing.B, st calls.Store, n int) {
	ctx := context.Background()
	var took []time.Duration
	i := 0
	for b.Loop() {
		id := historyCall(n - 1 - pick(i, 24, 10_000)).ID
		start := time.Now()
		_, err := st.FindCallByID(ctx, id)
		took = append(took, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportLatency(b, took)
}

// reportLatency reports the 50th and 99th percentiles of took (nearest
// rank) and its maximum, in milliseconds.
func reportLatency(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(p int) time.Duration { return took[max(0, (len(took)*p+99)/100-1)] }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(at(50)), "p50-ms")
	b.ReportMetric(ms(at(99)), "p99-ms")
	b.ReportMetric(ms(took[len(took)-1]), "max-ms")
}

func historyBenchSize(b *testing.B) int {
	n, ok := historySize(b)
	if !ok {
		b.Skip("SWITCHBOARD_BENCH_HISTORY is not set: set it to 1 for a million calls, or to a number of calls")
	}
	return n
}

// historySize is the number of calls SWITCHBOARD_BENCH_HISTORY asks for;
// ok is false when it is not set.
func historySize(b *testing.B) (n int, ok bool) {
	v := os.Getenv("SWITCHBOARD_BENCH_HISTORY")
	switch v {
	case "":
		return 0, false
	case "1":
		return 1_000_000, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 10_000 {
		b.Fatalf("SWITCHBOARD_BENCH_HISTORY=%q: want 1 or a number of calls of at least 10000", v)
	}
	return n, true
}

// historyGap is the time between two seeded calls' starts.
const historyGap = 3 * time.Second

// historyCall is call i of the seeded history: 100 agents, calls
// historyGap apart, each with its caller (one of 100,000 numbers) and, in
// one call of ten, the queue's number; end codes 0 (90%), 480, 487, 603
// and 503 (1 in 500), each drawn independently.
func historyCall(i int) calls.Call {
	c := benchCall(i, tBase.Add(time.Duration(i)*historyGap))
	c.RemoteParticipants = c.RemoteParticipants[:1]
	if pick(i, 4, 10) == 0 {
		c.RemoteParticipants = append(c.RemoteParticipants, calls.Participant{
			Identifier: calls.PhoneNumber("+15559999999"), RawID: "4:+15559999999", State: calls.ParticipantDisconnected})
	}
	codes := []calls.EndReason{calls.ReasonRemoteHungUp, calls.ReasonNoAnswer, calls.ReasonCanceled, calls.ReasonDeclined}
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
	return c
}

// historyRecord is call i of n seeded calls as one record: with a timeline
// of five events for the newest 10,000.
func historyRecord(i, n int) calls.Record {
	c := historyCall(i)
	rec := calls.Record{Call: c}
	if i >= n-10_000 {
		for j, typ := range []calls.EventType{calls.EventIncomingCall, calls.EventCallsUpdated, calls.EventStateChanged, calls.EventIsMutedChanged, calls.EventCallEnded} {
			rec.Events = append(rec.Events, calls.Event{Type: typ, At: c.StartTime.Add(time.Duration(j) * time.Second),
				AgentID: c.AgentID, CallID: c.ID, Actor: &calls.Actor{Kind: calls.ActorAgent, RawID: c.AgentID},
				Data: calls.CallEndedData{CallEndReason: *c.CallEndReason, Call: c}})
		}
	}
	return rec
}

// seedHistory COPYs n ended calls, their participants, and timelines for
// the newest 10,000 (see historyRecord), then vacuums and analyzes the
// tables.
func seedHistory(b testing.TB, databaseURL string, n int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	row := func(i int) change {
		rec := historyRecord(i, n)
		return newChange(&rec, int64(i+1), tBase, quietLogger())
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
		ch := row(i)
		c := &ch.call
		return [][]any{{c.id, ch.version, c.serverCallID, c.agentID, c.direction, c.kind, c.state,
			c.start, c.end, c.endCode, c.endSubCode, c.endMessage, c.view}}
	})
	copyRows("participants", partColumns, func(i int) [][]any {
		ch := row(i)
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
		ch := row(i)
		var rows [][]any
		src := &eventSource{batch: []change{ch}, j: -1}
		for src.Next() {
			v, _ := src.Values()
			rows = append(rows, slices.Clone(v))
		}
		return rows
	})
	for _, table := range []string{"calls", "participants", "call_events"} {
		if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+table); err != nil {
			b.Fatal(err)
		}
	}
}

// logPostgres logs the server's version, the settings that matter most to
// these benchmarks, and the sizes of the history's tables.
func logPostgres(b *testing.B, databaseURL string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var version, settings, sizes string
	err = conn.QueryRow(ctx, `
SELECT current_setting('server_version'),
       (SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM unnest(ARRAY[
            'fsync', 'synchronous_commit', 'shared_buffers', 'autovacuum', 'work_mem', 'jit']) AS name),
       (SELECT string_agg(t || ' ' || pg_size_pretty(pg_table_size(t)) || ' + indexes ' || pg_size_pretty(pg_indexes_size(t)), ', ')
        FROM unnest(ARRAY['calls', 'participants', 'call_events']) AS t)`).Scan(&version, &settings, &sizes)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("postgres %s: %s; %s", version, settings, sizes)
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
	query, args, _ := historyQuery(&f, after, f.Limit+1)
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
