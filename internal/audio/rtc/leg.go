package rtc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/audio"
)

// State is a leg's ICE connection state (connected, disconnected,
// failed, closed...).
type State = ice.ConnectionState

// Leg is one WebRTC media session carrying one PCMU stream each way: an ICE
// agent, DTLS-SRTP over it (RFC 5764), and RTP and RTCP multiplexed on one
// transport (RFC 5761, RFC 7983). It is an audio.Endpoint: Capture plays
// out its jitter buffer, Play sends a frame.
//
// Once connected a leg has one goroutine of its own, which reads the ICE
// transport and decrypts RTP straight into the jitter buffer; sending
// encrypts and writes on the sender's goroutine. On shared sockets, once
// media flows, the socket's reading goroutine decrypts the leg's packets
// instead, and the leg writes to the socket itself (fastpath.go). pion's
// ICE agent and DTLS connection keep their goroutines. All of them end
// with Close.
type Leg struct {
	engine *Engine
	stats  *engineStats
	count  bool // CountOnly: no jitter buffer
	// agent is the leg's ICE agent; nil once released (release.go).
	agent  atomic.Pointer[ice.Agent]
	jitter *audio.JitterBuffer
	cert   *certificate // the one local.fingerprint names
	local  localDesc
	remote *remoteDesc
	// port is the shared port the leg uses, taken for peers (Config.Shared);
	// nil when the leg has sockets of its own.
	port  *sharedPort
	peers []netip.AddrPort
	// tcpOnly: the leg gathers no UDP candidates (OfferOptions.TCPOnly).
	tcpOnly bool
	// The fast path (fastpath.go): the peer address the leg is routed
	// from (under mu; zero when it is not), where it sends, and when the
	// last packet went to the ICE agent instead (Unix ns).
	routed  netip.AddrPort
	direct  atomic.Pointer[direct]
	sampled atomic.Int64
	samples atomic.Uint64 // media packets passed to the agent (tests)
	// Once the agent is released (release.go): when the peer was last
	// heard (Unix ns), the timer that checks it, the state it last
	// reported (under mu) and how the media travelled.
	released  atomic.Bool
	releasing atomic.Bool
	heard     atomic.Int64
	checks    atomic.Uint64 // binding requests answered once released (tests)
	alive     *time.Timer
	liveState State
	path      string

	// keys is set once DTLS has finished; nil before.
	keys atomic.Pointer[srtpKeys]

	// Owned by the one goroutine that calls Play (or Send): the next
	// packet's header fields, and a frame to encode into.
	pkt     rtp.Packet
	payload [audio.FrameSamples]byte
	writers *writers
	out     outQueue
	// Owned by whoever holds the leg to send (a writer, or Send's caller).
	send sendState

	// Written by the reading goroutine, read when a report is sent.
	recv recvState
	// in is the receiving side: the reading goroutine and the fast path
	// both deliver through it.
	in inbound

	ctx       context.Context
	cancel    context.CancelFunc
	mu        sync.Mutex
	onState   func(State)
	closed    bool
	started   bool // connect is running or has run
	dtls      *dtls.Conn
	pipe      *dtlsPipe // what DTLS reads and writes on, once ICE is up
	done      sync.WaitGroup
	connected chan struct{}
	connOnce  sync.Once
}

// sendBufBytes is the size of a leg's sending buffers: a leg sends 20 ms
// of PCMU (a 172-byte RTP packet, 188 bytes with SRTP's tag) and sender
// reports of one reception report. A longer Send payload fails (counted
// in SendErrors) rather than costing every leg 2.5 KB more.
const sendBufBytes = 256

// sendState is the sending side's buffers and RTCP sender counts.
type sendState struct {
	plain, cipher [sendBufBytes]byte
	hdr           rtp.Header // for srtp, which would allocate one a packet
	packets       uint32
	octets        uint32
	firstWrite    time.Time
	lastReport    time.Time
}

// reportDue tells whether a sender report goes out before the packet sent
// at now. The first waits for the peer's first packet (heard), which shows
// that the peer's SRTP is up to receive it and gives the report a stream to
// report on, or for one interval after the first packet sent, for a peer
// that never sends; then one every interval.
func (s *sendState) reportDue(now time.Time, heard bool) bool {
	if !s.lastReport.IsZero() {
		return now.Sub(s.lastReport) >= reportEvery
	}
	if s.firstWrite.IsZero() {
		s.firstWrite = now
	}
	return heard || now.Sub(s.firstWrite) >= reportEvery
}

