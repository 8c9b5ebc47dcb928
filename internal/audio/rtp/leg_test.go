package rtp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	pionrtp "github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// waitFor is how long a test waits for something that should happen at
// once; only a failure takes it.
const waitFor = 10 * time.Second

// peer is a SIP phone's media side, on real sockets: RTP on one port and
// RTCP on another (named with a=rtcp), PCMU and telephone-events.
type peer struct {
	t         testing.TB
	rtp, rtcp *net.UDPConn
	ssrc      uint32
	seq       uint16
	ts        uint32
}

func newPeer(t testing.TB) *peer {
	t.Helper()
	p := &peer{t: t, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32()}
	p.rtp, p.rtcp = listen(t), listen(t)
	return p
}

func listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func port(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

// offer describes the peer; extra lines go into its audio section.
func (p *peer) offer(extra ...string) []byte {
	lines := append([]string{fmt.Sprintf("a=rtcp:%d\r\n", port(p.rtcp))}, extra...)
	return []byte(phoneOffer(port(p.rtp), lines...))
}

// answered makes a leg of e that has answered the peer's offer.
func (p *peer) answered(e *Engine, extra ...string) *Leg {
	p.t.Helper()
	l := mustLeg(p.t, e)
	if _, err := l.Answer(p.offer(extra...)); err != nil {
		p.t.Fatal(err)
	}
	return l
}

func legAddr(l *Leg) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port()))
}

// packet is the peer's next RTP packet.
func (p *peer) packet(pt uint8, ts uint32, payload []byte) []byte {
	pkt := pionrtp.Packet{Header: pionrtp.Header{Version: 2, PayloadType: pt, SequenceNumber: p.seq, Timestamp: ts, SSRC: p.ssrc}, Payload: payload}
	p.seq++
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// sendFrame sends 20 ms of PCMU from conn (nil: the peer's RTP port).
func (p *peer) sendFrame(conn *net.UDPConn, to netip.AddrPort, f *audio.Frame) {
	if conn == nil {
		conn = p.rtp
	}
	var ulaw [audio.FrameSamples]byte
	b := p.packet(0, p.ts, audio.EncodeUlaw(ulaw[:], f))
	p.ts += audio.FrameSamples
	if _, err := conn.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Error(err)
	}
}

// readRTP reads conn's next RTP packet; false after waitFor.
func readRTP(t testing.TB, conn *net.UDPConn) (*pionrtp.Packet, bool) {
	t.Helper()
	buf := make([]byte, 1500)
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, false
		}
		if n >= 2 && buf[1] >= 192 && buf[1] <= 223 {
			continue // RTCP, on a muxed port
		}
		var p pionrtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			t.Errorf("the leg sent a packet that is not RTP: %v", err)
			continue
		}
		return &p, true
	}
}

