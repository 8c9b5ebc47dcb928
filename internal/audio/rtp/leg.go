package rtp

import (
	"bytes"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	pionrtp "github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/switchboard/switchboard/internal/audio"
)

// ErrSilence ends a leg that received nothing, RTP or RTCP, for
// Config.SilenceTimeout while its peer should have been sending. The SIP
// layer ends the call with 410.
var ErrSilence = errors.New("rtp: nothing received from the peer within the silence timeout")

// Leg is one plain RTP audio session with a SIP peer: PCMU both ways in
// 20 ms packets, RFC 4733 telephone-events, RTCP reports. It is an
// audio.Endpoint: Capture plays out its jitter buffer, Play sends a frame.
//
// A leg owns an even UDP port for RTP and the odd one after it for RTCP
// (unused when the peer takes rtcp-mux), and four goroutines: a reader
// per port, a writer that sends what Play queued, and one that sends
// reports and watches for silence. All of them end, and the ports go back
// to the engine, when the leg ends: on Close, or by itself on silence
// (Done, Err).
//
// Media is symmetric (RFC 4961): the leg sends to the address the peer's
// description names until the peer's first packet arrives, then to where
// that packet came from (the peer's NAT), and ignores every other source
// from then on, until a description names another address.
type Leg struct {
	engine            *Engine
	log               *slog.Logger
	port              int
	rtpConn, rtcpConn *net.UDPConn
	jitter            *audio.JitterBuffer
	ssrc              uint32
	cname             string
	sessionID         uint64
	started           time.Time // the clock for jitter's arrival times

	mu        sync.Mutex
	want      Direction  // SetDirection
	local     localMedia // what the leg's last description said
	lastSDP   []byte
	offered   bool        // an offer of the leg's awaits (or got) its answer
	known     bool        // a description of the peer's was applied
	remote    remoteMedia // the peer's last description
	neg       Direction   // the leg's side of the negotiated direction
	expecting bool        // the peer should send RTP: the silence clock runs
	latched   netip.AddrPort
	latchedC  netip.AddrPort // the RTCP port's source (no rtcp-mux)
	recv      recvStats
	in        pionrtp.Packet // the packet being received
	events    eventIn
	ended     bool
	err       error

	// The sending side: Play, SendDTMF, the writer and reports.
	sendMu  sync.Mutex
	seq     uint16
	ts      uint32 // the next frame's RTP timestamp
	queue   sendQueue
	dtmf    dtmfSender
	out     pionrtp.Packet
	payload [audio.FrameSamples]byte
	event   [4]byte

	heard  atomic.Int64 // when the last packet came (Unix ns)
	gone   atomic.Bool  // ended: Play and Capture do nothing
	kick   chan struct{}
	ready  chan struct{} // a token: packets wait for the writer
	stop   chan struct{} // closed when the leg ends
	digits chan rune
	wg     sync.WaitGroup
}

type sendStats struct {
	packets, octets uint32
}

// LegStats is what a leg did so far.
type LegStats struct {
	Sent     uint64 // RTP packets sent
	Received uint64 // RTP packets taken from the peer
	// Ignored counts packets from sources other than the latched peer,
	// of payload types not negotiated, or before the peer's description.
	Ignored uint64
	Lost    uint64 // gaps in the peer's sequence numbers
	// Dropped counts packets Play queued that the writer never sent: the
	// oldest of a full queue (the writer fell behind the mixer's clock).
	Dropped uint64
}

// digitQueue is how many received digits wait for the reader of DTMF.
const digitQueue = 32

func newLeg(e *Engine, rtpConn, rtcpConn *net.UDPConn, port int, log *slog.Logger) *Leg {
	l := &Leg{
		engine: e, log: log, port: port, rtpConn: rtpConn, rtcpConn: rtcpConn,
		jitter: audio.NewJitterBuffer(e.cfg.JitterFrames),
		ssrc:   rand.Uint32(), sessionID: rand.Uint64() >> 2, started: time.Now(),
		seq: uint16(rand.Uint32()), ts: rand.Uint32(),
		kick: make(chan struct{}, 1), ready: make(chan struct{}, 1), stop: make(chan struct{}), digits: make(chan rune, digitQueue),
	}
	l.cname = "switchboard-" + randomHex()
	l.local.version = 1
	return l
}