// inbound is what decrypting a packet needs; its mutex keeps the SRTP
// context and the sequence counter to one packet at a time.
type inbound struct {
	mu sync.Mutex
	// plain holds a decrypted packet: a PCMU packet and a receiver
	// report fit; a larger packet is decrypted into a new buffer.
	plain [sendBufBytes]byte
	hdr   rtp.Header // for srtp, which would allocate one a packet
	pkt   rtp.Packet
	seqs  seqCounter
}

// recvState is what the reading goroutine has seen, for receiver reports.
type recvState struct {
	ssrc    atomic.Uint32
	highest atomic.Uint32 // extended highest sequence number
	lost    atomic.Uint32
}

// newLeg makes a leg whose peer, if known, offered candidates at peers.
func (e *Engine) newLeg(lite bool, peers []netip.AddrPort, o OfferOptions) (*Leg, error) {
	cert, err := e.certificate()
	if err != nil {
		return nil, err
	}
	var port *sharedPort
	var mux ice.UDPMux
	if e.shared != nil {
		if port, err = e.shared.take(peers); err != nil {
			return nil, err
		}
		mux = port.muxFor(peers)
	}
	opts, err := e.agentOptions(lite, mux, o)
	var agent *ice.Agent
	if err == nil {
		agent, err = ice.NewAgentWithOptions(opts...)
	}
	if err != nil {
		if port != nil {
			e.shared.release(port, peers)
		}
		return nil, fmt.Errorf("rtc: ICE agent: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Leg{
		engine: e, stats: &e.stats, count: e.cfg.CountOnly, writers: e.writers,
		jitter: audio.NewJitterBuffer(e.cfg.JitterFrames), cert: cert,
		ctx: ctx, cancel: cancel, connected: make(chan struct{}),
		port: port, peers: peers,
	}
	l.agent.Store(agent)
	l.tcpOnly = o.TCPOnly
	l.local = localDesc{fingerprint: cert.fingerprint, lite: lite, ssrc: rand.Uint32()}
	l.pkt.Header = rtp.Header{
		Version: 2, PayloadType: 0, SSRC: l.local.ssrc,
		SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32(),
	}
	err = agent.OnConnectionStateChange(l.iceState)
	if err == nil && port != nil {
		err = agent.OnSelectedCandidatePairChange(l.pairChanged)
	}
	if err != nil {
		_ = agent.Close()
		cancel()
		if port != nil {
			e.shared.release(port, peers)
		}
		return nil, fmt.Errorf("rtc: ICE agent: %w", err)
	}
	e.stats.open.Add(1)
	e.stats.opened.Add(1)
	return l, nil
}

// gather collects the leg's ICE candidates (no trickle: the description
// carries them all).
func (l *Leg) gather(ctx context.Context) error {
	var (
		mu    sync.Mutex
		cands []string
		done  = make(chan struct{})
	)
	agent := l.agent.Load()
	err := agent.OnCandidate(func(c ice.Candidate) {
		mu.Lock()
		defer mu.Unlock()
		if c == nil {
			close(done)
			return
		}
		cands = append(cands, c.Marshal())
	})
	if err != nil {
		return fmt.Errorf("rtc: ICE agent: %w", err)
	}
	if err := agent.GatherCandidates(); err != nil {
		return fmt.Errorf("rtc: gathering ICE candidates: %w", err)
	}
	timeout := time.NewTimer(l.engine.cfg.GatherTimeout)
	defer timeout.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("rtc: gathering ICE candidates: %w", ctx.Err())
	case <-timeout.C:
		// A STUN or TURN server that does not answer holds gathering up:
		// the description goes with what was gathered by then.
		l.engine.cfg.Logger.Debug("rtc: ICE gathering timed out; offering what was gathered")
	}
	mu.Lock()
	defer mu.Unlock()
	got := slices.Clone(cands)       // later ones are not in the description
	if len(got) == 0 && !l.tcpOnly { // ICE-TCP active candidates come with the answer's
		return errors.New("rtc: no ICE candidates: no usable network address, or no STUN or TURN server answered in time")
	}
	ufrag, pwd, err := agent.GetLocalUserCredentials()
	if err != nil {
		return fmt.Errorf("rtc: ICE credentials: %w", err)
	}
	l.local.candidates, l.local.ufrag, l.local.pwd = got, ufrag, pwd
	return nil
}

func (l *Leg) offer(ctx context.Context) (string, error) {
	if err := l.gather(ctx); err != nil {
		return "", err
	}
	l.local.setup = "actpass"
	return offerSDP(l.local), nil
}

