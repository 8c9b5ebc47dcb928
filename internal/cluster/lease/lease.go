package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// DefaultTTL is a lease's life without renewal when Config.TTL is zero.
const DefaultTTL = 3 * time.Second

// MinTTL is the shortest TTL: the bucket's duplicate window is the TTL,
// and JetStream's shortest is 100 ms.
const MinTTL = 100 * time.Millisecond

var (
	// ErrHeld is wrapped by Acquire's *HeldError when another node holds a
	// live lease on the identity.
	ErrHeld = errors.New("lease: held by another node")
	// ErrNoOwner is answered by Owner when no node holds the identity.
	ErrNoOwner = errors.New("lease: no owner")
	// ErrClosed is answered after Close.
	ErrClosed = errors.New("lease: closed")
	// ErrInvalid is answered for an empty identity or a bad Config.
	ErrInvalid = errors.New("lease: invalid")
)

// HeldError says which node holds the identity Acquire asked for.
type HeldError struct {
	Identity string
	Node     string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("lease: %q is held by node %q", e.Identity, e.Node)
}

// Unwrap makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Unwrap() error { return ErrHeld }

// Config names the bucket, this node and the leases' life.
type Config struct {
	// Bucket is the key-value bucket's name; it is created when missing,
	// and its MaxAge set to TTL when it exists.
	Bucket string
	// Node is this node's name, written in each lease's value (with a
	// token of this run: see the package doc). It must be
	// unique among live processes: a process takes over the leases its
	// Node name holds, as a restarted node takes its earlier run's.
	Node string
	// TTL is how long a lease lives without renewal (DefaultTTL when 0).
	// Leases are renewed every TTL/3.
	TTL time.Duration
	// Storage is the bucket's storage (file by default).
	Storage jetstream.StorageType
	// Logger receives renewal failures; slog.Default() when nil.
	Logger *slog.Logger
}

// Change is one ownership change seen by Watch.
type Change struct {
	Identity string
	// Node is the new owner; empty when the identity has none (released
	// or expired).
	Node string
	// Revision is the key's revision for a write or a release; for an
	// expiry, the last revision seen before it.
	Revision uint64
	// Expired says no renewal was seen for a TTL (see the package doc).
	Expired bool
}

// held is one lease this node holds. mu serialises its renewal with its
// release, so that a release never races a renewal's new revision.
type held struct {
	mu       sync.Mutex
	value    []byte // what the lease's key holds: Leases.value, and its data (AcquireWith)
	rev      uint64
	renewed  time.Time // when the last successful write was sent
	released bool
}

// Leases holds this node's leases in one bucket and renews them until they
// are released, lost or closed.
type Leases struct {
	kv  jetstream.KeyValue
	cfg Config
	// value is what this run writes as each lease's value: the node's
	// name, a newline and a token drawn at New, so that this run knows
	// its own writes from those of another run under the same name.
	value []byte
	log   *slog.Logger
	stop  context.CancelFunc
	ctx   context.Context // cancelled by Close: ends the renewer, deliverer and watches
	wg    sync.WaitGroup

	mu     sync.Mutex
	held   map[string]*held
	closed bool

	lostMu   sync.Mutex
	lostQ    []string
	lostWake chan struct{}
	lost     chan string
}

// New opens (creating or updating) the bucket and starts the renewer.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Leases, error) {
	if cfg.Bucket == "" || cfg.Node == "" || cfg.TTL < 0 || (cfg.TTL > 0 && cfg.TTL < MinTTL) {
		return nil, fmt.Errorf("lease: new: bucket %q, node %q and a TTL of at least %v are required: %w", cfg.Bucket, cfg.Node, MinTTL, ErrInvalid)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Storage == 0 {
		cfg.Storage = jetstream.FileStorage
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "Switchboard identity leases",
		TTL:         cfg.TTL,
		Storage:     cfg.Storage,
	})
	if err != nil {
		return nil, fmt.Errorf("lease: open bucket %s: %w", cfg.Bucket, err)
	}
	var token [16]byte
	if _, err := rand.Read(token[:]); err != nil {
		return nil, fmt.Errorf("lease: new: draw this run's token: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	l := &Leases{
		kv:       kv,
		cfg:      cfg,
		value:    []byte(cfg.Node + "\n" + hex.EncodeToString(token[:])),
		log:      cfg.Logger.With("node", cfg.Node, "bucket", cfg.Bucket),
		ctx:      runCtx,
		stop:     stop,
		held:     map[string]*held{},
		lostWake: make(chan struct{}, 1),
		lost:     make(chan string),
	}
	l.wg.Add(2)
	go l.renewLoop()
	go l.deliverLost()
	return l, nil
}

// Key is the bucket key of identity: base64url without padding.
func Key(identity string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(identity))
}