// mixerRig runs a real mixer whose two identities are legs in one 1:1
// call, until the test ends.
func mixerRig(t *testing.T, a, b *Leg) {
	t.Helper()
	m := audio.NewMixer(audio.MixerConfig{})
	m.Attach("8:a", a)
	m.Attach("8:b", b)
	m.SetRoute(calls.Route{ServerCallID: "conv", Kind: calls.OneToOne, Members: []calls.MediaMember{
		{RawID: "8:a", CallID: "call-a", Send: true, Receive: true},
		{RawID: "8:b", CallID: "call-b", Send: true, Receive: true},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// listener counts the frames a peer hears that carry each of two tones.
type listener struct {
	heard [2]atomic.Int64
	other atomic.Int64 // frames with sound but neither tone dominant
}

func (h *listener) run(t testing.TB, conn *net.UDPConn, tones [2]float64, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 1500)
	var f audio.Frame
	for {
		_ = conn.SetReadDeadline(time.Now().Add(waitFor))
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		var p pionrtp.Packet
		if p.Unmarshal(buf[:n]) != nil || p.PayloadType != 0 {
			continue
		}
		audio.DecodeUlaw(&f, p.Payload)
		if f.RMS() < 100 {
			continue // silence before the call's audio flows
		}
		if i, ok := audio.Dominant(&f, 1e-3, tones[0], tones[1]); ok {
			h.heard[i].Add(1)
		} else {
			h.other.Add(1)
		}
	}
}

// TestAudioThroughTheMixer puts two SIP peers in one call through a real
// mixer: each sends its tone, and each must hear the other's and never
// its own.
func TestAudioThroughTheMixer(t *testing.T) {
	e := testEngine(t, Config{})
	pa, pb := newPeer(t), newPeer(t)
	la, lb := pa.answered(e), pb.answered(e)
	mixerRig(t, la, lb)

	tones := [2]float64{400, 1000} // a speaks 400 Hz, b 1000 Hz
	var ha, hb listener
	var wg sync.WaitGroup
	wg.Add(2)
	go ha.run(t, pa.rtp, tones, &wg)
	go hb.run(t, pb.rtp, tones, &wg)
	defer wg.Wait()
	defer pa.rtp.Close()
	defer pb.rtp.Close()

	ta, tb := audio.NewTone(tones[0], -20), audio.NewTone(tones[1], -20)
	var f audio.Frame
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	deadline := time.Now().Add(waitFor)
	const want = 25 // frames: half a second of the other's voice
	for ha.heard[1].Load() < want || hb.heard[0].Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("in %v: a heard b's tone in %d frames, b heard a's in %d; want %d each", waitFor, ha.heard[1].Load(), hb.heard[0].Load(), want)
		}
		<-tick.C
		ta.Next(&f)
		pa.sendFrame(nil, legAddr(la), &f)
		tb.Next(&f)
		pb.sendFrame(nil, legAddr(lb), &f)
	}
	if n, m := ha.heard[0].Load(), hb.heard[1].Load(); n > 0 || m > 0 {
		t.Errorf("a heard its own tone in %d frames, b in %d; want none", n, m)
	}
	if s := la.Stats(); s.Received == 0 || s.Sent == 0 || s.Ignored != 0 {
		t.Errorf("a's leg: %+v", s)
	}
	if s := la.Jitter(); s.Late > 0 || s.Resyncs > 0 {
		t.Errorf("a's jitter buffer: %+v", s)
	}
}

// TestLatching checks symmetric RTP: the leg sends where the peer's
// packets come from, not where its description said, and ignores other
// sources until a new description names another address.
func TestLatching(t *testing.T) {
	e := testEngine(t, Config{})
	p := newPeer(t)
	l := p.answered(e)
	nat := listen(t)      // where the peer's packets really come from
	intruder := listen(t) // a third party
	var f audio.Frame
	audio.NewTone(400, -20).Next(&f)

	// Before the peer's first packet, media goes to its description.
	l.Play(audio.Output{PCM: &f})
	if _, ok := readRTP(t, p.rtp); !ok {
		t.Fatal("nothing reached the address of the peer's description")
	}
	steps := []struct {
		name      string
		from      *net.UDPConn
		newOffer  *net.UDPConn // re-INVITE naming this port first
		latchedTo *net.UDPConn
		ignored   uint64 // the leg's count after the step
	}{
		{name: "latches to the NAT's port", from: nat, latchedTo: nat},
		{name: "ignores another source", from: intruder, latchedTo: nat, ignored: 1},
		{name: "keeps the latch on a re-INVITE to the same address", from: nat, newOffer: p.rtp, latchedTo: nat, ignored: 1},
		{name: "re-latches after a re-INVITE to a new address", from: intruder, newOffer: intruder, latchedTo: intruder, ignored: 1},
		{name: "then ignores the old source", from: nat, latchedTo: intruder, ignored: 2},
	}
	for _, s := range steps {
		if s.newOffer != nil {
			if _, err := l.Answer([]byte(phoneOffer(port(s.newOffer)))); err != nil {
				t.Fatal(err)
			}
		}
		before := l.Stats()
		p.sendFrame(s.from, legAddr(l), &f)
		deadline := time.Now().Add(waitFor)
		for st := l.Stats(); st.Received == before.Received && st.Ignored == before.Ignored; st = l.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the leg did not take the packet", s.name)
			}
			time.Sleep(time.Millisecond)
		}
		if got, all := l.Stats().Ignored, e.Stats().Ignored; got != s.ignored || all != s.ignored {
			t.Errorf("%s: %d packets ignored (engine: %d), want %d", s.name, got, all, s.ignored)
		}
		if got, want := l.RemoteAddr(), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port(s.latchedTo))); got != want {
			t.Errorf("%s: the leg sends to %v, want %v", s.name, got, want)
		}
		l.Play(audio.Output{PCM: &f})
		if _, ok := readRTP(t, s.latchedTo); !ok {
			t.Errorf("%s: the leg's packet did not reach the latched address", s.name)
		}
	}
}

