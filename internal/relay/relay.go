package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/eventlog"
)

// Headers the relay adds to each event.
const (
	NodeHeader       = "Sb-Node"
	SupervisedHeader = "Sb-Supervised"
	// CountHeader is <epoch>.<worker>.<n>: the worker's count of the
	// events it was given since the relay started at epoch, dropped ones
	// included, so that a follower finds a lost one by the gap.
	CountHeader = "Sb-Relay-Count"
	// HubSeqHeader is the event's seq in its identity's stream on the
	// node that published it (the seq its consoles see there), when it
	// has one: a stream of the identity on another node numbers it the
	// same, and EventsSince replays by it.
	HubSeqHeader = "Sb-Hub-Seq"
	// LostHeader marks an event of the supervised feed that is no event:
	// the node it names lost supervised events before it (see Config.Feed).
	LostHeader = "Sb-Lost"
)

// Defaults for a zero Config.
const (
	DefaultWorkers         = 16
	DefaultQueueSize       = 4096
	DefaultAppendTimeout   = 5 * time.Second
	DefaultAttemptTimeout  = time.Second
	DefaultSnapshotStall   = 50 * time.Millisecond
	DefaultSnapshotTimeout = time.Second
)

// Sink takes the other nodes' events: the hub's DeliverRemote.
type Sink interface {
	// DeliverRemote takes an event of identity with its seq in the
	// identity's stream on the node that published it (0 when it is not
	// in that stream: Relay).
	DeliverRemote(identity string, seq uint64, supervised bool, body []byte)
	// LostRemote is told that some other node's events will never come
	// (it dropped or failed to append them): the supervisors' connections
	// start over from a snapshot.
	LostRemote()
}

// SupervisedSink takes the supervised events numbered by the feed
// (Config.Feed): the hub's supervisors' stream.
type SupervisedSink interface {
	Sink
	// StartSupervised is told the feed's last seq when the relay began
	// following it: the next event delivered is last+1. It is called
	// before any DeliverSupervised.
	StartSupervised(last uint64)
	// DeliverSupervised takes a supervised event with its seq in the
	// feed, in order, each once.
	DeliverSupervised(seq uint64, body []byte)
	// LostSupervised is told that seq is a loss marker: some node lost
	// supervised events (a full queue, a publish that failed for
	// AppendTimeout) before it. No replay may cross it.
	LostSupervised(seq uint64)
}

// Config is a relay's configuration.
type Config struct {
	// Node is this node's id.
	Node string
	// Log is the cluster's event log.
	Log *eventlog.Log
	// Conn carries the snapshot requests.
	Conn *nats.Conn
	// SnapshotSubject is where nodes answer snapshot requests.
	SnapshotSubject string
	// Sink takes the other nodes' events.
	Sink Sink
	// Snapshot is this node's supervised snapshot.
	Snapshot func() calls.Snapshot
	// Feed, when set, numbers the supervised events for every node: the
	// relay publishes each of this node's there too, and hands every
	// node's (its own included) to the sink's DeliverSupervised with the
	// feed's seq, instead of handing the other nodes' supervised events to
	// DeliverRemote. The sink must then be a SupervisedSink.
	Feed *eventlog.Feed

	Workers       int           // appending goroutines (DefaultWorkers)
	QueueSize     int           // events each worker may fall behind by (DefaultQueueSize)
	AppendTimeout time.Duration // per append, retries included (DefaultAppendTimeout)
	// AttemptTimeout bounds each try of an append (DefaultAttemptTimeout,
	// at most AppendTimeout): a publish sent as NATS went away gets no
	// answer, and without it that one try would wait out AppendTimeout
	// although NATS came back meanwhile.
	AttemptTimeout  time.Duration
	SnapshotStall   time.Duration // DefaultSnapshotStall
	SnapshotTimeout time.Duration // DefaultSnapshotTimeout
	Logger          *slog.Logger
}

