package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/calls"
)

// JetStream is a Store in two JetStream key-value buckets, shared by every
// node of a cluster: Bucket keeps definitions (def.NAME), waiting calls
// (wait.NAME.CALL) and counters (count.NAME), updated by compare-and-set;
// Bucket+"_offers" keeps the agents' offer claims, which expire after
// ClaimTTL so that a node that dies mid-offer does not hold an agent for
// good.
//
// Each JetStream keeps a copy of the waiting calls, fed by a watcher on
// the bucket and by its own writes, from which it answers WaitingSummary
// (the engine's stats and a new call's position) without listing the
// bucket; Waiting still lists it. Close stops the watcher.
type JetStream struct {
	kv     jetstream.KeyValue
	offers jetstream.KeyValue
	cache  *waitCache

	defsMu sync.Mutex
	defs   map[string]sharedDef // SharedQueue's decoded definitions
}

// sharedDef is a definition as decoded at a revision of its key.
type sharedDef struct {
	rev uint64
	d   *Definition
}

// ClaimTTL bounds how long an agent's offer claim lives without being
// released; it is above the largest ring timeout.
const ClaimTTL = 15 * time.Minute

// MaxRingTimeout is the largest ringTimeoutSeconds (below ClaimTTL).
const MaxRingTimeout = 600

// OpenJetStream opens (creating when missing) the buckets.
func OpenJetStream(ctx context.Context, js jetstream.JetStream, bucket string, storage jetstream.StorageType) (*JetStream, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, Description: "Switchboard queues: definitions, waiting calls, counters", Storage: storage, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open bucket %s: %w", bucket, err)
	}
	offers, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket + "_offers", Description: "Switchboard queues: the agent each ringing offer holds", Storage: storage, TTL: ClaimTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open bucket %s_offers: %w", bucket, err)
	}
	cache, err := watchWaiting(context.WithoutCancel(ctx), kv)
	if err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", bucket, err)
	}
	select {
	case <-cache.ready:
	case <-ctx.Done():
		_ = cache.stop()
		return nil, fmt.Errorf("queue: read bucket %s: %w", bucket, ctx.Err())
	}
	return &JetStream{kv: kv, offers: offers, cache: cache}, nil
}

// Close stops the watcher that feeds the copy of the waiting calls.
func (j *JetStream) Close() error {
	if err := j.cache.stop(); err != nil {
		return fmt.Errorf("queue: stop the watcher: %w", err)
	}
	return nil
}

// WaitingSummary implements Summarizer from this node's copy of the
// waiting calls (other nodes' changes as fast as the watcher brings
// them); it lists the bucket when the watcher stopped.
func (j *JetStream) WaitingSummary(ctx context.Context, queue string) (Summary, error) {
	if s, ok := j.cache.summary(queue); ok {
		return s, nil
	}
	ws, err := j.Waiting(ctx, queue)
	if err != nil {
		return Summary{}, err
	}
	var s Summary
	for _, w := range ws {
		if s.Count == 0 || w.EnteredAt.Before(s.Oldest) {
			s.Oldest = w.EnteredAt
		}
		s.Count++
	}
	return s, nil
}

// enc makes a raw id or call id a key token (":" is not allowed in keys).
func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("queue: %s: %w", op, err)
	}
	return calls.Errorf(calls.CodeUnavailable, "queue store: %s: %v", op, err)
}

func (j *JetStream) putJSON(ctx context.Context, op, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("queue: %s: %w", op, err)
	}
	if _, err := j.kv.Put(ctx, key, b); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// PutQueue implements Store.
func (j *JetStream) PutQueue(ctx context.Context, d Definition) error {
	return j.putJSON(ctx, "put queue", "def."+d.Name, d)
}

// Queue implements Store.
func (j *JetStream) Queue(ctx context.Context, name string) (Definition, error) {
	d, err := j.SharedQueue(ctx, name)
	if err != nil {
		return Definition{}, err
	}
	return d.Clone(), nil
}

// SharedQueue implements Sharer: the key is read each time (another node
// may have replaced it), and decoded only when its revision changed.
func (j *JetStream) SharedQueue(ctx context.Context, name string) (*Definition, error) {
	e, err := j.kv.Get(ctx, "def."+name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, errNoQueue(name)
	}
	if err != nil {
		return nil, unavailable("get queue", err)
	}
	j.defsMu.Lock()
	c, ok := j.defs[name]
	j.defsMu.Unlock()
	if ok && c.rev == e.Revision() {
		return c.d, nil
	}
	d := new(Definition)
	if err := json.Unmarshal(e.Value(), d); err != nil {
		return nil, fmt.Errorf("queue: decode %s: %w", name, err)
	}
	j.defsMu.Lock()
	if j.defs == nil {
		j.defs = map[string]sharedDef{}
	}
	j.defs[name] = sharedDef{rev: e.Revision(), d: d}
	j.defsMu.Unlock()
	return d, nil
}

