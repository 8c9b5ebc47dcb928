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

// ErrBehind is wrapped by EventsSince when the seq asked for is past the
// identity's last event in the log: the log may not have caught up with
// the node that gave it yet (its relay appends after it publishes), or
// it was never given. It wraps ErrGone.
var ErrBehind = fmt.Errorf("%w: the log has not caught up with that seq", ErrGone)

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
// holds now, seq+1, seq+2, … with no gap (an event relayed without a seq,
// not in the identity's stream, is left out). It answers an error wrapping
// ErrGone when the log does not hold them all, or more than limit would
// be answered, or the identity's last event in the log has no seq. An event published but not yet in the log is not
// among them: a caller that must not miss one follows the identity
// (DeliverRemote) before it reads, and skips the seqs it has read.
//
// The log numbers an identity's events with its own seqs (eventlog's
// Sb-Seq), which grow by one as the hub's do while one node publishes
// them and none is lost: the log's seq of the event just after seq is
// found from the identity's last event, then checked, and read from
// further back when events without a seq came between (maxReads).
func (r *Relay) EventsSince(ctx context.Context, identity string, seq uint64, limit int) ([]Event, error) {
	last, ok, err := r.cfg.Log.Last(ctx, identity)
	if err != nil {
		return nil, fmt.Errorf("relay: events of %q since %d: %w", identity, seq, err)
	}
	if !ok {
		return nil, fmt.Errorf("relay: %q has no event in the log: %w", identity, ErrGone)
	}
	top, logTop := hubSeq(last), last.Seq
	if end, err := strconv.ParseUint(last.Header.Get(EndHeader), 10, 64); top == 0 && err == nil && end != 0 {
		// Her owner's end marker (EndRuns) follows her event numbered end.
		top, logTop = end, last.Seq-1
	}
	switch {
	case top == 0:
		return nil, fmt.Errorf("relay: %q since %d: her last event in the log has no seq: %w", identity, seq, ErrGone)
	case seq > top:
		return nil, fmt.Errorf("relay: %q since %d: the log's last is %d: %w", identity, seq, top, ErrBehind)
	case seq == top:
		return nil, nil
	case top-seq > uint64(limit) || top-seq > logTop:
		return nil, fmt.Errorf("relay: %q since %d: %d events after it, at most %d answered: %w", identity, seq, top-seq, limit, ErrGone)
	}
	from := logTop - (top - seq)
	for range maxReads {
		entries, err := r.cfg.Log.Since(ctx, identity, from)
		if errors.Is(err, eventlog.ErrGone) {
			return nil, fmt.Errorf("relay: %q since %d: %w", identity, seq, errors.Join(ErrGone, err))
		}
		if err != nil {
			return nil, fmt.Errorf("relay: events of %q since %d: %w", identity, seq, err)
		}
		out, short, err := afterSeq(entries, seq, limit)
		if err != nil {
			return nil, fmt.Errorf("relay: %q since %d: %w", identity, seq, err)
		}
		if short == 0 {
			return out, nil
		}
		if short > from {
			break
		}
		from -= short // events without a seq came between: read from further back
	}
	return nil, fmt.Errorf("relay: %q since %d: not found after %d reads: %w", identity, seq, maxReads, ErrGone)
}

// maxReads bounds EventsSince's reads of the log.
const maxReads = 3

// afterSeq answers the entries' events after seq, at most limit, when
// they go on from seq+1 without a gap (leaving out those without a seq);
// when the first one is past seq+1, short is how far past, for a read from
// further back (entries without a seq, as end markers, may have put the
// read's start too far on; a real gap is found there).
func afterSeq(entries []eventlog.Entry, seq uint64, limit int) (out []Event, short uint64, err error) {
	for _, e := range entries {
		got := hubSeq(e)
		switch {
		case got == 0:
			continue // not in the identity's stream (Relay)
		case got <= seq && len(out) == 0:
			continue // read from further back than needed
		}
		want := seq + 1 + uint64(len(out))
		if got != want {
			if len(out) == 0 && got > want {
				// Entries without a seq (events relayed without one, end
				// markers) came between: read from further back. A real
				// gap is found there.
				return nil, got - want, nil
			}
			return nil, 0, fmt.Errorf("the log has %d where %d belongs: %w", got, want, ErrGone)
		}
		if len(out) == limit {
			break // appended since Last: the caller follows them
		}
		out = append(out, Event{Seq: got, Body: e.Payload})
	}
	return out, 0, nil
}
