// Package rtc carries audio over WebRTC, built from pion's parts (ICE,
// DTLS, SRTP, SDP) rather than its PeerConnection: PCMU only, ICE without
// trickle, RTP and RTCP on one transport, RTCP sender reports, and nothing
// else a voice leg needs. A Leg is one media session with one audio stream
// each way. The server answers browsers and softphones with it as an
// ICE-lite endpoint, on UDP and, with Config.TCP, on ICE-TCP passive
// candidates for peers that cannot send UDP; the softphone and the load
// generator offer with it as full ICE agents, with STUN and TURN servers
// when given (OfferOptions).
//
// A PeerConnection passes every received packet through four goroutines
// (ICE, its transport mux, the SRTP session, the track reader) and every
// sent one through its interceptor chain and SRTP session; a Leg reads its
// transport on one goroutine that decrypts straight into the jitter buffer,
// and encrypts and writes on the sender's. On shared sockets a connected
// leg's media skips pion's ICE layer altogether (fastpath.go).
package rtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"

	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

// Config sets up an Engine.
type Config struct {
	// PublicIPs replace the host's addresses in the candidates it offers
	// (a server behind 1:1 NAT); empty offers the host's own.
	PublicIPs []string
	// PortMin and PortMax bound the UDP ports legs use; zero is any.
	// They apply when legs do not share a socket (see Shared).
	PortMin, PortMax uint16
	// Shared makes legs share UDP sockets: SharedPorts ports (default 1)
	// from SharedPort on (zero: free ports), one socket per local address
	// on each, and every leg on one of the ports. pion's ICE UDP mux tells
	// a port's legs apart by the peer's address and ICE credentials, so a
	// new leg goes to a port that no leg from the same peer address uses.
	// Shared sockets read and write in batches (recvmmsg and sendmmsg, see
	// udpbatch): a few reading goroutines and system calls serve every
	// leg, instead of a socket, a goroutine and a system call per packet,
	// leg and address; and a firewall or a container publishes a few
	// ports. Close the engine to close the sockets.
	Shared      bool
	SharedPort  uint16
	SharedPorts int
	// TCP makes answers offer ICE-TCP passive candidates (RFC 6544) on
	// one TCP port, TCPPort (zero: a free port), for peers that cannot
	// send UDP: a TCP connection per leg, told apart by ICE credentials,
	// over which media takes pion's path (the fast path is UDP's).
	TCP     bool
	TCPPort uint16
	// Loopback offers 127.0.0.1 too (tests, a browser on the same host).
	Loopback bool
	// DisconnectedAfter is how long without an answer from the peer before
	// ICE calls it disconnected (default 3 s); FailedAfter, failed (default
	// 15 s); KeepAlive, how often ICE checks (default 1 s).
	DisconnectedAfter, FailedAfter, KeepAlive time.Duration
	// JitterFrames is the jitter buffer's target delay (default 3: 60 ms).
	JitterFrames int
	// GatherTimeout bounds ICE gathering (default 5 s).
	GatherTimeout time.Duration
	// IPv4Only gathers IPv4 candidates alone (a load generator on the
	// server's host: one socket per leg, fewer ICE checks).
	IPv4Only bool
	// CountOnly makes legs count the packets they receive, from their
	// clear RTP headers, and neither decrypt nor keep audio: Capture is
	// always silence (load generators; a duplicate is counted twice).
	CountOnly bool
	// NoReports makes legs send no RTCP sender reports (load
	// generators).
	NoReports bool
	// Local, with Shared, carries datagrams between the shared sockets
	// and other sockets of this process in memory (the embedded TURN
	// relay's: see udpbatch.Local): a relayed leg's media reaches it, and
	// leaves it, without going through the kernel.
	Local  *udpbatch.Local
	Logger *slog.Logger
}

// Engine makes legs that share one configuration.
type Engine struct {
	cfg     Config
	stats   engineStats
	writers *writers
	batches *udpbatch.Group // the shared sockets' writes
	// sampleEvery is how often a fast-path leg passes a packet to its
	// ICE agent (fastpath.go).
	sampleEvery time.Duration
	logs        logging.LoggerFactory
	networks    []ice.NetworkType
	shared      *sharedPorts       // nil without Shared
	tcp         *ice.TCPMuxDefault // nil without TCP
	tcpAddr     net.Addr

	certMu sync.Mutex
	cert   *certificate // new legs' DTLS certificate
	certAt time.Time    // when it was made

	netMu sync.Mutex
	net   *stdnet.Net // the host's interfaces, for new legs' agents
	netAt time.Time
}

