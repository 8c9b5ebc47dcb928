package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/switchboard/switchboard/internal/eventlog"
)

// ErrGone is wrapped by EventsSince when the log does not hold every event
// after the seq asked for with seqs growing by one: some aged out or were
// lost on their way to the log (a full queue, a failed append), the
// identity's stream began again on another node (its seqs jumped), or the
// seq was never given.
var ErrGone = errors.New("relay: the events after that seq are not all in the log")

// Event is an identity's event read back from the log.
type Event struct {
	// Seq is its seq in the identity's stream on the node that published
	// it (HubSeqHeader).
	Seq uint64
	// Body is the event as the hub encoded it, without its seq.
	Body []byte
}

// hubSeq reads an entry's HubSeqHeader (0: none).
func hubSeq(e eventlog.Entry) uint64 {
	seq, err := strconv.ParseUint(e.Header.Get(HubSeqHeader), 10, 64)
	if err != nil {
		return 0
	}
	return seq
}

// EventsSince answers identity's events after seq, counted in the seqs of
// the node that published them (HubSeqHeader), oldest first: those the log
// holds now, seq+1, seq+2, … with no gap. It answers an error wrapping
// ErrGone when the log does not hold them all, or when more than limit
// would be answered. An event published but not yet in the log is not
// among them: a caller that must not miss one follows the identity
// (DeliverRemote) before it reads, and skips the seqs it has read.
//
// The log numbers an identity's events with its own seqs (eventlog's
// Sb-Seq), which grow by one as the hub's do while one node publishes
// them and none is lost: the log's seq of the event just after seq is
// found from the identity's last event, then checked.
func (r *Relay) EventsSince(ctx context.Context, identity string, seq uint64, limit int) ([]Event, error) {
	last, ok, err := r.cfg.Log.Last(ctx, identity)
	if err != nil {
		return nil, fmt.Errorf("relay: events of %q since %d: %w", identity, seq, err)
	}
	if !ok {
		return nil, fmt.Errorf("relay: %q has no event in the log: %w", identity, ErrGone)
	}
	top := hubSeq(last)
	switch {
	case top == 0 || seq > top:
		return nil, fmt.Errorf("relay: %q since %d: the log's last is %d: %w", identity, seq, top, ErrGone)
	case seq == top:
		return nil, nil
	case top-seq > uint64(limit) || top-seq > last.Seq:
		return nil, fmt.Errorf("relay: %q since %d: %d events after it, at most %d answered: %w", identity, seq, top-seq, limit, ErrGone)
	}
	entries, err := r.cfg.Log.Since(ctx, identity, last.Seq-(top-seq))
	if errors.Is(err, eventlog.ErrGone) {
		return nil, fmt.Errorf("relay: %q since %d: %w", identity, seq, errors.Join(ErrGone, err))
	}
	if err != nil {
		return nil, fmt.Errorf("relay: events of %q since %d: %w", identity, seq, err)
	}
	if len(entries) > limit {
		entries = entries[:limit] // appended since Last: the caller follows them
	}
	out := make([]Event, len(entries))
	for i, e := range entries {
		if want := seq + 1 + uint64(i); hubSeq(e) != want {
			return nil, fmt.Errorf("relay: %q since %d: the log has %d where %d belongs: %w", identity, seq, hubSeq(e), want, ErrGone)
		}
		out[i] = Event{Seq: hubSeq(e), Body: e.Payload}
	}
	return out, nil
}