// TestFixedPeer: on an engine for known peers (Config.FixedPeer) a leg
// takes packets only from the address the peer's description names and
// sends there, whatever came first from elsewhere.
func TestFixedPeer(t *testing.T) {
	e := testEngine(t, Config{FixedPeer: true})
	p := newPeer(t)
	l := p.answered(e)
	stray := listen(t) // a stream still sent to this port for a call that ended
	var f audio.Frame
	audio.NewTone(400, -20).Next(&f)
	steps := []struct {
		name           string
		from           *net.UDPConn
		ignored, taken uint64
	}{
		{name: "a stray stream first is ignored", from: stray, ignored: 1},
		{name: "the described peer is taken", from: p.rtp, ignored: 1, taken: 1},
		{name: "the stray stream is still ignored", from: stray, ignored: 2, taken: 1},
	}
	for _, s := range steps {
		before := l.Stats()
		p.sendFrame(s.from, legAddr(l), &f)
		deadline := time.Now().Add(waitFor)
		for st := l.Stats(); st.Received == before.Received && st.Ignored == before.Ignored; st = l.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the leg did not take the packet", s.name)
			}
			time.Sleep(time.Millisecond)
		}
		if st := l.Stats(); st.Ignored != s.ignored || st.Received != s.taken {
			t.Errorf("%s: %d packets ignored and %d taken, want %d and %d", s.name, st.Ignored, st.Received, s.ignored, s.taken)
		}
		if got, want := l.RemoteAddr(), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port(p.rtp))); got != want {
			t.Errorf("%s: the leg sends to %v, want the description's %v", s.name, got, want)
		}
	}
}

// TestReports checks the RTCP reports: a sender report on the RTCP port
// (or the RTP port with rtcp-mux) with a reception report of the peer's
// stream.
func TestReports(t *testing.T) {
	for _, mux := range []bool{false, true} {
		t.Run(fmt.Sprintf("rtcp-mux %v", mux), func(t *testing.T) {
			e := testEngine(t, Config{ReportInterval: 50 * time.Millisecond})
			p := newPeer(t)
			var extra []string
			reports := p.rtcp
			if mux {
				extra, reports = []string{"a=rtcp-mux\r\n"}, p.rtp
			}
			l := p.answered(e, extra...)
			var f audio.Frame
			for range 5 {
				p.sendFrame(nil, legAddr(l), &f)
			}
			lastSeq := uint32(p.seq - 1)
			buf := make([]byte, 1500)
			for {
				l.Play(audio.Output{PCM: &f})
				_ = reports.SetReadDeadline(time.Now().Add(waitFor))
				n, err := reports.Read(buf)
				if err != nil {
					t.Fatal("no sender report with a reception report of the peer's stream")
				}
				if buf[1] < 192 || buf[1] > 223 {
					continue // RTP
				}
				pkts, err := rtcp.Unmarshal(buf[:n])
				if err != nil {
					t.Fatalf("the leg sent bad RTCP: %v", err)
				}
				sr, ok := pkts[0].(*rtcp.SenderReport)
				if !ok || len(sr.Reports) == 0 || sr.Reports[0].LastSequenceNumber&0xffff != lastSeq&0xffff {
					continue // a receiver report before the leg sent, or before the packets came
				}
				if r := sr.Reports[0]; r.SSRC != p.ssrc || r.TotalLost != 0 || sr.PacketCount == 0 {
					t.Errorf("sender report %+v", sr)
				}
				if len(pkts) < 2 {
					t.Errorf("the compound packet has no SDES: %v", pkts)
				}
				return
			}
		})
	}
}

