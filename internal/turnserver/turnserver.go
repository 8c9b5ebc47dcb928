// Package turnserver runs the switchboard's embedded TURN relay (RFC 8656,
// pion/turn) on one UDP and one TCP listener at the same address, and mints
// the short-lived credentials its users present: TURN REST style (the
// username is "expiry:identity", the password an HMAC of it under a secret
// only the switchboard knows), so the relay keeps no user list and a
// credential cannot be used past its expiry.
package turnserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // TURN REST credentials are HMAC-SHA1 (coturn's and pion's)
	"encoding/base64"
	"encoding/hex"
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

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

// Config sets up a Server.
type Config struct {
	// Addr is where the relay listens, UDP and TCP, as HOST:PORT (port 0:
	// a free port, the same for both when it can).
	Addr string
	// RelayIP is the address relayed candidates advertise (the server's
	// public address behind 1:1 NAT). Empty: Addr's host, or, when that is
	// unspecified (0.0.0.0, ::), the host's address that routes outward.
	RelayIP string
	// RelayPortMin and RelayPortMax bound the UDP ports of relayed
	// candidates; zero is any.
	RelayPortMin, RelayPortMax uint16
	// Realm is the TURN realm (default "switchboard").
	Realm string
	// Secret signs credentials; empty is a random one for this process.
	Secret string
	// TTL is how long a credential is valid (default 1 h).
	TTL time.Duration
	// AllowPeer, when set, is where relayed packets may go: a relay whose
	// only peer is the switchboard's own media port must not let a token
	// holder reach other hosts or the host's other services. Packets to
	// other peers are dropped, and permissions for addresses it refuses
	// on every port are refused. nil lets any peer through.
	AllowPeer func(netip.AddrPort) bool
	// Local, when set, carries relayed packets between the allocations'
	// relay sockets and this process's other sockets (the media plane's
	// shared ports) in memory: a packet whose peer is registered with it
	// goes to the peer's socket without the kernel, and the peer's
	// packets come back the same way (see udpbatch.Local).
	Local  *udpbatch.Local
	Logger *slog.Logger
}

// socketBuffer is the kernel buffer the UDP listener asks for each way.
const socketBuffer = 4 << 20

// DefaultTTL is how long credentials are valid unless Config.TTL says.
const DefaultTTL = time.Hour

// Server is a running TURN relay.
type Server struct {
	cfg     Config
	turn    *turn.Server
	udp     *net.UDPConn
	udpConn *udpbatch.Conn // udp, batching
	tcp     net.Listener
	tracked *tracker
}

