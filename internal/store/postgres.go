package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard/switchboard/internal/calls"
)

// Postgres is the store that keeps history for good, in Postgres.
//
// Journal first. Record only takes the change into a queue in memory,
// giving it its key (a version that grows with every change, and from it
// each event's key), and never blocks on I/O. A journaler goroutine
// encodes what is queued and appends it to a local journal file in
// SpoolDir, with one fsync for all the changes that waited (group
// commit); Durable returns once the changes recorded before it are there,
// and the API acknowledges a change only then, so a kill at any moment
// loses nothing acknowledged. The writer goroutine then writes the
// journaled changes to Postgres in batches, each batch one transaction
// that COPYs rows in, from memory (or, for those that came while
// QueueSize changes already waited, read back from the journal), and consumes them from the
// journal once written. A retried or replayed batch never doubles a row,
// and an older view of a call never overwrites a newer one, so a change
// written twice (a crash between the write and the consume) changes
// nothing.
//
// When Postgres is down or slow, the writer retries with exponential
// backoff and jitter while the journal keeps the changes; OpenPostgres
// writes what an earlier run left in it before anything else. Close
// writes what is waiting, and leaves in the journal what Postgres did not
// take before its context ended. Ready says how far behind the store is
// while it is. An alive mark in SpoolDir, rewritten every 100 ms, dates a
// crash for RecoverCrashed even when the database's heartbeat could not
// be written.
//
// Several switchboards may share a database as the nodes of a cluster,
// each with its own PostgresOptions.Node: every call records the node that
// runs it, and every node keeps its own heartbeat row. RecoverCrashed ends
// only this node's calls; RecoverNode lets a surviving node end a dead
// node's. A single switchboard is node "". Each node uses its own spool
// directory, and one store uses a spool directory at a time.
//
// The store keeps the Call values and Events it is given until the
// journaler has encoded them, and the caller must not change them
// afterwards (the switchboard hands over fresh views). Timeline Data comes
// back as json.RawMessage.
type Postgres struct {
	pool  *pgxpool.Pool
	opt   PostgresOptions
	log   *slog.Logger
	spool *spool // the journal
	alive *aliveMark

	// Set by OpenPostgres. Every version of this node up to openVersion
	// was given by an earlier run; lastBeat is when that run was last
	// known alive (its heartbeat or its alive mark; zero: neither).
	openVersion int64
	lastBeat    time.Time

	mu       sync.Mutex
	closed   bool
	queue    []queued // taken by Record, not yet by the journaler
	version  int64    // the last version given
	enqueued uint64   // changes Record took in this run
	// journaled counts the changes of this run in the journal on disk;
	// handoff holds them for the writer until it takes them.
	journaled       uint64
	handoff         []change
	journalProgress chan struct{} // closed and replaced when journaled grows or the journaler stops
	journalStopped  bool          // the journaler has returned
	written         uint64        // of those, how many are in Postgres (or given up on)
	flushTo         uint64        // Flush wants the changes up to here written at once
	spooled         int           // changes in the journal only, not in memory
	oldest          time.Time     // when the oldest change the writer holds in memory was recorded
	lastErr         error         // of the last write; nil after a success
	failedAt        time.Time     // when writes started failing
	progress        chan struct{} // closed and replaced when written grows or the writer stops
	stopped         bool          // the writer has returned

	wake        chan struct{}      // nudges the writer; capacity 1
	journalWake chan struct{}      // nudges the journaler; capacity 1
	closing     chan struct{}      // closed by Close
	journalDone chan struct{}      // closed when the journaler returns
	done        chan struct{}      // closed when the writer returns
	cancelRun   context.CancelFunc // ends the writer's context
	closeOnce   sync.Once
	teardown    sync.Once
	runErr      error // the writer's, set before done closes
	closeErr    error
}

var _ calls.Store = (*Postgres)(nil)

// queued is a record as Record takes it.
type queued struct {
	rec     calls.Record
	version int64
	at      time.Time
}

