package store

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// The write benchmarks measure events persisted per second, end to end, on
// the records the switchboard itself makes (see switchboardRecords). Each
// persists exactly b.N events, the same ones:
//
//   - BenchmarkPostgresRecord records them, one change at a time as the
//     switchboard does, and flushes: the store's whole pipeline (queue,
//     encoding, batching, staging and merge, the version guard).
//   - BenchmarkRawCopy/rows=store, the baseline, COPYs every row the store
//     writes for them, encoded beforehand, in one transaction: the calls
//     row of each change, the participant rows that differ from the call's
//     previous change (the store skips the others) and a row per event. The
//     tables are the migration's, with its indexes, except that the two
//     primary keys that the repeated calls and participant rows would break
//     are plain indexes: the rows are appended, with no merge and no guard.
//   - BenchmarkRawCopy/rows=events COPYs the event rows alone.
//
// Each starts from empty tables (stored=0) and, when
// SWITCHBOARD_BENCH_HISTORY is set, from tables that already hold that
// history (stored=1000000 for 1), as a switchboard's do after a while; and
// each starts after a CHECKPOINT, so that it does not pay for the run
// before. Run them with a fixed count, e.g.
//
//	SWITCHBOARD_TEST_DATABASE_URL=... go test -run '^$' -bench 'BenchmarkRawCopy|BenchmarkPostgresRecord$' -benchtime 400000x -count 3 ./internal/store

// liveConversations is how many conversations switchboardRecords keeps
// going at once. Each makes a record or more per round, so a call's
// consecutive records are more than 4096 (a full batch) records apart: as
// at any real rate, where a person acts every few seconds, no batch holds
// two changes of one call, and the store writes a call's row once per
// record. BenchmarkRawCopy/rows=store reports the smallest gap it saw.
const liveConversations = 5000

var workloads = struct {
	sync.Mutex
	recs map[int][]calls.Record
}{recs: map[int][]calls.Record{}}