type item struct {
	identity   string
	seq        uint64 // HubSeqHeader's value, 0: none
	supervised bool
	body       []byte
	count      string // CountHeader's value
}

// queue is one worker's: n counts the events given to it.
type queue struct {
	mu sync.Mutex
	n  uint64
	c  chan item
}

// Relay publishes this node's events and follows the others'. Close stops
// it.
type Relay struct {
	cfg    Config
	log    *slog.Logger
	queues []*queue
	epoch  string         // when the relay started, for CountHeader
	wg     sync.WaitGroup // the workers
	ctx    context.Context
	cancel context.CancelFunc
	msgIDs atomic.Uint64

	follower *eventlog.Follower
	feedFl   *eventlog.Follower // following Config.Feed, or nil
	sub      *nats.Subscription
	// lost is signalled when a supervised event was lost: markLost
	// publishes a loss marker on the feed.
	lost chan struct{}
	bg   sync.WaitGroup // markLost

	// hold is held while a supervisor's connection gathers snapshots:
	// the other nodes' events wait for it. It also guards counts.
	hold sync.Mutex
	// counts is the last count followed per node, epoch and worker.
	counts map[string]uint64

	closeOnce sync.Once
	mu        sync.RWMutex // guards closed against Relay
	closed    bool

	dropped  atomic.Uint64
	failed   atomic.Uint64
	appended atomic.Uint64
	bytes    atomic.Uint64
}

// Start follows the log, answers snapshot requests and starts the workers.
func Start(cfg Config) (*Relay, error) {
	if cfg.Node == "" || cfg.Log == nil || cfg.Conn == nil || cfg.Sink == nil || cfg.Snapshot == nil || cfg.SnapshotSubject == "" {
		return nil, errors.New("relay: Node, Log, Conn, SnapshotSubject, Sink and Snapshot are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.AppendTimeout <= 0 {
		cfg.AppendTimeout = DefaultAppendTimeout
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	cfg.AttemptTimeout = min(cfg.AttemptTimeout, cfg.AppendTimeout)
	if cfg.SnapshotStall <= 0 {
		cfg.SnapshotStall = DefaultSnapshotStall
	}
	if cfg.SnapshotTimeout <= 0 {
		cfg.SnapshotTimeout = DefaultSnapshotTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Relay{cfg: cfg, log: cfg.Logger.With("node", cfg.Node), counts: map[string]uint64{},
		epoch: strconv.FormatInt(time.Now().UnixNano(), 36)}
	r.ctx, r.cancel = context.WithCancel(context.Background())

	// The follower lives until Close, not until ctx ends.
	f, err := cfg.Log.Follow(r.ctx, eventlog.All, r.follow)
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("relay: %w", err)
	}
	r.follower = f
	if cfg.Feed != nil {
		ss, ok := cfg.Sink.(SupervisedSink)
		if !ok {
			f.Stop()
			r.cancel()
			return nil, errors.New("relay: with a Feed the Sink must be a SupervisedSink")
		}
		// The first event waits in followFeed until the sink knows where
		// the feed stood.
		r.hold.Lock()
		fl, last, err := cfg.Feed.Follow(r.ctx, r.followFeed)
		if err == nil {
			ss.StartSupervised(last)
		}
		r.hold.Unlock()
		if err != nil {
			f.Stop()
			r.cancel()
			return nil, fmt.Errorf("relay: %w", err)
		}
		r.feedFl = fl
		r.lost = make(chan struct{}, 1)
		r.bg.Add(1)
		go r.markLost()
	}
	r.sub, err = cfg.Conn.Subscribe(cfg.SnapshotSubject, r.answer)
	if err != nil {
		r.stopFollowing()
		r.cancel()
		return nil, fmt.Errorf("relay: answer snapshots on %s: %w", cfg.SnapshotSubject, err)
	}
	r.queues = make([]*queue, cfg.Workers)
	for i := range r.queues {
		r.queues[i] = &queue{c: make(chan item, cfg.QueueSize)}
		r.wg.Add(1)
		go r.work(r.queues[i].c)
	}
	return r, nil
}

// Relay queues an event for the other nodes that is not in identity's
// stream on this node (it has no seq there: the other nodes' supervisors
// see it, not the identity's streams); it never blocks.
func (r *Relay) Relay(identity string, supervised bool, body []byte) {
	r.RelaySeq(identity, 0, supervised, body)
}

// RelaySeq queues an event for the other nodes, with its seq in identity's
// stream on this node (0: none); it never blocks.
func (r *Relay) RelaySeq(identity string, seq uint64, supervised bool, body []byte) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(identity))
	w := h.Sum32() % uint32(len(r.queues))
	q := r.queues[w]
	q.mu.Lock() // the counts go in the queue in order
	defer q.mu.Unlock()
	q.n++
	count := r.epoch + "." + strconv.FormatUint(uint64(w), 10) + "." + strconv.FormatUint(q.n, 10)
	select {
	case q.c <- item{identity, seq, supervised, body, count}:
	default:
		if supervised {
			r.supervisedLost()
		}
		if n := r.dropped.Add(1); n&(n-1) == 0 { // 1, 2, 4, 8, …
			r.log.Warn("relay: queue full: an event is lost to the other nodes", "agent_id", identity, "dropped", n)
		}
	}
}