// New listens on cfg.Addr (UDP and TCP) and starts relaying.
func New(cfg Config) (*Server, error) {
	if cfg.Realm == "" {
		cfg.Realm = "switchboard"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("turn: secret: %w", err)
		}
		cfg.Secret = hex.EncodeToString(b)
	}
	if (cfg.RelayPortMin == 0) != (cfg.RelayPortMax == 0) {
		return nil, errors.New("turn: a relay port range needs both ends")
	}
	if cfg.RelayPortMin > cfg.RelayPortMax {
		return nil, fmt.Errorf("turn: relay port range %d-%d: the first port is above the last", cfg.RelayPortMin, cfg.RelayPortMax)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("turn: address %q: %w", cfg.Addr, err)
	}
	listenIP := net.ParseIP(host)
	if host != "" && listenIP == nil {
		return nil, fmt.Errorf("turn: address %q: want an IP address, not a name", cfg.Addr)
	}
	relayIP, err := relayAddress(cfg.RelayIP, listenIP)
	if err != nil {
		return nil, err
	}
	udp, tcp, err := listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, udp: udp, tracked: &tracker{conns: map[*trackedConn]struct{}{}, relays: map[*trackedRelay]struct{}{}}}
	// Every client's datagrams arrive on the one UDP listener: it reads
	// them in batches (recvmmsg) and its writes, the relayed media going
	// back to the clients, leave in batches (sendmmsg).
	// Its kernel buffers hold a burst of every client's packets while the
	// reading goroutine waits for a core, as the media plane's shared
	// sockets' do (the kernel caps them at net.core.rmem_max, wmem_max).
	_ = udp.SetReadBuffer(socketBuffer)
	_ = udp.SetWriteBuffer(socketBuffer)
	s.udpConn = udpbatch.New(udp, nil)
	s.tcp = &trackingListener{Listener: tcp, t: s.tracked}
	relayHost := "0.0.0.0"
	if listenIP != nil && !listenIP.IsUnspecified() {
		relayHost = listenIP.String()
	} else if listenIP != nil && listenIP.To4() == nil {
		relayHost = "::"
	}
	var gen turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: relayHost}
	if cfg.RelayPortMin != 0 {
		gen = &turn.RelayAddressGeneratorPortRange{RelayAddress: relayIP, Address: relayHost,
			MinPort: cfg.RelayPortMin, MaxPort: cfg.RelayPortMax}
	}
	listener := &trackedPacketConn{PacketConn: s.udpConn, t: s.tracked, udp: s.udpConn}
	gen = &trackingGenerator{RelayAddressGenerator: gen, t: s.tracked, allow: cfg.AllowPeer, local: cfg.Local, listener: listener}
	var permit turn.PermissionHandler
	if cfg.AllowPeer != nil {
		permit = func(_ net.Addr, peer net.IP) bool {
			ip, ok := netip.AddrFromSlice(peer)
			return ok && cfg.AllowPeer(netip.AddrPortFrom(ip.Unmap(), 0))
		}
	}
	logs := pionLogs{cfg.Logger.With("pion", "turn")}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       authHandler(cfg.Secret, logs.NewLogger("turn-auth")),
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: listener, RelayAddressGenerator: gen, PermissionHandler: permit}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: s.tcp, RelayAddressGenerator: gen, PermissionHandler: permit}},
		LoggerFactory:     logs,
	})
	if err != nil {
		_ = s.udpConn.Close()
		_ = tcp.Close()
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.tracked.reading.Add(1) // the UDP listener's reading loop
	cfg.Logger.Info("TURN relay listening", "addr", s.Addr(), "relay_ip", relayIP.String(), "realm", cfg.Realm)
	return s, nil
}

// listen opens UDP and TCP on addr; with port 0, one port free for both.
func listen(addr string) (*net.UDPConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		udp, err := net.ListenUDP("udp", udpAddr(host, port))
		if err != nil {
			return nil, nil, fmt.Errorf("turn: listen UDP %s: %w", addr, err)
		}
		p := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		if port != "0" || try >= 10 {
			return nil, nil, fmt.Errorf("turn: listen TCP %s: %w", net.JoinHostPort(host, p), err)
		}
	}
}

func udpAddr(host, port string) *net.UDPAddr {
	p, _ := strconv.Atoi(port)
	return &net.UDPAddr{IP: net.ParseIP(host), Port: p}
}

// relayAddress picks the address relayed candidates advertise.
func relayAddress(configured string, listenIP net.IP) (net.IP, error) {
	if configured != "" {
		ip := net.ParseIP(configured)
		if ip == nil {
			return nil, fmt.Errorf("turn: relay address %q is not an IP address", configured)
		}
		return ip, nil
	}
	if listenIP != nil && !listenIP.IsUnspecified() {
		return listenIP, nil
	}
	return OutboundIP(), nil
}

