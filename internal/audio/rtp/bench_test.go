package rtp

import (
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
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

// BenchmarkMixerTick is one tick of a real mixer whose identities are
// 1,000 legs, each in a call with the echo bot: what the mixer's clock
// spends of every 20 ms on a thousand phone calls. Since Play queues for
// the legs' writers, the sendtos are not in it. Besides the wall time per
// tick (ns/op, which a loaded host stretches) it reports the CPU time of
// the thread that ran the ticks (thread-cpu-ns/tick: clock_gettime's
// CLOCK_THREAD_CPUTIME_ID, the goroutine locked to its thread), the
// figure that says whether a tick fits in 20 ms on one core.
func BenchmarkMixerTick(b *testing.B) {
	const n = 1000
	e := testEngine(b, Config{Ports: "46000-49999"})
	var peers []*peer
	for range 8 {
		peers = append(peers, newPeer(b))
	}
	const echo = "8:echo"
	m := audio.NewMixer(audio.MixerConfig{EchoBot: echo})
	for i := range n {
		l := peers[i%len(peers)].answered(e)
		id := "8:phone-" + strconv.Itoa(i)
		m.Attach(id, l)
		m.SetRoute(calls.Route{ServerCallID: "call-" + strconv.Itoa(i), Kind: calls.OneToOne, Members: []calls.MediaMember{
			{RawID: id, CallID: "phone-" + strconv.Itoa(i), Send: true, Receive: true},
			{RawID: echo, CallID: "echo-" + strconv.Itoa(i), Send: true, Receive: true},
		}})
	}
	m.Tick() // takes the routes and endpoints
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	start, ticks := cpu(), 0
	for b.Loop() {
		m.Tick()
		ticks++
	}
	b.ReportMetric(float64(cpu()-start)/float64(ticks), "thread-cpu-ns/tick")
}
