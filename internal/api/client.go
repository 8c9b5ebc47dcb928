package api

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
)

// Websocket close codes the switchboard uses.
const (
	closeNormal        = websocket.CloseNormalClosure
	closeGoingAway     = websocket.CloseGoingAway
	closePolicy        = websocket.ClosePolicyViolation
	closeTryAgainLater = websocket.CloseTryAgainLater
	closeTooBig        = websocket.CloseMessageTooBig
)

// wsTimings are a connection's clocks.
type wsTimings struct {
	ping  time.Duration // how often the server pings
	write time.Duration // how long one write may take
}

// client is one open event connection. The handler's goroutine reads; one
// writer goroutine writes. Publishers only enqueue.
type client struct {
	hub        *Hub
	conn       *websocket.Conn
	batch      *batchConn // conn's network connection, when it batches writes
	agentID    string
	supervisor bool
	remote     bool // follows an identity another node owns (remoteStream)
	tokenID    string
	timings    wsTimings
	log        *slog.Logger

	mu        sync.Mutex
	seq       uint64        // the seq of the last event queued
	queue     chan outgoing // encoded events in seq order
	maxQueued int           // bytes the queue may hold
	// queued counts the bytes of the queued events but the first, the
	// snapshot: that one may be large (a supervisor's), and is not falling
	// behind.
	queued    atomic.Int64
	enqueued  uint64 // how many events were queued
	closing   bool
	drain     bool   // write what is queued before closing
	final     []byte // a last frame, written after the queue
	closeCode int
	closeText string
	expired   bool
	done      chan struct{} // closed when the writer must finish
	stopped   chan struct{} // closed when the writer has exited

	// the writer's own
	taken  uint64 // how many events it took from the queue
	prefix []byte // scratch for a frame's {"seq":N,
}

// outgoing is a queued event: the shared encoding and its seq in the
// client's stream.
type outgoing struct {
	seq  uint64
	body []byte
}

func newClient(h *Hub, conn *websocket.Conn, batch *batchConn, s Session, t wsTimings, log *slog.Logger) *client {
	return &client{
		hub: h, conn: conn, batch: batch, agentID: s.Identifier.RawID(), supervisor: s.Role == calls.RoleSupervisor,
		tokenID: s.TokenID, timings: t, log: log,
		queue: make(chan outgoing, h.queueSize), maxQueued: h.queueBytes(),
		done: make(chan struct{}), stopped: make(chan struct{}),
	}
}

// start sets the seq the client's first event follows: the first it is
// given must carry prev+1.
func (c *client) start(prev uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq = prev
}

// fits reports whether the events would fit the client's empty queue, in
// events and in bytes.
func (c *client) fits(events []Entry) bool {
	if len(events) >= cap(c.queue) {
		return false
	}
	n := 0
	for _, e := range events {
		n += len(e.Payload)
	}
	return n <= c.maxQueued
}

// enqueueNew enqueues an event of a stream numbered by another node
// (remoteStream) unless its seq is not past the last queued: it came
// twice (from the log and live, or before a snapshot that shows it). One
// past the next closes c, as enqueue does.
func (c *client) enqueueNew(seq uint64, body []byte) {
	c.mu.Lock()
	old := seq <= c.seq
	c.mu.Unlock()
	if !old {
		c.enqueue(seq, body)
	}
}

// enqueue adds an encoded event to the queue with its seq, which must
// follow the last one queued; a client that fell too far behind (its
// queue full in events, or past its bytes with something queued) is
// closed with 1013 instead, as is one whose stream skipped seqs (its log
// forgot it). The queue holds the shared encoding: the writer adds the seq
// as it writes.
func (c *client) enqueue(seq uint64, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	if seq != c.seq+1 {
		c.stopLocked(closeTryAgainLater, "events were missed: reconnect", false)
		c.log.Warn("websocket client's stream skipped seqs: closing it", "seq", seq, "want", c.seq+1)
		return
	}
	if q := c.queued.Load(); q > 0 && q+int64(len(body)) > int64(c.maxQueued) {
		c.tooSlowLocked()
		return
	}
	c.seq = seq
	select {
	case c.queue <- outgoing{seq: seq, body: body}:
		if c.enqueued++; c.enqueued > 1 {
			c.queued.Add(int64(len(body)))
		}
	default:
		c.tooSlowLocked()
	}
}

// tooSlowLocked closes a client whose queue is full, without writing what
// is queued: the writer takes no more once it is asked to close.
func (c *client) tooSlowLocked() {
	c.stopLocked(closeTryAgainLater, "too far behind: reconnect", false)
	c.log.Warn("websocket client too slow: closing it", "queued_events", len(c.queue), "queued_bytes", c.queued.Load(), "limit_bytes", c.maxQueued)
}

// take is the writer taking an event off the queue.
func (c *client) take(ev outgoing) outgoing {
	if c.taken++; c.taken > 1 {
		c.queued.Add(-int64(len(ev.body)))
	}
	return ev
}