// TestSilenceTimeout ends a leg whose peer stops sending, and only then.
func TestSilenceTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name  string
		offer []string
		send  int  // frames the peer sends first
		ends  bool // the leg ends with ErrSilence
	}{
		{name: "the peer never sends", ends: true},
		{name: "the peer stops", send: 10, ends: true},
		{name: "the peer holds (sendonly) and stops", send: 10, offer: []string{"a=sendonly\r\n"}, ends: true},
		{name: "the peer is inactive: no media expected", offer: []string{"a=inactive\r\n"}},
		{name: "the peer only receives", offer: []string{"a=recvonly\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := testEngine(t, Config{SilenceTimeout: timeout})
			p := newPeer(t)
			l := p.answered(e, tt.offer...)
			var f audio.Frame
			for range tt.send {
				p.sendFrame(nil, legAddr(l), &f)
			}
			wait := waitFor
			if !tt.ends {
				wait = 3 * timeout // ending late is the only way to fail this
			}
			select {
			case <-l.Done():
				if !tt.ends {
					t.Fatalf("the leg ended: %v", l.Err())
				}
				if err := l.Err(); !errors.Is(err, ErrSilence) {
					t.Errorf("Err %v, want ErrSilence", err)
				}
				if s := e.Stats(); s.Open != 0 || s.Silenced != 1 || s.Opened != 1 {
					t.Errorf("engine stats %+v; want no leg open, one opened and silenced", s)
				}
				if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: l.Port()}); err != nil {
					t.Errorf("the ended leg's port is still open: %v", err)
				} else {
					c.Close()
				}
			case <-time.After(wait):
				if tt.ends {
					t.Fatalf("the leg did not end in %v", wait)
				}
			}
		})
	}
}

// TestTalkingKeepsALegUp: a peer that keeps sending keeps its leg.
func TestTalkingKeepsALegUp(t *testing.T) {
	const timeout = time.Second
	e := testEngine(t, Config{SilenceTimeout: timeout})
	p := newPeer(t)
	l := p.answered(e)
	var f audio.Frame
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	for end := time.Now().Add(2 * timeout); time.Now().Before(end); {
		<-tick.C
		p.sendFrame(nil, legAddr(l), &f)
	}
	select {
	case <-l.Done():
		t.Fatalf("a talking peer's leg ended: %v", l.Err())
	default:
	}
}

