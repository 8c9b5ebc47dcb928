package api

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// batchConn is an event connection's network connection. Between start and
// flush, what the websocket library writes (whole frames, under its own
// write lock) is kept and then written with one system call, so several
// queued events cost one write instead of one each. Outside a batch it
// writes through.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	batching bool
	buf      []byte
	deadline time.Time // the write deadline asked for during the batch
}

// maxBatchBuf is the largest buffer kept between batches.
const maxBatchBuf = 64 << 10

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
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

// flush writes what was kept since start, under the last write deadline
// asked for, and writes through again.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if len(b.buf) == 0 {
		return nil
	}
	var err error
	if !b.deadline.IsZero() {
		err = b.Conn.SetWriteDeadline(b.deadline)
		b.deadline = time.Time{}
	}
	if err == nil {
		_, err = b.Conn.Write(b.buf)
	}
	if cap(b.buf) > maxBatchBuf {
		b.buf = nil
	} else {
		b.buf = b.buf[:0]
	}
	return err
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
	w.conn = &batchConn{Conn: nc}
	return w.conn, brw, nil
}
