package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/migrations"
)

func TestMigrateConcurrently(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = Migrate(t.Context(), databaseURL, testLogger(t)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	// Each migration is recorded once, and the schema is there, once.
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM (SELECT version_id FROM goose_db_version GROUP BY version_id HAVING count(*) > 1) d`); n != 0 {
		t.Errorf("%d migrations recorded more than once", n)
	}
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := queryInt(t, databaseURL, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`), len(files); got != want {
		t.Errorf("migrations applied = %d, want %d", got, want)
	}
	if got, want := queryInt(t, databaseURL, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
		AND tablename IN ('calls', 'participants', 'call_events', 'switchboard_heartbeat')`), 4; got != want {
		t.Errorf("tables = %d, want %d", got, want)
	}
	if got, want := queryInt(t, databaseURL, `SELECT count(*) FROM switchboard_heartbeat`), 1; got != want {
		t.Errorf("heartbeat rows = %d, want %d", got, want)
	}
	// And again, with nothing left to do.
	if err := Migrate(t.Context(), databaseURL, testLogger(t)); err != nil {
		t.Errorf("Migrate again: %v", err)
	}
}

// outageOptions make the writer retry quickly and spill early.
func outageOptions(spoolDir string) PostgresOptions {
	return PostgresOptions{
		SpoolDir:      spoolDir,
		QueueSize:     4,
		BatchSize:     3,
		FlushInterval: time.Millisecond,
		WriteTimeout:  5 * time.Second,
		RetryMin:      5 * time.Millisecond,
		RetryMax:      50 * time.Millisecond,
	}
}

func TestPostgresOutage(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	px := startProxy(t, databaseURL)
	spoolDir := t.TempDir()
	p := mustOpenPostgres(t, px.url(t, databaseURL), outageOptions(spoolDir))
	recs := conversation(6)
	before, during := recs[:4], recs[4:]
	p.Record(before...)
	mustFlush(t, p)

	px.Cut()
	for _, r := range during {
		p.Record(r) // one change at a time, as the switchboard does
	}
	spoolPath := filepath.Join(spoolDir, spoolFile)
	waitFor(t, "the spool file", func() bool {
		_, err := os.Stat(spoolPath)
		return err == nil
	})

	// Ready says the store is behind, and by how much.
	var err error
	waitFor(t, "Ready to say the store is behind", func() bool {
		err = p.Ready(t.Context())
		return err != nil && strings.Contains(err.Error(), "behind")
	})
	if got := calls.ErrorCode(err); got != calls.CodeUnavailable {
		t.Errorf("Ready during the outage: code %s (%v), want %s", got, err, calls.CodeUnavailable)
	}
	if want := fmt.Sprintf("%d changes not yet in Postgres", len(during)); !strings.Contains(err.Error(), want) {
		t.Errorf("Ready during the outage = %v, want it to say %q", err, want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := p.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush during the outage = %v, want one wrapping context.DeadlineExceeded", err)
	}

	px.Restore()
	mustFlush(t, p)
	if err := p.Ready(t.Context()); err != nil {
		t.Errorf("Ready after the outage = %v, want nil", err)
	}
	if n := p.Backlog().Journal; n != 0 {
		t.Errorf("journal after the outage holds %d changes not consumed, want 0", n)
	}
	checkStored(t, databaseURL, p, recs)
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spoolPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal file after Close with everything written: %v, want it removed", err)
	}
}

func TestPostgresRestartDuringOutage(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	px := startProxy(t, databaseURL)
	spoolDir := t.TempDir()
	opt := outageOptions(spoolDir)
	opt.QueueSize = 1000 // nothing spills before Close
	first, err := OpenPostgres(t.Context(), px.url(t, databaseURL), withTestLogger(t, opt))
	if err != nil {
		t.Fatal(err)
	}
	recs := conversation(5)
	first.Record(recs[:3]...)
	mustFlush(t, first)
	px.Cut()
	for _, r := range recs[3:] {
		first.Record(r)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := first.Close(ctx); err != nil {
		t.Fatalf("Close during the outage = %v, want nil (everything spooled)", err)
	}
	spoolPath := filepath.Join(spoolDir, spoolFile)
	info, err := os.Stat(spoolPath)
	if err != nil || info.Size() <= int64(len(spoolHeader)) {
		t.Fatalf("spool after Close during the outage: %v, size %v; want changes in it", err, info)
	}
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM call_events`); n >= countEvents(recs) {
		t.Fatalf("%d events in Postgres before the restart, want fewer than %d", n, countEvents(recs))
	}

	// The switchboard starts again, Postgres answering: the spool is
	// written, once, and goes.
	second := mustOpenPostgres(t, databaseURL, opt)
	if _, err := os.Stat(spoolPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool file after the restart: %v, want it removed", err)
	}
	checkStored(t, databaseURL, second, recs)

	// Its versions continue after the spooled ones: a change recorded now
	// wins over them.
	last := recs[len(recs)-1]
	last.Call.State = calls.StateLocalHold
	second.Record(calls.Record{Call: last.Call})
	mustFlush(t, second)
	h, err := second.FindCallByID(t.Context(), last.Call.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Call.State != calls.StateLocalHold {
		t.Errorf("state after the restart = %s, want %s", h.Call.State, calls.StateLocalHold)
	}
}

func withTestLogger(tb testing.TB, opt PostgresOptions) PostgresOptions {
	opt.Logger = testLogger(tb)
	return opt
}

func countEvents(recs []calls.Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Events)
	}
	return n
}

