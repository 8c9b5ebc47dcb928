package store

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) calls.Store {
		return mustOpenSQLite(t, filepath.Join(t.TempDir(), "history.db"), SQLiteOptions{})
	})
	storetest.RunDurable(t, func(t *testing.T) func(t *testing.T) calls.Store {
		path := filepath.Join(t.TempDir(), "history.db")
		return func(t *testing.T) calls.Store { return mustOpenSQLite(t, path, SQLiteOptions{}) }
	})
}

// mustOpenSQLite opens a store at path, closed when tb ends.
func mustOpenSQLite(tb testing.TB, path string, opt SQLiteOptions) *SQLite {
	tb.Helper()
	if opt.Logger == nil {
		opt.Logger = testLogger(tb)
	}
	s, err := OpenSQLite(context.Background(), path, opt)
	if err != nil {
		tb.Fatalf("OpenSQLite: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// sqliteExec runs a statement on the closed store's file.
func sqliteExec(tb testing.TB, path, stmt string, args ...any) {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmt, args...); err != nil {
		tb.Fatalf("%s: %v", stmt, err)
	}
}

// History written and closed is there after reopening, timeline and all,
// and a change recorded right before Close is written by it.
func TestSQLiteHistorySurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "history.db")
	s := mustOpenSQLite(t, path, SQLiteOptions{})
	recs := conversation(20)
	s.Record(recs...)
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	s = mustOpenSQLite(t, path, SQLiteOptions{})
	page, err := s.FindCalls(t.Context(), calls.CallFilter{Limit: calls.MaxHistoryLimit})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, r := range recs {
		want[r.Call.ID] += len(r.Events)
	}
	if len(page.Items) != len(want) {
		t.Fatalf("after reopening, history has %d calls, want %d", len(page.Items), len(want))
	}
	for id, n := range want {
		h, err := s.FindCallByID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Timeline) != n {
			t.Errorf("call %s has %d timeline entries after reopening, want %d", id, len(h.Timeline), n)
		}
	}
}

// Two stores on one file would take each other's live calls for crashed
// ones: the second open fails while the first holds the file.
func TestSQLiteOneProcessAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	first := mustOpenSQLite(t, path, SQLiteOptions{})
	if s, err := OpenSQLite(t.Context(), path, SQLiteOptions{Logger: testLogger(t)}); err == nil {
		_ = s.Close(t.Context())
		t.Fatal("a second OpenSQLite of an open file succeeded, want an error")
	} else if !strings.Contains(err.Error(), "another process") {
		t.Errorf("second OpenSQLite: %v, want it to say another process uses the file", err)
	}
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustOpenSQLite(t, path, SQLiteOptions{})
}

// A file written by a newer switchboard is refused, not misread.
func TestSQLiteNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	sqliteExec(t, path, `PRAGMA user_version = 99`)
	if s, err := OpenSQLite(t.Context(), path, SQLiteOptions{Logger: testLogger(t)}); err == nil {
		_ = s.Close(t.Context())
		t.Fatal("OpenSQLite of a schema version 99 file succeeded, want an error")
	}
}

func TestSQLiteRecordAfterClose(t *testing.T) {
	s := mustOpenSQLite(t, filepath.Join(t.TempDir(), "history.db"), SQLiteOptions{})
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Record(conversation(1)...)
	if err := s.Flush(t.Context()); err != nil {
		t.Errorf("Flush after Close with nothing taken = %v, want nil", err)
	}
	if _, err := s.RecoverCrashed(t.Context()); calls.ErrorCode(err) != calls.CodeUnavailable {
		t.Errorf("RecoverCrashed after Close = %v, want %s", err, calls.CodeUnavailable)
	}
}

