package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
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
	board  *queue.Board     // with --cluster: the agents of every node
	js     *queue.JetStream // with --cluster
	stop   context.CancelFunc
	done   chan struct{} // closed when the engine and the board returned

	reapMu  sync.Mutex
	reaping sync.WaitGroup // reaps of the waiting calls of nodes gone
	stopped bool
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
	var status queue.AgentStatus = m.switchboard
	node := ""
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
		agentCalls := api.QueueAgentCalls{Switchboard: m.switchboard}
		if m.recordings != nil {
			agentCalls.Recorder = m.recordings
		}
		board, err := queue.OpenBoard(ctx, queue.BoardConfig{
			JetStream: js, Conn: nc, Bucket: queueBucket(c.SubjectPrefix) + "_agents", Storage: jetstream.FileStorage,
			Subject: queueSubject(c.SubjectPrefix), Node: c.NodeID, Peers: m.cluster.Peers,
			Source: m.switchboard, Status: m.switchboard, Calls: agentCalls, Logger: m.Logger,
		})
		if err != nil {
			_ = kv.Close()
			nc.Close()
			return err
		}
		st, q.conn, q.board, q.js, node = kv, nc, board, kv, c.NodeID
		status = board.Status(m.switchboard)
	}
	q.sw = api.NewQueueSwitch(m.switchboard, m.hub)
	if q.board != nil {
		q.sw.SetRemote(q.board) // an agent of another node: her call is there
	}
	var events queue.Events = q.sw
	var greeting *audio.Prompt
	if m.mixer != nil {
		voice, err := queueVoice(m.Config.Media.QueueHold)
		if err == nil {
			greeting, err = voicemailGreeting(m.Config.Media.QueueHold)
		}
		if err != nil {
			if q.conn != nil {
				q.conn.Close()
			}
			return err
		}
		q.hold = newQueueHold(m.mixer, st, m.Config.Media.QueueHold.PromptEvery, voice, m.Logger)
		events = holdEvents{Events: q.sw, hold: q.hold}
	}
	cfg := queue.WithStatus(queue.EngineConfig{
		Store: st, Switch: q.sw, Events: events, Node: node, Logger: m.Logger,
		Sweep:      queue.DefaultSweep, // serve's QueueWake tells the engine of changes (Changed)
		AgentWakes: true,               // and of agents who may be free (WakeFor)
	}, status)
	if m.recordings != nil {
		cfg.Record = api.QueueRecorder(q.sw, m.recordings, m.Logger)
		if q.hold != nil {
			// Voicemail needs the media plane (greeting, recording);
			// without it a queue cannot take voicemail (queue.Engine.Create).
			cfg.Voicemail = api.QueueVoicemail(q.sw, m.recordings, q.hold.voicemail(greeting), m.Logger)
		}
	}
	q.engine = queue.NewEngine(cfg)
	if q.board != nil {
		q.board.OnOfferable(q.engine.WakeFor) // an agent of another node turned free
	}
	runCtx, stop := context.WithCancel(context.Background())
	q.stop = stop
	if m.cluster != nil {
		// What this node's earlier run left waiting (before a call enters
		// here), and later what a node that dies leaves, is taken out,
		// counted abandoned.
		if n, err := q.engine.Reap(ctx, node); err != nil || n > 0 {
			m.Logger.Info("queues: took out the waiting calls of this node's earlier run", "calls", n, "err", err)
		}
		m.cluster.OnNodeGone(func(gone string, _ bool) { q.reap(gone, m.Logger) })
	}
	var wg sync.WaitGroup
	wg.Go(func() { q.engine.Run(runCtx) })
	if q.board != nil {
		wg.Go(func() { q.board.Run(runCtx) })
	}
	go func() {
		defer close(q.done)
		wg.Wait()
	}()
	m.queues = q
	return nil
}

// queueSubject is where the nodes' queues send each other agent status
// changes (queue.Board).
func queueSubject(prefix string) string {
	if prefix == "" {
		prefix = cluster.DefaultSubjectPrefix
	}
	return prefix + ".queues.status"
}

// reap takes node's waiting calls out of the shared store in the
// background (node is gone; OnNodeGone must not block).
func (q *queues) reap(node string, log *slog.Logger) {
	q.reapMu.Lock()
	defer q.reapMu.Unlock()
	if q.stopped {
		return
	}
	q.reaping.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if q.board != nil {
			if err := q.board.Drop(ctx, node); err != nil {
				log.Warn("queues: drop the agents of a node gone", "gone_node", node, "err", err)
			}
		}
		n, err := q.engine.Reap(ctx, node)
		if err != nil {
			log.Warn("queues: take out the waiting calls of a node gone", "gone_node", node, "err", err)
		}
		if n > 0 {
			log.Info("queues: took out the waiting calls of a node gone, counted abandoned", "gone_node", node, "calls", n)
		}
	})
}

// stopQueues stops the engine (before the switchboard closes), takes this
// node's waiting calls and agents out of the shared store, and leaves NATS.
func (m *Main) stopQueues() {
	q := m.queues
	if q == nil {
		return
	}
	q.stop()
	<-q.done
	q.reapMu.Lock()
	q.stopped = true
	q.reapMu.Unlock()
	q.reaping.Wait()
	if q.hold != nil {
		q.hold.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if q.board != nil {
		if err := q.board.Close(ctx); err != nil {
			m.Logger.Warn("queues: withdraw this node's agents", "err", err)
		}
	}
	if err := q.engine.Forget(ctx); err != nil {
		m.Logger.Warn("queues: forget this node's waiting calls", "err", err)
	}
	if q.js != nil {
		if err := q.js.Close(); err != nil {
			m.Logger.Warn("queues: close the store", "err", err)
		}
	}
	if q.conn != nil {
		q.conn.Close()
	}
}

// queueBoard answers the agents of every node (nil on one node).
func (m *Main) queueBoard() *queue.Board {
	if m.queues == nil {
		return nil
	}
	return m.queues.board
}

// queueEngine answers the API's queue fields (nil before startQueues).
func (m *Main) queueEngine() (*queue.Engine, *api.QueueSwitch) {
	if m.queues == nil {
		return nil, nil
	}
	return m.queues.engine, m.queues.sw
}
