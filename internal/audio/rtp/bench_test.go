package rtp

import (
	"net/netip"
	"testing"

	"github.com/switchboard/switchboard/internal/audio"
)

// BenchmarkPlay is the cost of sending one 20 ms frame: "raw-udp", the
// baseline, writes a datagram of the same size (a 12-byte header and 160
// bytes of PCMU) to a socket; "leg" is Leg.Play of a PCM frame, as the
// mixer plays a call's mix (µ-law encoding, the RTP header, the write).
func BenchmarkPlay(b *testing.B) {
	e := testEngine(b, Config{})
	p := newPeer(b)
	l := p.answered(e)
	to := netip.MustParseAddrPort(p.rtp.LocalAddr().String())
	var f audio.Frame
	audio.NewTone(400, -20).Next(&f)
	b.Run("raw-udp", func(b *testing.B) {
		conn := listen(b)
		pkt := make([]byte, 12+audio.FrameSamples)
		for b.Loop() {
			if _, err := conn.WriteToUDPAddrPort(pkt, to); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("leg", func(b *testing.B) {
		for b.Loop() {
			l.Play(audio.Output{PCM: &f})
		}
	})
}

// BenchmarkReceive is the cost of taking one RTP packet: "raw-udp", the
// baseline, writes a PCMU packet to a socket and reads it back; "leg" does
// the same and hands it to the leg as its reading goroutine does (latch
// check, sequence and jitter statistics, the jitter buffer), with the
// mixer's Capture every packet.
func BenchmarkReceive(b *testing.B) {
	e := testEngine(b, Config{})
	p := newPeer(b)
	l := p.answered(e)
	in := listen(b) // stands in for the leg's socket
	to := netip.MustParseAddrPort(in.LocalAddr().String())
	from := netip.MustParseAddrPort(p.rtp.LocalAddr().String())
	var ulaw [audio.FrameSamples]byte
	run := func(b *testing.B, leg bool) {
		buf := make([]byte, 1500)
		var f audio.Frame
		for b.Loop() {
			pkt := p.packet(0, p.ts, ulaw[:])
			p.ts += audio.FrameSamples
			if _, err := p.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
				b.Fatal(err)
			}
			n, err := in.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			if leg {
				l.receive(buf[:n], from, false)
				l.Capture(&f)
			}
		}
	}
	b.Run("raw-udp", func(b *testing.B) { run(b, false) })
	b.Run("leg", func(b *testing.B) { run(b, true) })
}
