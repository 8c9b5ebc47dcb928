package rtc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

// sharedSocketBuffer is the kernel buffer a shared socket asks for each
// way: a thousand legs bring 50,000 packets a second, more than Linux's
// default 208 KiB holds while the reading goroutine waits for a core. The
// kernel caps it at net.core.rmem_max and wmem_max.
const sharedSocketBuffer = 4 << 20

// sharedPorts is an engine's shared UDP ports (Config.Shared) and which
// peer addresses each one's legs use.
type sharedPorts struct {
	mu    sync.Mutex
	ports []*sharedPort
	next  int // where the round robin resumes
}

type sharedPort struct {
	mux    *ice.MultiUDPMuxDefault
	peers  map[netip.AddrPort]int // legs per peer address
	routes *routes                // the fast path's legs (fastpath.go)
	// v4 and v6 are the mux with its IPv4 or its IPv6 addresses alone.
	v4, v6 ice.UDPMux
	// unregister undoes the sockets' registrations with Config.Local.
	unregister []func()
}

// muxFor is the port's mux for a leg whose peer offered candidates at
// peers: only the local addresses of the peer's address families, when it
// offered any. A leg gathers a candidate on every address its mux lists,
// and each costs pion two goroutines and an 8 KB buffer for as long as the
// leg lives; a peer with IPv4 addresses alone never uses an IPv6 one.
func (p *sharedPort) muxFor(peers []netip.AddrPort) ice.UDPMux {
	var v4, v6 bool
	for _, a := range peers {
		if a.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	switch {
	case v4 && !v6 && p.v4 != nil:
		return p.v4
	case v6 && !v4 && p.v6 != nil:
		return p.v6
	}
	return p.mux
}

// familyMux is a shared mux that lists only some of its local addresses.
type familyMux struct {
	*ice.MultiUDPMuxDefault
	addrs []net.Addr
}

func (m familyMux) GetListenAddresses() []net.Addr { return m.addrs }

// Close leaves the shared mux open: the engine closes it.
func (familyMux) Close() error { return nil }

// familyViews makes the v4 and v6 views of a port's mux; a family the
// host has no address in gets none.
func (p *sharedPort) familyViews() {
	var v4, v6 []net.Addr
	for _, a := range p.mux.GetListenAddresses() {
		if u, ok := a.(*net.UDPAddr); ok && u.IP.To4() != nil {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	if len(v4) > 0 {
		p.v4 = familyMux{p.mux, v4}
	}
	if len(v6) > 0 {
		p.v6 = familyMux{p.mux, v6}
	}
}

// openShared opens the shared ports, each with one batching socket per
// local address.
func (e *Engine) openShared() (*sharedPorts, error) {
	std, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("rtc: network: %w", err)
	}
	s := &sharedPorts{}
	for i := range e.cfg.SharedPorts {
		sp := &sharedPort{peers: map[netip.AddrPort]int{}, routes: newRoutes()}
		network := batchingNet{Net: std, group: e.batches, routes: sp.routes, local: e.cfg.Local, port: sp}
		port := 0
		if e.cfg.SharedPort != 0 {
			port = int(e.cfg.SharedPort) + i
		}
		opts := []ice.UDPMuxFromPortOption{ice.UDPMuxFromPortWithNetworks(e.networks...),
			ice.UDPMuxFromPortWithLogger(e.logs.NewLogger("ice-mux")),
			ice.UDPMuxFromPortWithReadBufferSize(sharedSocketBuffer),
			ice.UDPMuxFromPortWithWriteBufferSize(sharedSocketBuffer),
			ice.UDPMuxFromPortWithNet(network),
			ice.UDPMuxFromPortWithIPFilter(usableIP)}
		if e.cfg.Loopback {
			opts = append(opts, ice.UDPMuxFromPortWithLoopback())
		}
		mux, err := ice.NewMultiUDPMuxFromPort(port, opts...)
		if err != nil {
			_ = s.close()
			return nil, fmt.Errorf("rtc: shared UDP port %d: %w", port, err)
		}
		sp.mux = mux
		sp.familyViews()
		s.ports = append(s.ports, sp)
	}
	return s, nil
}

// ErrNoSharedPort is a new leg's refusal when every shared port already
// has a leg from one of the peer's addresses: a port's mux tells its legs
// apart by peer address alone, so the new leg's ICE checks would reach the
// other leg and never connect. Only a peer that puts many legs on one
// socket (a load generator) meets it; it needs more sockets of its own, or
// the server more ports.
var ErrNoSharedPort = errors.New("rtc: every shared UDP port already has a leg from this peer address")

// take picks the port for a new leg whose peer offered candidates at
// peers (none: the leg offers, and its peer's addresses are not known
// yet): the next in turn that no leg from any of those addresses uses, as
// the port's mux tells legs apart by peer address. If every port has one,
// it fails with ErrNoSharedPort. Give the port back with release.
func (s *sharedPorts) take(peers []netip.AddrPort) (*sharedPort, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pick *sharedPort
	for k := range s.ports {
		p := s.ports[(s.next+k)%len(s.ports)]
		if !p.uses(peers) {
			pick = p
			break
		}
	}
	if pick == nil {
		return nil, fmt.Errorf("%w (%d ports)", ErrNoSharedPort, len(s.ports))
	}
	s.next++
	for _, a := range peers {
		pick.peers[a]++
	}
	return pick, nil
}

func (p *sharedPort) uses(peers []netip.AddrPort) bool {
	for _, a := range peers {
		if p.peers[a] > 0 {
			return true
		}
	}
	return false
}

// release gives back a port take returned for the same peers.
func (s *sharedPorts) release(p *sharedPort, peers []netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range peers {
		if p.peers[a]--; p.peers[a] <= 0 {
			delete(p.peers, a)
		}
	}
}

func (s *sharedPorts) close() error {
	var errs []error
	for _, p := range s.ports {
		for _, f := range p.unregister {
			f()
		}
		if err := p.mux.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rtc: closing the shared UDP sockets: %w", err)
	}
	return nil
}

// batchingNet is the host's network whose UDP sockets batch (udpbatch):
// pion's mux reads and writes through them one datagram at a time, and
// the fast path's routes take the routed legs' media first.
type batchingNet struct {
	*stdnet.Net
	group  *udpbatch.Group
	routes *routes
	// local, when set, carries datagrams between the sockets and the
	// process's other sockets (the TURN relay's) in memory; port keeps
	// the registrations.
	local *udpbatch.Local
	port  *sharedPort
}

// ListenUDP opens one of the port's sockets; pion's mux opens them all
// before the engine uses the port.
func (n batchingNet) ListenUDP(network string, addr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, addr)
	if err != nil {
		return nil, err
	}
	bc := udpbatch.New(c, n.group)
	bc.SetIntercept(n.routes.take)
	if n.local != nil {
		bc.SetLocal(n.local)
		n.port.unregister = append(n.port.unregister, n.local.Register(bc.AddrPort(),
			func(b []byte, from netip.AddrPort) bool { return n.routes.takeLocal(b, from, bc) }))
	}
	return bc, nil
}

// peerAddrs are the UDP addresses in a description's candidates.
func peerAddrs(r *remoteDesc) []netip.AddrPort {
	var addrs []netip.AddrPort
	for _, raw := range r.candidates {
		c, err := ice.UnmarshalCandidate(raw)
		if err != nil || c.NetworkType().IsTCP() {
			continue
		}
		ip, err := netip.ParseAddr(c.Address())
		if err != nil {
			continue // an mDNS name
		}
		addrs = append(addrs, netip.AddrPortFrom(ip.Unmap(), uint16(c.Port())))
	}
	return addrs
}
