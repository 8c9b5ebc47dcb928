// Package udpbatch moves UDP datagrams in batches: a Conn reads with
// recvmmsg and writes with sendmmsg (through golang.org/x/net; other
// systems than Linux get one datagram per system call), behind the
// ordinary net.PacketConn methods, so code written for one socket per
// datagram (pion's ICE UDP mux) batches without knowing it.
//
// Reads need nothing from the caller: one ReadFrom that finds the socket
// full takes up to a batch of datagrams from the kernel, and the next
// ReadFroms return them. Writes are queued and sent by the Conn's flusher
// goroutine, together: at once when nobody holds the Conn's Group, at the
// Group's last Release otherwise, and whenever a batch fills. A sender that
// writes many datagrams at one moment (a media clock's tick) holds the
// Group around them, and they leave in a few sendmmsg calls instead of one
// sendto each.
package udpbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Batch is how many datagrams one system call writes at most.
const Batch = 64

// readBatch is how many datagrams one system call reads at most. Each has
// a buffer of its own for as long as the Conn lives, and a reading
// goroutine that keeps up finds only a few waiting (6 on average with a
// thousand legs on 32 ports).
const readBatch = 16

// maxQueued is how many datagrams may wait for the flusher; a writer that
// finds the queue full sends its datagram itself.
const maxQueued = 1024

// slotBytes is the largest datagram that is queued (larger ones are sent
// at once) and the largest that is read: a read buffer holds one byte more,
// and a datagram that fills it may have been cut short, so it is dropped
// (and counted). Media and ICE datagrams stay under the path MTU.
const slotBytes = 2048

// Stats is what a Conn did so far.
type Stats struct {
	Read, ReadCalls       uint64 // datagrams read, and the system calls that read them
	Written, WriteCalls   uint64 // datagrams the flusher sent, and its system calls
	Direct, WriteFailures uint64 // datagrams sent unqueued; datagrams the kernel refused
	Oversize              uint64 // datagrams read that filled the buffer, dropped
}

func (s Stats) plus(t Stats) Stats {
	return Stats{
		Read: s.Read + t.Read, ReadCalls: s.ReadCalls + t.ReadCalls,
		Written: s.Written + t.Written, WriteCalls: s.WriteCalls + t.WriteCalls,
		Direct: s.Direct + t.Direct, WriteFailures: s.WriteFailures + t.WriteFailures,
		Oversize: s.Oversize + t.Oversize,
	}
}

// batcher is the half of x/net's ipv4 and ipv6 PacketConns a Conn uses.
type batcher interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Conn is a UDP socket that reads and writes in batches. Its embedded
// UDPConn's own methods (ReadFromUDP, WriteToUDP and the rest) bypass the
// batching; use ReadFrom, ReadFromAddrPort, WriteTo and WriteToAddrPort.
// Reads are for one goroutine at a time; writes for any number.
type Conn struct {
	*net.UDPConn
	batch batcher
	v4    bool
	group *Group
	self  netip.AddrPort        // the socket's own address
	local atomic.Pointer[Local] // SetLocal

	rmu       sync.Mutex
	in        []ipv4.Message
	next, got int
	intercept atomic.Pointer[Intercept]

	wmu     sync.Mutex
	queued  []*slot // waiting for the flusher
	spare   []*slot // the flusher's last batch, emptied, for the next swap
	free    []*slot
	closed  bool
	wake    chan struct{} // a token: datagrams wait
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the flusher returns

	read, readCalls, written, writeCalls, direct, failures, oversize atomic.Uint64
}

// slot is one queued datagram. Its buffer grows to the largest datagram
// it has held (media packets are about 200 bytes).
type slot struct {
	bufs [1][]byte
	ip   [16]byte
	addr net.UDPAddr
}

// New wraps c; g may be nil (every write wakes the flusher). The Conn owns
// c from now on: Close closes it and stops the flusher goroutine.
func New(c *net.UDPConn, g *Group) *Conn {
	local, _ := c.LocalAddr().(*net.UDPAddr)
	v4 := local != nil && local.IP.To4() != nil
	bc := &Conn{UDPConn: c, v4: v4, group: g, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if local != nil {
		bc.self = netip.AddrPortFrom(local.AddrPort().Addr().Unmap(), local.AddrPort().Port())
	}
	if v4 {
		bc.batch = ipv4.NewPacketConn(c)
	} else {
		bc.batch = ipv6Batcher{ipv6.NewPacketConn(c)}
	}
	bc.in = make([]ipv4.Message, readBatch)
	for i := range bc.in {
		bc.in[i].Buffers = [][]byte{make([]byte, slotBytes+1)}
	}
	if g != nil {
		g.add(bc)
	}
	go bc.flusher()
	return bc
}

// SetLocal makes writes to an address registered with l go to its
// receiver in memory (a receiver that refuses one: through the kernel).
// nil turns it off.
func (c *Conn) SetLocal(l *Local) { c.local.Store(l) }

// AddrPort is the socket's own address.
func (c *Conn) AddrPort() netip.AddrPort { return c.self }

// Intercept sees each datagram a read takes from the socket, before the
// reader does, with the Conn it came in on; it returns true when it has
// consumed the datagram, which the reader then never sees. b is valid only
// during the call. It runs on the reading goroutine: it must be quick.
type Intercept func(b []byte, from netip.AddrPort, c *Conn) bool

// SetIntercept installs f (nil removes it).
func (c *Conn) SetIntercept(f Intercept) {
	if f == nil {
		c.intercept.Store(nil)
		return
	}
	c.intercept.Store(&f)
}

// ipv6Batcher adapts ipv6.PacketConn (its Message is the same type).
type ipv6Batcher struct{ c *ipv6.PacketConn }

func (b ipv6Batcher) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return b.c.ReadBatch(ms, flags)
}

