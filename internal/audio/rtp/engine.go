package rtp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets up an Engine.
type Config struct {
	// Ports is the UDP port range legs take their ports from, "41000-41999"
	// (the default): each leg takes an even port for RTP and the odd one
	// after it for RTCP.
	Ports string
	// ListenIP is the address the legs' sockets bind; empty is every
	// address of the host.
	ListenIP string
	// PublicIP is the address the descriptions name (c=): the host's
	// public address behind 1:1 NAT. Empty is ListenIP, or else the host's
	// first IPv4 address that is not loopback.
	PublicIP string
	// SilenceTimeout ends a leg that has received nothing, RTP or RTCP,
	// for this long while its peer should be sending (default 30 s;
	// negative: never).
	SilenceTimeout time.Duration
	// ReportInterval is how often a leg sends RTCP reports (default 5 s).
	ReportInterval time.Duration
	// JitterFrames is the jitter buffer's target delay (default 3: 60 ms).
	JitterFrames int
	// FixedPeer makes the legs take packets only from the addresses the
	// peer's description names, without latching to another source: for
	// peers whose address is known and reached directly (the nodes of a
	// cluster). A stream still sent to a port a closed leg gave back (by a
	// peer that has not yet heard the call ended) is then ignored by the
	// next leg on that port rather than taken for its peer.
	FixedPeer bool
	Logger    *slog.Logger
}

// Defaults of Config.
const (
	DefaultPorts          = "41000-41999"
	DefaultSilenceTimeout = 30 * time.Second
	DefaultReportInterval = 5 * time.Second
)

// ErrNoPorts: every even port of the range is taken.
var ErrNoPorts = errors.New("rtp: no free port pair in the range")

// ErrClosed: the leg or the engine is closed.
var ErrClosed = errors.New("rtp: closed")

// Engine opens legs on a port range and keeps track of the ports they
// hold. Close closes the legs still open.
type Engine struct {
	cfg         Config
	first, last int // the first and last even RTP port
	listen      net.IP
	public      netip.Addr
	log         *slog.Logger

	stats engineStats

	mu     sync.Mutex
	used   map[int]bool // RTP ports of open legs
	next   int          // where the search for a port starts
	legs   map[*Leg]struct{}
	closed bool
}

// NewEngine checks the configuration.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Ports == "" {
		cfg.Ports = DefaultPorts
	}
	if cfg.SilenceTimeout == 0 {
		cfg.SilenceTimeout = DefaultSilenceTimeout
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.JitterFrames <= 0 {
		cfg.JitterFrames = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	first, last, err := parsePorts(cfg.Ports)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, first: first, last: last, next: first, log: cfg.Logger,
		used: map[int]bool{}, legs: map[*Leg]struct{}{}}
	if cfg.ListenIP != "" {
		ip, err := netip.ParseAddr(cfg.ListenIP)
		if err != nil {
			return nil, fmt.Errorf("rtp: listen IP %q: %w", cfg.ListenIP, err)
		}
		e.listen = net.IP(ip.AsSlice())
		if !ip.IsUnspecified() {
			e.public = ip
		}
	}
	if cfg.PublicIP != "" {
		ip, err := netip.ParseAddr(cfg.PublicIP)
		if err != nil {
			return nil, fmt.Errorf("rtp: public IP %q: %w", cfg.PublicIP, err)
		}
		e.public = ip.Unmap()
	}
	if !e.public.IsValid() {
		e.public = hostIPv4()
	}
	return e, nil
}

// parsePorts reads "FIRST-LAST" into the first and last even port with
// its odd one still inside the range.
func parsePorts(s string) (first, last int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	switch {
	case !ok || err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("rtp: port range %q: want FIRST-LAST, as 41000-41999", s)
	case lo < 1 || hi > 65535 || lo > hi:
		return 0, 0, fmt.Errorf("rtp: port range %q: want 1 <= FIRST <= LAST <= 65535", s)
	}
	first = lo + lo%2 // even
	last = hi - 1
	last -= last % 2 // even, with last+1 <= hi
	if first > last {
		return 0, 0, fmt.Errorf("rtp: port range %q holds no even port followed by an odd one", s)
	}
	return first, last, nil
}

