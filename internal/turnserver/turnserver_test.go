package turnserver

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Logger = quiet()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// client is a TURN client to s over transport ("udp" or "tcp").
func client(t *testing.T, s *Server, transport, username, password string) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	case "tcp":
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conn = turn.NewSTUNConn(c)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.Addr(), TURNServerAddr: s.Addr(),
		Username: username, Password: password, Realm: s.Realm(),
		Conn: conn, RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c
}

// echoPeer answers every datagram with the same bytes until the test ends.
func echoPeer(t *testing.T) net.Addr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return pc.LocalAddr()
}

// TestRelay allocates with fresh credentials over UDP and over TCP and has
// a datagram relayed to a peer and back.
func TestRelay(t *testing.T) {
	s := start(t, Config{})
	peer := echoPeer(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			user, pass, err := s.Credentials("8:acs:alice")
			if err != nil {
				t.Fatal(err)
			}
			relay, err := client(t, s, transport, user, pass).Allocate()
			if err != nil {
				t.Fatalf("allocate with valid credentials: %v", err)
			}
			defer relay.Close()
			if got := relay.LocalAddr().(*net.UDPAddr).IP; !got.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("relayed address %v, want the listener's 127.0.0.1", got)
			}
			want := []byte("hello through " + transport)
			buf := make([]byte, 1500)
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, err := relay.WriteTo(want, peer); err != nil {
					t.Fatal(err)
				}
				_ = relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, from, err := relay.ReadFrom(buf)
				if err == nil {
					if !bytes.Equal(buf[:n], want) || from.String() != peer.String() {
						t.Fatalf("relayed back %q from %v, want %q from %v", buf[:n], from, want, peer)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("nothing relayed back: %v", err)
				}
			}
		})
	}
}

// TestRefusesBadCredentials: the relay allocates for none but fresh
// credentials signed with its own secret.
func TestRefusesBadCredentials(t *testing.T) {
	s := start(t, Config{Secret: "the relay's secret"})
	good, goodPass, err := s.Credentials("alice")
	if err != nil {
		t.Fatal(err)
	}
	expired, expiredPass, err := Credentials("the relay's secret", "alice", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged, forgedPass, err := Credentials("another secret", "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"fresh", good, goodPass, true},
		{"expired", expired, expiredPass, false},
		{"forged", forged, forgedPass, false},
		{"wrong password", good, "x" + goodPass, false},
		{"longer life claimed", fmt.Sprint(time.Now().Add(48*time.Hour).Unix()) + ":alice", goodPass, false},
		{"not a REST username", "alice", goodPass, false},
	}
	for _, transport := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(transport+"/"+tt.name, func(t *testing.T) {
				relay, err := client(t, s, transport, tt.user, tt.pass).Allocate()
				if relay != nil {
					defer relay.Close()
				}
				if tt.ok && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !tt.ok && err == nil {
					t.Fatalf("allocated with %s credentials", tt.name)
				}
			})
		}
	}
}