func randomHex() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 12)
	for i := range b {
		b[i] = hex[rand.IntN(16)]
	}
	return string(b)
}

func (l *Leg) start() {
	l.wg.Add(3)
	go l.read(l.rtpConn, false)
	go l.read(l.rtcpConn, true)
	go l.control()
}

func (l *Leg) startWriter() {
	l.wg.Add(1)
	go l.write()
}

// Port is the leg's RTP port (RTCP is the next one).
func (l *Leg) Port() int { return l.port }

// Offer returns a description that offers the leg's audio: PCMU,
// telephone-event, rtcp-mux, and the direction SetDirection chose (a
// re-offer keeps the payload types negotiated before). Finish it with
// ApplyAnswer.
func (l *Leg) Offer() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return nil, ErrClosed
	}
	lm := localMedia{audioPT: ptPCMU, eventPT: ptEventOffer, mux: true, dir: l.want}
	if l.known {
		lm.audioPT = l.local.audioPT
		if l.local.eventPT != noPT {
			lm.eventPT = l.local.eventPT
		}
	}
	b := l.describe(lm, nil, 0)
	l.offered = true
	return b, nil
}

// ApplyAnswer takes the peer's answer to the leg's last offer (again for
// a final answer after a provisional one: 183 then 200). Errors wrap
// ErrBadSDP or ErrNoCommonCodec.
func (l *Leg) ApplyAnswer(answer []byte) error {
	r, err := parseAnswer(answer)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.ended:
		return ErrClosed
	case !l.offered:
		return errors.New("rtp: an answer, but the leg made no offer")
	}
	l.setRemote(r, l.local.dir.answerTo(r.dir))
	return nil
}

// Answer answers the peer's offer (an INVITE's, or a re-INVITE's) and
// applies it. Its first audio section over plain RTP that takes PCMU is
// the leg's; every other section is refused (port 0). Errors wrap
// ErrBadSDP (the SIP layer answers 400) or ErrNoCommonCodec (488).
func (l *Leg) Answer(offer []byte) ([]byte, error) {
	o, err := parseOffer(offer)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return nil, ErrClosed
	}
	dir := l.want.answerTo(o.media.dir)
	lm := localMedia{audioPT: o.media.audioPT, eventPT: o.media.eventPT, mux: o.media.mux, dir: dir}
	b := l.describe(lm, o.sections, o.audio)
	l.offered = false
	l.setRemote(o.media, dir)
	return b, nil
}

// describe writes the leg's next description; its version goes up when it
// says something new (RFC 3264 section 8).
func (l *Leg) describe(lm localMedia, sections []sdp.MediaName, audioIndex int) []byte {
	lm.sessionID, lm.ip, lm.port = l.sessionID, l.engine.public, l.port
	lm.version = l.local.version
	b := describe(lm, sections, audioIndex)
	if l.lastSDP != nil && !bytes.Equal(b, l.lastSDP) {
		lm.version++
		b = describe(lm, sections, audioIndex)
	}
	l.local, l.lastSDP = lm, b
	return b
}

