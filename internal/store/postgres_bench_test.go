package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
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