// PostgresOptions tunes the Postgres store. Zero fields take the defaults.
type PostgresOptions struct {
	// Node names this switchboard among those that share the database
	// (the nodes of a cluster; each must have its own). Its calls are
	// recorded as its, its heartbeat is its own row, and RecoverCrashed
	// ends only its calls. Default "": a single switchboard, and the
	// calls written before nodes were recorded.
	Node string
	// SpoolDir holds the journal, where every change is on disk before it
	// is acknowledged and until it is in Postgres, and the alive mark.
	// Default: switchboard-spool in os.UserCacheDir.
	SpoolDir string
	// QueueSize is how many journaled changes the writer holds in memory
	// (besides the batch being written); past that, newer changes wait in
	// the journal only, and are read back from it. Default 16384.
	QueueSize int
	// BatchSize is how many changes the writer writes in one transaction,
	// and the journaler appends with one fsync, at most. Changes to the
	// same call in a batch cost one write of its row. Default 4096.
	BatchSize int
	// FlushInterval is how long a change may wait for others to share its
	// batch. Default 20ms.
	FlushInterval time.Duration
	// WriteTimeout bounds one batch's transaction; one that takes longer
	// fails, and is retried. Default 10s.
	WriteTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between failed writes.
	// Defaults 100ms and 10s.
	RetryMin, RetryMax time.Duration
	// HeartbeatInterval is how often the writer notes that the switchboard
	// is alive, which dates a crash for RecoverCrashed. Default 5s.
	HeartbeatInterval time.Duration
	// AliveWithin, when set, makes RecoverNode end nothing while the
	// node's heartbeat is younger than this by this node's clock: the
	// node is alive again (see RecoverNode). Cluster nodes set it to the
	// cluster's AliveWithin. Default 0: RecoverNode ends whatever the node
	// has live.
	AliveWithin time.Duration
	// MaxLag is how old the oldest change waiting in memory may be before
	// Ready reports the store behind. Default 5s.
	MaxLag time.Duration
	// Logger receives the store's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o PostgresOptions) withDefaults() (PostgresOptions, error) {
	if o.SpoolDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("no spool directory given and no user cache directory: %w", err)
		}
		o.SpoolDir = filepath.Join(dir, "switchboard-spool")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.QueueSize, 16384)
	def(&o.BatchSize, 4096)
	defDur(&o.FlushInterval, 20*time.Millisecond)
	defDur(&o.WriteTimeout, 10*time.Second)
	defDur(&o.RetryMin, 100*time.Millisecond)
	defDur(&o.RetryMax, 10*time.Second)
	o.RetryMax = max(o.RetryMax, o.RetryMin)
	defDur(&o.HeartbeatInterval, 5*time.Second)
	defDur(&o.MaxLag, 5*time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// OpenPostgres opens the history store in the database at databaseURL: it
// applies the migrations (see Migrate), connects, writes any changes an
// earlier run left in the journal, and starts the journaler and the
// writer. It fails when
// Postgres cannot be reached; outages after it returns are the writer's to
// ride out. The caller then calls RecoverCrashed once, before taking calls,
// and Close when done.
func OpenPostgres(ctx context.Context, databaseURL string, opt PostgresOptions) (*Postgres, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	log := opt.Logger
	if err := Migrate(ctx, databaseURL, log); err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	cfg.AfterConnect = createStaging
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	sp, err := openSpool(opt.SpoolDir, log)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	p := &Postgres{
		pool:            pool,
		opt:             opt,
		log:             log,
		spool:           sp,
		progress:        make(chan struct{}),
		journalProgress: make(chan struct{}),
		wake:            make(chan struct{}, 1),
		journalWake:     make(chan struct{}, 1),
		closing:         make(chan struct{}),
		journalDone:     make(chan struct{}),
		done:            make(chan struct{}),
	}
	fail := func(err error) (*Postgres, error) {
		sp.close()
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	beat, err := p.openHeartbeat(ctx)
	if err != nil {
		return fail(err)
	}
	p.lastBeat = beat
	alivePath := filepath.Join(opt.SpoolDir, aliveFile)
	mark, err := readAlive(alivePath)
	if err != nil {
		return fail(err)
	}
	p.lastBeat = later(p.lastBeat, mark)
	if err := p.replay(ctx); err != nil {
		return fail(err)
	}
	if p.alive, err = startAlive(alivePath, log); err != nil {
		return fail(err)
	}
	p.openVersion = p.version
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancelRun = cancel
	go p.journal(runCtx)
	go p.run(runCtx)
	return p, nil
}

// openHeartbeat makes sure this node has its heartbeat row, and answers
// the time it holds (zero: never written). It starts the versions above
// the highest any node wrote.
func (p *Postgres) openHeartbeat(ctx context.Context) (time.Time, error) {
	if _, err := p.pool.Exec(ctx, `INSERT INTO switchboard_heartbeat (node) VALUES ($1) ON CONFLICT DO NOTHING`, p.opt.Node); err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of node %q: %w", p.opt.Node, err)
	}
	var beat *time.Time
	if err := p.pool.QueryRow(ctx, `
SELECT (SELECT at FROM switchboard_heartbeat WHERE node = $1), max(max_version) FROM switchboard_heartbeat`,
		p.opt.Node).Scan(&beat, &p.version); err != nil {
		return time.Time{}, fmt.Errorf("read heartbeat of node %q: %w", p.opt.Node, err)
	}
	if beat == nil {
		return time.Time{}, nil
	}
	return *beat, nil
}

// Record takes changes for journaling and writing and returns at once; it
// never blocks on I/O (Durable waits for the journal). Each change gets its
// version, one higher than any before. A record
// without a call id is ignored, and so is everything recorded after Close.
func (p *Postgres) Record(recs ...calls.Record) {
	now := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	wasEmpty := len(p.queue) == 0
	for i := range recs {
		if recs[i].Call.ID == "" {
			continue
		}
		p.version = max(p.version+1, now.UnixNano())
		p.queue = append(p.queue, queued{rec: recs[i], version: p.version, at: now})
		p.enqueued++
	}
	n := len(p.queue)
	p.mu.Unlock()
	if n > 0 && wasEmpty {
		select {
		case p.journalWake <- struct{}{}:
		default:
		}
	}
}

// nudge wakes the writer if it waits.
func (p *Postgres) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Flush returns once everything recorded before it is in Postgres, or with
// an error when ctx ends first (while Postgres is out of reach, say) or the
// store closed with changes left in the spool.
func (p *Postgres) Flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.enqueued
	p.flushTo = max(p.flushTo, target)
	p.mu.Unlock()
	p.nudge()
	for {
		p.mu.Lock()
		written, ch, stopped := p.written, p.progress, p.stopped
		p.mu.Unlock()
		if written >= target {
			return nil
		}
		if stopped {
			return calls.Errorf(calls.CodeUnavailable, "the history store closed with %d changes not written to Postgres (kept in the journal in %s)", target-written, p.opt.SpoolDir)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			err := fmt.Errorf("flush: %w", ctx.Err())
			if behind := p.behind(); behind != nil {
				err = fmt.Errorf("flush: %w (%w)", ctx.Err(), behind)
			}
			return err
		}
	}
}