type engineStats struct {
	open, opened         atomic.Int64
	received, lost, sent atomic.Uint64
	sendErrors, dropped  atomic.Uint64
	fast                 atomic.Uint64
}

// Stats is what an engine's legs did so far.
type Stats struct {
	Open     int64  // legs not yet closed
	Opened   int64  // legs made
	Received uint64 // RTP packets received
	Lost     uint64 // gaps in the received RTP sequence numbers
	Sent     uint64 // RTP packets sent or tried
	// SendErrors counts packets that could not be sent (the leg not yet
	// connected, or closed).
	SendErrors uint64
	// Dropped counts frames Play queued that no writer sent in time.
	Dropped uint64
	// Fast counts the RTP and RTCP packets received on the fast path
	// (shared sockets, straight from the socket to the leg).
	Fast uint64
	// Sockets is what the shared sockets did (Config.Shared): datagrams
	// and the system calls that moved them.
	Sockets udpbatch.Stats
}

// Stats returns the counts of every leg the engine made.
func (e *Engine) Stats() Stats {
	return Stats{
		Open: e.stats.open.Load(), Opened: e.stats.opened.Load(),
		Received: e.stats.received.Load(), Lost: e.stats.lost.Load(),
		Sent: e.stats.sent.Load(), SendErrors: e.stats.sendErrors.Load(),
		Dropped: e.stats.dropped.Load(), Fast: e.stats.fast.Load(), Sockets: e.batches.Stats(),
	}
}

// NewEngine checks the configuration, makes the DTLS certificate and, with
// Shared, opens the shared UDP sockets.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.DisconnectedAfter <= 0 {
		cfg.DisconnectedAfter = 3 * time.Second
	}
	if cfg.FailedAfter <= 0 {
		cfg.FailedAfter = 15 * time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = time.Second
	}
	if cfg.JitterFrames <= 0 {
		cfg.JitterFrames = 3
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, ip := range cfg.PublicIPs {
		if net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("rtc: public IP %q is not an IP address", ip)
		}
	}
	if cfg.SharedPorts <= 0 {
		cfg.SharedPorts = 1
	}
	if int(cfg.SharedPort)+cfg.SharedPorts-1 > 65535 {
		return nil, fmt.Errorf("rtc: %d shared UDP ports from %d: past port 65535", cfg.SharedPorts, cfg.SharedPort)
	}
	if cfg.PortMin > cfg.PortMax && cfg.PortMax != 0 {
		return nil, fmt.Errorf("rtc: UDP port range %d-%d: the first port is above the last", cfg.PortMin, cfg.PortMax)
	}
	e := &Engine{
		cfg: cfg, logs: pionLogs{cfg.Logger}, batches: &udpbatch.Group{},
		networks: []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeUDP6},
	}
	if cfg.IPv4Only {
		e.networks = e.networks[:1]
	}
	e.writers = newWriters(e.batches)
	e.sampleEvery = cfg.DisconnectedAfter / 4
	if _, err := e.certificate(); err != nil {
		return nil, err
	}
	// The sockets are opened last: nothing after them can fail.
	if cfg.TCP {
		ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(int(cfg.TCPPort))))
		if err != nil {
			return nil, fmt.Errorf("rtc: ICE-TCP port %d: %w", cfg.TCPPort, err)
		}
		e.tcpAddr = ln.Addr()
		e.tcp = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener: ln, Logger: e.logs.NewLogger("ice-tcp"),
			ReadBufferSize: 16, WriteBufferSize: 64 << 10,
			// A peer that connects must send its first check at once.
			FirstStunBindTimeout: 10 * time.Second,
		})
	}
	if cfg.Shared {
		shared, err := e.openShared()
		if err != nil {
			if e.tcp != nil {
				_ = e.tcp.Close()
			}
			return nil, err
		}
		e.shared = shared
	}
	return e, nil
}

// TCPAddr is where the engine takes ICE-TCP (Config.TCP); nil without.
func (e *Engine) TCPAddr() net.Addr { return e.tcpAddr }

