package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/lease"
)

// Rooms holds this node's claims on the group calls (by GUID) and rooms it
// anchors (docs/cluster.md, "Group calls by GUID and rooms"): a lease per
// conversation key in the bucket LeaseBucket+"_rooms", taken with a
// revision-checked create by the first joiner's node, carrying the
// conversation's id, renewed while this node lives and released when the
// conversation ends. A dead node's claims expire with its leases (one
// TTL). It is calls.RoomClaims.
type Rooms struct {
	leases *lease.Leases
	log    *slog.Logger

	mu      sync.Mutex
	claims  map[string]string        // key → the conversation this node anchors
	pending map[string]chan struct{} // key → closed once its release is done
	// claiming: serverCallID → key, while this node writes that claim.
	// Once written, another node can read it and send a joiner here
	// before Claim returns: Holds must already say yes.
	claiming map[string]string
	closed   bool
	stop     chan struct{}  // closed by Close: ends the lost-claim reader
	wg       sync.WaitGroup // releases, the lost-claim reader
}

// roomBucket is the bucket of room claims next to the identity leases.
func roomBucket(leaseBucket string) string { return leaseBucket + "_rooms" }

// OpenRooms opens (creating) the bucket of room claims on the node's
// connection.
func (n *Node) OpenRooms(ctx context.Context) (*Rooms, error) {
	js, err := jetstream.New(n.nc)
	if err != nil {
		return nil, fmt.Errorf("cluster: rooms: jetstream: %w", err)
	}
	l, err := lease.New(ctx, js, lease.Config{Bucket: roomBucket(n.cfg.LeaseBucket), Node: n.cfg.Node, TTL: n.cfg.LeaseTTL, Logger: n.cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("cluster: rooms: %w", err)
	}
	r := &Rooms{leases: l, log: n.log.With("component", "rooms"), claims: map[string]string{}, pending: map[string]chan struct{}{}, claiming: map[string]string{}, stop: make(chan struct{})}
	r.wg.Add(1)
	go r.readLost()
	return r, nil
}

// readLost forgets the claims whose lease was lost (NATS out of reach for
// a TTL): the conversation goes on here, but another node may anchor a new
// one under the same key.
func (r *Rooms) readLost() {
	defer r.wg.Done()
	for {
		var key string
		select {
		case <-r.stop:
			return
		case key = <-r.leases.Lost():
		}
		r.mu.Lock()
		delete(r.claims, key)
		r.mu.Unlock()
		r.log.Warn("lost the claim on a group call or room this node anchors: a joiner elsewhere may start another", "key", key)
	}
}

// Claim answers the node that anchors the conversation key and that
// conversation's id: this node ("") with serverCallID when no node did,
// else the node whose claim is live and its conversation.
func (r *Rooms) Claim(ctx context.Context, key, serverCallID string) (string, string, error) {
	for {
		r.mu.Lock()
		if id, ok := r.claims[key]; ok {
			r.mu.Unlock()
			return "", id, nil
		}
		wait := r.pending[key]
		r.mu.Unlock()
		if wait == nil {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return "", "", fmt.Errorf("cluster: claim %s: %w", key, ctx.Err())
		}
	}
	r.mu.Lock()
	r.claiming[serverCallID] = key
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.claiming, serverCallID)
		r.mu.Unlock()
	}()
	for range 3 {
		err := r.leases.AcquireWith(ctx, key, serverCallID)
		if err == nil {
			r.mu.Lock()
			r.claims[key] = serverCallID
			r.mu.Unlock()
			return "", serverCallID, nil
		}
		if !errors.Is(err, lease.ErrHeld) {
			return "", "", fmt.Errorf("cluster: claim %s: %w", key, err)
		}
		node, id, err := r.leases.Lookup(ctx, key)
		if errors.Is(err, lease.ErrNoOwner) {
			continue // released meanwhile
		}
		if err != nil {
			return "", "", fmt.Errorf("cluster: claim %s: %w", key, err)
		}
		return node, id, nil
	}
	return "", "", fmt.Errorf("cluster: claim %s: the claim kept changing", key)
}

// Holds reports whether this node anchors conversation serverCallID under
// key.
func (r *Rooms) Holds(key, serverCallID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.claims[key]
	// A claim being written under a fresh id: a joiner can only name
	// that id once the write succeeded.
	return ok && id == serverCallID || r.claiming[serverCallID] == key
}

// Release gives up the claim on key once its conversation serverCallID
// ended. It does not block: the lease is released on a goroutine, and a
// Claim of the same key waits for it.
func (r *Rooms) Release(key, serverCallID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.claims[key]; !ok || id != serverCallID || r.closed {
		return
	}
	delete(r.claims, key)
	done := make(chan struct{})
	r.pending[key] = done
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), lease.DefaultTTL)
		defer cancel()
		if err := r.leases.Release(ctx, key); err != nil {
			r.log.Warn("could not release a room's claim: it expires", "key", key, "err", err)
		}
		r.mu.Lock()
		delete(r.pending, key)
		r.mu.Unlock()
		close(done)
	}()
}

// Close releases every claim and stops.
func (r *Rooms) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	err := r.leases.Close(ctx)
	r.wg.Wait()
	return err
}