// switchboardRecords is the records a calls.Switchboard hands its store
// (with a fake clock, no media) while liveConversations conversations go
// on at once, cut to carry exactly n events. Conversations move a step
// each per round, round robin, a round being a second of the fake clock.
// In each, a caller (a new identity each time) calls an agent; the agent
// answers, the caller speaks, the agent mutes, unmutes, holds and resumes;
// in every other conversation the agent adds an expert (a group call from
// then on), who answers, speaks and leaves; then the agent hangs up, and
// the caller, if still in the call, too. Each human's view of each call is
// recorded (the caller's, the agent's, the expert's), with its 1 or 2
// remote participants and the events the domain makes for the change (1 or
// 2 in this script). The records are made once per n and shared by the
// benchmarks that ask for them.
func switchboardRecords(tb testing.TB, n int) []calls.Record {
	workloads.Lock()
	defer workloads.Unlock()
	if recs, ok := workloads.recs[n]; ok {
		return recs
	}
	st := &capturingStore{}
	f := callstest.New(tb, calls.Config{Store: st, Publisher: discardPublisher{}, NewID: benchIDs()})
	ctx := context.Background()
	slots := make([]*benchConversation, liveConversations)
	agents := make([]calls.Principal, liveConversations)
	experts := make([]calls.Principal, liveConversations)
	for s := range slots {
		agents[s] = callstest.Agent(fmt.Sprintf("agent-%04d", s))
		experts[s] = callstest.Agent(fmt.Sprintf("expert-%04d", s))
		for _, p := range []calls.Principal{agents[s], experts[s]} {
			if _, err := f.Attach(ctx, p, func(calls.Snapshot) {}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	started := 0
	for st.events < n {
		for s, c := range slots {
			if c == nil {
				c = &benchConversation{
					n: started, agent: agents[s], expert: experts[s], withExpert: started%2 == 0,
					caller: calls.Principal{Identifier: calls.CommunicationUser(fmt.Sprintf("caller-%07d", started)),
						DisplayName: fmt.Sprintf("Caller %d", started), Role: calls.RoleCaller},
				}
				slots[s] = c
				started++
			}
			if c.next(tb, f) {
				slots[s] = nil
			}
		}
		f.Clock.Advance(time.Second)
	}
	recs := make([]calls.Record, 0, len(st.recs))
	for left := n; left > 0; {
		r := st.recs[len(recs)]
		if len(r.Events) > left {
			r.Events = r.Events[:left]
		}
		left -= len(r.Events)
		recs = append(recs, r)
	}
	workloads.recs[n] = recs
	return recs
}

// benchConversation is one conversation of switchboardRecords.
type benchConversation struct {
	n                      int
	step                   int
	withExpert             bool
	caller, agent, expert  calls.Principal
	serverCallID           string
	callerLeg, agentLeg    string
	expertLeg              string
	agentDone, callerAlone bool
}

// next takes the conversation's next step and reports whether it is over.
func (c *benchConversation) next(tb testing.TB, f *callstest.Fixture) (over bool) {
	ctx := context.Background()
	var err error
	incoming := func(p calls.Principal) string {
		in, err := f.ListIncoming(ctx, p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, ic := range in {
			if ic.ServerCallID == c.serverCallID {
				return ic.ID
			}
		}
		tb.Fatalf("conversation %d: %s has no incoming call", c.n, p.Identifier.RawID())
		return ""
	}
	switch s := c.step; {
	case s == 0:
		var call calls.Call
		call, err = f.StartCall(ctx, c.caller, calls.StartCallRequest{Participants: []calls.Identifier{c.agent.Identifier}})
		if err == nil {
			c.callerLeg, c.serverCallID = call.ID, call.ServerCallID
			c.agentLeg = incoming(c.agent)
		}
	case s == 1:
		_, err = f.Accept(ctx, c.agent, c.agentLeg)
	case s == 2:
		f.ReportSpeaking(c.callerLeg, true)
	case s == 3 || s == 4:
		_, err = f.SetMuted(ctx, c.agent, c.agentLeg, s == 3)
	case s == 5:
		_, err = f.Hold(ctx, c.agent, c.agentLeg)
	case s == 6:
		_, err = f.Resume(ctx, c.agent, c.agentLeg)
	case s == 7 && c.withExpert:
		_, err = f.AddParticipant(ctx, c.agent, c.agentLeg, calls.AddParticipantRequest{Identifier: c.expert.Identifier})
		if err == nil {
			c.expertLeg = incoming(c.expert)
		}
	case s == 8 && c.withExpert:
		_, err = f.Accept(ctx, c.expert, c.expertLeg)
	case s == 9 && c.withExpert:
		f.ReportSpeaking(c.expertLeg, true)
	case s == 10 && c.withExpert:
		_, err = f.HangUp(ctx, c.expert, c.expertLeg, false)
	case !c.agentDone:
		_, err = f.HangUp(ctx, c.agent, c.agentLeg, false)
		c.agentDone = true
		if err == nil {
			// In a group call the caller stays, alone, until it hangs up.
			call, gerr := f.GetCall(ctx, c.caller, c.callerLeg)
			c.callerAlone = gerr == nil && call.State != calls.StateDisconnected
		}
		over = !c.callerAlone
	default:
		_, err = f.HangUp(ctx, c.caller, c.callerLeg, false)
		over = true
	}
	if err != nil {
		tb.Fatalf("conversation %d, step %d: %v", c.n, c.step, err)
	}
	c.step++
	return over
}

// benchIDs makes ids shaped like the server's (UUIDs).
func benchIDs() func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("%08x-7a2d-4b0e-8c6f-%012x", n, n)
	}
}

// capturingStore keeps what the switchboard records.
type capturingStore struct {
	callstest.Store // for the queries, which answer nothing
	mu              sync.Mutex
	recs            []calls.Record
	events          int
}

func (s *capturingStore) Record(recs ...calls.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, recs...)
	for i := range recs {
		s.events += len(recs[i].Events)
	}
}

type discardPublisher struct{}

func (discardPublisher) Publish(calls.Event) {}

func BenchmarkPostgresRecord(b *testing.B) {
	for _, stored := range storedHistories(b) {
		for _, bc := range []struct {
			name  string
			queue int
		}{
			{"queue=default", 0},         // more than 16384 changes waiting spill to the spool
			{"queue=unbounded", 1 << 30}, // never spills: Postgres alone
		} {
			b.Run(fmt.Sprintf("stored=%d/%s", stored, bc.name), func(b *testing.B) {
				databaseURL := testDatabaseURL(b)
				p := mustOpenPostgres(b, databaseURL, PostgresOptions{QueueSize: bc.queue})
				seedStored(b, databaseURL, stored)
				before := queryInt(b, databaseURL, "SELECT count(*) FROM call_events")
				recs := switchboardRecords(b, b.N)
				checkpoint(b, databaseURL)
				b.ReportAllocs()
				b.ResetTimer()
				for _, r := range recs {
					p.Record(r) // one change at a time, as the switchboard does
				}
				flushWithin(b, p, 30*time.Minute)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				if got := queryInt(b, databaseURL, "SELECT count(*) FROM call_events") - before; got != b.N {
					b.Fatalf("%d events written to call_events, want %d", got, b.N)
				}
			})
		}
	}
}

// flushWithin flushes p, failing b if that takes longer than d.
func flushWithin(b *testing.B, p *Postgres, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		b.Fatalf("Flush: %v", err)
	}
}