// Ready answers nil when the store keeps up and Postgres answers. Otherwise
// it answers a *calls.Error with CodeUnavailable: the store is closed, is
// behind (changes waiting in the journal only, writes failing while changes wait, or the oldest
// change waiting older than MaxLag; the message says how far behind), or
// Postgres does not answer.
func (p *Postgres) Ready(ctx context.Context) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errClosed()
	}
	if err := p.behind(); err != nil {
		return err
	}
	if err := p.pool.Ping(ctx); err != nil {
		return &calls.Error{Code: calls.CodeUnavailable, Op: "ready", Message: "the history database does not answer", Err: err}
	}
	return nil
}

// behind answers an error saying how far behind the store is, or nil when
// it keeps up.
func (p *Postgres) behind() error {
	now := time.Now()
	p.mu.Lock()
	waiting := p.enqueued - p.written
	spooled, lastErr, failedAt := p.spooled, p.lastErr, p.failedAt
	oldest := p.oldest
	if len(p.queue) > 0 && (oldest.IsZero() || p.queue[0].at.Before(oldest)) {
		oldest = p.queue[0].at
	}
	p.mu.Unlock()
	if waiting == 0 {
		return nil
	}
	age := time.Duration(0)
	if !oldest.IsZero() {
		age = now.Sub(oldest)
	}
	if spooled == 0 && lastErr == nil && age <= p.opt.MaxLag {
		return nil
	}
	msg := fmt.Sprintf("the history store is behind: %d changes not yet in Postgres (%d only in the journal in %s, %d in memory too)",
		waiting, spooled, p.opt.SpoolDir, waiting-min(waiting, uint64(spooled)))
	if age > 0 {
		msg += fmt.Sprintf("; the oldest in memory waits for %s", age.Round(time.Millisecond))
	}
	e := calls.Errorf(calls.CodeUnavailable, "%s", msg)
	if lastErr != nil {
		e.Message += fmt.Sprintf("; writes have failed for %s", now.Sub(failedAt).Round(time.Millisecond))
		e.Err = lastErr
	}
	return e
}

// Close stops taking changes, journals those queued and writes those
// waiting. While Postgres is out of reach, it retries until ctx ends, then
// returns, leaving what remains in the journal: the next OpenPostgres
// with the same SpoolDir writes it. Closing
// again waits for the first Close and answers the same.
func (p *Postgres) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.closing)
		p.nudge()
	})
	stop := context.AfterFunc(ctx, p.cancelRun)
	defer stop()
	<-p.journalDone
	<-p.done
	p.teardown.Do(func() {
		p.cancelRun()
		p.pool.Close()
		p.closeErr = errors.Join(p.runErr, p.alive.close(), p.spool.removeIfDone(), p.spool.close())
	})
	return p.closeErr
}

// isContextError reports whether err is a context's ending.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
