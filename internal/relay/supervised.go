package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/eventlog"
)

// publishSupervised publishes a supervised event on the feed, with the
// message id of its append (and a suffix) so that the feed stores it once
// however often it is retried: each try for AttemptTimeout at most, all of
// them for AppendTimeout. An event that could not be published is lost to
// every node's supervisors, this node's too: a loss marker follows it
// (markLost).
func (r *Relay) publishSupervised(it item, id string) {
	header := nats.Header{NodeHeader: []string{r.cfg.Node}}
	err := r.retry(r.cfg.AppendTimeout, func(ctx context.Context) error {
		_, err := r.cfg.Feed.Publish(ctx, it.body, header, id+"-s")
		return err
	})
	if err != nil {
		r.failed.Add(1)
		r.log.Warn("relay: a supervised event is lost to the supervisors", "agent_id", it.identity, "err", err)
		r.supervisedLost()
	}
}

// retry calls try until it succeeds, each try for AttemptTimeout at most,
// all of them for total (or until the relay stops), 100 ms apart.
func (r *Relay) retry(total time.Duration, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(r.ctx, total)
	defer cancel()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, r.cfg.AttemptTimeout)
		err := try(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// supervisedLost has markLost publish a loss marker.
func (r *Relay) supervisedLost() {
	select {
	case r.lost <- struct{}{}:
	default: // one is due already
	}
}

// markLost publishes a loss marker on the feed each time a supervised
// event was lost, retrying until it is stored or the relay stops: every
// node's supervisors then start over from a snapshot (LostSupervised), and
// a replay across the marker is refused, so that no supervisor's stream
// skips the lost event silently. A node that stops or dies before its
// marker is stored leaves the loss unmarked.
func (r *Relay) markLost() {
	defer r.bg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.lost:
		}
		header := nats.Header{NodeHeader: []string{r.cfg.Node}, LostHeader: []string{"true"}}
		id := r.cfg.Node + "-lost-" + r.epoch + "-" + fmt.Sprint(r.msgIDs.Add(1))
		for r.ctx.Err() == nil {
			if err := r.retry(r.cfg.AppendTimeout, func(ctx context.Context) error {
				_, err := r.cfg.Feed.Publish(ctx, nil, header, id)
				return err
			}); err == nil {
				break
			} else {
				r.log.Warn("relay: mark a lost supervised event on the feed", "err", err)
			}
		}
	}
}

// followFeed hands an event of the feed to the sink: a supervised event of
// any node (this one's too), or a loss marker.
func (r *Relay) followFeed(e eventlog.FeedEntry) {
	r.hold.Lock()
	defer r.hold.Unlock()
	ss := r.cfg.Sink.(SupervisedSink)
	if e.Header.Get(LostHeader) == "true" {
		r.log.Warn("relay: a node lost supervised events: supervisors start over", "from", e.Header.Get(NodeHeader), "seq", e.Seq)
		ss.LostSupervised(e.Seq)
		return
	}
	ss.DeliverSupervised(e.Seq, e.Payload)
}

// SupervisedSince answers the supervised events after seq in the feed
// (Config.Feed), oldest first, up to the feed's last and at most limit:
// seq+1, seq+2, … It answers an error wrapping ErrGone when the feed does
// not hold them all (aged out, or seq past its last), more than limit came
// after seq, or a loss marker is among them.
func (r *Relay) SupervisedSince(ctx context.Context, seq uint64, limit int) ([]Event, error) {
	if r.cfg.Feed == nil {
		return nil, fmt.Errorf("relay: no supervised feed: %w", ErrGone)
	}
	entries, err := r.cfg.Feed.Range(ctx, seq, limit)
	if errors.Is(err, eventlog.ErrGone) {
		return nil, errors.Join(ErrGone, err)
	}
	if err != nil {
		return nil, fmt.Errorf("relay: supervised events since %d: %w", seq, err)
	}
	out := make([]Event, 0, len(entries))
	for _, e := range entries {
		if e.Header.Get(LostHeader) == "true" {
			return nil, fmt.Errorf("relay: supervised events since %d: %d marks a loss: %w", seq, e.Seq, ErrGone)
		}
		out = append(out, Event{Seq: e.Seq, Body: e.Payload})
	}
	return out, nil
}
