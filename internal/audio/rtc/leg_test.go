package rtc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/internal/audio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(Config{Loopback: true, DisconnectedAfter: 500 * time.Millisecond, FailedAfter: 2 * time.Second, KeepAlive: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// pair connects an offering leg to an answering one.
func pair(t *testing.T, e *Engine) (caller, callee *Leg) {
	t.Helper()
	caller, callee, _ = pairAcross(t, e, e)
	return caller, callee
}

// pairAcross connects a leg of offerer to a leg of answerer and returns
// them with the answer.
// A watch function, if given, follows the callee's ICE states.
func pairAcross(t *testing.T, offerer, answerer *Engine, watch ...func(State)) (caller, callee *Leg, answer string) {
	t.Helper()
	ctx := context.Background()
	caller, offer, err := offerer.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	callee, answer, err = answerer.Answer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range watch {
		callee.OnState(w)
	}
	if err := caller.Accept(answer); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Leg{caller, callee} {
		select {
		case <-l.Connected():
		case <-time.After(10 * time.Second):
			t.Fatal("ICE did not connect in 10 s")
		}
	}
	return caller, callee, answer
}

func TestLegCarriesAudioBothWays(t *testing.T) {
	e := testEngine(t)
	caller, callee := pair(t, e)
	defer caller.Close()
	defer callee.Close()

	up, down := audio.NewTone(400, -20), audio.NewTone(800, -20)
	var f audio.Frame
	heardUp, heardDown := 0, 0
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	for range 50 { // one second
		<-tick.C
		up.Next(&f)
		caller.Play(audio.Output{PCM: &f})
		down.Next(&f)
		callee.Play(audio.Output{PCM: &f})
		if callee.Capture(&f) {
			if i, ok := audio.Dominant(&f, 1e-3, 400, 800); ok && i == 0 {
				heardUp++
			}
		}
		if caller.Capture(&f) {
			if i, ok := audio.Dominant(&f, 1e-3, 400, 800); ok && i == 1 {
				heardDown++
			}
		}
	}
	// The jitter buffer holds 3 frames and loopback loses nothing: nearly
	// every frame after the first few carries the tone.
	if heardUp < 40 || heardDown < 40 {
		t.Errorf("frames with the tone in 1 s: callee %d, caller %d; want at least 40 each", heardUp, heardDown)
	}
	if s := callee.Jitter(); s.Late > 0 || s.Resyncs > 0 {
		t.Errorf("callee's jitter buffer: %+v", s)
	}
}

func TestLegNoticesAVanishedPeer(t *testing.T) {
	e := testEngine(t)
	caller, callee := pair(t, e)
	defer callee.Close()
	states := make(chan State, 16)
	callee.OnState(func(s State) { states <- s })
	start := time.Now()
	caller.Close() // no goodbye: the callee only sees silence
	for {
		select {
		case s := <-states:
			if s == ice.ConnectionStateDisconnected || s == ice.ConnectionStateFailed {
				t.Logf("peer gone: %s after %v", s, time.Since(start).Round(time.Millisecond))
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the callee did not notice its peer had gone within 10 s")
		}
	}
}

func TestAnswerRejectsBadOffers(t *testing.T) {
	e := testEngine(t)
	offerer, good, err := e.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer offerer.Close()
	tests := []struct{ name, offer string }{
		{"empty", ""},
		{"garbage", "hello"},
		{"no audio", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"},
		{"NUL in fmtp", strings.Replace(good, "a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMU/8000\r\na=fmtp:0 x\x00y", 1)},
		{"payload type 4294967296", strings.Replace(good, "a=rtpmap:0 PCMU/8000", "a=rtpmap:4294967296 PCMU/8000", 1)},
		{"Opus only", strings.NewReplacer("a=rtpmap:0 PCMU/8000", "a=rtpmap:111 opus/48000/2", "UDP/TLS/RTP/SAVPF 0", "UDP/TLS/RTP/SAVPF 111").Replace(good)},
		{"an answer, not an offer", "v=0\r\n" + strings.Repeat("m=audio 9 x\r\n", 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leg, answer, err := e.Answer(context.Background(), tt.offer)
			if err == nil {
				leg.Close()
				t.Fatalf("answered %q with %q", tt.offer, answer)
			}
			if !errors.Is(err, ErrBadSDP) {
				t.Errorf("error %v is not ErrBadSDP", err)
			}
		})
	}
}

func TestEngineAddressesAndPorts(t *testing.T) {
	e, err := NewEngine(Config{PortMin: 45100, PortMax: 45110, PublicIPs: []string{"203.0.113.7"}})
	if err != nil {
		t.Fatal(err)
	}
	leg, offer, err := e.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	n := 0
	for _, line := range strings.Split(offer, "\r\n") {
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		n++
		f := strings.Fields(line) // foundation component transport priority address port typ host
		switch {
		case len(f) < 8:
			t.Errorf("short candidate: %s", line)
			continue
		case !strings.Contains(f[4], ":") && f[4] != "203.0.113.7":
			// An IPv4 public address stands in for every IPv4 host
			// address; IPv6 addresses are kept.
			t.Errorf("IPv4 candidate without the public address: %s", line)
		}
		if port, err := strconv.Atoi(f[5]); err != nil || port < 45100 || port > 45110 {
			t.Errorf("candidate port outside 45100-45110: %s", line)
		}
	}
	if n == 0 {
		t.Fatalf("no candidates in the offer:\n%s", offer)
	}
	if _, err := NewEngine(Config{PortMin: 50000, PortMax: 40000}); err == nil {
		t.Error("an inverted port range was accepted")
	}
}

func TestSharedPortWithPublicAddress(t *testing.T) {
	e, err := NewEngine(Config{Shared: true, SharedPort: 45120, PublicIPs: []string{"203.0.113.7"}, IPv4Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	leg, offer, err := e.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	for _, line := range strings.Split(offer, "\r\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "a=candidate:") && (len(f) < 8 || f[4] != "203.0.113.7" || f[5] != "45120") {
			t.Errorf("candidate %q; want 203.0.113.7 port 45120", line)
		}
	}
	if _, err := NewEngine(Config{Shared: true, SharedPort: 45120, IPv4Only: true}); err == nil {
		t.Error("a second engine took the same shared port")
	}
}

// TestSharedPortsKeepLegsApart answers several callers on shared UDP
// ports: the answers name the ports as the engine spreads legs over them,
// and each callee hears its own caller's tone, never another's. Media
// takes the fast path, and the ICE agents, which see little of it, keep
// the legs connected while it flows: the callers check only every 2 s,
// and the server would call a leg disconnected after 400 ms without a
// packet.
func TestSharedPortsKeepLegsApart(t *testing.T) {
	tests := []struct {
		name  string
		ports int // the server's shared ports
		// fromOne marks the callers that share one socket (one peer
		// address); the others have sockets of their own.
		fromOne []bool
	}{
		// Every answer names the same ports.
		{"one port", 1, []bool{false, false, false}},
		// Round robin would put the last caller on the first's port, where
		// the mux could not tell them apart: no two of those callers' answers
		// may name the same ports.
		{"three ports, three callers from one address", 3, []bool{true, false, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, err := NewEngine(Config{Loopback: true, Shared: true, SharedPorts: tt.ports, DisconnectedAfter: 400 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer closeEngine(t, server)
			own, err := NewEngine(Config{Loopback: true, KeepAlive: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			one, err := NewEngine(Config{Loopback: true, Shared: true, IPv4Only: true, KeepAlive: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer closeEngine(t, one)
			// Until media flows, a leg hears from its caller only every 2 s
			// and may well lapse: count lapses from half a second into the
			// media on.
			var lapses atomic.Int32
			var mediaFrom atomic.Int64
			watch := func(s State) {
				from := mediaFrom.Load()
				if (s == ice.ConnectionStateDisconnected || s == ice.ConnectionStateFailed) && from != 0 && time.Now().UnixNano() > from {
					lapses.Add(1)
				}
			}
			freqs := []float64{400, 600, 800, 1000}[:len(tt.fromOne)]
			callers := make([]*Leg, len(freqs))
			callees := make([]*Leg, len(freqs))
			sets := map[string]int{}     // the ports each answer names
			portSets := map[string]int{} // of the answers to callers from one address
			for i, shared := range tt.fromOne {
				client := own
				if shared {
					client = one
				}
				var answer string
				callers[i], callees[i], answer = pairAcross(t, client, server, watch)
				defer callers[i].Close()
				defer callees[i].Close()
				ports := candidatePorts(t, answer)
				slices.Sort(ports)
				ports = slices.Compact(ports)
				set := strings.Join(ports, ",")
				if sets[set]++; tt.ports == 1 && len(sets) > 1 {
					t.Errorf("answer %d names ports %s, unlike the others %v; want each local address's one shared socket", i, set, sets)
				}
				if shared {
					portSets[set]++
				}
			}
			for set, n := range portSets {
				if n > 1 {
					t.Errorf("%d callers from one address were answered on ports %s", n, set)
				}
			}
			mediaFrom.Store(time.Now().Add(500 * time.Millisecond).UnixNano())
			hearOwnCallers(t, freqs, callers, callees)
			if n := lapses.Load(); n > 0 {
				t.Errorf("the server's legs went disconnected %d times", n)
			}
			if s := server.Stats(); s.Fast < s.Received*3/4 {
				t.Errorf("%d of %d packets received took the fast path; want three quarters at least", s.Fast, s.Received)
			}
		})
	}
}

// TestSharedPortAnswersInTheOffersFamilies: on shared ports, a leg whose
// peer offered IPv4 candidates alone gathers none on the host's IPv6
// addresses (each candidate costs pion goroutines and buffers for the
// leg's life), and one whose peer offered both gathers both.
func TestSharedPortAnswersInTheOffersFamilies(t *testing.T) {
	server, err := NewEngine(Config{Loopback: true, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, server)
	hostV6 := false
	for _, a := range server.shared.ports[0].mux.GetListenAddresses() {
		if u, ok := a.(*net.UDPAddr); ok && u.IP.To4() == nil {
			hostV6 = true
		}
	}
	for _, tt := range []struct {
		name     string
		ipv4Only bool
		wantV6   bool
	}{
		{"an IPv4 offer", true, false},
		{"a dual-stack offer", false, hostV6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, err := NewEngine(Config{Loopback: true, IPv4Only: tt.ipv4Only})
			if err != nil {
				t.Fatal(err)
			}
			caller, callee, answer := pairAcross(t, client, server)
			defer caller.Close()
			defer callee.Close()
			r, err := parseRemote(answer, "answer")
			if err != nil {
				t.Fatal(err)
			}
			var v4, v6 int
			for _, a := range peerAddrs(r) {
				if a.Addr().Is4() {
					v4++
				} else {
					v6++
				}
			}
			if v4 == 0 || (v6 > 0) != tt.wantV6 {
				t.Errorf("the answer has %d IPv4 and %d IPv6 candidates; want IPv4 ones, and IPv6 ones: %v\n%s", v4, v6, tt.wantV6, answer)
			}
		})
	}
	if !hostV6 {
		t.Log("this host has no usable IPv6 address: the dual-stack case shows nothing")
	}
}

// TestAnsweringLegReleasesItsAgent: an answering leg on a shared port
// lets its ICE agent and its DTLS connection go once its peer's media
// arrives on the fast path, and from then on answers its peer's checks
// itself and tells from what arrives whether the peer is there: a caller
// that sends media and checks every 100 ms, but hears no media back, stays
// connected (its checks are answered); when the caller vanishes the leg
// reports disconnected, then failed; media still flows both ways.
func TestAnsweringLegReleasesItsAgent(t *testing.T) {
	server, err := NewEngine(Config{Loopback: true, IPv4Only: true, Shared: true,
		DisconnectedAfter: 500 * time.Millisecond, FailedAfter: time.Second, KeepAlive: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, server)
	client, err := NewEngine(Config{Loopback: true, IPv4Only: true,
		DisconnectedAfter: 500 * time.Millisecond, FailedAfter: 5 * time.Second, KeepAlive: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	calleeStates := make(chan State, 16)
	caller, callee, _ := pairAcross(t, client, server, func(s State) { calleeStates <- s })
	defer callee.Close()
	callerStates := make(chan State, 16)
	caller.OnState(func(s State) { callerStates <- s })
	payload := make([]byte, 160)
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	for deadline := time.Now().Add(5 * time.Second); !callee.released.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("the callee kept its ICE agent after its peer's media arrived")
		}
		<-tick.C
		caller.Send(payload)
	}
	if callee.agent.Load() != nil || callee.Path() != "udp host" {
		t.Errorf("released callee: agent %v, path %q; want none, and the path it took", callee.agent.Load(), callee.Path())
	}
	callee.mu.Lock()
	holdsDTLS := callee.dtls != nil || callee.pipe != nil
	callee.mu.Unlock()
	if holdsDTLS {
		t.Error("the released callee still holds its DTLS connection")
	}
	// 1.5 s of the caller's media and checks, and none of the callee's
	// media: the caller hears only the answers to its checks.
	for range 75 {
		<-tick.C
		caller.Send(payload)
	}
	if n := callee.checks.Load(); n < 5 {
		t.Errorf("the released callee answered %d checks in 1.5 s; want about 15", n)
	}
	away := func(s State) bool {
		return s == ice.ConnectionStateDisconnected || s == ice.ConnectionStateFailed || s == ice.ConnectionStateClosed
	}
	for len(callerStates) > 0 {
		if s := <-callerStates; away(s) {
			t.Errorf("the caller went %s while the callee answered its checks", s)
		}
	}
	for len(calleeStates) > 0 {
		if s := <-calleeStates; away(s) {
			t.Errorf("the callee went %s while its caller sent", s)
		}
	}
	if s := callee.samples.Load(); s > 2 {
		t.Errorf("%d media packets went to the callee's agent; want none once released", s)
	}
	// Media both ways, on the released leg.
	hearOwnCallers(t, []float64{400}, []*Leg{caller}, []*Leg{callee})
	hearOwnCallers(t, []float64{800}, []*Leg{callee}, []*Leg{caller})
	// The caller vanishes without a word.
	caller.Close()
	want := []State{ice.ConnectionStateDisconnected, ice.ConnectionStateFailed}
	for _, w := range want {
		select {
		case s := <-calleeStates:
			if s != w {
				t.Fatalf("the callee went %s; want %s", s, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the callee did not go %s within 5 s of its caller vanishing", w)
		}
	}
}

func closeEngine(t *testing.T, e *Engine) {
	if err := e.Close(); err != nil {
		t.Error(err)
	}
}

// hearOwnCallers has each caller play its tone for a second: each callee
// must hear its own caller's, never another's.
func hearOwnCallers(t *testing.T, freqs []float64, callers, callees []*Leg) {
	t.Helper()
	tones := make([]*audio.Tone, len(freqs))
	for i, f := range freqs {
		tones[i] = audio.NewTone(f, -20)
	}
	heard := make([]int, len(freqs))
	var f audio.Frame
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	for range 50 {
		<-tick.C
		for i, caller := range callers {
			tones[i].Next(&f)
			caller.Play(audio.Output{PCM: &f})
		}
		for i, callee := range callees {
			if !callee.Capture(&f) {
				continue
			}
			if j, ok := audio.Dominant(&f, 1e-3, freqs...); ok {
				if j != i {
					t.Fatalf("callee %d heard caller %d's tone", i, j)
				}
				heard[i]++
			}
		}
	}
	for i, n := range heard {
		if n < 40 {
			t.Errorf("callee %d heard its caller in %d frames of 50; want at least 40", i, n)
		}
	}
}

func TestSharedPortChoice(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:5000")
	b := netip.MustParseAddrPort("10.0.0.2:5000")
	c := netip.MustParseAddrPort("127.0.0.1:5001")
	type step struct {
		peers   []netip.AddrPort
		release int // >0: release the port step release-1 took, instead of taking
		want    int // the port taken; -1: refused (ErrNoSharedPort)
	}
	tests := []struct {
		name  string
		ports int
		steps []step
	}{
		{"unknown peers go round robin", 3, []step{{nil, 0, 0}, {nil, 0, 1}, {nil, 0, 2}, {nil, 0, 0}}},
		{"a peer address is never on one port twice", 3, []step{
			{[]netip.AddrPort{a, b}, 0, 0}, {[]netip.AddrPort{a}, 0, 1}, {[]netip.AddrPort{b}, 0, 2},
			{[]netip.AddrPort{c}, 0, 0}, {[]netip.AddrPort{a}, 0, 2},
		}},
		{"released addresses are free again", 2, []step{
			{[]netip.AddrPort{a}, 0, 0}, {[]netip.AddrPort{a}, 0, 1},
			{nil, 1, 0}, {[]netip.AddrPort{a}, 0, 0},
		}},
		{"every port taken: refused, and nothing counted", 2, []step{
			{[]netip.AddrPort{a}, 0, 0}, {[]netip.AddrPort{a}, 0, 1}, {[]netip.AddrPort{a, c}, 0, -1},
			{[]netip.AddrPort{c}, 0, 0}, {[]netip.AddrPort{c}, 0, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sharedPorts{}
			for range tt.ports {
				s.ports = append(s.ports, &sharedPort{peers: map[netip.AddrPort]int{}})
			}
			taken := make([]*sharedPort, len(tt.steps))
			for i, st := range tt.steps {
				if st.release > 0 {
					s.release(taken[st.release-1], tt.steps[st.release-1].peers)
					continue
				}
				var err error
				taken[i], err = s.take(st.peers)
				if st.want < 0 {
					if !errors.Is(err, ErrNoSharedPort) {
						t.Fatalf("step %d (peers %v): port %v, err %v; want ErrNoSharedPort", i, st.peers, taken[i], err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d (peers %v): %v", i, st.peers, err)
				}
				if got := slices.Index(s.ports, taken[i]); got != st.want {
					t.Fatalf("step %d (peers %v): port %d, want %d", i, st.peers, got, st.want)
				}
			}
		})
	}
}

// candidatePorts returns the ports of the candidates in an SDP.
func candidatePorts(t *testing.T, desc string) []string {
	t.Helper()
	var ports []string
	for _, line := range strings.Split(desc, "\r\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "a=candidate:") && len(f) >= 8 {
			ports = append(ports, f[5])
		}
	}
	if len(ports) == 0 {
		t.Fatalf("no candidates in:\n%s", desc)
	}
	return ports
}

func TestSeqCounter(t *testing.T) {
	type step struct {
		seq     uint16
		missed  uint16
		highest uint32
		ahead   bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{10, 0, 10, true}, {11, 0, 11, true}, {12, 0, 12, true}}},
		{"a gap", []step{{10, 0, 10, true}, {14, 3, 14, true}, {15, 0, 15, true}}},
		{"late, reordered", []step{{10, 0, 10, true}, {12, 1, 12, true}, {11, 0, 0, false}, {13, 0, 13, true}}},
		{"a duplicate", []step{{10, 0, 10, true}, {10, 0, 0, false}}},
		{"wraps", []step{{65534, 0, 65534, true}, {65535, 0, 65535, true}, {0, 0, 1 << 16, true}, {2, 1, 1<<16 | 2, true}}},
		{"wraps over a gap", []step{{65534, 0, 65534, true}, {1, 2, 1<<16 | 1, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seqCounter
			for i, st := range tt.steps {
				missed, highest, ahead := s.add(st.seq)
				if missed != st.missed || highest != st.highest || ahead != st.ahead {
					t.Fatalf("step %d, seq %d: add = %d, %d, %v; want %d, %d, %v", i, st.seq, missed, highest, ahead, st.missed, st.highest, st.ahead)
				}
			}
		})
	}
}

func TestReportDue(t *testing.T) {
	start := time.Unix(1000, 0)
	type write struct {
		after time.Duration // since start
		heard bool          // the peer's first packet has arrived
		want  bool
	}
	tests := []struct {
		name   string
		writes []write
	}{
		{"waits for the peer's first packet", []write{
			{0, false, false}, {20 * time.Millisecond, false, false}, {40 * time.Millisecond, true, true},
			{60 * time.Millisecond, true, false}, {reportEvery, true, false}, {reportEvery + 40*time.Millisecond, true, true},
		}},
		{"a silent peer gets one per interval", []write{
			{0, false, false}, {reportEvery - time.Millisecond, false, false}, {reportEvery, false, true},
			{reportEvery + 20*time.Millisecond, true, false}, {2 * reportEvery, true, true},
		}},
		{"heard before the first write", []write{{0, true, true}, {20 * time.Millisecond, true, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sendState
			for i, w := range tt.writes {
				now := start.Add(w.after)
				got := s.reportDue(now, w.heard)
				if got {
					s.lastReport = now
				}
				if got != w.want {
					t.Errorf("write %d at +%v (heard %v): due %v, want %v", i, w.after, w.heard, got, w.want)
				}
			}
		})
	}
}

func TestUsableIP(t *testing.T) {
	for _, tt := range []struct {
		ip   string
		want bool
	}{
		{"192.0.2.2", true}, {"127.0.0.1", true}, {"fd00::2", true}, {"2001:db8::1", true},
		{"fe80::fc:ff:fe00:1", false}, {"169.254.1.1", false},
	} {
		if got := usableIP(net.ParseIP(tt.ip)); got != tt.want {
			t.Errorf("usableIP(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
}