// ownerOf answers the node name in a lease's value: what precedes its
// first newline, or the whole value when it has none (a value written
// before the values carried a token). Node names have no newline.
func ownerOf(value []byte) string {
	v := string(value)
	if i := strings.IndexByte(v, '\n'); i >= 0 {
		return v[:i]
	}
	return v
}

// dataOf answers the data a lease's value carries (AcquireWith): what
// follows its second newline, or "".
func dataOf(value []byte) string {
	_, rest, _ := strings.Cut(string(value), "\n")
	_, data, _ := strings.Cut(rest, "\n")
	return data
}

// identityOf decodes a bucket key.
func identityOf(key string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return "", fmt.Errorf("lease: key %q is not an encoded identity: %w", key, err)
	}
	return string(b), nil
}

// Acquire takes the lease on identity for this node. It answers nil when
// this node already holds it, and a *HeldError (wrapping ErrHeld) when
// another node holds a live one. A lease left by an earlier run of this
// node (same Node name) is taken over.
func (l *Leases) Acquire(ctx context.Context, identity string) error {
	return l.AcquireWith(ctx, identity, "")
}

// AcquireWith is Acquire with data written in the lease's value, for
// Lookup to answer (the conversation a room's anchor runs, for one). A
// lease this node holds already keeps its data.
func (l *Leases) AcquireWith(ctx context.Context, identity, data string) error {
	if identity == "" {
		return fmt.Errorf("lease: acquire: empty identity: %w", ErrInvalid)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	_, ok := l.held[identity]
	l.mu.Unlock()
	if ok {
		return nil
	}
	key := Key(identity)
	value := l.value
	if data != "" {
		value = append(slices.Clip(l.value), "\n"+data...)
	}
	// A few rounds: the key can expire or be released between Create's
	// refusal and the Get that reads the owner.
	for range 3 {
		sent := time.Now()
		rev, err := l.kv.Create(ctx, key, value)
		if err == nil {
			return l.keep(ctx, identity, value, rev, sent)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("lease: acquire %q: %w", identity, err)
		}
		e, err := l.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lease: acquire %q: read owner: %w", identity, err)
		}
		if owner := ownerOf(e.Value()); owner != l.cfg.Node {
			return &HeldError{Identity: identity, Node: owner}
		}
		sent = time.Now()
		rev, err = l.kv.Update(ctx, key, value, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lease: acquire %q: take over this node's earlier lease: %w", identity, err)
		}
		return l.keep(ctx, identity, value, rev, sent)
	}
	return fmt.Errorf("lease: acquire %q: the key kept changing", identity)
}

// keep records a lease just written; after Close it releases it at once.
func (l *Leases) keep(ctx context.Context, identity string, value []byte, rev uint64, sent time.Time) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = l.kv.Delete(ctx, Key(identity), jetstream.LastRevision(rev))
		return ErrClosed
	}
	l.held[identity] = &held{value: value, rev: rev, renewed: sent}
	l.mu.Unlock()
	return nil
}

// Owner answers the node holding identity, or ErrNoOwner.
func (l *Leases) Owner(ctx context.Context, identity string) (string, error) {
	if identity == "" {
		return "", fmt.Errorf("lease: owner: empty identity: %w", ErrInvalid)
	}
	e, err := l.kv.Get(ctx, Key(identity))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", fmt.Errorf("lease: owner of %q: %w", identity, ErrNoOwner)
	}
	if err != nil {
		return "", fmt.Errorf("lease: owner of %q: %w", identity, err)
	}
	return ownerOf(e.Value()), nil
}

// Lookup answers the node holding identity and the data its lease
// carries (AcquireWith), or ErrNoOwner.
func (l *Leases) Lookup(ctx context.Context, identity string) (node, data string, err error) {
	if identity == "" {
		return "", "", fmt.Errorf("lease: lookup: empty identity: %w", ErrInvalid)
	}
	e, err := l.kv.Get(ctx, Key(identity))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", "", fmt.Errorf("lease: lookup %q: %w", identity, ErrNoOwner)
	}
	if err != nil {
		return "", "", fmt.Errorf("lease: lookup %q: %w", identity, err)
	}
	return ownerOf(e.Value()), dataOf(e.Value()), nil
}

// Held says whether this node holds identity (as far as it knows).
func (l *Leases) Held(identity string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[identity]
	return ok
}

// Release gives up this node's lease on identity. Releasing a lease this
// node does not hold, or one another node has since taken, is not an error.
func (l *Leases) Release(ctx context.Context, identity string) error {
	l.mu.Lock()
	h, ok := l.held[identity]
	delete(l.held, identity)
	l.mu.Unlock()
	if !ok {
		return nil
	}
	return l.release(ctx, identity, h)
}

func (l *Leases) release(ctx context.Context, identity string, h *held) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
	err := l.kv.Delete(ctx, Key(identity), jetstream.LastRevision(h.rev))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("lease: release %q: %w", identity, err)
	}
	return nil
}

