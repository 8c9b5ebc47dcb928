package api

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// batchConn is an event connection's network connection. Between start and
// flush, what the websocket library writes (whole frames, under its own
// write lock) is kept and then written with one system call, so several
// queued events cost one write instead of one each. What a flush could not
// write before its deadline is kept and goes first at the next flush, so a
// client too slow to read can still be sent a close frame after whole
// frames. Outside a batch it writes through.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	batching bool
	buf      []byte
	deadline time.Time // the write deadline asked for during the batch
	// cut is set when a write through failed part way: the stream may end
	// in the middle of a frame, and nothing more is written.
	cut bool
}

var errStreamCut = errors.New("websocket: an earlier write was cut short")

// maxBatchBuf is the largest buffer kept between batches.
const maxBatchBuf = 64 << 10

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if b.cut {
		return 0, errStreamCut
	}
	if len(b.buf) > 0 { // frames must not pass what a flush kept
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	n, err := b.Conn.Write(p)
	if err != nil && n > 0 {
		b.cut = true
	}
	return n, err
}

func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching {
		b.deadline = t
		return nil
	}
	return b.Conn.SetWriteDeadline(t)
}

// start begins keeping writes.
func (b *batchConn) start() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// flush writes what was kept since start (after what an earlier flush
// could not write), under the last write deadline asked for, and writes
// through again. When the write fails, what it did not write is kept.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if b.cut {
		b.buf = b.buf[:0]
		return errStreamCut
	}
	if len(b.buf) == 0 {
		return nil
	}
	var err error
	if !b.deadline.IsZero() {
		err = b.Conn.SetWriteDeadline(b.deadline)
		b.deadline = time.Time{}
	}
	n := 0
	if err == nil {
		n, err = b.Conn.Write(b.buf)
	}
	if err != nil {
		b.buf = b.buf[:copy(b.buf, b.buf[n:])]
		return err
	}
	if cap(b.buf) > maxBatchBuf {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return nil
}

// batchingWriter hands the websocket upgrader a batchConn when it hijacks
// the connection.
type batchingWriter struct {
	http.ResponseWriter
	conn *batchConn
}

func (w *batchingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	limitSendBuffer(nc)
	w.conn = &batchConn{Conn: nc}
	return w.conn, brw, nil
}

// sendBuffer is the kernel's send buffer of an event connection (Linux
// doubles it). Without it the kernel grows the buffer to megabytes for a
// client that stopped reading; events are small, and a client too slow
// for them is closed by its queue's limit and write deadline anyway.
const sendBuffer = 128 << 10

// limitSendBuffer sets the send buffer of a TCP connection, under TLS too.
func limitSendBuffer(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(sendBuffer)
	}
}
