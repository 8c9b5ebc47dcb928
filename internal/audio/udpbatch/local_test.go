package udpbatch

import (
	"net/netip"
	"testing"
	"time"
)

// TestLocal: a datagram for a registered address goes to its receiver in
// memory, from the sender's address (a wildcard sender's: the
// destination's address); a refused one, or one for an address nobody
// registered or that was unregistered, is not carried (it goes through
// the kernel); a wildcard registration covers the host's loopback.
func TestLocal(t *testing.T) {
	l := NewLocal()
	type got struct {
		b    string
		from netip.AddrPort
	}
	var last got
	recv := func(b []byte, from netip.AddrPort) bool {
		last = got{string(b), from}
		return string(b) != "refuse"
	}
	exact := netip.MustParseAddrPort("127.0.0.1:5000")
	undo := l.Register(exact, recv)
	undoAny := l.Register(netip.MustParseAddrPort("0.0.0.0:6000"), recv)
	defer undoAny()
	sender := netip.MustParseAddrPort("127.0.0.1:7000")
	wildcardSender := netip.MustParseAddrPort("0.0.0.0:7001")
	for _, tt := range []struct {
		name     string
		b        string
		from, to netip.AddrPort
		carried  bool
		wantFrom netip.AddrPort
	}{
		{"registered", "a", sender, exact, true, sender},
		{"IPv4-mapped destination", "b", sender, netip.MustParseAddrPort("[::ffff:127.0.0.1]:5000"), true, sender},
		{"wildcard sender", "c", wildcardSender, exact, true, netip.MustParseAddrPort("127.0.0.1:7001")},
		{"wildcard registration", "d", sender, netip.MustParseAddrPort("127.0.0.1:6000"), true, sender},
		{"refused", "refuse", sender, exact, false, sender},
		{"nobody there", "e", sender, netip.MustParseAddrPort("127.0.0.1:5001"), false, netip.AddrPort{}},
		{"another host", "f", sender, netip.MustParseAddrPort("192.0.2.1:6000"), false, netip.AddrPort{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			last = got{}
			if carried := l.Send([]byte(tt.b), tt.from, tt.to); carried != tt.carried {
				t.Fatalf("carried %v, want %v", carried, tt.carried)
			}
			if tt.wantFrom.IsValid() && (last.b != tt.b || last.from != tt.wantFrom) {
				t.Errorf("the receiver got %q from %v, want %q from %v", last.b, last.from, tt.b, tt.wantFrom)
			}
		})
	}
	undo()
	if l.Send([]byte("g"), sender, exact) {
		t.Error("carried to an address after it was unregistered")
	}
	if s := l.Stats(); s.Carried != 4 || s.Refused != 1 {
		t.Errorf("stats %+v, want 4 carried and 1 refused", s)
	}
	var none *Local
	if none.Send([]byte("h"), sender, exact) {
		t.Error("a nil Local carried a datagram")
	}
}

// TestConnWritesInMemory: a Conn with a Local hands a write for a
// registered address to its receiver, from the Conn's own address, and
// sends the rest through the kernel.
func TestConnWritesInMemory(t *testing.T) {
	l := NewLocal()
	a, b := pair(t, "udp4", "127.0.0.1", nil)
	a.SetLocal(l)
	inMemory := make(chan netip.AddrPort, 1)
	undo := l.Register(b.AddrPort(), func(p []byte, from netip.AddrPort) bool {
		if string(p) != "mem" {
			return false
		}
		inMemory <- from
		return true
	})
	defer undo()
	if _, err := a.WriteToAddrPort([]byte("mem"), b.AddrPort()); err != nil {
		t.Fatal(err)
	}
	if from := <-inMemory; from != a.AddrPort() {
		t.Errorf("in memory from %v, want %v", from, a.AddrPort())
	}
	if _, err := a.WriteToAddrPort([]byte("kernel"), b.AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := b.ReadFromAddrPort(buf)
	if err != nil || string(buf[:n]) != "kernel" {
		t.Fatalf("read %q, %v; want the refused datagram through the kernel", buf[:n], err)
	}
	if s := l.Stats(); s.Carried != 1 || s.Refused != 1 {
		t.Errorf("stats %+v, want 1 carried and 1 refused", s)
	}
}