// storedHistories is the histories the write benchmarks start from: none,
// and, when SWITCHBOARD_BENCH_HISTORY is set (see BenchmarkHistory), that
// many calls.
func storedHistories(b *testing.B) []int {
	if n, ok := historySize(b); ok {
		return []int{0, n}
	}
	return []int{0}
}

// seedStored seeds n calls (see seedHistory), but for the one-event run
// the benchmark framework makes first to size the next, whose figure it
// does not report.
func seedStored(b *testing.B, databaseURL string, n int) {
	if n > 0 && b.N > 1 {
		seedHistory(b, databaseURL, n)
	}
}

// BenchmarkPostgresRecordCall measures Record alone: what a call operation
// pays, under the switchboard's locks, for history.
func BenchmarkPostgresRecordCall(b *testing.B) {
	p := mustOpenPostgres(b, testDatabaseURL(b), PostgresOptions{QueueSize: 1 << 30})
	recs := switchboardRecords(b, 3*b.N)[:b.N] // 1 to 3 events a record
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.Record(recs[i])
	}
	b.StopTimer()
	mustFlush(b, p)
}

func BenchmarkRawCopy(b *testing.B) {
	for _, stored := range storedHistories(b) {
		b.Run(fmt.Sprintf("stored=%d", stored), func(b *testing.B) { benchmarkRawCopy(b, stored) })
	}
}

