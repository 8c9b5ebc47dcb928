package turnserver

import (
	"net"
	"net/netip"
	"sync"

	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

// Relaying in memory (Config.Local). A relayed leg's packets would
// otherwise cross the kernel twice inside one process: the allocation
// sends the client's packet from its relay socket to the media port
// (sendto, then the media socket's read), and the leg's packet back from
// the media port to the relay socket (the media socket's send, then a
// recvfrom on the relay socket by the allocation's goroutine). With a
// Local, the relay socket's WriteTo hands a packet for a registered peer
// to the peer's socket in memory, and the relay socket is registered in
// turn: what the media port sends it is queued in the relay's inbox, which
// the allocation's goroutine reads. A goroutine of the relay's reads the
// socket itself and queues what other peers send there.

// inboxSlots is how many datagrams may wait for the allocation's
// goroutine; a peer that finds the inbox full sends through the kernel,
// whose packets then queue behind.
const inboxSlots = 64

// inMemory registers the relay socket with local and starts its reading
// goroutine. The caller holds the tracker's lock.
func (r *trackedRelay) inMemory(local *udpbatch.Local) {
	u, _ := r.PacketConn.LocalAddr().(*net.UDPAddr)
	if u == nil {
		return
	}
	r.local = local
	r.self = netip.AddrPortFrom(u.AddrPort().Addr().Unmap(), u.AddrPort().Port())
	r.in = newInbox()
	r.unregister = local.Register(r.self, r.in.push)
	r.t.reading.Add(1)
	go r.readSocket()
}

// readSocket queues what the relay socket receives, until it is closed.
func (r *trackedRelay) readSocket() {
	defer r.t.reading.Done()
	defer r.in.close()
	buf := make([]byte, 1600) // pion's own relay buffer's size
	for {
		n, from, err := r.PacketConn.ReadFrom(buf)
		if err != nil {
			return
		}
		u, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := u.AddrPort()
		r.in.push(buf[:n], netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
}

// ReadFrom is what the allocation's goroutine reads: the inbox with
// Config.Local, the socket without.
func (r *trackedRelay) ReadFrom(b []byte) (int, net.Addr, error) {
	if r.in == nil {
		return r.PacketConn.ReadFrom(b)
	}
	n, from, err := r.in.pop(b)
	if err != nil {
		return 0, nil, err
	}
	// The allocation looks its channel up by the address: the same
	// peer's, unchanged, saves making one a packet.
	if from != r.lastFrom || r.lastAddr == nil {
		r.lastFrom, r.lastAddr = from, net.UDPAddrFromAddrPort(from)
	}
	return n, r.lastAddr, nil
}

// inbox is a queue of datagrams for one reader, with buffers that are
// reused (each grows to the largest datagram it has held).
type inbox struct {
	mu      sync.Mutex
	slots   [inboxSlots]inboxSlot
	head, n int
	closed  bool
	wake    chan struct{} // a token: datagrams wait
	done    chan struct{} // closed by close
}

type inboxSlot struct {
	b    []byte
	from netip.AddrPort
}

func newInbox() *inbox {
	return &inbox{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues a copy of b from from; false when the inbox is full or
// closed. It is a udpbatch.Receiver.
func (q *inbox) push(b []byte, from netip.AddrPort) bool {
	q.mu.Lock()
	if q.closed || q.n == inboxSlots {
		q.mu.Unlock()
		return false
	}
	s := &q.slots[(q.head+q.n)%inboxSlots]
	s.b, s.from = append(s.b[:0], b...), from
	q.n++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// pop waits for the next datagram and copies it into b; net.ErrClosed
// once the inbox is closed.
func (q *inbox) pop(b []byte) (int, netip.AddrPort, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return 0, netip.AddrPort{}, net.ErrClosed
		}
		if q.n > 0 {
			s := &q.slots[q.head]
			n, from := copy(b, s.b), s.from
			q.head, q.n = (q.head+1)%inboxSlots, q.n-1
			q.mu.Unlock()
			return n, from, nil
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-q.done:
		}
	}
}

func (q *inbox) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}
