package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"

	"github.com/switchboard/switchboard/internal/calls"
)

// SQLite is the embedded store that keeps history for good: in one SQLite
// file (pure Go, modernc.org/sqlite), for a switchboard run without
// Postgres. It survives restarts; RecoverCrashed ends with 503 the calls a
// crashed run left live, as the Postgres store does.
//
// Record only queues the change, giving it its version (as the Postgres
// store does); one writer goroutine, which Close stops, writes what is
// queued in one transaction per batch, at once: while a batch commits the
// next changes queue up, so the batches grow with the load (group commit)
// and a change waits for at most the batch before it. Reads run on a pool
// of connections of their own; in WAL mode they never wait for the writer.
//
// Durability. The file is in WAL mode with synchronous=NORMAL by default:
// a committed batch is in the WAL file when the commit returns, so it
// survives the process being killed (kill -9) at any moment; only an
// operating-system crash or a power cut can lose the batches committed
// since the last checkpoint's fsync. SQLiteOptions.SyncFull fsyncs every
// commit (synchronous=FULL), which survives those too, at one fsync per
// batch. What Record queued and the writer had not yet committed (the
// changes of the batch being written, a few milliseconds) dies with the
// process. Token revocations are written at once.
//
// While writes fail (a full disk, say), changes wait in memory and the
// writer retries with backoff; Ready says how far behind the store is.
//
// One process uses a file at a time: OpenSQLite takes an exclusive lock on
// a file beside it ("<path>.lock") that the operating system releases when
// the process dies, so a second switchboard on the same data directory
// fails to start rather than mistaking the first one's calls for crashed
// ones. It is therefore always a single node: unlike the Postgres store it
// records no node per call and has no RecoverNode. It keeps views by the
// same rule, though: an ended call stays ended (see newerView).
type SQLite struct {
	path  string
	wdb   *sql.DB // the writer's: one connection
	rdb   *sql.DB // readers'
	lock  *os.File
	alive *aliveMark // beside the file: path + ".alive"
	opt   SQLiteOptions
	log   *slog.Logger

	// Set by OpenSQLite: every version up to openVersion was given by an
	// earlier run; lastBeat is when that run was last known alive (its
	// heartbeat or its alive mark; zero: neither).
	openVersion int64
	lastBeat    time.Time

	mu       sync.Mutex
	closed   bool
	queue    []queued // taken by Record, not yet by the writer
	version  int64    // the last version given
	enqueued uint64   // changes Record took in this run
	written  uint64   // of those, how many are written (or given up on)
	oldest   time.Time
	lastErr  error
	failedAt time.Time
	progress chan struct{} // closed and replaced when written grows or the writer stops
	stopped  bool

	wake      chan struct{} // capacity 1
	closing   chan struct{}
	done      chan struct{}
	cancelRun context.CancelFunc
	recoverMu sync.Mutex
	recovered map[string]bool
	closeOnce sync.Once
	teardown  sync.Once
	runErr    error
	closeErr  error
}

var _ calls.Store = (*SQLite)(nil)