// Lost delivers each identity whose lease this node lost: another node
// wrote it, it expired, or no renewal succeeded for a TTL. A lost lease is
// no longer held. The channel is never closed; reports are queued (never
// dropped) until read or Close.
func (l *Leases) Lost() <-chan string { return l.lost }

// Close stops renewing and releases every lease this node holds.
func (l *Leases) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	all := l.held
	l.held = map[string]*held{}
	l.mu.Unlock()
	l.stop()
	l.wg.Wait()
	var errs []error
	for id, h := range all {
		errs = append(errs, l.release(ctx, id, h))
	}
	return errors.Join(errs...)
}

// renewLoop rewrites every held lease each TTL/3.
func (l *Leases) renewLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			l.renewAll()
		}
	}
}

func (l *Leases) renewAll() {
	l.mu.Lock()
	ids := make(map[string]*held, len(l.held))
	for id, h := range l.held {
		ids[id] = h
	}
	l.mu.Unlock()
	// Renewals in flight at once: one connection carries them all, so a
	// pass over many leases takes a few round trips, not one per lease.
	var g errgroup.Group
	g.SetLimit(renewConcurrency)
	for id, h := range ids {
		if l.ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if l.renew(id, h) {
				return nil
			}
			l.mu.Lock()
			if l.held[id] == h {
				delete(l.held, id)
			}
			l.mu.Unlock()
			l.report(id)
			return nil
		})
	}
	_ = g.Wait() // the goroutines report failures on Lost, never as errors
}

// renewConcurrency bounds the renewals in flight.
const renewConcurrency = 64

// renew rewrites one lease; false means it is lost.
func (l *Leases) renew(identity string, h *held) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return true
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.TTL/3)
	defer cancel()
	sent := time.Now()
	rev, err := l.kv.Update(ctx, Key(identity), h.value, h.rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// The key moved past h.rev. If it still holds this run's value,
		// the write was this node's own: a renewal the bucket stored
		// whose answer was lost (NATS went away). Adopt its revision and
		// renew from there.
		var adopted bool
		if adopted, err = l.adopt(ctx, identity, h); adopted {
			sent = time.Now()
			rev, err = l.kv.Update(ctx, Key(identity), h.value, h.rev)
		}
	}
	switch {
	case err == nil:
		h.rev, h.renewed = rev, sent
		return true
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, errNotOurs):
		l.log.Warn("lease lost: the bucket refused its renewal", "identity", identity, "revision", h.rev, "err", err)
		return false
	case l.ctx.Err() != nil:
		return true // closing: Close releases it
	case time.Since(h.renewed) >= l.cfg.TTL:
		l.log.Warn("lease lost: no renewal succeeded for a TTL", "identity", identity, "ttl", l.cfg.TTL, "err", err)
		return false
	default:
		l.log.Warn("lease renewal failed; retrying", "identity", identity, "err", err)
		return true
	}
}

// errNotOurs says a refused renewal's key no longer holds this run's lease.
var errNotOurs = errors.New("lease: the key holds another lease")

// adopt reads identity's key after a renewal refused for its revision.
// When the key still holds this run's value it sets h.rev to the key's
// revision and answers true. It answers an error wrapping errNotOurs when
// another lease is there (another node's, another run's of this node, or
// none), and any other error when the key could not be read.
func (l *Leases) adopt(ctx context.Context, identity string, h *held) (bool, error) {
	e, err := l.kv.Get(ctx, Key(identity))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return false, fmt.Errorf("lease: renew %q: the key is gone: %w", identity, errNotOurs)
	}
	if err != nil {
		return false, fmt.Errorf("lease: renew %q: read the key after a revision mismatch: %w", identity, err)
	}
	if !bytes.Equal(e.Value(), h.value) {
		return false, fmt.Errorf("lease: renew %q: held by %q at revision %d: %w", identity, ownerOf(e.Value()), e.Revision(), errNotOurs)
	}
	l.log.Info("lease renewal refused for its revision, but the key is still this node's: adopting its revision",
		"identity", identity, "revision", h.rev, "key_revision", e.Revision())
	h.rev = e.Revision()
	return true, nil
}

// report queues identity for Lost.
func (l *Leases) report(identity string) {
	l.lostMu.Lock()
	l.lostQ = append(l.lostQ, identity)
	l.lostMu.Unlock()
	select {
	case l.lostWake <- struct{}{}:
	default:
	}
}

// deliverLost hands queued lost identities to Lost's reader, so that the
// renewer never waits for it.
func (l *Leases) deliverLost() {
	defer l.wg.Done()
	for {
		l.lostMu.Lock()
		var next string
		ok := len(l.lostQ) > 0
		if ok {
			next, l.lostQ = l.lostQ[0], l.lostQ[1:]
		}
		l.lostMu.Unlock()
		if !ok {
			select {
			case <-l.ctx.Done():
				return
			case <-l.lostWake:
				continue
			}
		}
		select {
		case <-l.ctx.Done():
			return
		case l.lost <- next:
		}
	}
}