// OutboundIP is the host's address that routes toward the internet (no
// packet is sent), or 127.0.0.1 on a host without a route.
func OutboundIP() net.IP {
	c, err := net.Dial("udp4", "192.0.2.1:9") // TEST-NET-1: only the route is looked up
	if err != nil {
		return net.IPv4(127, 0, 0, 1)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP
}

// Addr is the address the relay listens on (UDP and TCP share the port).
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Port is the relay's port, UDP and TCP.
func (s *Server) Port() int { return s.udp.LocalAddr().(*net.UDPAddr).Port }

// Realm is the relay's realm.
func (s *Server) Realm() string { return s.cfg.Realm }

// TTL is how long the credentials Credentials mints are valid.
func (s *Server) TTL() time.Duration { return s.cfg.TTL }

// Credentials mints a username and password for identity, valid for the
// configured TTL.
func (s *Server) Credentials(identity string) (username, password string, err error) {
	return Credentials(s.cfg.Secret, identity, s.cfg.TTL)
}

// Credentials mints TURN REST credentials under secret (the relay's, or
// an external TURN server's shared secret, as coturn's use-auth-secret):
// the username is the expiry in Unix seconds, a colon and identity, the
// password the base64 HMAC-SHA1 of the username.
func Credentials(secret, identity string, ttl time.Duration) (username, password string, err error) {
	// A colon in the identity (raw ids have them) would be read as the
	// username's separator by some servers; TURN wants only the expiry
	// before the first one.
	identity = strings.ReplaceAll(identity, ":", "_")
	username, password, err = turn.GenerateLongTermTURNRESTCredentials(secret, identity, ttl)
	if err != nil {
		return "", "", fmt.Errorf("turn: credentials: %w", err)
	}
	return username, password, nil
}

// authHandler checks TURN REST credentials: an allocation needs one that
// has not expired; the requests that keep an allocation up (refreshes,
// permissions, channels) take one past its expiry, as long as it is
// genuine: a call must not lose its relay when the credential it started
// with expires (TTL), and those requests come only from the 5-tuple the
// allocation was made on with a fresh credential.
func authHandler(secret string, log logging.LeveledLogger) turn.AuthHandler {
	fresh := turn.LongTermTURNRESTAuthHandler(secret, log)
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		if ra.Method == stun.MethodAllocate {
			return fresh(ra)
		}
		expiry, user, _ := strings.Cut(ra.Username, ":")
		if _, err := strconv.ParseInt(expiry, 10, 64); err != nil {
			return "", nil, false
		}
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write([]byte(ra.Username))
		password := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		return user, turn.GenerateAuthKey(ra.Username, ra.Realm, password), true
	}
}

// Allocations is how many relayed allocations are open.
func (s *Server) Allocations() int { return s.turn.AllocationCount() }

// Stats is what a relay did so far.
type Stats struct {
	Allocations int `json:"allocations"`
	// UDP is the UDP listener's datagrams and system calls (every
	// client's packets over UDP, each way).
	UDP udpbatch.Stats `json:"udp"`
	// Local is what Config.Local carried in memory, both ways and for
	// every user of it (the media plane's too).
	Local udpbatch.LocalStats `json:"local"`
	// ChannelsDirect counts the peers' datagrams sent to the client on
	// the peer's goroutine, not the allocation's (relay_local.go).
	ChannelsDirect uint64 `json:"channelsDirect"`
}

// Stats returns the relay's counts.
func (s *Server) Stats() Stats {
	return Stats{Allocations: s.Allocations(), UDP: s.udpConn.Stats(), Local: s.cfg.Local.Stats(),
		ChannelsDirect: s.tracked.direct.Load()}
}

// Close stops the relay: its listeners, its TCP connections and its
// allocations' relay sockets, and waits for the goroutines reading them.
func (s *Server) Close() error {
	err := s.turn.Close()
	s.tracked.closeAll()
	s.tracked.reading.Wait()
	if err != nil {
		return fmt.Errorf("turn: closing: %w", err)
	}
	return nil
}

// tracker knows every socket the relay reads (pion's server does not close
// its TCP connections or its allocations' relay sockets on Close) and
// when each reading loop has ended.
type tracker struct {
	mu      sync.Mutex
	closed  bool
	conns   map[*trackedConn]struct{}
	relays  map[*trackedRelay]struct{}
	reading sync.WaitGroup
	direct  atomic.Uint64 // Stats.ChannelsDirect
}

func (t *tracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns, relays := t.conns, t.relays
	t.conns, t.relays = nil, nil
	t.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	for r := range relays {
		_ = r.PacketConn.Close()
	}
}

// trackingListener tracks the TCP connections it accepts; pion reads each
// on a goroutine that closes it when done.
type trackingListener struct {
	net.Listener
	t *tracker
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, t: l.t}
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if l.t.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.t.conns[tc] = struct{}{}
	l.t.reading.Add(1)
	return tc, nil
}