func (l *Leg) answer(ctx context.Context, r *remoteDesc) (string, error) {
	if err := l.gather(ctx); err != nil {
		return "", err
	}
	// The answerer picks the DTLS roles; "active" (DTLS client) unless
	// the offerer insists on being the client.
	l.local.setup = "active"
	if r.setup == "active" {
		l.local.setup = "passive"
	}
	answer := answerSDP(l.local, r)
	return answer, l.start(r, false)
}

// Accept takes the peer's answer to the leg's offer.
func (l *Leg) Accept(answer string) error {
	r, err := parseRemote(answer, "answer")
	if err != nil {
		return err
	}
	if r.setup != "active" && r.setup != "passive" {
		return fmt.Errorf("%w: the answer's a=setup is %q, not active or passive", ErrBadSDP, r.setup)
	}
	return l.start(r, true)
}

// start connects the leg to the peer described by r, in the background.
func (l *Leg) start(r *remoteDesc, controlling bool) error {
	for _, raw := range r.candidates {
		c, err := ice.UnmarshalCandidate(raw)
		if err != nil {
			continue // mDNS, TCP and unknown kinds: checks find the way
		}
		_ = l.agent.Load().AddRemoteCandidate(c) // one the agent cannot use: likewise
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return errors.New("rtc: the leg is closed")
	case l.started:
		return errors.New("rtc: the leg already has its peer's description")
	}
	l.started, l.remote = true, r
	// We are the DTLS client when our description said "active", or the
	// peer's answer said "passive".
	client := l.local.setup == "active" || (l.local.setup == "actpass" && r.setup == "passive")
	l.done.Add(1)
	go l.connect(controlling, client)
	return nil
}

// connect runs ICE, then DTLS, then starts reading media. It is one of
// the leg's goroutines and ends with the leg.
func (l *Leg) connect(controlling, client bool) {
	defer l.done.Done()
	var conn *ice.Conn
	var err error
	agent := l.agent.Load()
	if controlling {
		conn, err = agent.Dial(l.ctx, l.remote.ufrag, l.remote.pwd)
	} else {
		conn, err = agent.Accept(l.ctx, l.remote.ufrag, l.remote.pwd)
	}
	if err != nil {
		l.engine.cfg.Logger.Debug("rtc: ICE did not connect", "err", err)
		return
	}
	pipe := newDTLSPipe(conn)
	l.mu.Lock()
	l.pipe = pipe
	l.mu.Unlock()
	l.done.Add(1)
	go l.read(conn, pipe)
	dconn, keys, err := handshake(l.ctx, pipe, client, l.cert, l.remote.fingerprint, l.engine.logs)
	if err != nil {
		l.engine.cfg.Logger.Debug("rtc: DTLS failed", "err", err)
		_ = pipe.Close()
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = dconn.Close()
		return
	}
	l.dtls = dconn
	keys.conn = conn
	l.keys.Store(keys)
	l.mu.Unlock()
	l.connOnce.Do(func() { close(l.connected) })
	// On a shared port the peer's media takes the fast path from its
	// first packet: until a leg is routed, its media goes through pion's
	// mux, which copies each packet into an 8 KB buffer and queues it for
	// the candidate's goroutine; while many legs set up on a busy host
	// those queues held about 40 KB a leg.
	if pair, err := agent.GetSelectedCandidatePair(); err == nil && pair != nil {
		l.route(pair.Remote)
	}
}

// read demultiplexes what arrives on the ICE transport (RFC 7983): DTLS
// records go to the DTLS connection, SRTP is decrypted into the jitter
// buffer, SRTCP is checked and dropped. pion's agent answers STUN before
// it gets here.
func (l *Leg) read(conn *ice.Conn, pipe *dtlsPipe) {
	defer l.done.Done()
	defer pipe.Close()
	var buf [1500]byte
	for {
		n, err := conn.Read(buf[:])
		if err != nil {
			return
		}
		b := buf[:n]
		switch {
		case n == 0:
		case b[0] >= 20 && b[0] <= 63:
			pipe.push(b)
		case isRTP(b):
			keys := l.keys.Load()
			if keys == nil {
				continue
			}
			if l.receive(keys, b) {
				l.releaseDTLS()
				if a := l.agent.Load(); a != nil {
					if pair, err := a.GetSelectedCandidatePair(); err == nil && pair != nil {
						l.route(pair.Remote)
					}
				}
			}
		}
	}
}