func TestSQLiteRecoverCrashed(t *testing.T) {
	for _, tc := range aliveCases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.db")
			testRecoverCrashed(t, tc, crashedStore{
				open: func(t *testing.T) recoveringStore { return mustOpenSQLite(t, path, SQLiteOptions{}) },
				setHeartbeat: func(t *testing.T, beat time.Time) {
					sqliteExec(t, path, `UPDATE heartbeat SET at_ns = ?`, beat.UnixNano())
				},
				alivePath: path + ".alive",
			})
		})
	}
}

// Every history query walks an index in history order: no table scan, no
// sort of the matches.
func TestSQLiteQueryPlans(t *testing.T) {
	s := mustOpenSQLite(t, filepath.Join(t.TempDir(), "history.db"), SQLiteOptions{})
	code := 487
	after := &position{sec: tBase.Unix(), id: "call-0001"}
	for _, tt := range []struct {
		name  string
		f     calls.CallFilter
		index string
	}{
		{"all", calls.CallFilter{}, "calls_history"},
		{"window", calls.CallFilter{From: tBase, To: tBase.Add(time.Hour)}, "calls_history"},
		{"agent", calls.CallFilter{AgentID: "8:acs:a"}, "calls_agent_history"},
		{"end code", calls.CallFilter{EndCode: &code}, "calls_end_code_history"},
		{"participant", calls.CallFilter{Participant: "4:+1555"}, "participants_history"},
		{"direction", calls.CallFilter{Direction: calls.Incoming}, "calls_history"},
	} {
		for _, cursor := range []*position{nil, after} {
			q, args, ok := sqliteHistoryQuery(&tt.f, cursor, 51)
			if !ok {
				t.Fatalf("%s: no query", tt.name)
			}
			rows, err := s.rdb.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			p := strings.Join(plan, "; ")
			t.Logf("%s (cursor %v): %s", tt.name, cursor != nil, p)
			if !strings.Contains(p, tt.index) || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("%s (cursor %v): plan %q, want a walk of %s with no sort", tt.name, cursor != nil, p, tt.index)
			}
		}
	}
}

// While another connection holds the file's write lock, writes fail and
// are retried: Ready says the store is behind, nothing is lost, and once
// the lock is gone everything is written and Ready is nil again.
func TestSQLiteWritesRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s := mustOpenSQLite(t, path, SQLiteOptions{BusyTimeout: 20 * time.Millisecond, RetryMin: 10 * time.Millisecond,
		RetryMax: 50 * time.Millisecond, MaxLag: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	blocker, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	conn, err := blocker.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	recs := conversation(10)
	s.Record(recs...)
	waitFor(t, "Ready to say the store is behind", func() bool {
		return calls.ErrorCode(s.Ready(t.Context())) == calls.CodeUnavailable
	})
	if err := s.Ready(t.Context()); !strings.Contains(err.Error(), "behind") {
		t.Errorf("Ready while writes fail = %v, want it to say the store is behind", err)
	}
	if _, err := conn.ExecContext(t.Context(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, s)
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("Ready after the lock is gone = %v, want nil", err)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.Call.ID] = true
	}
	page, err := s.FindCalls(t.Context(), calls.CallFilter{Limit: calls.MaxHistoryLimit})
	if err != nil || len(page.Items) != len(ids) {
		t.Errorf("FindCalls = %d calls, %v; want %d", len(page.Items), err, len(ids))
	}
}

// Close with its context already ended (a shutdown out of grace) still
// writes what is queued when the file takes it.
func TestSQLiteCloseEndedContextWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	s := mustOpenSQLite(t, path, SQLiteOptions{})
	recs := conversation(50)
	s.Record(recs...)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close(ended context) = %v, want nil", err)
	}
	s = mustOpenSQLite(t, path, SQLiteOptions{})
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.Call.ID] = true
	}
	page, err := s.FindCalls(t.Context(), calls.CallFilter{Limit: calls.MaxHistoryLimit})
	if err != nil || len(page.Items) != len(ids) {
		t.Errorf("after Close(ended context) and reopening: %d calls, %v; want %d", len(page.Items), err, len(ids))
	}
}
