package rtc

import (
	"time"

	"github.com/pion/rtcp"
)

// reportEvery is how often a leg sends an RTCP sender report (RFC 3550
// section 6.2 suggests 5 s as the minimum interval).
const reportEvery = 5 * time.Second

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// writeReport sends a sender report with a reception report of the peer's
// stream, if it has sent any. Its caller holds the sending side.
func (l *Leg) writeReport(keys *srtpKeys, rtpTime uint32, now time.Time) {
	s := &l.send
	sr := rtcp.SenderReport{
		SSRC: l.local.ssrc, NTPTime: ntpTime(now), RTPTime: rtpTime,
		PacketCount: s.packets, OctetCount: s.octets,
	}
	if ssrc := l.recv.ssrc.Load(); ssrc != 0 {
		lost := l.recv.lost.Load()
		sr.Reports = []rtcp.ReceptionReport{{
			SSRC: ssrc, TotalLost: min(lost, 1<<23-1), LastSequenceNumber: l.recv.highest.Load(),
		}}
	}
	raw, err := sr.Marshal()
	if err != nil {
		return
	}
	out, err := keys.enc.EncryptRTCP(s.cipher[:0], raw, nil)
	if err != nil {
		return
	}
	_ = l.transmit(keys, out)
}

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}
