package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/calls"
)

// Switchboard is what the server needs of the domain (calls.Switchboard).
type Switchboard interface {
	// StartPhoneCall rings the callee for a call from the phone network.
	StartPhoneCall(ctx context.Context, req calls.PhoneCallRequest) (calls.Call, error)
	// StartPhoneQueueCall answers a call from the phone network and puts
	// it in a queue.
	StartPhoneQueueCall(ctx context.Context, req calls.PhoneQueueRequest) (calls.Call, error)
	// EndPhoneCall ends a phone's call from the network's side.
	EndPhoneCall(ctx context.Context, id string, reason calls.EndReason) error
	// PhoneProgress says a phone called out rings or plays early media.
	PhoneProgress(ctx context.Context, id string, early bool) error
	// PhoneAnswered says a phone called out answered.
	PhoneAnswered(ctx context.Context, id string) error
	// PhoneHold says the phone held (true) or resumed its call.
	PhoneHold(ctx context.Context, id string, held bool) error
	// PhoneTones hands over DTMF tones the phone keyed (*6 unmutes it).
	PhoneTones(ctx context.Context, id, tones string) error
}

// Numbers finds where calls to a number go (a store's calls.NumberRoutes).
type Numbers interface {
	// FindNumberRoute answers the number's route, or an error with
	// calls.CodeNotFound.
	FindNumberRoute(ctx context.Context, number string) (calls.NumberRoute, error)
}

// Config is what a Server needs. Switchboard and Numbers are required.
type Config struct {
	// Addr is where to listen, on UDP and TCP both (host:port; port 0
	// picks a free port that is free on both).
	Addr        string
	Trunks      []Trunk
	Switchboard Switchboard
	Numbers     Numbers
	// Media opens the calls' RTP legs; nil is NoMedia (signalling only).
	Media Media
	// Realm is the digest realm of challenges; default "switchboard".
	Realm string
	// Host is the address the server names in Contact headers when Addr's
	// host is unspecified (0.0.0.0); default the host's outbound address.
	Host   string
	Logger *slog.Logger
	// Resolver resolves trunk host names; default net.DefaultResolver.
	Resolver *net.Resolver
	// INVITEs from addresses that are no trunk's are limited per address:
	// InviteBurst, then one every InviteEvery (defaults
	// DefaultInviteBurst and DefaultInviteEvery); past the limit they
	// are answered 503 with Retry-After.
	InviteBurst int
	InviteEvery time.Duration
}

// Server is the switchboard's SIP user agent.
type Server struct {
	cfg   Config
	log   *slog.Logger
	gate  *gate
	limit *sourceLimit
	ua    *sipgo.UserAgent
	srv   *sipgo.Server
	udp   *sipgo.DialogUA
	tcp   *sipgo.DialogUA

	pc   net.PacketConn
	ln   net.Listener
	addr string
	host string // the address named in Contact and From headers

	ctx    context.Context // ends when the server closes
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	dialogs map[string]*inbound      // by dialog id
	outs    map[string]*outbound     // calls out, by dialog id once answered
	answers map[string]pendingAnswer // offers in re-INVITEs' 200s, by ackKey

	regs []*registrar // trunks with ;register, set in New

	handlers sync.WaitGroup // calls in progress (INVITE handlers)
	serving  sync.WaitGroup // the UDP and TCP serving loops
}

// New listens on cfg.Addr, UDP and TCP, and serves until Close.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Switchboard == nil || cfg.Numbers == nil {
		return nil, errors.New("sip.New: Switchboard and Numbers are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Realm == "" {
		cfg.Realm = "switchboard"
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Media == nil {
		cfg.Media = NoMedia{Host: cfg.Host}
	}
	g, err := newGate(ctx, cfg.Realm, cfg.Trunks, cfg.Resolver)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "sip"), gate: g, dialogs: map[string]*inbound{}, outs: map[string]*outbound{}, answers: map[string]pendingAnswer{},
		limit: newSourceLimit(cfg.InviteBurst, cfg.InviteEvery)}
	if err := s.listen(); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = cfg.Host
		if host == "" {
			host = outboundHost()
		}
	}
	if nm, ok := cfg.Media.(NoMedia); ok && nm.Host == "" {
		s.cfg.Media = NoMedia{Host: host}
	}
	portNum, _ := strconv.Atoi(port)
	s.host = host

	libLog := s.log.With("library", "sipgo")
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("switchboard"), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(libLog)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(libLog)))
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("sip: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		_ = ua.Close()
		s.closeListeners()
		return nil, fmt.Errorf("sip: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(portNum), sipgo.WithClientLogger(s.log))
	if err != nil {
		_ = ua.Close()
		s.closeListeners()
		return nil, fmt.Errorf("sip: %w", err)
	}
	contact := func(params sip.HeaderParams) sip.ContactHeader {
		return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "switchboard", Host: host, Port: portNum, UriParams: params}}
	}
	s.ua, s.srv = ua, srv
	s.udp = &sipgo.DialogUA{Client: client, ContactHDR: contact(nil), RewriteContact: true}
	tcpParams := sip.NewParams()
	tcpParams.Add("transport", "tcp")
	s.tcp = &sipgo.DialogUA{Client: client, ContactHDR: contact(tcpParams), RewriteContact: true}

	srv.OnInvite(s.onInvite)
	srv.OnAck(s.onAck)
	srv.OnBye(s.onBye)
	srv.OnCancel(s.onCancel)
	srv.OnOptions(s.onOptions)
	srv.OnInfo(s.onInfo)
	srv.OnNoRoute(s.onNoRoute)

	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.serving.Add(2)
	go func() {
		defer s.serving.Done()
		if err := srv.ServeUDP(s.pc); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Error("sip: serving UDP ended", "err", err)
		}
	}()
	go func() {
		defer s.serving.Done()
		if err := srv.ServeTCP(s.ln); !errors.Is(err, net.ErrClosed) {
			s.log.Error("sip: serving TCP ended", "err", err)
		}
	}()
	s.startRegistrations()
	s.log.Info("SIP listening", "addr", s.addr, "udp", true, "tcp", true, "trunks", len(cfg.Trunks))
	return s, nil
}

// listen binds UDP and TCP on one port.
func (s *Server) listen() error {
	for range 20 {
		pc, err := net.ListenPacket("udp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("sip: listen on udp %s: %w", s.cfg.Addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			_ = pc.Close()
			if _, port, _ := net.SplitHostPort(s.cfg.Addr); port == "0" {
				continue // the free UDP port is taken on TCP: pick another
			}
			return fmt.Errorf("sip: listen on tcp %s: %w", s.cfg.Addr, err)
		}
		s.pc, s.ln, s.addr = pc, ln, pc.LocalAddr().String()
		return nil
	}
	return fmt.Errorf("sip: no port free on both UDP and TCP for %s", s.cfg.Addr)
}

func (s *Server) closeListeners() {
	if s.pc != nil {
		_ = s.pc.Close()
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
}

// outboundHost is the address this host reaches the network from (no
// packet is sent).
func outboundHost() string {
	c, err := net.Dial("udp", "192.0.2.1:5060")
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	host, _, _ := net.SplitHostPort(c.LocalAddr().String())
	return host
}

// Addr is where the server listens (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// Close stops taking requests, ends the calls in progress (503 before an
// answer, BYE after), unregisters from the trunks it registered with, and
// waits for all that until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	err := s.stopRegistrations(ctx)
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	s.closeListeners()
	if cerr := s.ua.Close(); cerr != nil && err == nil {
		err = cerr
	}
	s.serving.Wait()
	return err
}

// track counts a request handler, unless the server is closing.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}
