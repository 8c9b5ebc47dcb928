package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Feed is one stream of events in one order for every reader, numbered by
// the stream's own sequence: 1, 2, 3, … with no gap, since nothing is
// deleted from it but its oldest events as they age out (MaxAge). The
// cluster puts the events every supervisor sees on it, so that a
// supervisor's seq is the same on every node (see internal/relay). It is
// safe for concurrent use.
type Feed struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    FeedConfig
}

// FeedConfig names a Feed's stream and its retention.
type FeedConfig struct {
	// Stream is the stream's name (required); it is created when missing
	// and its limits updated when it exists.
	Stream string
	// Subject is the one subject of its events (required).
	Subject string
	// MaxAge is how long events are kept (DefaultMaxAge when 0).
	MaxAge time.Duration
	// Duplicates is the window in which a message id deduplicates a
	// publish (the server's default when 0).
	Duplicates time.Duration
	// Storage is the stream's storage (file by default).
	Storage jetstream.StorageType
}

// FeedEntry is one event of a Feed.
type FeedEntry struct {
	// Seq is its sequence in the stream.
	Seq     uint64
	Time    time.Time
	Payload []byte
	Header  nats.Header
}

// OpenFeed creates or updates the feed's stream and answers the feed.
func OpenFeed(ctx context.Context, js jetstream.JetStream, cfg FeedConfig) (*Feed, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Storage == 0 {
		cfg.Storage = jetstream.FileStorage
	}
	if cfg.Stream == "" || cfg.Subject == "" || cfg.MaxAge < 0 || cfg.Duplicates < 0 ||
		strings.ContainsAny(cfg.Subject, "*> \t\r\n") {
		return nil, fmt.Errorf("eventlog: open feed: Stream %q, Subject %q, MaxAge %v, Duplicates %v: %w",
			cfg.Stream, cfg.Subject, cfg.MaxAge, cfg.Duplicates, ErrInvalid)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "Switchboard events in one order for every node",
		Subjects:    []string{cfg.Subject},
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.Duplicates,
		Storage:     cfg.Storage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: open feed %s: %w", cfg.Stream, err)
	}
	return &Feed{js: js, stream: stream, cfg: cfg}, nil
}

// Publish adds payload (with header, which may be nil) to the feed and
// answers its sequence. Given a message id, a publish repeated within the
// duplicate window writes nothing and answers the first one's sequence.
// Give ctx a deadline.
func (f *Feed) Publish(ctx context.Context, payload []byte, header nats.Header, msgID string) (uint64, error) {
	msg := &nats.Msg{Subject: f.cfg.Subject, Header: header, Data: payload}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := f.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return 0, fmt.Errorf("eventlog: publish to feed %s: %w", f.cfg.Stream, err)
	}
	return ack.Sequence, nil
}

// Follow calls fn with each event published after the feed's last
// when it is called (answered as last), in order, from the goroutine of an
// ordered consumer; fn must not block for long. Nothing falls between
// last and the first event fn gets.
func (f *Feed) Follow(ctx context.Context, fn func(FeedEntry)) (fl *Follower, last uint64, err error) {
	info, err := f.stream.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("eventlog: follow feed %s: %w", f.cfg.Stream, err)
	}
	last = info.State.LastSeq
	cons, err := f.js.OrderedConsumer(ctx, f.cfg.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   last + 1,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("eventlog: follow feed %s: %w", f.cfg.Stream, err)
	}
	fl = &Follower{done: make(chan struct{})}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			fl.fail(err)
			return
		}
		fn(FeedEntry{Seq: meta.Sequence.Stream, Time: meta.Timestamp, Payload: m.Data(), Header: m.Headers()})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("eventlog: follow feed %s: %w", f.cfg.Stream, err)
	}
	ctx, fl.cancel = context.WithCancel(ctx)
	go func() {
		defer close(fl.done)
		<-ctx.Done()
		cc.Stop()
		<-cc.Closed()
	}()
	return fl, last, nil
}

// Range answers the feed's events after seq, oldest first, up to its last
// when it is called and at most limit: seq+1, seq+2, … It answers an error
// wrapping ErrGone when the stream no longer holds seq+1 (it aged out) or
// seq is past its last, or more than limit events came after seq.
//
// It reads one event per request (direct get by sequence).
func (f *Feed) Range(ctx context.Context, seq uint64, limit int) ([]FeedEntry, error) {
	info, err := f.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("eventlog: feed %s since %d: %w", f.cfg.Stream, seq, err)
	}
	st := info.State
	switch {
	case seq > st.LastSeq:
		return nil, fmt.Errorf("eventlog: feed %s since %d: its last is %d: %w", f.cfg.Stream, seq, st.LastSeq, ErrGone)
	case seq == st.LastSeq:
		return nil, nil
	case seq+1 < st.FirstSeq:
		return nil, fmt.Errorf("eventlog: feed %s since %d: its oldest is %d: %w", f.cfg.Stream, seq, st.FirstSeq, ErrGone)
	case st.LastSeq-seq > uint64(limit):
		return nil, fmt.Errorf("eventlog: feed %s since %d: %d events after it, at most %d answered: %w",
			f.cfg.Stream, seq, st.LastSeq-seq, limit, ErrGone)
	}
	out := make([]FeedEntry, 0, st.LastSeq-seq)
	for next := seq + 1; next <= st.LastSeq; next++ {
		m, err := f.stream.GetMsg(ctx, next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, fmt.Errorf("eventlog: feed %s since %d: %d is gone: %w", f.cfg.Stream, seq, next, ErrGone)
		}
		if err != nil {
			return nil, fmt.Errorf("eventlog: feed %s since %d: %w", f.cfg.Stream, seq, err)
		}
		out = append(out, FeedEntry{Seq: m.Sequence, Time: m.Time, Payload: m.Data, Header: m.Header})
	}
	return out, nil
}

// Stream is the feed's stream name.
func (f *Feed) Stream() string { return f.cfg.Stream }