// changes encodes recs as Record would have them.
func changes(p *Postgres, recs []calls.Record) []change {
	out := make([]change, len(recs))
	for i := range recs {
		p.mu.Lock()
		p.version++
		v := p.version
		p.mu.Unlock()
		out[i] = newChange(&recs[i], v, time.Now(), p.log)
	}
	return out
}

func TestPostgresRetryNeverDoubles(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	p := mustOpenPostgres(t, databaseURL, PostgresOptions{})
	recs := conversation(4)
	batch := changes(p, recs)
	tests := []struct {
		name  string
		write [][]change
	}{
		{"the whole batch again", [][]change{batch}},
		{"its first half again", [][]change{batch[:len(batch)/2]}},
		{"its second half, then all of it, change by change", [][]change{batch[len(batch)/2:], batch[:1], batch[1:2], batch}},
	}
	if done, err := p.write(t.Context(), batch); err != nil || done != len(batch) {
		t.Fatalf("write = %d, %v; want %d, nil", done, err, len(batch))
	}
	checkStored(t, databaseURL, p, recs)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, b := range tt.write {
				if done, err := p.write(t.Context(), b); err != nil || done != len(b) {
					t.Fatalf("write = %d, %v; want %d, nil", done, err, len(b))
				}
			}
			checkStored(t, databaseURL, p, recs)
			if got, want := queryInt(t, databaseURL, `SELECT count(*) FROM participants`), 2*4; got != want {
				t.Errorf("participants rows = %d, want %d", got, want)
			}
		})
	}
}