// hostIPv4 is the host's first IPv4 address that is not loopback, or
// 127.0.0.1.
func hostIPv4() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					return ip.Unmap()
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// LegOptions are one leg's settings.
type LegOptions struct {
	// Logger, with the call's attributes; nil is the engine's.
	Logger *slog.Logger
}

// NewLeg opens a leg on the next free port pair of the range. Its
// goroutines run until Close (or until it ends by itself).
func (e *Engine) NewLeg(o LegOptions) (*Leg, error) { return e.newLeg(o, true) }

// newLeg opens a leg; tests hold its writer back (writer false) to fill
// its queue, and start it with startWriter.
func (e *Engine) newLeg(o LegOptions, writer bool) (*Leg, error) {
	rtpConn, rtcpConn, port, err := e.bind()
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = e.log
	}
	l := newLeg(e, rtpConn, rtcpConn, port, log.With("rtp_port", port))
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = rtpConn.Close()
		_ = rtcpConn.Close()
		e.release(port)
		return nil, ErrClosed
	}
	e.legs[l] = struct{}{}
	e.stats.opened.Add(1)
	e.mu.Unlock()
	l.start()
	if writer {
		l.startWriter()
	}
	return l, nil
}

// bind takes the next even port of the range, and the odd one after it,
// that are free here and on the host. The search goes on from where the
// last one ended, so a port just freed is the last to be taken again (a
// late packet of the old call must not reach the new one).
func (e *Engine) bind() (rtpConn, rtcpConn *net.UDPConn, port int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil, 0, ErrClosed
	}
	n := (e.last-e.first)/2 + 1
	for range n {
		p := e.next
		e.next += 2
		if e.next > e.last {
			e.next = e.first
		}
		if e.used[p] {
			continue
		}
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: e.listen, Port: p})
		if err != nil {
			continue // another program's
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: e.listen, Port: p + 1})
		if err != nil {
			_ = a.Close()
			continue
		}
		e.used[p] = true
		return a, b, p, nil
	}
	return nil, nil, 0, fmt.Errorf("%w %s", ErrNoPorts, e.cfg.Ports)
}

// release gives a leg's port pair back. The caller has closed its sockets.
func (e *Engine) release(port int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.used, port)
}

// forget drops a closed leg.
func (e *Engine) forget(l *Leg) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.legs, l)
	delete(e.used, l.port)
}

// Open is how many legs hold ports now.
func (e *Engine) Open() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.used)
}

type engineStats struct {
	opened, silenced        atomic.Uint64
	sent, received, ignored atomic.Uint64
	dropped                 atomic.Uint64
}

// Stats is what an engine's legs did so far.
type Stats struct {
	Open     int    // legs holding ports now
	Opened   uint64 // legs opened
	Silenced uint64 // legs ended by the silence timeout
	Sent     uint64 // RTP packets sent
	Received uint64 // RTP packets taken from peers
	// Ignored counts packets not taken: from a source other than the
	// latched peer, of a payload type not negotiated, or unreadable.
	Ignored uint64
	// Dropped counts packets that waited for a leg's writer and were
	// dropped, the oldest of a full queue, by the mixer's next frames.
	Dropped uint64
}

// Stats returns the counts of every leg the engine opened.
func (e *Engine) Stats() Stats {
	return Stats{
		Open: e.Open(), Opened: e.stats.opened.Load(), Silenced: e.stats.silenced.Load(),
		Sent: e.stats.sent.Load(), Received: e.stats.received.Load(), Ignored: e.stats.ignored.Load(),
		Dropped: e.stats.dropped.Load(),
	}
}

// Close closes every leg still open and opens no more.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	legs := make([]*Leg, 0, len(e.legs))
	for l := range e.legs {
		legs = append(legs, l)
	}
	e.mu.Unlock()
	var errs []error
	for _, l := range legs {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