// SQLiteOptions tunes the SQLite store. Zero fields take the defaults.
type SQLiteOptions struct {
	// SyncFull fsyncs every commit (synchronous=FULL) so that history
	// survives an operating-system crash too; by default
	// (synchronous=NORMAL) it survives the process's death only.
	SyncFull bool
	// BatchSize is how many changes one transaction writes, at most.
	// Default 4096.
	BatchSize int
	// Readers is how many connections serve queries. Default 4.
	Readers int
	// BusyTimeout is how long a statement waits for a lock. Default 5s.
	BusyTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between failed writes.
	// Defaults 100ms and 5s.
	RetryMin, RetryMax time.Duration
	// HeartbeatInterval is how often the writer notes that the switchboard
	// is alive, which dates a crash for RecoverCrashed. Default 5s.
	HeartbeatInterval time.Duration
	// MaxLag is how old the oldest change waiting may be before Ready
	// reports the store behind. Default 5s.
	MaxLag time.Duration
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o SQLiteOptions) withDefaults() SQLiteOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 4096
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&o.BusyTimeout, 5*time.Second)
	defDur(&o.RetryMin, 100*time.Millisecond)
	defDur(&o.RetryMax, 5*time.Second)
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	defDur(&o.HeartbeatInterval, 5*time.Second)
	defDur(&o.MaxLag, 5*time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// OpenSQLite opens (creating it and its directory when missing) the
// history file at path, applies its schema, and starts the writer. The
// caller then calls RecoverCrashed once, before taking calls, and Close
// when done.
func OpenSQLite(ctx context.Context, path string, opt SQLiteOptions) (*SQLite, error) {
	opt = opt.withDefaults()
	fail := func(err error) (*SQLite, error) { return nil, fmt.Errorf("open sqlite store %s: %w", path, err) }
	if path == "" || strings.ContainsRune(path, '?') {
		return fail(errors.New("the path must be a file name without '?'"))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return fail(err)
	}
	lock, err := lockFile(abs + ".lock")
	if err != nil {
		return fail(err)
	}
	sync := "NORMAL"
	if opt.SyncFull {
		sync = "FULL"
	}
	dsn := func(extra string) string {
		return abs + "?_pragma=busy_timeout(" + fmt.Sprint(opt.BusyTimeout.Milliseconds()) + ")" +
			"&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")" + extra
	}
	wdb, err := sql.Open("sqlite", dsn("&_txlock=immediate"))
	if err != nil {
		_ = lock.Close()
		return fail(err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	s := &SQLite{
		path:      abs,
		wdb:       wdb,
		lock:      lock,
		opt:       opt,
		log:       opt.Logger,
		recovered: make(map[string]bool),
		progress:  make(chan struct{}),
		wake:      make(chan struct{}, 1),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	closeAll := func(err error) (*SQLite, error) {
		_ = wdb.Close()
		if s.rdb != nil {
			_ = s.rdb.Close()
		}
		_ = lock.Close()
		return fail(err)
	}
	if err := migrateSQLite(ctx, wdb); err != nil {
		return closeAll(err)
	}
	s.rdb, err = sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		return closeAll(err)
	}
	s.rdb.SetMaxOpenConns(opt.Readers)
	s.rdb.SetMaxIdleConns(opt.Readers)
	var beat sql.NullInt64
	if err := wdb.QueryRowContext(ctx, `SELECT at_ns, max_version FROM heartbeat`).Scan(&beat, &s.version); err != nil {
		return closeAll(fmt.Errorf("read heartbeat: %w", err))
	}
	if beat.Valid {
		s.lastBeat = time.Unix(0, beat.Int64).UTC()
	}
	mark, err := readAlive(s.path + ".alive")
	if err != nil {
		return closeAll(err)
	}
	s.lastBeat = later(s.lastBeat, mark)
	if s.alive, err = startAlive(s.path+".alive", s.log); err != nil {
		return closeAll(err)
	}
	s.openVersion = s.version
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancelRun = cancel
	go s.run(runCtx)
	return s, nil
}

// Path is the history file's absolute path.
func (s *SQLite) Path() string { return s.path }

// Record takes changes for writing and returns at once; it never blocks on
// I/O. Each change gets its version, one higher than any before. A record
// without a call id is ignored, and so is everything recorded after Close.
func (s *SQLite) Record(recs ...calls.Record) {
	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	wasEmpty := len(s.queue) == 0
	for i := range recs {
		if recs[i].Call.ID == "" {
			continue
		}
		s.version = max(s.version+1, now.UnixNano())
		s.queue = append(s.queue, queued{rec: recs[i], version: s.version, at: now})
		s.enqueued++
	}
	n := len(s.queue)
	s.mu.Unlock()
	if n > 0 && wasEmpty {
		s.nudge()
	}
}

func (s *SQLite) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Durable returns once every change recorded before it is committed to
// the file, which then survives the process being killed (see Flush).
func (s *SQLite) Durable(ctx context.Context) error { return s.Flush(ctx) }

// Flush returns once everything recorded before it is written, or with an
// error when ctx ends first or the store closed with changes not written.
func (s *SQLite) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.enqueued
	s.mu.Unlock()
	s.nudge()
	for {
		s.mu.Lock()
		written, ch, stopped := s.written, s.progress, s.stopped
		s.mu.Unlock()
		if written >= target {
			return nil
		}
		if stopped {
			return calls.Errorf(calls.CodeUnavailable, "the history store closed with %d changes not written to %s", target-written, s.path)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if behind := s.behind(); behind != nil {
				return fmt.Errorf("flush: %w (%w)", ctx.Err(), behind)
			}
			return fmt.Errorf("flush: %w", ctx.Err())
		}
	}
}

// Ready answers nil when the store keeps up and the file answers a query.
// Otherwise a *calls.Error with CodeUnavailable: closed, behind (writes
// failing while changes wait, or the oldest change waiting longer than
// MaxLag), or the file unreadable.
func (s *SQLite) Ready(ctx context.Context) error {
	if err := s.usable(ctx, "ready"); err != nil {
		return err
	}
	if err := s.behind(); err != nil {
		return err
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return sqliteError("ready", err)
	}
	return nil
}

// behind says how far behind the writer is, or nil when it keeps up.
func (s *SQLite) behind() error {
	now := time.Now()
	s.mu.Lock()
	waiting := s.enqueued - s.written
	lastErr, failedAt, oldest := s.lastErr, s.failedAt, s.oldest
	if oldest.IsZero() && len(s.queue) > 0 {
		oldest = s.queue[0].at
	}
	s.mu.Unlock()
	if waiting == 0 {
		return nil
	}
	age := time.Duration(0)
	if !oldest.IsZero() {
		age = now.Sub(oldest)
	}
	if lastErr == nil && age <= s.opt.MaxLag {
		return nil
	}
	e := calls.Errorf(calls.CodeUnavailable, "the history store is behind: %d changes not yet written; the oldest waits for %s",
		waiting, age.Round(time.Millisecond))
	if lastErr != nil {
		e.Message += fmt.Sprintf("; writes have failed for %s", now.Sub(failedAt).Round(time.Millisecond))
		e.Err = lastErr
	}
	return e
}

// Backlog answers how many changes wait to be written (never spooled).
func (s *SQLite) Backlog() Backlog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Backlog{Memory: int(s.enqueued - s.written)}
}

// Close stops taking changes, writes those waiting (retrying failed
// writes until ctx ends) and closes the file. Closing again waits for the
// first Close and answers the same.
func (s *SQLite) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		s.nudge()
	})
	stop := context.AfterFunc(ctx, s.cancelRun)
	defer stop()
	<-s.done
	s.teardown.Do(func() {
		s.cancelRun()
		s.closeErr = errors.Join(s.runErr, s.alive.close(), s.rdb.Close(), s.wdb.Close(), s.lock.Close())
	})
	return s.closeErr
}

// usable answers why the store cannot serve a query now, or nil.
func (s *SQLite) usable(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errClosed()
	}
	return nil
}

// sqliteError is err from SQLite as the domain's error: a context's ending
// stays itself (wrapped), anything else is CodeUnavailable.
func sqliteError(op string, err error) error {
	if isContextError(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &calls.Error{Code: calls.CodeUnavailable, Op: op, Message: "the history file failed", Err: err}
}