// isRTP tells RTP and RTCP from DTLS and STUN on a shared transport: a
// first byte of 128-191 (RFC 7983), and at least an RTP header's length.
func isRTP(b []byte) bool { return len(b) >= 12 && b[0] >= 128 && b[0] <= 191 }

// receive decrypts an SRTP packet into the jitter buffer, or checks and
// drops an SRTCP one; first tells that it was the peer's first RTP.
func (l *Leg) receive(keys *srtpKeys, b []byte) (first bool) {
	in := &l.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if b[1] >= 192 && b[1] <= 223 { // RTCP packet types 192-223
		_, _ = keys.dec.DecryptRTCP(in.plain[:0], b, nil)
		return false
	}
	if l.count {
		// A counting leg reads the clear RTP header and decrypts nothing.
		if _, err := in.pkt.Header.Unmarshal(b); err != nil || in.pkt.PayloadType != 0 {
			return false
		}
	} else {
		p, err := keys.dec.DecryptRTP(in.plain[:0], b, &in.hdr)
		if err != nil || in.pkt.Unmarshal(p) != nil || in.pkt.PayloadType != 0 {
			return false
		}
	}
	pkt := &in.pkt
	if !in.seqs.started {
		first = true
		l.recv.ssrc.Store(pkt.SSRC)
	}
	l.stats.received.Add(1)
	if missed, highest, ahead := in.seqs.add(pkt.SequenceNumber); ahead {
		if missed > 0 {
			l.stats.lost.Add(uint64(missed))
			l.recv.lost.Add(uint32(missed))
		}
		l.recv.highest.Store(highest)
	}
	if !l.count {
		l.jitter.PushUlaw(pkt.Timestamp, pkt.Payload)
	}
	return first
}

// seqCounter follows a stream's RTP sequence numbers: how many packets
// were missed, and the extended highest number (RFC 3550 appendix A.1)
// for reception reports.
type seqCounter struct {
	next    uint16 // the number expected next
	cycles  uint32 // wraps of the 16-bit number, shifted left 16
	started bool
}

// add takes a packet's sequence number. ahead is false for a late,
// reordered packet, which changes nothing; otherwise missed is the gap
// before it and highest the extended number it brings.
func (s *seqCounter) add(seq uint16) (missed uint16, highest uint32, ahead bool) {
	gap := seq - s.next
	if s.started {
		if gap >= 1<<15 {
			return 0, 0, false
		}
		if seq < s.next-1 { // wrapped past 65535
			s.cycles += 1 << 16
		}
		missed = gap
	}
	s.next, s.started = seq+1, true
	return missed, s.cycles | uint32(seq), true
}

// releaseDTLS ends the DTLS connection once the peer's media arrives: a
// peer sends SRTP only after its side of the handshake has finished, so no
// flight of ours will need resending, and the connection's four goroutines
// and its buffers can go (about 45 KiB a leg). The pipe closes first, so
// nothing is sent: the peer's DTLS stays up. The cost is that closing the
// leg sends no close_notify; the peer notices from ICE instead.
func (l *Leg) releaseDTLS() {
	l.mu.Lock()
	d, pipe := l.dtls, l.pipe
	l.dtls = nil
	l.mu.Unlock()
	if d == nil {
		return
	}
	_ = pipe.Close()
	_ = d.Close()
}

// releaseDTLSLater releases the DTLS connection on a goroutine of the
// leg's: closing it waits for DTLS's goroutines, and the fast path calls
// this on a shared socket's reading goroutine.
func (l *Leg) releaseDTLSLater() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.dtls == nil {
		return
	}
	l.done.Add(1)
	go func() { defer l.done.Done(); l.releaseDTLS() }()
}