// setRemote applies the peer's description; neg is the leg's side of the
// direction agreed. A new address for the peer undoes the latch.
func (l *Leg) setRemote(r remoteMedia, neg Direction) {
	if !l.known || r.rtp != l.remote.rtp {
		l.latched = netip.AddrPort{}
	}
	if !l.known || r.rtcp != l.remote.rtcp {
		l.latchedC = netip.AddrPort{}
	}
	if l.engine.cfg.FixedPeer {
		l.latched, l.latchedC = r.rtp, r.rtcp
	}
	was := l.expecting
	l.remote, l.neg, l.known = r, neg, true
	l.expecting = neg.Receives()
	if l.expecting && !was {
		l.heard.Store(time.Now().UnixNano()) // the silence clock starts now
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// SetDirection sets the direction the leg's next offers and answers ask
// for: SendRecv (the default), or SendOnly to hold the peer (it keeps
// hearing the leg: the hold audio).
func (l *Leg) SetDirection(d Direction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.want = d
}

// Direction is the leg's side of the direction last agreed: SendRecv,
// RecvOnly when the peer holds it, SendOnly when it holds the peer.
func (l *Leg) Direction() Direction {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.neg
}

// RemoteDirection is the direction the peer's last description said
// (SendRecv before any): SendOnly or Inactive when the peer holds the
// call. A connection address of 0.0.0.0 (the old way to hold) counts as
// not receiving.
func (l *Leg) RemoteDirection() Direction {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remote.dir
}

// RemoteAddr is where the leg sends RTP: the latched source of the
// peer's packets, else the address its description names (invalid when
// neither is known).
func (l *Leg) RemoteAddr() netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rtpDest()
}

func (l *Leg) rtpDest() netip.AddrPort {
	if l.latched.IsValid() {
		return l.latched
	}
	return l.remote.rtp
}

// rtcpDest is where reports go, and on which socket.
func (l *Leg) rtcpDest() (netip.AddrPort, *net.UDPConn) {
	if l.remote.mux {
		return l.rtpDest(), l.rtpConn
	}
	if l.latchedC.IsValid() {
		return l.latchedC, l.rtcpConn
	}
	return l.remote.rtcp, l.rtcpConn
}

// Done is closed when the leg has ended: Close, or silence (Err says).
func (l *Leg) Done() <-chan struct{} { return l.stop }

// Err says why the leg ended: ErrSilence or ErrClosed; nil while it runs.
func (l *Leg) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// DTMF delivers the digits the peer sends as RFC 4733 telephone-events
// ('0'-'9', '*', '#', 'A'-'D'), each once. A reader that falls behind by
// more than 32 digits loses the newest.
func (l *Leg) DTMF() <-chan rune { return l.digits }

// Stats returns the leg's counts.
func (l *Leg) Stats() LegStats {
	l.sendMu.Lock()
	sent, dropped := l.queue.sent.packets, l.queue.dropped
	l.sendMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return LegStats{Sent: uint64(sent), Received: l.recv.total, Ignored: l.recv.ignored, Lost: uint64(l.recv.lost()), Dropped: dropped}
}

// Jitter is the leg's jitter buffer's counts.
func (l *Leg) Jitter() audio.JitterStats { return l.jitter.Stats() }

// Capture plays out the next 20 ms the peer sent.
func (l *Leg) Capture(f *audio.Frame) bool {
	if l.gone.Load() {
		f.Clear()
		return false
	}
	return l.jitter.Pop(f)
}

// Play sends a frame to the peer, or the next packet of a digit SendDTMF
// queued in its place. It sends nothing while the agreed direction says
// the leg does not send, or before it knows where to; the RTP clock runs
// on all the same. One clock calls it.
//
// Play makes no system call: it queues the packet for the leg's writer
// goroutine, which sends it. A queue of four packets that the writer has
// not taken loses its oldest (LegStats.Dropped).
func (l *Leg) Play(out audio.Output) {
	if l.gone.Load() {
		return
	}
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	ts := l.ts
	l.ts += audio.FrameSamples
	l.mu.Lock()
	dest, sending := l.rtpDest(), l.known && l.neg.Sends()
	audioPT, eventPT := l.remote.audioPT, l.remote.eventPT
	l.mu.Unlock()
	p := &l.out
	p.Header = pionrtp.Header{Version: 2, PayloadType: audioPT, SequenceNumber: l.seq, Timestamp: ts, SSRC: l.ssrc}
	if ev, ok := l.dtmf.next(ts); ok {
		if eventPT == noPT {
			return
		}
		p.PayloadType, p.Timestamp, p.Marker = uint8(eventPT), ev.ts, ev.first
		l.event = ev.payload
		p.Payload = l.event[:]
	} else if out.Ulaw != nil {
		p.Payload = out.Ulaw
	} else {
		p.Payload = audio.EncodeUlaw(l.payload[:], out.PCM)
	}
	if !sending || !dest.IsValid() {
		return
	}
	q := &l.queue
	before := q.dropped
	s := q.next()
	n, err := p.MarshalTo(s.buf[:])
	if err != nil {
		return
	}
	l.seq++
	s.dest, s.n, s.payload = dest, n, len(p.Payload)
	q.n++
	if q.dropped != before {
		l.engine.stats.dropped.Add(1)
	}
	select {
	case l.ready <- struct{}{}:
	default: // the writer has a token already
	}
}

// read takes the datagrams of one of the leg's sockets until it closes.
func (l *Leg) read(conn *net.UDPConn, rtcpPort bool) {
	defer l.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.gone.Load() {
				return
			}
			l.log.Debug("rtp: reading", "err", err)
			continue
		}
		l.receive(buf[:n], from, rtcpPort)
	}
}