// Burst runs send, which sends on many legs at once (Leg.Send, as a load
// generator's clock does), and has what it wrote on shared sockets leave
// in batches when it returns.
func (e *Engine) Burst(send func()) {
	e.batches.Hold()
	defer e.batches.Release()
	send()
}

// agentOptions are the ICE settings of a new leg. An answering leg is
// ICE-lite (RFC 8445 section 2.5): it answers the peer's checks and sends
// none of its own, as media servers do.
func (e *Engine) agentOptions(lite bool, mux ice.UDPMux, o OfferOptions) ([]ice.AgentOption, error) {
	networks, types := e.networks, []ice.CandidateType{ice.CandidateTypeHost}
	if lite && e.tcp != nil {
		networks = append(slices.Clip(networks), ice.NetworkTypeTCP4)
		if !e.cfg.IPv4Only {
			networks = append(networks, ice.NetworkTypeTCP6)
		}
	}
	opts := []ice.AgentOption{
		ice.WithNet(e.hostNet()),
		ice.WithIPFilter(usableIP),
		ice.WithMulticastDNSMode(ice.MulticastDNSModeDisabled),
		ice.WithDisconnectedTimeout(e.cfg.DisconnectedAfter),
		ice.WithFailedTimeout(e.cfg.FailedAfter),
		ice.WithKeepaliveInterval(e.cfg.KeepAlive),
		ice.WithLoggerFactory(e.logs),
		ice.WithICELite(lite),
	}
	if len(o.ICEServers) > 0 {
		urls, err := o.urls()
		if err != nil {
			return nil, err
		}
		opts = append(opts, ice.WithUrls(urls))
		types = append(types, ice.CandidateTypeServerReflexive, ice.CandidateTypeRelay)
	}
	if o.TCPOnly {
		// ICE-TCP active candidates come with the answer's passive ones,
		// whatever the candidate types.
		networks = []ice.NetworkType{ice.NetworkTypeTCP4}
		if len(o.ICEServers) > 0 {
			// Relayed candidates are UDP at the relay, which is reached
			// over TCP; no UDP host or server reflexive ones.
			networks = []ice.NetworkType{ice.NetworkTypeUDP4, ice.NetworkTypeTCP4}
			types = []ice.CandidateType{ice.CandidateTypeRelay}
			opts = append(opts, ice.WithTURNTransportProtocols([]ice.NetworkType{ice.NetworkTypeTCP4}))
		}
	}
	if o.Relay {
		types = []ice.CandidateType{ice.CandidateTypeRelay}
	}
	opts = append(opts, ice.WithNetworkTypes(networks), ice.WithCandidateTypes(types))
	if lite && e.tcp != nil {
		opts = append(opts, ice.WithTCPMux(e.tcp))
	}
	if e.cfg.Loopback {
		opts = append(opts, ice.WithIncludeLoopback())
	}
	if len(e.cfg.PublicIPs) > 0 {
		opts = append(opts, ice.WithAddressRewriteRules(ice.AddressRewriteRule{
			External: e.cfg.PublicIPs, AsCandidateType: ice.CandidateTypeHost,
		}))
	}
	if mux != nil {
		opts = append(opts, ice.WithUDPMux(mux))
	} else if e.cfg.PortMin != 0 || e.cfg.PortMax != 0 {
		opts = append(opts, ice.WithPortRange(e.cfg.PortMin, e.cfg.PortMax))
	}
	return opts, nil
}

// usableIP leaves out link-local addresses (fe80::/10, 169.254.0.0/16):
// they reach only the local link (IPv6 ones need a zone too), and pion
// never offers IPv6 ones as candidates, but without the filter it still
// opens (and reads) a socket on them for every leg.
func usableIP(ip net.IP) bool { return !ip.IsLinkLocalUnicast() }

// netLifetime is how long legs share one reading of the host's network
// interfaces.
const netLifetime = 10 * time.Second

// hostNet returns the host's network interfaces for a new leg's agent.
// Legs share a reading: each agent reading its own cost about 10 KB of
// retained memory a leg, and the system calls, on every call set up. A
// reading is never updated in place (agents use it unlocked): a newer one
// replaces it for later legs.
func (e *Engine) hostNet() transport.Net {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	if e.net == nil || time.Since(e.netAt) > netLifetime {
		n, err := stdnet.NewNet()
		if err != nil {
			e.cfg.Logger.Warn("rtc: reading the network interfaces", "err", err)
			if e.net == nil {
				return nil // the agent reads them itself
			}
			return e.net
		}
		e.net, e.netAt = n, time.Now()
	}
	return e.net
}