func benchmarkRawCopy(b *testing.B, stored int) {
	b.Run("rows=events", func(b *testing.B) {
		databaseURL := testDatabaseURL(b)
		if err := Migrate(context.Background(), databaseURL, quietLogger()); err != nil {
			b.Fatal(err)
		}
		seedStored(b, databaseURL, stored)
		batch, _, _, _ := storeRows(switchboardRecords(b, b.N))
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		checkpoint(b, databaseURL)
		b.ResetTimer()
		n, err := conn.CopyFrom(ctx, pgx.Identifier{"call_events"}, eventColumns, &eventSource{batch: batch, j: -1})
		b.StopTimer()
		if err != nil || int(n) != b.N {
			b.Fatalf("CopyFrom = %d, %v; want %d", n, err, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("rows=store", func(b *testing.B) {
		databaseURL := testDatabaseURL(b)
		ctx := context.Background()
		if err := Migrate(ctx, databaseURL, quietLogger()); err != nil {
			b.Fatal(err)
		}
		seedStored(b, databaseURL, stored)
		mustExec(b, databaseURL, `
ALTER TABLE calls DROP CONSTRAINT calls_pkey;
CREATE INDEX calls_id ON calls (id);
ALTER TABLE participants DROP CONSTRAINT participants_pkey;
CREATE INDEX participants_key ON participants (call_id, raw_id)`)
		batch, callRows, partRows, gap := storeRows(switchboardRecords(b, b.N))
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		checkpoint(b, databaseURL)
		b.ResetTimer()
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Rollback(ctx)
		nc, err := tx.CopyFrom(ctx, pgx.Identifier{"calls"}, stageCallColumns, pgx.CopyFromRows(callRows))
		if err != nil || int(nc) != len(callRows) {
			b.Fatalf("copy calls = %d, %v; want %d", nc, err, len(callRows))
		}
		np, err := tx.CopyFrom(ctx, pgx.Identifier{"participants"}, partColumns, pgx.CopyFromRows(partRows))
		if err != nil || int(np) != len(partRows) {
			b.Fatalf("copy participants = %d, %v; want %d", np, err, len(partRows))
		}
		ne, err := tx.CopyFrom(ctx, pgx.Identifier{"call_events"}, eventColumns, &eventSource{batch: batch, j: -1})
		if err != nil || int(ne) != b.N {
			b.Fatalf("copy events = %d, %v; want %d", ne, err, b.N)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(len(callRows))/float64(b.N), "calls-rows/event")
		b.ReportMetric(float64(len(partRows))/float64(b.N), "part-rows/event")
		if gap >= 0 {
			b.ReportMetric(float64(gap), "min-gap-records")
		}
		var viewBytes, dataBytes int
		for i := range batch {
			viewBytes += len(batch[i].call.view)
			for _, e := range batch[i].events {
				dataBytes += len(e.data)
			}
		}
		b.ReportMetric(float64(viewBytes)/float64(len(batch)), "view-B/record")
		b.ReportMetric(float64(dataBytes)/float64(b.N), "data-B/event")
	})
}

// checkpoint has Postgres write out what earlier runs left dirty, so that
// a run does not pay for the one before it. Without the privilege to, it
// does nothing.
func checkpoint(b *testing.B, databaseURL string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "CHECKPOINT")
}

var partColumns = append(slices.Clip(stagePartColumns), "start_time")

// storeRows encodes recs as the store does (versions 1, 2, ...) and
// answers the rows the store writes for them when no batch holds two
// changes of one call: each change's calls row, the participant rows that
// differ from the call's previous change (the store leaves the others be),
// and, through batch, its events. gap is the fewest records between two of
// one call (-1: no call has two).
func storeRows(recs []calls.Record) (batch []change, callRows, partRows [][]any, gap int) {
	batch = make([]change, len(recs))
	callRows = make([][]any, len(recs))
	type last struct {
		at    int
		parts []partRow
	}
	prev := make(map[string]last)
	gap = -1
	for i := range recs {
		ch := newChange(&recs[i], int64(i+1), tBase, quietLogger())
		batch[i] = ch
		c := &ch.call
		callRows[i] = []any{c.id, ch.version, c.serverCallID, c.agentID, c.direction, c.kind, c.state,
			c.start, c.end, c.endCode, c.endSubCode, c.endMessage, c.view}
		was, ok := prev[c.id]
		if ok && (gap < 0 || i-was.at < gap) {
			gap = i - was.at
		}
		for _, r := range ch.parts {
			j := slices.IndexFunc(was.parts, func(w partRow) bool { return w.rawID == r.rawID })
			if j >= 0 && reflect.DeepEqual(was.parts[j], r) {
				continue
			}
			partRows = append(partRows, []any{c.id, r.rawID, r.position, r.displayName, r.state, r.isMuted,
				r.endCode, r.endSubCode, r.endMessage, c.start})
		}
		prev[c.id] = last{at: i, parts: ch.parts}
	}
	return batch, callRows, partRows, gap
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