// receive takes one datagram from one of the leg's ports: RTCP (on the
// RTCP port, or told apart by its packet type on the RTP one, RFC 5761),
// or RTP: PCMU into the jitter buffer, telephone-events to DTMF.
func (l *Leg) receive(b []byte, from netip.AddrPort, rtcpPort bool) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if len(b) < 8 || b[0]>>6 != 2 {
		return // not RTP version 2, nor RTCP
	}
	if rtcpPort || (b[1] >= 192 && b[1] <= 223) {
		l.receiveRTCP(b, from, rtcpPort)
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &l.in
	if l.ended || !l.known || p.Unmarshal(b) != nil {
		l.ignore()
		return
	}
	kind := 0
	switch int(p.PayloadType) {
	case int(l.remote.audioPT):
		kind = 1
	case l.remote.eventPT:
		kind = 2
	case ptCN:
	default:
		l.ignore()
		return
	}
	switch {
	case !l.latched.IsValid() && !l.engine.cfg.FixedPeer:
		l.latched = from
		if from != l.remote.rtp {
			l.log.Debug("rtp: latched to the peer's source", "from", from, "sdp", l.remote.rtp)
		}
	case from != l.latched:
		l.ignore()
		return
	}
	l.heard.Store(now.UnixNano())
	l.engine.stats.received.Add(1)
	if l.recv.add(p, now.Sub(l.started)) {
		l.events = eventIn{} // a new stream
	}
	switch kind {
	case 1:
		l.jitter.PushUlaw(p.Timestamp, p.Payload)
	case 2:
		if d, ok := l.events.take(p); ok {
			select {
			case l.digits <- d:
			default:
				l.log.Warn("rtp: a DTMF digit dropped: nobody reads them", "digit", string(d))
			}
		}
	}
}

// ignore counts a packet the leg did not take; its caller holds mu.
func (l *Leg) ignore() {
	l.recv.ignored++
	l.engine.stats.ignored.Add(1)
}

// Close ends the leg: it sends an RTCP BYE, closes both ports (which go
// back to the engine) and waits for its goroutines.
func (l *Leg) Close() error {
	l.end(ErrClosed)
	l.wg.Wait()
	return nil
}

// end stops the leg, once, for reason; it does not wait for the
// goroutines (the control goroutine ends a silent leg with it).
func (l *Leg) end(reason error) {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.ended, l.err = true, reason
	known := l.known
	l.mu.Unlock()
	if known {
		l.report(time.Now(), true)
	}
	l.gone.Store(true)
	_ = l.rtpConn.Close()
	_ = l.rtcpConn.Close()
	l.engine.forget(l)
	close(l.stop) // last: whoever sees Done finds the ports free
	if errors.Is(reason, ErrSilence) {
		l.engine.stats.silenced.Add(1)
		l.log.Warn("rtp: the leg ends: nothing received from the peer", "timeout", l.engine.cfg.SilenceTimeout)
	}
}

// control sends RTCP reports and ends the leg when the peer has sent
// nothing for the silence timeout.
func (l *Leg) control() {
	defer l.wg.Done()
	interval, timeout := l.engine.cfg.ReportInterval, l.engine.cfg.SilenceTimeout
	timer := time.NewTimer(interval)
	defer timer.Stop()
	nextReport := time.Now().Add(interval)
	for {
		now := time.Now()
		l.mu.Lock()
		expecting, known := l.expecting, l.known
		l.mu.Unlock()
		wait := nextReport.Sub(now)
		if expecting && timeout > 0 {
			left := time.Unix(0, l.heard.Load()).Add(timeout).Sub(now)
			if left <= 0 {
				l.end(ErrSilence)
				return
			}
			wait = min(wait, left)
		}
		if wait <= 0 {
			if known {
				l.report(now, false)
			}
			nextReport = now.Add(interval)
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-l.kick:
		case <-l.stop:
			return
		}
	}
}

var _ audio.DigitSink = (*Leg)(nil)