// TestCloseReleasesEverything opens and runs legs, closes them, and
// checks that their goroutines and ports are gone.
func TestCloseReleasesEverything(t *testing.T) {
	before := runtime.NumGoroutine()
	e := testEngine(t, Config{Ports: "27900-27905", ReportInterval: 20 * time.Millisecond})
	var legs []*Leg
	var ports []int
	for range 3 {
		p := newPeer(t)
		l := p.answered(e)
		var f audio.Frame
		p.sendFrame(nil, legAddr(l), &f)
		l.Play(audio.Output{PCM: &f})
		legs, ports = append(legs, l), append(ports, l.Port())
	}
	if _, err := e.NewLeg(LegOptions{}); !errors.Is(err, ErrNoPorts) {
		t.Errorf("a fourth leg on three port pairs: %v, want ErrNoPorts", err)
	}
	if err := legs[0].Close(); err != nil {
		t.Fatal(err)
	}
	l, err := e.NewLeg(LegOptions{})
	if err != nil {
		t.Fatalf("a leg after one closed: %v", err)
	}
	if l.Port() != ports[0] {
		t.Errorf("the new leg took port %d, want the freed %d", l.Port(), ports[0])
	}
	if err := e.Close(); err != nil { // closes the rest
		t.Fatal(err)
	}
	if _, err := e.NewLeg(LegOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("a leg of a closed engine: %v, want ErrClosed", err)
	}
	if n := e.Open(); n != 0 {
		t.Errorf("%d port pairs held after Close", n)
	}
	for _, p := range ports {
		for _, q := range []int{p, p + 1} {
			c, err := net.ListenUDP("udp", &net.UDPAddr{Port: q})
			if err != nil {
				t.Errorf("port %d still taken after Close: %v", q, err)
				continue
			}
			c.Close()
		}
	}
	for _, l := range append(legs, l) {
		select {
		case <-l.Done():
		default:
			t.Error("a leg is not done after Close")
		}
		if err := l.Close(); err != nil {
			t.Errorf("closing twice: %v", err)
		}
	}
	// The test's own sockets are closed by its cleanup, which has not run
	// yet; the legs' goroutines must be gone already.
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDirectionGatesSending checks that a leg sends media exactly when the
// agreed direction lets it: not to a peer that holds it (sendonly,
// inactive, c=0.0.0.0), and still to a peer it holds itself (the peer
// hears the hold audio). Play queues for the leg's writer: the counts
// tell once its queue is empty.
func TestDirectionGatesSending(t *testing.T) {
	e := testEngine(t, Config{})
	tests := []struct {
		name  string
		setup func(t *testing.T, l *Leg, p *peer)
		sends bool
	}{
		{name: "sendrecv", sends: true},
		{name: "the peer holds: sendonly", setup: answerTo("a=sendonly\r\n"), sends: false},
		{name: "the peer holds: inactive", setup: answerTo("a=inactive\r\n"), sends: false},
		{name: "the peer holds: c=0.0.0.0", setup: func(t *testing.T, l *Leg, p *peer) {
			if _, err := l.Answer([]byte(strings.Replace(string(p.offer()), "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1))); err != nil {
				t.Fatal(err)
			}
		}, sends: false},
		{name: "the peer resumes", setup: func(t *testing.T, l *Leg, p *peer) {
			answerTo("a=sendonly\r\n")(t, l, p)
			answerTo("a=sendrecv\r\n")(t, l, p)
		}, sends: true},
		{name: "the leg holds the peer", setup: func(t *testing.T, l *Leg, p *peer) {
			l.SetDirection(SendOnly)
			offer, err := l.Offer()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(offer), "a=sendonly") {
				t.Errorf("a hold offer without a=sendonly:\n%s", offer)
			}
			answer := strings.Replace(string(p.offer()), "a=ptime:20", "a=recvonly", 1)
			for range 2 { // a provisional answer, then the final one
				if err := l.ApplyAnswer([]byte(answer)); err != nil {
					t.Fatal(err)
				}
			}
			if got := l.Direction(); got != SendOnly {
				t.Errorf("Direction %v, want sendonly", got)
			}
		}, sends: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t)
			l := p.answered(e)
			if tt.setup != nil {
				tt.setup(t, l, p)
			}
			var f audio.Frame
			before := l.Stats().Sent
			for range 3 {
				l.Play(audio.Output{PCM: &f})
			}
			written(t, l)
			if sent := l.Stats().Sent - before; (sent == 3) != tt.sends || (sent != 0 && sent != 3) {
				t.Errorf("sent %d of 3 frames; want all: %v", sent, tt.sends)
			}
		})
	}
}

// answerTo makes a setup that answers the peer's re-INVITE with extra in
// its audio section.
func answerTo(extra string) func(t *testing.T, l *Leg, p *peer) {
	return func(t *testing.T, l *Leg, p *peer) {
		t.Helper()
		if _, err := l.Answer(p.offer(extra)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAllAddresses runs a leg on every address of the host (no ListenIP:
// one IPv6 socket that takes IPv4 too) with an IPv4 peer, both ways.
func TestAllAddresses(t *testing.T) {
	e, err := NewEngine(Config{Ports: testPorts, PublicIP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := newPeer(t)
	l := p.answered(e)
	var f audio.Frame
	p.sendFrame(nil, legAddr(l), &f)
	deadline := time.Now().Add(waitFor)
	for l.Stats().Received == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the leg did not receive the peer's packet")
		}
		time.Sleep(time.Millisecond)
	}
	if got, want := l.RemoteAddr().String(), p.rtp.LocalAddr().String(); got != want {
		t.Errorf("latched to %s, want %s", got, want)
	}
	l.Play(audio.Output{PCM: &f})
	if _, ok := readRTP(t, p.rtp); !ok {
		t.Error("the peer did not receive the leg's packet")
	}
}

// written waits until the leg's writer has sent (or failed to send)
// every packet Play queued.
func written(t testing.TB, l *Leg) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		l.sendMu.Lock()
		done := l.queue.n == 0 && !l.queue.writing
		l.sendMu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the leg's writer did not send what Play queued")
		}
		time.Sleep(time.Millisecond)
	}
}