func (b ipv6Batcher) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	return b.c.WriteBatch(ms, flags)
}

// ReadFromAddrPort returns the next datagram, reading a batch from the
// socket when none is left from the last.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		for c.next >= c.got {
			n, err := c.batch.ReadBatch(c.in, 0)
			if err != nil {
				return 0, netip.AddrPort{}, err // a *net.OpError, as a UDPConn's
			}
			c.next, c.got = 0, n
			c.readCalls.Add(1)
			c.read.Add(uint64(n))
		}
		m := &c.in[c.next]
		c.next++
		if m.N > slotBytes {
			c.oversize.Add(1)
			continue
		}
		from, ok := m.Addr.(*net.UDPAddr)
		if !ok {
			return 0, netip.AddrPort{}, fmt.Errorf("udpbatch: read: a datagram from %v", m.Addr)
		}
		ap := netip.AddrPortFrom(from.AddrPort().Addr().Unmap(), uint16(from.Port))
		if f := c.intercept.Load(); f != nil && (*f)(m.Buffers[0][:m.N], ap, c) {
			continue
		}
		return copy(b, m.Buffers[0][:m.N]), ap, nil
	}
}

// ReadFrom is ReadFromAddrPort with a *net.UDPAddr.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteTo queues b for to, a *net.UDPAddr.
func (c *Conn) WriteTo(b []byte, to net.Addr) (int, error) {
	u, ok := to.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("udpbatch: write to %v: not a UDP address", to)
	}
	return c.WriteToAddrPort(b, u.AddrPort())
}

// WriteToAddrPort queues a copy of b for to and returns at once; the
// flusher sends it. Like UDP itself, it reports no delivery failure: those
// are counted in Stats.
func (c *Conn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if l := c.local.Load(); l != nil && l.Send(b, c.self, to) {
		return len(b), nil
	}
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.queued) >= maxQueued || len(b) > slotBytes {
		c.wmu.Unlock()
		c.direct.Add(1)
		return c.UDPConn.WriteToUDPAddrPort(b, to)
	}
	s := c.slot()
	s.set(b, to, c.v4)
	c.queued = append(c.queued, s)
	n := len(c.queued)
	c.wmu.Unlock()
	if n >= Batch || !c.group.holding() {
		c.signal()
	}
	return len(b), nil
}

// slot returns a free slot; the caller holds wmu.
func (c *Conn) slot() *slot {
	if n := len(c.free); n > 0 {
		s := c.free[n-1]
		c.free = c.free[:n-1]
		return s
	}
	return &slot{}
}

func (s *slot) set(b []byte, to netip.AddrPort, v4 bool) {
	s.bufs[0] = append(s.bufs[0][:0], b...)
	addr := to.Addr().Unmap()
	if v4 {
		a := addr.As4()
		s.addr.IP = append(s.ip[:0], a[:]...)
	} else {
		a := addr.As16()
		s.addr.IP = append(s.ip[:0], a[:]...)
	}
	s.addr.Port = int(to.Port())
	s.addr.Zone = addr.Zone()
}

// signal wakes the flusher.
func (c *Conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pending tells whether datagrams wait for the flusher.
func (c *Conn) pending() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return len(c.queued) > 0
}

// flusher sends queued datagrams until Close.
func (c *Conn) flusher() {
	defer close(c.stopped)
	var msgs []ipv4.Message
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			return
		}
		for {
			c.wmu.Lock()
			batch := c.queued
			c.queued, c.spare = c.spare[:0], nil
			c.wmu.Unlock()
			if len(batch) == 0 {
				break
			}
			msgs = msgs[:0]
			for _, s := range batch {
				msgs = append(msgs, ipv4.Message{Buffers: s.bufs[:], Addr: &s.addr})
			}
			c.send(msgs)
			c.wmu.Lock()
			c.free = append(c.free, batch...)
			clear(batch)
			c.spare = batch[:0]
			c.wmu.Unlock()
		}
	}
}

// send writes msgs, Batch at a time; a datagram the kernel refuses
// (ECONNREFUSED from an earlier ICMP, say) is skipped, not retried.
func (c *Conn) send(msgs []ipv4.Message) {
	for len(msgs) > 0 {
		n, err := c.batch.WriteBatch(msgs[:min(len(msgs), Batch)], 0)
		c.writeCalls.Add(1)
		if err != nil || n == 0 {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.failures.Add(1)
			n = 1
		} else {
			c.written.Add(uint64(n))
		}
		msgs = msgs[n:]
	}
}

// Close stops the flusher (dropping what it has not sent) and closes the
// socket, which ends a blocked read.
func (c *Conn) Close() error {
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	close(c.stop)
	c.wmu.Unlock()
	err := c.UDPConn.Close()
	<-c.stopped
	if c.group != nil {
		c.group.remove(c)
	}
	return err
}

// Stats returns the Conn's counts.
func (c *Conn) Stats() Stats {
	return Stats{
		Read: c.read.Load(), ReadCalls: c.readCalls.Load(),
		Written: c.written.Load(), WriteCalls: c.writeCalls.Load(),
		Direct: c.direct.Load(), WriteFailures: c.failures.Load(),
		Oversize: c.oversize.Load(),
	}
}