// keys answers the keys under prefix (none is no error).
func (j *JetStream) keys(ctx context.Context, prefix string) ([]string, error) {
	l, err := j.kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, unavailable("list keys", err)
	}
	var out []string
	for k := range l.Keys() {
		out = append(out, k)
	}
	return out, nil
}

// Queues implements Store.
func (j *JetStream) Queues(ctx context.Context) ([]Definition, error) {
	keys, err := j.keys(ctx, "def.")
	if err != nil {
		return nil, err
	}
	out := make([]Definition, 0, len(keys))
	for _, k := range keys {
		d, err := j.Queue(ctx, strings.TrimPrefix(k, "def."))
		if err != nil {
			if e, ok := errors.AsType[*calls.Error](err); ok && e.Code == calls.CodeNotFound {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out = append(out, d)
	}
	sortDefs(out)
	return out, nil
}

// PutWaiting implements Store.
func (j *JetStream) PutWaiting(ctx context.Context, w Waiting) error {
	key := "wait." + w.Queue + "." + enc(w.CallID)
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("queue: put waiting call: %w", err)
	}
	rev, err := j.kv.Put(ctx, key, b)
	if err != nil {
		return unavailable("put waiting call", err)
	}
	j.cache.put(key, w, rev)
	return nil
}

// DeleteWaiting implements Store.
func (j *JetStream) DeleteWaiting(ctx context.Context, queue, callID string) error {
	key := "wait." + queue + "." + enc(callID)
	if err := j.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable("delete waiting call", err)
	}
	j.cache.del(key, false)
	return nil
}

// TakeWaiting implements Store: a purge at the revision read, so that of
// nodes taking it at once one succeeds.
func (j *JetStream) TakeWaiting(ctx context.Context, queue, callID string) (bool, error) {
	key := "wait." + queue + "." + enc(callID)
	e, err := j.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("take waiting call", err)
	}
	err = j.kv.Purge(ctx, key, jetstream.LastRevision(e.Revision()))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence"):
		return false, nil // taken (or changed) meanwhile
	}
	return false, unavailable("take waiting call", err)
}

// Waiting implements Store.
func (j *JetStream) Waiting(ctx context.Context, queue string) ([]Waiting, error) {
	keys, err := j.keys(ctx, "wait."+queue+".")
	if err != nil {
		return nil, err
	}
	out := make([]Waiting, 0, len(keys))
	for _, k := range keys {
		e, err := j.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, unavailable("get waiting call", err)
		}
		var w Waiting
		if err := json.Unmarshal(e.Value(), &w); err != nil {
			return nil, fmt.Errorf("queue: decode waiting call %s: %w", k, err)
		}
		out = append(out, w)
	}
	sortWaiting(out)
	return out, nil
}

// AddCounters implements Store: a compare-and-set loop, so that nodes
// adding at once lose no count.
func (j *JetStream) AddCounters(ctx context.Context, queue string, delta Counters) (Counters, error) {
	key := "count." + queue
	for {
		var c Counters
		var rev uint64
		e, err := j.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return Counters{}, unavailable("get counters", err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				return Counters{}, fmt.Errorf("queue: decode counters of %s: %w", queue, err)
			}
		}
		c = c.add(delta)
		b, err := json.Marshal(c)
		if err != nil {
			return Counters{}, fmt.Errorf("queue: encode counters: %w", err)
		}
		if rev == 0 {
			_, err = j.kv.Create(ctx, key, b)
		} else {
			_, err = j.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !strings.Contains(err.Error(), "wrong last sequence") {
			return Counters{}, unavailable("update counters", err)
		}
		if ctx.Err() != nil {
			return Counters{}, fmt.Errorf("queue: update counters: %w", ctx.Err())
		}
	}
}

// Counters implements Store.
func (j *JetStream) Counters(ctx context.Context, queue string) (Counters, error) {
	e, err := j.kv.Get(ctx, "count."+queue)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Counters{}, nil
	}
	if err != nil {
		return Counters{}, unavailable("get counters", err)
	}
	var c Counters
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return Counters{}, fmt.Errorf("queue: decode counters of %s: %w", queue, err)
	}
	return c, nil
}

// ClaimAgent implements Store.
func (j *JetStream) ClaimAgent(ctx context.Context, agent, callID string) (bool, error) {
	key := "agent." + enc(agent)
	_, err := j.offers.Create(ctx, key, []byte(callID))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, unavailable("claim agent", err)
	}
	e, err := j.offers.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return j.ClaimAgent(ctx, agent, callID) // released meanwhile
	}
	if err != nil {
		return false, unavailable("claim agent", err)
	}
	return string(e.Value()) == callID, nil
}

// ReleaseAgent implements Store.
func (j *JetStream) ReleaseAgent(ctx context.Context, agent, callID string) error {
	key := "agent." + enc(agent)
	e, err := j.offers.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return unavailable("release agent", err)
	}
	if string(e.Value()) != callID {
		return nil
	}
	if err := j.offers.Purge(ctx, key, jetstream.LastRevision(e.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable("release agent", err)
	}
	return nil
}
