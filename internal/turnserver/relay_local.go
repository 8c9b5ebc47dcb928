package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"

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
func (r *trackedRelay) inMemory(local *udpbatch.Local, listener *trackedPacketConn) {
	u, _ := r.PacketConn.LocalAddr().(*net.UDPAddr)
	if u == nil {
		return
	}
	r.local, r.listener = local, listener
	r.self = netip.AddrPortFrom(u.AddrPort().Addr().Unmap(), u.AddrPort().Port())
	r.in = newInbox()
	r.unregister = local.Register(r.self, r.receive)
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

// Channels straight to the client. What the peer sends back would wait
// in the inbox for the allocation's goroutine, which looks the peer's
// channel up, frames the datagram as ChannelData (RFC 8656 section 12.4)
// and writes it to the client on the UDP listener. A relay whose client
// reaches it over the UDP listener with ChannelData does that itself, on
// the peer's goroutine, once it has seen pion relay that client's
// ChannelData to the peer: the listener notes the ChannelData message it
// read last (its buffer, client and channel), and when pion's handling of
// that very message (the same buffer) writes to the peer, the relay
// learns the peer's channel and client. Each of the client's messages on
// the channel renews it; one not renewed for channelFresh goes back to
// the allocation's goroutine, as does anything over TCP.

// channelFresh is how long a learned channel is used without the client
// sending on it: a client keeps its channel bound (10 minutes) while it
// uses it, and a call's media flows every 20 ms.
const channelFresh = 30 * time.Second

// channelData is a ChannelData message read from a client.
type channelData struct {
	data   *byte // where its data starts in the reader's buffer
	from   netip.AddrPort
	number uint16
}

// note keeps b as the last message read, if it is ChannelData (its first
// two bits 01, RFC 8656 section 12.4).
func (c *trackedPacketConn) note(b []byte, from net.Addr) {
	var cd channelData
	if u, ok := from.(*net.UDPAddr); ok && len(b) > 4 && b[0]&0xc0 == 0x40 {
		ap := u.AddrPort()
		cd = channelData{data: &b[4], from: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), number: binary.BigEndian.Uint16(b)}
	}
	c.lastMu.Lock()
	c.last = cd
	c.lastMu.Unlock()
}

// channelOf tells whether b is the data of the ChannelData message read
// last, and if so from which client on which channel.
func (c *trackedPacketConn) channelOf(b []byte) (channelData, bool) {
	c.lastMu.Lock()
	defer c.lastMu.Unlock()
	if len(b) == 0 || c.last.data != &b[0] {
		return channelData{}, false
	}
	return c.last, true
}

// peerChannel is the channel a relay's client uses to a peer, learned.
type peerChannel struct {
	peer   netip.AddrPort
	client netip.AddrPort
	number uint16
	seen   time.Time
}

// learn notes the channel of b, which pion relays to peer, if b came in
// ChannelData on the UDP listener.
func (r *trackedRelay) learn(b []byte, peer netip.AddrPort) {
	if r.listener == nil {
		return
	}
	cd, ok := r.listener.channelOf(b)
	if !ok {
		return
	}
	now := time.Now()
	r.chMu.Lock()
	defer r.chMu.Unlock()
	if c := r.ch; c != nil && c.peer == peer && c.client == cd.from && c.number == cd.number {
		c.seen = now
		return
	}
	r.ch = &peerChannel{peer: peer, client: cd.from, number: cd.number, seen: now}
}

// receive takes a datagram the peer sent the relay in memory: straight to
// the client on the learned channel, or into the inbox.
func (r *trackedRelay) receive(b []byte, from netip.AddrPort) bool {
	r.chMu.Lock()
	c := r.ch
	ok := c != nil && c.peer == from && time.Since(c.seen) < channelFresh
	var client netip.AddrPort
	var number uint16
	if ok {
		client, number = c.client, c.number
	}
	r.chMu.Unlock()
	if !ok || len(b) > maxChannelData {
		return r.in.push(b, from)
	}
	var msg [4 + maxChannelData]byte
	binary.BigEndian.PutUint16(msg[0:], number)
	binary.BigEndian.PutUint16(msg[2:], uint16(len(b)))
	n := 4 + copy(msg[4:], b)
	// Over UDP the message needs no padding (RFC 8656 section 12.5).
	if _, err := r.listener.udp.WriteToAddrPort(msg[:n], client); err != nil {
		return r.in.push(b, from)
	}
	r.t.direct.Add(1)
	return true
}

// maxChannelData is the largest datagram sent straight to the client (a
// media packet is about 200 bytes).
const maxChannelData = 1500
