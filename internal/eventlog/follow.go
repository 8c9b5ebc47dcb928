package eventlog

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// All follows every identity's events.
const All = ""

// Follower delivers new events until its context ends or Stop is called.
type Follower struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu  sync.Mutex
	err error
}

func (f *Follower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// Follow calls fn with each event appended from now on, to identity (or to
// every identity, for All), in stream order, from the goroutine of an
// ordered consumer; fn must not block for long. It returns once the
// consumer exists, so an Append after it returns is delivered. To replay
// and then follow without a gap: Follow first, then Since, and skip
// entries Since already gave (by Seq). Events that fn cannot decode are
// skipped; Err reports the first.
func (l *Log) Follow(ctx context.Context, identity string, fn func(Entry)) (*Follower, error) {
	filter := l.cfg.Subject + ".*"
	if identity != All {
		filter = l.Subject(identity)
	}
	cons, err := l.js.OrderedConsumer(ctx, l.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: follow %q: %w", identity, err)
	}
	f := &Follower{done: make(chan struct{})}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			f.fail(err)
			return
		}
		e, err := l.entryOf(m.Subject(), m.Headers(), meta.Sequence.Stream, meta.Timestamp, m.Data())
		if err != nil {
			f.fail(err)
			return
		}
		fn(e)
	})
	if err != nil {
		return nil, fmt.Errorf("eventlog: follow %q: %w", identity, err)
	}
	ctx, f.cancel = context.WithCancel(ctx)
	go func() {
		defer close(f.done)
		<-ctx.Done()
		cc.Stop()
		<-cc.Closed()
	}()
	return f, nil
}

// Stop ends the follower and waits until fn will not be called again.
func (f *Follower) Stop() {
	f.once.Do(f.cancel)
	<-f.done
}

// Done is closed when the follower has stopped.
func (f *Follower) Done() <-chan struct{} { return f.done }

// Err is the first event the follower could not decode, once it has
// stopped.
func (f *Follower) Err() error {
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