// work appends one queue's events, in order.
func (r *Relay) work(q chan item) {
	defer r.wg.Done()
	for it := range q {
		r.append(it)
	}
}

// append appends one event, retrying with the same message id so that the
// stream stores it once: each try for AttemptTimeout at most, all of them
// for AppendTimeout.
func (r *Relay) append(it item) {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.AppendTimeout)
	defer cancel()
	// The epoch too: a node restarted with the same id within the
	// stream's duplicate window would otherwise send its first run's ids
	// again, and the stream would drop its events as duplicates.
	id := r.cfg.Node + "-" + r.epoch + "-" + strconv.FormatUint(r.msgIDs.Add(1), 36)
	opts := []eventlog.AppendOption{
		eventlog.WithMsgID(id), eventlog.WithHeader(NodeHeader, r.cfg.Node),
		eventlog.WithHeader(CountHeader, it.count),
	}
	if it.supervised {
		opts = append(opts, eventlog.WithHeader(SupervisedHeader, "true"))
	}
	if it.seq != 0 {
		opts = append(opts, eventlog.WithHeader(HubSeqHeader, strconv.FormatUint(it.seq, 10)))
	}
	if it.supervised && r.cfg.Feed != nil {
		defer r.publishSupervised(it, id)
	}
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, r.cfg.AttemptTimeout)
		_, err := r.cfg.Log.Append(attempt, it.identity, it.body, opts...)
		cancelAttempt()
		if err == nil {
			r.appended.Add(1)
			r.bytes.Add(uint64(len(it.body)))
			return
		}
		if ctx.Err() != nil {
			r.failed.Add(1)
			r.log.Warn("relay: an event is lost to the other nodes", "agent_id", it.identity, "err", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// follow hands another node's event to the sink, after telling it of a
// gap in the node's counts.
func (r *Relay) follow(e eventlog.Entry) {
	node := e.Header.Get(NodeHeader)
	if node == r.cfg.Node {
		return
	}
	r.hold.Lock()
	defer r.hold.Unlock()
	if key, n, ok := splitCount(node, e.Header.Get(CountHeader)); ok {
		if last, seen := r.counts[key]; seen && n > last+1 {
			r.log.Warn("relay: another node's events were lost", "from", node, "lost", n-last-1)
			r.cfg.Sink.LostRemote()
		}
		r.counts[key] = n
	}
	supervised := e.Header.Get(SupervisedHeader) == "true" && r.cfg.Feed == nil // else the feed delivers it
	r.cfg.Sink.DeliverRemote(e.Identity, hubSeq(e), supervised, e.Payload)
}

// splitCount reads CountHeader's value: the key of its node, epoch and
// worker, and its count.
func splitCount(node, v string) (key string, n uint64, ok bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(v[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return node + "/" + v[:i], n, true
}

// snapshotRequest is what Snapshots sends.
type snapshotRequest struct {
	From string `json:"from"`
}

// answer serves a snapshot request. To its own it answers at once with
// nothing but its id, so that the requester's wait starts (see
// Snapshots) even when no other node answers.
func (r *Relay) answer(msg *nats.Msg) {
	var req snapshotRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil || msg.Reply == "" {
		return
	}
	reply := &nats.Msg{Subject: msg.Reply, Header: nats.Header{NodeHeader: []string{r.cfg.Node}}}
	if req.From == r.cfg.Node {
		if err := r.cfg.Conn.PublishMsg(reply); err != nil {
			r.log.Warn("relay: answer own snapshot request", "err", err)
		}
		return
	}
	body, err := json.Marshal(r.cfg.Snapshot())
	if err != nil {
		r.log.Error("relay: encode snapshot", "err", err)
		return
	}
	reply.Data = body
	if err := r.cfg.Conn.PublishMsg(reply); err != nil {
		r.log.Warn("relay: answer snapshot", "to", req.From, "err", err)
	}
}

// Snapshots gathers the other nodes' supervised snapshots and holds their
// events back until release is called (see api.Peers). A node that does
// not answer in time is left out.
func (r *Relay) Snapshots(ctx context.Context) (snaps []calls.Snapshot, release func()) {
	r.hold.Lock()
	release = sync.OnceFunc(r.hold.Unlock)
	inbox := r.cfg.Conn.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := r.cfg.Conn.ChanSubscribe(inbox, replies)
	if err != nil {
		r.log.Warn("relay: gather snapshots", "err", err)
		return nil, release
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(snapshotRequest{From: r.cfg.Node})
	if err := r.cfg.Conn.PublishRequest(r.cfg.SnapshotSubject, inbox, req); err != nil {
		r.log.Warn("relay: gather snapshots", "err", err)
		return nil, release
	}
	deadline := time.NewTimer(r.cfg.SnapshotTimeout)
	defer deadline.Stop()
	var stall <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return snaps, release
		case <-deadline.C:
			return snaps, release
		case <-stall:
			return snaps, release
		case m := <-replies:
			stall = time.After(r.cfg.SnapshotStall)
			if m.Header.Get(NodeHeader) == r.cfg.Node || len(m.Data) == 0 {
				continue // its own answer, or no responders (status 503)
			}
			var s calls.Snapshot
			if err := json.Unmarshal(m.Data, &s); err != nil {
				r.log.Warn("relay: a node's snapshot is malformed", "err", err)
				continue
			}
			snaps = append(snaps, s)
		}
	}
}

// Stats counts the events appended (and their payloads' bytes), dropped
// (queue full) and failed.
type Stats struct{ Appended, Bytes, Dropped, Failed uint64 }

// Stats answers the counts so far.
func (r *Relay) Stats() Stats {
	return Stats{Appended: r.appended.Load(), Bytes: r.bytes.Load(), Dropped: r.dropped.Load(), Failed: r.failed.Load()}
}

// Close stops taking events, appends those queued (until ctx ends), then
// stops following and answering.
func (r *Relay) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		for _, q := range r.queues {
			close(q.c)
		}
		r.mu.Unlock()
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			r.cancel()
			<-done
		}
		r.cancel()
		r.bg.Wait()
		_ = r.sub.Unsubscribe()
		r.stopFollowing()
	})
	return nil
}

// stopFollowing stops following the log and the feed.
func (r *Relay) stopFollowing() {
	r.follower.Stop()
	if r.feedFl != nil {
		r.feedFl.Stop()
	}
}