// expire tells the client its token is no longer valid and closes it.
// That last frame is the connection's own, not its stream's: its seq
// follows the last event's, and no other connection is sent it.
func (c *client) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	body, err := encodeEvent(calls.Event{
		Type: calls.EventConnectionStateChanged, At: time.Now(), AgentID: c.agentID,
		Data: calls.ConnectionStateData{OldState: calls.Connected, NewState: calls.Disconnected, Reason: "invalidToken"},
	})
	if err == nil {
		c.seq++
		c.final = frame(c.seq, body)
	}
	c.expired = true
	c.stopLocked(closePolicy, "invalidToken", true)
}

// finish closes the client after what is queued was written.
func (c *client) finish(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked(code, text, true)
}

func (c *client) stopLocked(code int, text string, drain bool) {
	if c.closing {
		return
	}
	c.closing, c.drain, c.closeCode, c.closeText = true, drain, code, text
	close(c.done)
}

func (c *client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *client) wasExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expired
}

// writeLoop is the writer goroutine: events in order, pings, and the close.
// A write the client does not take within the write deadline closes it with
// 1013, as a queue that grew too long does.
func (c *client) writeLoop() {
	defer close(c.stopped)
	defer c.conn.Close()
	ping := time.NewTicker(c.timings.ping)
	defer ping.Stop()
	for {
		select {
		case <-c.done: // a close asked for goes before what is queued
			c.writeClose()
			return
		default:
		}
		select {
		case body := <-c.queue:
			if err := c.writeEvents(c.take(body), false); err != nil {
				c.writeFailed(err)
				return
			}
		case <-ping.C:
			if err := c.send(func() error { return c.conn.WriteMessage(websocket.PingMessage, nil) }); err != nil {
				c.writeFailed(err)
				return
			}
		case <-c.done:
			c.writeClose()
			return
		}
	}
}

// writeClose writes what the close asks for: what is queued when it
// drains, a last frame, and the close frame.
func (c *client) writeClose() {
	c.mu.Lock()
	drain, final, code, text := c.drain, c.final, c.closeCode, c.closeText
	c.mu.Unlock()
	for drain {
		select {
		case body := <-c.queue:
			if c.writeEvents(c.take(body), true) != nil {
				return
			}
		default:
			drain = false
		}
	}
	if final != nil && c.send(func() error { return c.conn.WriteMessage(websocket.TextMessage, final) }) != nil {
		return
	}
	_ = c.send(func() error {
		return c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, text))
	})
}

// writeFailed ends a connection whose write failed. A write that timed out
// left the connection whole, with what the client did not take kept: the
// client is told 1013 after it, within one more write deadline.
func (c *client) writeFailed(err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || c.batch == nil {
		return
	}
	c.mu.Lock()
	c.stopLocked(closeTryAgainLater, "too slow to read its events: reconnect", false)
	c.mu.Unlock()
	c.log.Warn("websocket client too slow: closing it", "write_timeout", c.timings.write)
	c.writeClose()
}

// maxBatch bounds how many queued events one network write carries.
const maxBatch = 64

// writeEvents writes first and, when more are queued, up to maxBatch
// events in one network write: each its own websocket message, with its
// seq. Unless draining, it takes no more once the client is asked to close.
func (c *client) writeEvents(first outgoing, draining bool) error {
	return c.send(func() error {
		err := c.writeEvent(first)
		for n := 1; err == nil && n < maxBatch && len(c.queue) > 0 && (draining || !c.stopping()); n++ {
			err = c.writeEvent(c.take(<-c.queue))
		}
		return err
	})
}

// stopping reports whether the client was asked to close.
func (c *client) stopping() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// writeEvent writes one queued event as a message, adding its seq.
func (c *client) writeEvent(ev outgoing) error {
	w, err := c.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	c.prefix = appendSeq(c.prefix[:0], ev.seq, len(ev.body) > 2)
	if _, err := w.Write(c.prefix); err != nil {
		return err
	}
	if _, err := w.Write(ev.body[1:]); err != nil {
		return err
	}
	return w.Close()
}

// send runs the writes of write under one write deadline. With a batchConn
// they go out in one network write, and whatever the network did not take
// before the deadline stays first in line, so the stream is never cut in
// the middle of a frame.
func (c *client) send(write func() error) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.timings.write)); err != nil {
		return err
	}
	if c.batch == nil {
		return write()
	}
	c.batch.start()
	err := write()
	if ferr := c.batch.flush(); err == nil {
		err = ferr
	}
	return err
}

// readLoop reads until the connection fails or closes: the console sends
// nothing but pongs and close frames; anything larger than the frame limit
// closes the connection.
func (c *client) readLoop(maxFrame int64) {
	c.conn.SetReadLimit(maxFrame)
	wait := 2 * c.timings.ping
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(wait))
	})
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			switch {
			case err == websocket.ErrReadLimit:
				c.finish(closeTooBig, "frame too large")
			case websocket.IsCloseError(err, closeNormal, closeGoingAway):
				c.finish(closeNormal, "")
			default:
				c.finish(closeGoingAway, "read failed")
			}
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	}
}
