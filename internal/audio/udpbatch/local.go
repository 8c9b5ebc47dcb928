package udpbatch

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Local carries datagrams between sockets of one process in memory. A
// socket registers a Receiver at its address; a sender whose destination
// is registered hands the datagram to the receiver instead of the kernel,
// which saves a system call each side and the kernel's work between them.
// The switchboard's embedded TURN relay and its media ports use one: a
// relayed leg's packets go from the relay's allocation to the leg, and
// back, without leaving the process.
//
// A receiver may refuse a datagram (return false): the sender then sends
// it through the kernel as usual. Receivers run on the sender's goroutine
// and must be quick. The zero Local carries nothing; make one with
// NewLocal. A nil *Local is valid and carries nothing.
type Local struct {
	hostIPs map[netip.Addr]bool // the host's addresses, for wildcard registrations

	mu  sync.RWMutex
	at  map[netip.AddrPort]Receiver
	any atomic.Int32 // registrations, to skip the lookup when there are none

	carried, refused atomic.Uint64
}

// Receiver takes a datagram sent to its address from from; b is valid only
// during the call. It returns false when it did not take the datagram,
// which then goes through the kernel.
type Receiver func(b []byte, from netip.AddrPort) bool

// LocalStats is what a Local did so far.
type LocalStats struct {
	Carried uint64 `json:"carried"` // datagrams handed to a receiver in memory
	Refused uint64 `json:"refused"` // datagrams a receiver sent back to the kernel
}

// NewLocal makes a Local; it reads the host's addresses once, for sockets
// bound to every address (0.0.0.0, ::).
func NewLocal() *Local {
	l := &Local{hostIPs: map[netip.Addr]bool{}, at: map[netip.AddrPort]Receiver{}}
	addrs, _ := net.InterfaceAddrs() // none: wildcard registrations reach loopback alone
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				l.hostIPs[ip.Unmap()] = true
			}
		}
	}
	l.hostIPs[netip.MustParseAddr("127.0.0.1")] = true
	l.hostIPs[netip.IPv6Loopback()] = true
	return l
}

// Register makes r the receiver of datagrams sent to at; an unspecified
// address (0.0.0.0, ::) registers at's port on every address of the host.
// The returned function undoes it.
func (l *Local) Register(at netip.AddrPort, r Receiver) (unregister func()) {
	addrs := []netip.AddrPort{netip.AddrPortFrom(at.Addr().Unmap(), at.Port())}
	if at.Addr().IsUnspecified() {
		addrs = addrs[:0]
		for ip := range l.hostIPs {
			addrs = append(addrs, netip.AddrPortFrom(ip, at.Port()))
		}
	}
	l.mu.Lock()
	for _, a := range addrs {
		l.at[a] = r
	}
	l.any.Store(int32(len(l.at)))
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, a := range addrs {
				delete(l.at, a)
			}
			l.any.Store(int32(len(l.at)))
		})
	}
}

// Send hands b to the receiver registered at to, as sent from from (a
// sender bound to an unspecified address sends from to's address, as the
// kernel would for a destination on this host); false when no receiver
// is registered there or it refused b: send it through the kernel.
func (l *Local) Send(b []byte, from, to netip.AddrPort) bool {
	if l == nil || l.any.Load() == 0 {
		return false
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	l.mu.RLock()
	r := l.at[to]
	l.mu.RUnlock()
	if r == nil {
		return false
	}
	if from.Addr().IsUnspecified() {
		from = netip.AddrPortFrom(to.Addr(), from.Port())
	}
	if !r(b, from) {
		l.refused.Add(1)
		return false
	}
	l.carried.Add(1)
	return true
}

// Stats returns the Local's counts.
func (l *Local) Stats() LocalStats {
	if l == nil {
		return LocalStats{}
	}
	return LocalStats{Carried: l.carried.Load(), Refused: l.refused.Load()}
}