// OnState tells f every ICE connection state change (connected,
// disconnected, failed, closed...). Set it before the leg connects.
func (l *Leg) OnState(f func(State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onState = f
}

// Connected is closed once the leg can carry audio: ICE has connected and
// DTLS has made the SRTP keys.
func (l *Leg) Connected() <-chan struct{} { return l.connected }

func (l *Leg) iceState(s State) {
	if l.released.Load() {
		return // the agent is going: the leg tells its own (release.go)
	}
	l.mu.Lock()
	f := l.onState
	l.mu.Unlock()
	if f != nil {
		f(s)
	}
}

// Capture plays out the next 20 ms the peer sent.
func (l *Leg) Capture(f *audio.Frame) bool { return l.jitter.Pop(f) }

// Play sends a frame to the peer. It does not wait for the network: it
// queues the frame for the engine's writer goroutines (a leg more than
// four frames behind drops its oldest). It is not safe for concurrent use:
// one clock calls it. Use Play or Send on a leg, not both.
func (l *Leg) Play(out audio.Output) {
	payload := out.Ulaw
	if payload == nil {
		payload = audio.EncodeUlaw(l.payload[:], out.PCM)
	}
	l.play(payload)
}

// Send sends one 20 ms packet of µ-law now, on the caller's goroutine (a
// load generator's sender).
func (l *Leg) Send(ulaw []byte) {
	l.pkt.Payload = ulaw
	l.write(&l.pkt)
	l.pkt.SequenceNumber++
	l.pkt.Timestamp += uint32(len(ulaw))
}

// write encrypts one RTP packet and sends it, and when one is due (see
// reportDue) an RTCP sender report before it. Its caller holds the leg's sending side.
func (l *Leg) write(pkt *rtp.Packet) {
	l.stats.sent.Add(1)
	keys := l.keys.Load()
	if keys == nil || l.writeRTP(keys, pkt) != nil {
		l.stats.sendErrors.Add(1) // not yet connected, or closed
	}
}

func (l *Leg) writeRTP(keys *srtpKeys, pkt *rtp.Packet) error {
	s := &l.send
	if !l.engine.cfg.NoReports {
		if now := time.Now(); s.reportDue(now, l.recv.ssrc.Load() != 0) {
			s.lastReport = now
			l.writeReport(keys, pkt.Timestamp, now)
		}
	}
	n, err := pkt.MarshalTo(s.plain[:])
	if err != nil {
		return err
	}
	out, err := keys.enc.EncryptRTP(s.cipher[:0], s.plain[:n], &s.hdr)
	if err != nil {
		return err
	}
	s.packets++
	s.octets += uint32(len(pkt.Payload))
	return l.transmit(keys, out)
}

// transmit sends an SRTP or SRTCP packet: straight to the socket on the
// fast path, through the ICE agent otherwise.
func (l *Leg) transmit(keys *srtpKeys, b []byte) error {
	if d := l.direct.Load(); d != nil {
		_, err := d.conn.WriteToAddrPort(b, d.to)
		return err
	}
	if keys.conn == nil {
		return errReleased // the agent is gone and the peer with it
	}
	_, err := keys.conn.Write(b)
	return err
}

// SelectedPair is the candidate pair the leg's media takes (which
// transport, and whether through a relay); an error before ICE selected
// one.
func (l *Leg) SelectedPair() (*ice.CandidatePair, error) {
	agent := l.agent.Load()
	if agent == nil {
		return nil, errReleased
	}
	pair, err := agent.GetSelectedCandidatePair()
	if err == nil && pair == nil {
		err = errors.New("rtc: no candidate pair selected yet")
	}
	return pair, err
}

// Path says how the leg's media travels, for logs: the transport and the
// peer's candidate type, as "udp host", "tcp prflx" (ICE-TCP) or "udp
// relay" (through the peer's TURN server); "none" before ICE connects.
func (l *Leg) Path() string {
	if l.released.Load() {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.path
	}
	pair, err := l.SelectedPair()
	if err != nil {
		return "none"
	}
	return pair.Remote.NetworkType().NetworkShort() + " " + pair.Remote.Type().String()
}

// Jitter is the leg's jitter buffer's counts.
func (l *Leg) Jitter() audio.JitterStats { return l.jitter.Stats() }

// Close ends the leg: it drops its keys, so nothing more is sent or
// received, closes the DTLS connection if it still has one (before the
// peer's first media: the peer then gets a close_notify), closes the ICE
// agent and its sockets, and waits for the leg's goroutines.
func (l *Leg) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.onState = nil
	d := l.dtls
	l.dtls = nil
	if l.alive != nil {
		l.alive.Stop()
	}
	l.mu.Unlock()
	// Without keys nothing more is sent or received, whichever path a
	// packet is on (the fast path may still hold the leg for a moment).
	l.keys.Store(nil)
	l.cancel()
	l.stats.open.Add(-1)
	var errs []error
	if d != nil {
		if err := d.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("rtc: closing DTLS: %w", err))
		}
	}
	if agent := l.agent.Load(); agent != nil {
		if err := agent.Close(); err != nil && !errors.Is(err, ice.ErrClosed) {
			errs = append(errs, fmt.Errorf("rtc: closing the ICE agent: %w", err))
		}
	}
	if l.port != nil {
		l.unroute()
		l.engine.shared.release(l.port, l.peers)
	}
	l.done.Wait()
	return errors.Join(errs...)
}