func TestPostgresOlderViewLoses(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	p := mustOpenPostgres(t, databaseURL, PostgresOptions{})
	recs := conversation(1) // rings, connects, becomes a group; stays live
	batch := changes(p, recs)
	// The newest first, then the older ones, in one batch and apart.
	for _, b := range [][]change{{batch[2]}, {batch[0], batch[1]}} {
		if _, err := p.write(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	h, err := p.FindCallByID(t.Context(), recs[0].Call.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Call.Kind != calls.Group || len(h.Call.RemoteParticipants) != 2 {
		t.Errorf("call = %s with %d participants, want the newest view: group, 2", h.Call.Kind, len(h.Call.RemoteParticipants))
	}
	if got, want := queryInt(t, databaseURL, `SELECT count(*) FROM participants`), 2; got != want {
		t.Errorf("participants rows = %d, want %d (the newest view's)", got, want)
	}
	// The timeline is in version order, whatever order the writes came in.
	want := []calls.EventType{calls.EventIncomingCall, calls.EventStateChanged, calls.EventRemoteParticipantsUpdated, calls.EventKindChanged}
	if len(h.Timeline) != len(want) {
		t.Fatalf("timeline has %d entries, want %d", len(h.Timeline), len(want))
	}
	for i, e := range h.Timeline {
		if e.Type != want[i] {
			t.Errorf("timeline[%d] = %s, want %s", i, e.Type, want[i])
		}
	}
}

// A change Postgres refuses for good is dropped, alone: the others of its
// batch are written, and the writer goes on.
func TestPostgresRefusedChange(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	p := mustOpenPostgres(t, databaseURL, PostgresOptions{})
	recs := conversation(3)
	batch := changes(p, recs)
	refused := 8                                  // call-0002's last change: it becomes a group call
	batch[refused].call.view = []byte(`{"id": 1`) // not JSON: jsonb refuses it

	done, err := p.write(t.Context(), batch)
	if err != nil || done != len(batch) {
		t.Fatalf("write = %d, %v; want %d, nil", done, err, len(batch))
	}
	if got, want := queryInt(t, databaseURL, `SELECT count(*) FROM call_events`), countEvents(recs)-len(recs[refused].Events); got != want {
		t.Errorf("events = %d, want %d: all but the refused change's", got, want)
	}
	h, err := p.FindCallByID(t.Context(), recs[refused].Call.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Call.State != calls.StateConnected || h.Call.Kind != calls.OneToOne {
		t.Errorf("call = %s, %s; want the view before the refused change: Connected, oneToOne", h.Call.State, h.Call.Kind)
	}
}

func TestRecoverCrashed(t *testing.T) {
	for _, tc := range aliveCases {
		t.Run(tc.name, func(t *testing.T) {
			databaseURL := testDatabaseURL(t)
			spoolDir := t.TempDir()
			testRecoverCrashed(t, tc, crashedStore{
				open: func(t *testing.T) recoveringStore {
					return mustOpenPostgres(t, databaseURL, PostgresOptions{SpoolDir: spoolDir})
				},
				setHeartbeat: func(t *testing.T, beat time.Time) {
					mustExec(t, databaseURL, `UPDATE switchboard_heartbeat SET at = $1`, beat)
				},
				alivePath: filepath.Join(spoolDir, aliveFile),
				// The participants' own rows end too: call-live's who
				// was still in it and call-late's.
				check: func(t *testing.T) {
					if got := queryInt(t, databaseURL, `SELECT count(*) FROM participants WHERE end_code = 503`); got != 2 {
						t.Errorf("participants ended with 503 = %d, want 2", got)
					}
				},
			})
		})
	}
}

func TestPostgresRecordAfterClose(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	p := mustOpenPostgres(t, databaseURL, PostgresOptions{})
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.Record(conversation(1)...)
	if err := p.Flush(t.Context()); err != nil {
		t.Errorf("Flush after Close with nothing taken = %v, want nil", err)
	}
	if _, err := p.FindCalls(t.Context(), calls.CallFilter{}); calls.ErrorCode(err) != calls.CodeUnavailable {
		t.Errorf("FindCalls after Close = %v, want %s", err, calls.CodeUnavailable)
	}
	if _, err := p.RecoverCrashed(t.Context()); calls.ErrorCode(err) != calls.CodeUnavailable {
		t.Errorf("RecoverCrashed after Close = %v, want %s", err, calls.CodeUnavailable)
	}
}

// While Postgres is slow (here: a table locked by another session), writes
// time out and are retried, changes spill past the queue's size, and all
// of them are written once it is quick again.
func TestPostgresSlow(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	spoolDir := t.TempDir()
	opt := outageOptions(spoolDir)
	opt.WriteTimeout = 100 * time.Millisecond
	p := mustOpenPostgres(t, databaseURL, opt)
	recs := conversation(5)
	p.Record(recs[:5]...)
	mustFlush(t, p)

	locker, err := pgx.Connect(t.Context(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	tx, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `LOCK TABLE calls IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for _, r := range recs[5:] {
		p.Record(r)
	}
	if d := time.Since(began); d > 50*time.Millisecond {
		t.Errorf("Record took %s while Postgres was slow, want it never to wait", d)
	}
	waitFor(t, "the spool file", func() bool {
		_, err := os.Stat(filepath.Join(spoolDir, spoolFile))
		return err == nil
	})
	waitFor(t, "Ready to say the store is behind, its writes timing out", func() bool {
		err := p.Ready(t.Context())
		return err != nil && strings.Contains(err.Error(), "behind") && errors.Is(err, context.DeadlineExceeded)
	})
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, p)
	checkStored(t, databaseURL, p, recs)
}

// Close writes everything waiting, when Postgres answers.
func TestPostgresCloseWrites(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	spoolDir := t.TempDir()
	p := mustOpenPostgres(t, databaseURL, PostgresOptions{SpoolDir: spoolDir, FlushInterval: time.Hour})
	recs := conversation(20)
	for _, r := range recs {
		p.Record(r)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(spoolDir, spoolFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool after Close: %v, want none", err)
	}
	checkStored(t, databaseURL, mustOpenPostgres(t, databaseURL, PostgresOptions{SpoolDir: spoolDir}), recs)
}
