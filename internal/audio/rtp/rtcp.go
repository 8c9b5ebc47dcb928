package rtp

import (
	"net/netip"
	"time"

	"github.com/pion/rtcp"
	pionrtp "github.com/pion/rtp"
)

// recvStats follows the peer's stream for reception reports (RFC 3550
// section 6.4.1 and appendix A): sequence numbers extended past their
// wraps, interarrival jitter, and the last sender report heard.
type recvStats struct {
	ssrc     uint32
	started  bool
	base     uint32 // extended number of the first packet
	maxSeq   uint16
	cycles   uint32 // wraps, shifted left 16
	received uint32 // packets of this stream
	total    uint64 // packets of every stream
	ignored  uint64

	expectedPrior, receivedPrior uint32 // at the last report

	jitter     float64 // in timestamp units
	transit    int32
	hasTransit bool

	lsr   uint32    // the middle of the last sender report's NTP time
	lsrAt time.Time // when it came
}

// add counts an RTP packet that arrived at since the leg started, and
// tells whether it starts a new stream (a new SSRC).
func (s *recvStats) add(p *pionrtp.Packet, since time.Duration) (newStream bool) {
	if !s.started || p.SSRC != s.ssrc {
		lsr, lsrAt, total, ignored := s.lsr, s.lsrAt, s.total, s.ignored
		*s = recvStats{ssrc: p.SSRC, started: true, base: uint32(p.SequenceNumber), maxSeq: p.SequenceNumber,
			lsr: lsr, lsrAt: lsrAt, total: total, ignored: ignored}
		newStream = true
	}
	s.received++
	s.total++
	if d := p.SequenceNumber - s.maxSeq; d != 0 && d < 1<<15 { // ahead: a late one changes nothing
		if p.SequenceNumber < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = p.SequenceNumber
	}
	// Interarrival jitter (RFC 3550 A.8), in 8 kHz timestamp units.
	arrival := uint32(since.Nanoseconds() * 8000 / int64(time.Second))
	transit := int32(arrival - p.Timestamp)
	if s.hasTransit {
		d := float64(transit - s.transit)
		if d < 0 {
			d = -d
		}
		s.jitter += (d - s.jitter) / 16
	}
	s.transit, s.hasTransit = transit, true
	return newStream
}

func (s *recvStats) extMax() uint32 { return s.cycles | uint32(s.maxSeq) }

// lost is how many packets of the stream never came.
func (s *recvStats) lost() uint32 {
	if !s.started {
		return 0
	}
	expected := s.extMax() - s.base + 1
	if expected < s.received {
		return 0 // duplicates
	}
	return expected - s.received
}

// block is the reception report of the stream since the last one.
func (s *recvStats) block(now time.Time) []rtcp.ReceptionReport {
	if !s.started {
		return nil
	}
	expected := s.extMax() - s.base + 1
	expInterval := expected - s.expectedPrior
	recvInterval := s.received - s.receivedPrior
	s.expectedPrior, s.receivedPrior = expected, s.received
	var fraction uint8
	if expInterval > 0 && expInterval > recvInterval {
		fraction = uint8(min((expInterval-recvInterval)<<8/expInterval, 255))
	}
	r := rtcp.ReceptionReport{
		SSRC: s.ssrc, FractionLost: fraction, TotalLost: min(s.lost(), 1<<23-1),
		LastSequenceNumber: s.extMax(), Jitter: uint32(s.jitter), LastSenderReport: s.lsr,
	}
	if !s.lsrAt.IsZero() {
		r.Delay = uint32(now.Sub(s.lsrAt).Seconds() * 65536)
	}
	return []rtcp.ReceptionReport{r}
}

// report sends a compound RTCP packet to the peer: a sender report once
// the leg has sent media (a receiver report before), its CNAME, and a BYE
// when it ends.
func (l *Leg) report(now time.Time, bye bool) {
	l.sendMu.Lock()
	packets, octets, ts := l.queue.sent.packets, l.queue.sent.octets, l.ts
	l.sendMu.Unlock()
	l.mu.Lock()
	blocks := l.recv.block(now)
	dest, conn := l.rtcpDest()
	l.mu.Unlock()
	if !dest.IsValid() {
		return
	}
	var pkts []rtcp.Packet
	if packets > 0 {
		pkts = append(pkts, &rtcp.SenderReport{
			SSRC: l.ssrc, NTPTime: ntpTime(now), RTPTime: ts,
			PacketCount: packets, OctetCount: octets, Reports: blocks,
		})
	} else {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: l.ssrc, Reports: blocks})
	}
	pkts = append(pkts, rtcp.NewCNAMESourceDescription(l.ssrc, l.cname))
	if bye {
		pkts = append(pkts, &rtcp.Goodbye{Sources: []uint32{l.ssrc}})
	}
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		return
	}
	if _, err := conn.WriteToUDPAddrPort(raw, dest); err != nil {
		l.log.Debug("rtp: sending RTCP", "err", err)
	}
}

// receiveRTCP takes the peer's reports: they show it is there, and its
// sender reports time the round trip (LSR and DLSR in ours).
func (l *Leg) receiveRTCP(b []byte, from netip.AddrPort, rtcpPort bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended || !l.known {
		l.ignore()
		return
	}
	switch {
	case rtcpPort && !l.latchedC.IsValid() && !l.engine.cfg.FixedPeer:
		l.latchedC = from
	case rtcpPort && from != l.latchedC, !rtcpPort && from != l.latched:
		l.ignore()
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		l.ignore()
		return
	}
	l.heard.Store(now.UnixNano())
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			l.recv.lsr, l.recv.lsrAt = uint32(sr.NTPTime>>16), now
		}
	}
}

// ntpEpoch is the seconds from 1900 (NTP's epoch) to 1970.
const ntpEpoch = 2208988800

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	return uint64(t.Unix()+ntpEpoch)<<32 | uint64(t.Nanosecond())<<32/1e9
}