// certLifetime is how long legs share a DTLS certificate before the engine
// makes another; pion's are valid for a month.
const certLifetime = 7 * 24 * time.Hour

// certificate returns the DTLS certificate for a new leg. Legs share one,
// as a browser's peer connections do: generating a key for each leg cost
// more than the rest of its setup.
func (e *Engine) certificate() (*certificate, error) {
	e.certMu.Lock()
	defer e.certMu.Unlock()
	if e.cert == nil || time.Since(e.certAt) > certLifetime {
		cert, err := newCertificate()
		if err != nil {
			return nil, err
		}
		e.cert, e.certAt = cert, time.Now()
	}
	return e.cert, nil
}

// Close closes the shared sockets (Config.Shared) and the ICE-TCP port
// (Config.TCP), after the legs that use them are closed. An engine without
// them needs no Close.
func (e *Engine) Close() error {
	var errs []error
	if e.tcp != nil {
		if err := e.tcp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("rtc: closing the ICE-TCP port: %w", err))
		}
	}
	if e.shared != nil {
		errs = append(errs, e.shared.close())
	}
	return errors.Join(errs...)
}

// ErrBadSDP wraps what is wrong with a peer's session description.
var ErrBadSDP = errors.New("invalid SDP")

// Answer makes a leg from a peer's offer and returns it with the answer
// (ICE gathered: no trickle). The offer must have an audio section that
// takes PCMU.
func (e *Engine) Answer(ctx context.Context, offer string) (*Leg, string, error) {
	r, err := parseRemote(offer, "offer")
	if err != nil {
		return nil, "", err
	}
	l, err := e.newLeg(true, peerAddrs(r), OfferOptions{})
	if err != nil {
		return nil, "", err
	}
	answer, err := l.answer(ctx, r)
	if err != nil {
		_ = l.Close()
		return nil, "", err
	}
	return l, answer, nil
}

// Offer makes a leg that offers (the calling side) and returns its offer;
// finish it with Leg.Accept and the peer's answer.
func (e *Engine) Offer(ctx context.Context) (*Leg, string, error) {
	return e.OfferWith(ctx, OfferOptions{})
}

// ICEServer is a STUN or TURN server, as a browser's RTCIceServer: URLs
// (stun:, turn:, turns:) and, for TURN, a username and credential.
type ICEServer struct {
	URLs                 []string
	Username, Credential string
}

// OfferOptions are an offering leg's ways to reach its peer besides its
// host candidates.
type OfferOptions struct {
	// ICEServers are STUN and TURN servers: the leg gathers server
	// reflexive and relayed candidates from them too.
	ICEServers []ICEServer
	// Relay gathers relayed candidates only: media goes through TURN.
	Relay bool
	// TCPOnly sends nothing over UDP (a peer behind a firewall that drops
	// it): ICE-TCP active to the answer's passive candidates, and TURN
	// over TCP.
	TCPOnly bool
}

func (o OfferOptions) urls() ([]*stun.URI, error) {
	var urls []*stun.URI
	for _, s := range o.ICEServers {
		for _, raw := range s.URLs {
			u, err := stun.ParseURI(raw)
			if err != nil {
				return nil, fmt.Errorf("rtc: ICE server %q: %w", raw, err)
			}
			if u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS {
				u.Username, u.Password = s.Username, s.Credential
			}
			urls = append(urls, u)
		}
	}
	return urls, nil
}

// OfferWith is Offer with ICE servers, or relay or TCP only.
func (e *Engine) OfferWith(ctx context.Context, o OfferOptions) (*Leg, string, error) {
	l, err := e.newLeg(false, nil, o)
	if err != nil {
		return nil, "", err
	}
	offer, err := l.offer(ctx)
	if err != nil {
		_ = l.Close()
		return nil, "", err
	}
	return l, offer, nil
}

// pionLogs sends pion's errors to slog as warnings and its warnings as
// debug lines (a peer that goes away makes several), and drops the rest.
type pionLogs struct{ log *slog.Logger }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope(scope, logging.LogLevelWarn, slogWriter{p.log.With("pion", scope)})
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.Contains(line, "ERROR") {
		w.log.Warn(line)
	} else {
		w.log.Debug(line)
	}
	return len(p), nil
}