func TestCredentialsShape(t *testing.T) {
	user, pass, err := Credentials("secret", "8:acs:alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expiry, who, ok := strings.Cut(user, ":")
	if !ok || who != "8_acs_alice" {
		t.Fatalf("username %q: want expiry:identity with the identity's colons replaced", user)
	}
	var at int64
	if _, err := fmt.Sscan(expiry, &at); err != nil {
		t.Fatalf("username %q: expiry: %v", user, err)
	}
	if d := time.Until(time.Unix(at, 0)); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Errorf("expires in %v, want 1h", d)
	}
	if pass == "" {
		t.Error("empty password")
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"name not IP", Config{Addr: "localhost:0"}, "not a name"},
		{"no port", Config{Addr: "127.0.0.1"}, "address"},
		{"bad relay IP", Config{Addr: "127.0.0.1:0", RelayIP: "example"}, "not an IP"},
		{"half range", Config{Addr: "127.0.0.1:0", RelayPortMin: 50000}, "both ends"},
		{"reversed range", Config{Addr: "127.0.0.1:0", RelayPortMin: 50010, RelayPortMax: 50000}, "above"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quiet()
			s, err := New(tt.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestCloseStopsEverything: Close ends the listeners, open TCP
// connections and allocations, and every goroutine reading them.
func TestCloseStopsEverything(t *testing.T) {
	// The clients' refresh timers are theirs, not the relay's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/pion/turn/v5/internal/client.(*PeriodicTimer).Start.func1"))
	s, err := New(Config{Addr: "127.0.0.1:0", Logger: quiet(), RelayPortMin: 40000, RelayPortMax: 60000})
	if err != nil {
		t.Fatal(err)
	}
	user, pass, _ := s.Credentials("alice")
	var clients []*turn.Client
	for _, transport := range []string{"udp", "tcp"} {
		var conn net.PacketConn
		if transport == "udp" {
			conn, _ = net.ListenPacket("udp4", "127.0.0.1:0")
		} else {
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			conn = turn.NewSTUNConn(c)
		}
		defer conn.Close()
		c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: s.Addr(), Username: user, Password: pass, Realm: s.Realm(), Conn: conn})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Allocate(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if n := s.Allocations(); n != 2 {
		t.Errorf("%d allocations, want 2", n)
	}
	if err := s.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.Close()
	}
}

// TestAllowPeer: the relay carries packets to the peers AllowPeer lets
// through and no others, refuses permissions for addresses it refuses on
// every port, and makes no TCP relays.
func TestAllowPeer(t *testing.T) {
	media := echoPeer(t)
	other := echoPeer(t)
	mediaPort := uint16(media.(*net.UDPAddr).Port)
	s := start(t, Config{AllowPeer: func(p netip.AddrPort) bool {
		return p.Addr() == netip.MustParseAddr("127.0.0.1") && (p.Port() == 0 || p.Port() == mediaPort)
	}})
	user, pass, _ := s.Credentials("alice")
	c := client(t, s, "udp", user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	echoes := func(peer net.Addr) bool {
		buf := make([]byte, 1500)
		for range 10 {
			if _, err := relay.WriteTo([]byte("ping"), peer); err != nil {
				t.Fatal(err)
			}
			_ = relay.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, _, err := relay.ReadFrom(buf); err == nil && string(buf[:n]) == "ping" {
				return true
			}
		}
		return false
	}
	if !echoes(media) {
		t.Error("nothing relayed to the allowed peer")
	}
	if echoes(other) {
		t.Error("relayed to a port AllowPeer refuses")
	}
	if err := c.CreatePermission(&net.UDPAddr{IP: net.IPv4(192, 0, 2, 99), Port: 9}); err == nil {
		t.Error("a permission for an address AllowPeer refuses was granted")
	}
	tc := client(t, s, "tcp", user, pass)
	if alloc, err := tc.AllocateTCP(); err == nil {
		alloc.Close()
		t.Error("a TCP relay was allocated")
	}
}

// TestExpiryKeepsAllocations: a credential that expires while its
// allocation lives still refreshes it and its permissions (a call keeps
// its relay past the TTL), but makes no new allocation.
func TestExpiryKeepsAllocations(t *testing.T) {
	s := start(t, Config{TTL: time.Second})
	peer := echoPeer(t)
	user, pass, err := s.Credentials("alice")
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, s, "udp", user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	expiry, _, _ := strings.Cut(user, ":")
	var at int64
	fmt.Sscan(expiry, &at)
	for time.Now().Unix() <= at { // until the credential has expired
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.CreatePermission(peer); err != nil {
		t.Errorf("an allocation's permission was refused once its credential expired: %v", err)
	}
	if _, err := client(t, s, "udp", user, pass).Allocate(); err == nil {
		t.Error("an expired credential made a new allocation")
	}
	// Past its expiry a credential must still be genuine: the key the
	// relay expects for a forged one is not the one its holder has.
	forged, forgedPass, _ := Credentials("another secret", "alice", -time.Minute)
	_, key, ok := authHandler("the relay's secret", nil)(&turn.RequestAttributes{Username: forged, Realm: "r", Method: stun.MethodRefresh})
	if ok && bytes.Equal(key, turn.GenerateAuthKey(forged, "r", forgedPass)) {
		t.Error("a forged credential would refresh an allocation")
	}
}

// TestRelayInMemory: with Config.Local, a relayed datagram for a peer
// registered there reaches it in memory, from the relay's address, and
// the peer's answer in memory reaches the client; a datagram the peer's
// receiver refuses goes through the kernel to the peer's socket, and its
// answer through the kernel comes back too, over UDP and over TCP.
func TestRelayInMemory(t *testing.T) {
	local := udpbatch.NewLocal()
	s := start(t, Config{Local: local})
	// The peer: a real socket that echoes what the kernel brings it,
	// registered with local, whose receiver answers "mem" datagrams in
	// memory and refuses the rest.
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddrPort(pc.LocalAddr().String())
	byKernel := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			byKernel <- string(buf[:n])
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	inMemory := make(chan netip.AddrPort, 16)
	unregister := local.Register(peer, func(b []byte, from netip.AddrPort) bool {
		if !bytes.HasPrefix(b, []byte("mem")) {
			return false
		}
		inMemory <- from
		// Answer on another goroutine, as a media leg's writer does.
		reply := append([]byte("re:"), b...)
		go func() {
			if !local.Send(reply, peer, from) {
				t.Errorf("the relay refused the peer's answer in memory")
			}
		}()
		return true
	})
	defer unregister()

	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			before := local.Stats()
			user, pass, _ := s.Credentials("alice")
			relay, err := client(t, s, transport, user, pass).Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			relayed := netip.MustParseAddrPort(relay.LocalAddr().String())
			exchange := func(send, want string) {
				t.Helper()
				buf := make([]byte, 1500)
				deadline := time.Now().Add(5 * time.Second)
				for {
					if _, err := relay.WriteTo([]byte(send), net.UDPAddrFromAddrPort(peer)); err != nil {
						t.Fatal(err)
					}
					_ = relay.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					n, from, err := relay.ReadFrom(buf)
					if err == nil {
						if string(buf[:n]) != want || from.String() != peer.String() {
							t.Fatalf("got %q from %v, want %q from %v", buf[:n], from, want, peer)
						}
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("no answer to %q: %v", send, err)
					}
				}
			}
			exchange("by kernel "+transport, "by kernel "+transport)
			if got := <-byKernel; got != "by kernel "+transport {
				t.Fatalf("the peer's socket got %q", got)
			}
			for len(byKernel) > 0 { // the first datagram's resends, if any
				<-byKernel
			}
			exchange("mem "+transport, "re:mem "+transport)
			if from := <-inMemory; from != relayed {
				t.Errorf("the peer got the datagram in memory from %v, want the relayed address %v", from, relayed)
			}
			select {
			case got := <-byKernel:
				t.Errorf("the peer's socket got %q, which went in memory", got)
			default:
			}
			// Over UDP the client's ChannelData teaches the relay its
			// channel, and the peer's answers go to the client without
			// the allocation's goroutine; over TCP they go through it.
			direct := s.Stats().ChannelsDirect
			for deadline := time.Now().Add(5 * time.Second); transport == "udp" && s.Stats().ChannelsDirect == direct; {
				if time.Now().After(deadline) {
					t.Fatal("no answer went to the client on its learned channel")
				}
				exchange("mem again", "re:mem again")
				<-inMemory
			}
			if transport == "tcp" && s.Stats().ChannelsDirect != direct {
				t.Error("an answer to a client over TCP went on a channel learned from the UDP listener")
			}
			// The receiver hands the datagram on before Local counts it:
			// the client can read the answer a moment before the count.
			after := local.Stats()
			for deadline := time.Now().Add(5 * time.Second); after.Carried-before.Carried < 2 && time.Now().Before(deadline); after = local.Stats() {
				time.Sleep(time.Millisecond)
			}
			if carried := after.Carried - before.Carried; carried < 2 {
				t.Errorf("carried %d datagrams in memory, want one each way", carried)
			}
			if after.Refused == before.Refused {
				t.Error("no datagram was refused, though one went through the kernel")
			}
		})
	}
}