type trackedConn struct {
	net.Conn
	t    *tracker
	once sync.Once
}

// Close is called by pion's goroutine when it stops reading the conn.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
		c.t.reading.Done()
	})
	return err
}

// trackedPacketConn is the UDP listener: its reading loop ends at the
// first error after Close.
type trackedPacketConn struct {
	net.PacketConn
	t    *tracker
	once sync.Once
	udp  *udpbatch.Conn // PacketConn
	// last is the ChannelData message read last (relay_local.go).
	lastMu sync.Mutex
	last   channelData
}

func (c *trackedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err != nil && errors.Is(err, net.ErrClosed) {
		c.once.Do(c.t.reading.Done)
	}
	if err == nil {
		c.note(b[:n], addr)
	}
	return n, addr, err
}

// trackingGenerator keeps the relay sockets it makes, to close them, and
// makes UDP relays only: TCP allocations (RFC 6062) would let a client
// open TCP connections from this host, and media needs none.
type trackingGenerator struct {
	turn.RelayAddressGenerator
	t     *tracker
	allow func(netip.AddrPort) bool
	local *udpbatch.Local
	// listener is the UDP listener, whose clients' channels a relay
	// with local learns (relay_local.go).
	listener *trackedPacketConn
}

var errNoTCPRelay = errors.New("turn: TCP relays are not offered")

func (g *trackingGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

func (g *trackingGenerator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCPRelay
}

func (g *trackingGenerator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	c, addr, err := g.RelayAddressGenerator.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	g.t.mu.Lock()
	defer g.t.mu.Unlock()
	if g.t.closed {
		_ = c.Close()
		return nil, nil, net.ErrClosed
	}
	r := &trackedRelay{PacketConn: c, t: g.t, allow: g.allow}
	g.t.relays[r] = struct{}{}
	if g.local != nil {
		r.inMemory(g.local, g.listener)
	}
	return r, addr, nil
}

// trackedRelay is an allocation's relay socket; it leaves the tracker when
// the allocation closes it.
type trackedRelay struct {
	net.PacketConn
	t     *tracker
	allow func(netip.AddrPort) bool
	// With Config.Local (relay_local.go): the socket's address, what
	// arrives for the allocation (in memory, or read from the socket by
	// a goroutine of the relay's), and the registration's undoing.
	local      *udpbatch.Local
	self       netip.AddrPort
	in         *inbox
	unregister func()
	lastFrom   netip.AddrPort // ReadFrom's last sender, and its net.Addr
	lastAddr   net.Addr
	// The channel learned from the UDP listener, to send the peer's
	// datagrams to the client directly, and how many went so.
	listener *trackedPacketConn
	chMu     sync.Mutex
	ch       *peerChannel
}

// WriteTo relays a client's packet to a peer that AllowPeer lets through;
// others are dropped as if sent.
func (r *trackedRelay) WriteTo(b []byte, to net.Addr) (int, error) {
	if r.allow != nil {
		u, ok := to.(*net.UDPAddr)
		if !ok {
			return len(b), nil
		}
		ap := u.AddrPort()
		if !r.allow(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())) {
			return len(b), nil
		}
	}
	if r.local != nil {
		if u, ok := to.(*net.UDPAddr); ok && r.local.Send(b, r.self, u.AddrPort()) {
			r.learn(b, u.AddrPort())
			return len(b), nil
		}
	}
	return r.PacketConn.WriteTo(b, to)
}

func (r *trackedRelay) Close() error {
	r.t.mu.Lock()
	delete(r.t.relays, r)
	r.t.mu.Unlock()
	if r.local != nil {
		r.unregister()
		r.in.close()
	}
	return r.PacketConn.Close()
}

// pionLogs sends pion's errors to slog as warnings (a client with a
// forged or expired credential makes one) and the rest as debug lines.
type pionLogs struct{ log *slog.Logger }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope(scope, logging.LogLevelWarn, slogWriter(p))
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	line := strings.TrimSpace(string(b))
	if strings.Contains(line, "ERROR") {
		w.log.Warn(line)
	} else {
		w.log.Debug(line)
	}
	return len(b), nil
}
