package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/cluster"
	"github.com/switchboard/switchboard/internal/queue"
)

// queues runs the contact-center queues: the engine that offers this
// node's waiting calls, its store (JetStream with --cluster, memory
// otherwise) and the goroutine that drives it.
type queues struct {
	engine *queue.Engine
	hold   *queueHold // music and position prompts (queuehold.go)
	sw     *api.QueueSwitch
	conn   *nats.Conn       // with --cluster
	js     *queue.JetStream // with --cluster
	stop   context.CancelFunc
	done   chan struct{}
}

// queueBucket names the key-value bucket of the cluster's queues.
func queueBucket(prefix string) string {
	if prefix == "" {
		prefix = cluster.DefaultSubjectPrefix
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, prefix) + "_queues"
}

// startQueues starts the queues once the switchboard and hub exist.
func (m *Main) startQueues(ctx context.Context) error {
	var st queue.Store = queue.NewMemory()
	q := &queues{done: make(chan struct{})}
	if m.cluster != nil {
		c := m.Config.Cluster
		nc, err := nats.Connect(c.URL, nats.Name("switchboard "+c.NodeID+" queues"), nats.MaxReconnects(-1),
			nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			return fmt.Errorf("queues: connect to NATS: %w", err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return fmt.Errorf("queues: %w", err)
		}
		kv, err := queue.OpenJetStream(ctx, js, queueBucket(c.SubjectPrefix), jetstream.FileStorage)
		if err != nil {
			nc.Close()
			return err
		}
		st, q.conn, q.js = kv, nc, kv
	}
	q.sw = api.NewQueueSwitch(m.switchboard, m.hub)
	var events queue.Events = q.sw
	if m.mixer != nil {
		q.hold = newQueueHold(m.mixer, st, m.Config.Media.QueueHold.PromptEvery, m.Logger)
		events = holdEvents{Events: q.sw, hold: q.hold}
	}
	cfg := queue.WithStatus(queue.EngineConfig{
		Store: st, Switch: q.sw, Events: events, Logger: m.Logger,
		Sweep: queue.DefaultSweep, // serve's QueueWake tells the engine of changes (Changed)
	}, m.switchboard)
	if m.recordings != nil {
		cfg.Record = api.QueueRecorder(q.sw, m.recordings, m.Logger)
	}
	q.engine = queue.NewEngine(cfg)
	runCtx, stop := context.WithCancel(context.Background())
	q.stop = stop
	go func() {
		defer close(q.done)
		q.engine.Run(runCtx)
	}()
	m.queues = q
	return nil
}

// stopQueues stops the engine (before the switchboard closes), takes this
// node's waiting calls out of the shared store, and leaves NATS.
func (m *Main) stopQueues() {
	if m.queues == nil {
		return
	}
	m.queues.stop()
	<-m.queues.done
	if m.queues.hold != nil {
		m.queues.hold.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.queues.engine.Forget(ctx); err != nil {
		m.Logger.Warn("queues: forget this node's waiting calls", "err", err)
	}
	if m.queues.js != nil {
		if err := m.queues.js.Close(); err != nil {
			m.Logger.Warn("queues: close the store", "err", err)
		}
	}
	if m.queues.conn != nil {
		m.queues.conn.Close()
	}
}

// queueEngine answers the API's queue fields (nil before startQueues).
func (m *Main) queueEngine() (*queue.Engine, *api.QueueSwitch) {
	if m.queues == nil {
		return nil, nil
	}
	return m.queues.engine, m.queues.sw
}
