package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSQLiteRecord measures the SQLite store's write throughput on
// the workload BenchmarkPostgresRecord writes (see switchboardRecords):
// b.N events, handed over one change at a time, then Flush. events/s is
// b.N over the whole, from the first Record to the end of Flush. It runs
// with synchronous=NORMAL (the default) and FULL (an fsync per batch), on
// an empty file and, when SWITCHBOARD_BENCH_HISTORY is set, on a file
// already holding that many calls.
func BenchmarkSQLiteRecord(b *testing.B) {
	for _, stored := range storedHistories(b) {
		for _, full := range []bool{false, true} {
			sync := "normal"
			if full {
				sync = "full"
			}
			b.Run(fmt.Sprintf("stored=%d/sync=%s", stored, sync), func(b *testing.B) {
				s := mustOpenSQLite(b, filepath.Join(b.TempDir(), "history.db"), SQLiteOptions{SyncFull: full})
				if stored > 0 && b.N > 1 {
					seedSQLite(b, s, stored)
				}
				before := sqliteCount(b, s, "SELECT count(*) FROM call_events")
				recs := switchboardRecords(b, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				for _, r := range recs {
					s.Record(r) // one change at a time, as the switchboard does
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				defer cancel()
				if err := s.Flush(ctx); err != nil {
					b.Fatalf("Flush: %v", err)
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
				if got := sqliteCount(b, s, "SELECT count(*) FROM call_events") - before; got != b.N {
					b.Fatalf("%d events written to call_events, want %d", got, b.N)
				}
			})
		}
	}
}

// BenchmarkSQLiteHistory runs BenchmarkHistory's queries (see
// historyQueries) on the SQLite store holding SWITCHBOARD_BENCH_HISTORY
// calls (1: a million), written through Record, as the switchboard writes
// them. Run with -benchtime 1000x for a thousand queries each.
func BenchmarkSQLiteHistory(b *testing.B) {
	n := historyBenchSize(b)
	s := mustOpenSQLite(b, filepath.Join(b.TempDir(), "history.db"), SQLiteOptions{})
	seedSQLite(b, s, n)
	for _, q := range historyQueries(n) {
		b.Run(q.name, func(b *testing.B) { runQueries(b, s, q) })
	}
	b.Run("FindCallByID", func(b *testing.B) { runFindByID(b, s, n) })
}

// seedSQLite records n ended calls (see historyRecord) through the store,
// flushes, and lets SQLite gather the planner's statistics.
func seedSQLite(b *testing.B, s *SQLite, n int) {
	b.Helper()
	began := time.Now()
	for i := range n {
		s.Record(historyRecord(i, n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		b.Fatalf("Flush: %v", err)
	}
	took := time.Since(began)
	if _, err := s.wdb.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatalf("ANALYZE: %v", err)
	}
	var pages, pageSize int64
	_ = s.rdb.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages)
	_ = s.rdb.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize)
	b.Logf("recorded %d calls in %s (%.0f calls/s); the file holds %d MB",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), pages*pageSize>>20)
}

func sqliteCount(b *testing.B, s *SQLite, query string) int {
	b.Helper()
	var n int
	if err := s.rdb.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		b.Fatalf("%s: %v", query, err)
	}
	return n
}
