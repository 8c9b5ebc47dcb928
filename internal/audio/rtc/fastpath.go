package rtc

import (
	"net/netip"
	"sync"
	"time"

	"github.com/pion/ice/v4"

	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

// The media fast path. On shared sockets (Config.Shared), once a leg's
// DTLS handshake has made its keys, its SRTP and SRTCP go
// straight from the socket's reading goroutine into the leg (decrypted
// into the jitter buffer there), and what the leg sends goes straight to
// the socket: pion's mux, the candidate's reading goroutine and the
// agent's buffer are left out, two goroutine hand-offs a packet each way.
// STUN and DTLS still take pion's path. pion's agent counts a peer as
// present from what it receives: an offering leg's agent (full ICE) checks
// the pair every Config.KeepAlive and hears the answers, but an answering
// one (ICE-lite) only waits for the peer's checks, which a browser may
// send only every few seconds; so an answering leg's agent also gets a
// copy of one media packet every quarter of Config.DisconnectedAfter.

// routes is one shared port's connected legs by their peer's address, for
// the port's sockets' Intercept.
type routes struct {
	mu   sync.RWMutex
	legs map[netip.AddrPort]*Leg
}

func newRoutes() *routes { return &routes{legs: map[netip.AddrPort]*Leg{}} }

// take is the sockets' Intercept: SRTP and SRTCP from a routed peer go
// to its leg. A STUN message from a routed peer goes on to pion's agent,
// which thereby hears its peer: the leg's next media sample for the agent
// can wait (a peer that checks every second, as full ICE agents do, then
// costs the agent's slow path no samples at all).
func (r *routes) take(b []byte, from netip.AddrPort, c *udpbatch.Conn) bool {
	rtp := isRTP(b)
	if !rtp && !isSTUN(b) {
		return false
	}
	r.mu.RLock()
	l := r.legs[from]
	r.mu.RUnlock()
	switch {
	case l == nil:
		return false
	case !rtp && l.released.Load():
		l.answerCheck(b, from, c)
		return true
	case !rtp:
		l.sampled.Store(time.Now().UnixNano())
		return false
	}
	return l.receiveFast(b, from, c, false)
}

// takeLocal takes a packet another socket of this process (the embedded
// TURN relay's allocation) sent to the socket c in memory (Config.Local),
// as from: a routed peer's SRTP and SRTCP go to its leg, as take's do.
// Everything else, and the ICE agent's periodic sample, goes back to the
// sender, which sends it through the kernel; it then arrives through take
// (the sample too: takeLocal leaves it due, so that take passes it on).
func (r *routes) takeLocal(b []byte, from netip.AddrPort, c *udpbatch.Conn) bool {
	if !isRTP(b) {
		return false
	}
	r.mu.RLock()
	l := r.legs[from]
	r.mu.RUnlock()
	return l != nil && l.receiveFast(b, from, c, true)
}

// isSTUN tells a STUN message by its first byte (0-3, RFC 7983) and the
// length of its header.
func isSTUN(b []byte) bool { return len(b) >= 20 && b[0] <= 3 }

func (r *routes) add(peer netip.AddrPort, l *Leg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.legs[peer] = l
}

func (r *routes) remove(peer netip.AddrPort, l *Leg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.legs[peer] == l {
		delete(r.legs, peer)
	}
}

// direct is where a fast-path leg sends: the socket its peer's media
// arrives on, and the peer's address.
type direct struct {
	conn *udpbatch.Conn
	to   netip.AddrPort
}

// route puts the leg on its port's fast path, to the peer of the ICE
// agent's selected pair. It is called once DTLS has made the keys (again
// if the first media still came through the agent), and whenever the
// selected pair changes.
func (l *Leg) route(remote ice.Candidate) {
	if l.port == nil || remote == nil || remote.NetworkType().IsTCP() {
		return // ICE-TCP: pion's path
	}
	ip, err := netip.ParseAddr(remote.Address())
	if err != nil {
		return // an mDNS name: media stays on pion's path
	}
	peer := netip.AddrPortFrom(ip.Unmap(), uint16(remote.Port()))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.routed.IsValid() {
		l.port.routes.remove(l.routed, l)
	}
	l.direct.Store(nil) // until media arrives from the new peer
	l.routed = peer
	l.port.routes.add(peer, l)
}

// pairChanged follows the ICE agent's selected pair once the leg is on
// the fast path.
func (l *Leg) pairChanged(_, remote ice.Candidate) {
	l.mu.Lock()
	routed := l.routed.IsValid()
	l.mu.Unlock()
	if routed {
		l.route(remote)
	}
}

// unroute takes the leg off the fast path (Close).
func (l *Leg) unroute() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.port != nil && l.routed.IsValid() {
		l.port.routes.remove(l.routed, l)
		l.routed = netip.AddrPort{}
	}
	l.direct.Store(nil)
}

// receiveFast takes a packet from the socket's reading goroutine. It
// returns false for the agent's periodic sample, which it has taken all
// the same: pion's path then brings the leg a duplicate, which SRTP's
// replay check drops (taking the sample on pion's path alone would let a
// later packet overtake it, a gap in the sequence). A packet that came in
// memory (local) does not count as the sample: the kernel's copy of it,
// which the sender then sends, does.
func (l *Leg) receiveFast(b []byte, from netip.AddrPort, c *udpbatch.Conn, local bool) bool {
	keys := l.keys.Load()
	if keys == nil {
		return false
	}
	if d := l.direct.Load(); d == nil || d.conn != c || d.to != from {
		l.direct.Store(&direct{conn: c, to: from})
	}
	l.stats.fast.Add(1)
	if l.receive(keys, b) && !l.local.lite {
		l.releaseDTLSLater() // the peer's first media: its handshake is done
	}
	if !l.local.lite {
		return true // a full agent's own keepalive checks show it the peer
	}
	now := time.Now().UnixNano()
	if l.released.Load() {
		l.heard.Store(now)
		return true
	}
	// The peer's media: its handshake is done, and the agent can go
	// (release.go), DTLS with it.
	l.releaseICELater()
	if now-l.sampled.Load() >= int64(l.engine.sampleEvery) {
		if !local {
			l.sampled.Store(now)
			l.samples.Add(1)
		}
		return false
	}
	return true
}
