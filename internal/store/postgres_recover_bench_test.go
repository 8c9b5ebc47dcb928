package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// BenchmarkRecover measures ending liveCalls calls a dead node left live,
// per op: recover=crashed is the node itself restarting (RecoverCrashed),
// recover=node a surviving node (RecoverNode); both run the same
// transaction, so the figure to watch is their ratio staying near 1 and
// the time per op. Each op's calls are recorded by a node of its own,
// which then stops without ending them, outside the timer. Run it with a
// fixed count, e.g.
//
//	SWITCHBOARD_TEST_DATABASE_URL=... go test -run '^$' -bench BenchmarkRecover -benchtime 5x -count 3 ./internal/store
func BenchmarkRecover(b *testing.B) {
	const liveCalls = 10000
	for _, mode := range []string{"crashed", "node"} {
		b.Run("recover="+mode, func(b *testing.B) {
			databaseURL := testDatabaseURL(b)
			survivor := mustOpenPostgres(b, databaseURL, PostgresOptions{Node: "survivor"})
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				node, spool := fmt.Sprintf("dead-%d", i), b.TempDir()
				dead := mustOpenPostgres(b, databaseURL, PostgresOptions{Node: node, SpoolDir: spool})
				for j := range liveCalls {
					dead.Record(nodeCall(fmt.Sprintf("%s-%05d", node, j), calls.StateConnected,
						tBase.Add(time.Duration(j)*time.Millisecond), tBase.Add(time.Hour)))
				}
				mustFlush(b, dead)
				if err := dead.Close(b.Context()); err != nil {
					b.Fatal(err)
				}
				var (
					n   int
					err error
				)
				if mode == "crashed" {
					restarted := mustOpenPostgres(b, databaseURL, PostgresOptions{Node: node, SpoolDir: spool})
					b.StartTimer()
					n, err = restarted.RecoverCrashed(b.Context())
				} else {
					b.StartTimer()
					n, err = survivor.RecoverNode(b.Context(), node)
				}
				b.StopTimer()
				if err != nil || n != liveCalls {
					b.Fatalf("recover = %d, %v; want %d", n, err, liveCalls)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*liveCalls), "µs/call")
		})
	}
}
