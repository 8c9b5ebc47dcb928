// Package testnet gives tests a second host on the same machine: a Linux
// network namespace joined to the test's own by a veth pair, with an
// address of its own that is not loopback, so that what crosses the
// network (a browser at a remote address, a firewall that drops UDP) can
// be tested for real.
//
// It needs root and iproute2 (`ip`); a firewall needs nftables (`nft`).
// Without them a test that asks for a host is skipped with a message. It
// is for tests only: it runs `ip` and `nft`, and everything it makes is
// removed when the test ends.
package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Host is a network namespace with one interface, a veth whose other end
// is in the test's namespace.
type Host struct {
	// Name is the namespace's name, for `ip netns exec`.
	Name string
	// Addr is the host's address; Peer is the address of the test's own
	// end of the link, where the host reaches the test's servers.
	Addr, Peer netip.Addr
}

// NewHost makes a namespace and its link, and removes them when the test
// ends. It skips the test when not root or without `ip`.
func NewHost(t testing.TB) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: iproute2's ip is not installed (apt-get install -y iproute2)")
	}
	id := randomHex(t, 3)
	subnet, err := freeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{
		Name: "sbt-" + id,
		Peer: subnet.Addr().Next(),
		Addr: subnet.Addr().Next().Next(),
	}
	outer, inner := "sbt"+id+"a", "sbt"+id+"b"
	t.Cleanup(func() {
		// Deleting the namespace deletes the veth pair with it.
		_ = exec.Command("ip", "netns", "delete", h.Name).Run()
		_ = exec.Command("ip", "link", "delete", outer).Run()
	})
	bits := subnet.Bits()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", h.Name)
	run("link", "add", outer, "type", "veth", "peer", "name", inner)
	// IPv4 only: an IPv6 link-local address would arrive a moment after
	// the link comes up, and a browser on the host that sees it reports
	// the network changed (net::ERR_NETWORK_CHANGED) and fails a page load.
	for _, cmd := range []*exec.Cmd{
		exec.Command("ip", "netns", "exec", h.Name, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"),
		exec.Command("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/"+outer+"/disable_ipv6"),
	} {
		// A kernel without IPv6 has nothing to turn off.
		_ = cmd.Run()
	}
	for _, args := range [][]string{
		{"link", "set", inner, "netns", h.Name},
		{"addr", "add", fmt.Sprintf("%s/%d", h.Peer, bits), "dev", outer},
		{"link", "set", outer, "up"},
		{"-n", h.Name, "addr", "add", fmt.Sprintf("%s/%d", h.Addr, bits), "dev", inner},
		{"-n", h.Name, "link", "set", inner, "up"},
		{"-n", h.Name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return h
}

// freeSubnet picks a /24 in 10.233.0.0/16 that no route of this machine
// uses yet.
func freeSubnet() (netip.Prefix, error) {
	out, err := exec.Command("ip", "-4", "route", "show").Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list routes: %w", err)
	}
	for range 64 {
		var b [1]byte
		_, _ = rand.Read(b[:])
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 233, b[0], 0}), 24)
		if !strings.Contains(string(out), p.String()) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 in 10.233.0.0/16")
}

// Command runs name inside the host's namespace. Open file descriptors
// (ExtraFiles, pipes) pass through as they would to name itself.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// DropUDP makes the host's firewall drop every UDP datagram it sends to
// another host (loopback stays open), as a corporate firewall that lets
// only TCP out would. It skips the test without nftables.
func (h *Host) DropUDP(t testing.TB) {
	t.Helper()
	h.Drop(t, `oifname != "lo" meta l4proto udp`)
}

// DropTCPPort makes the host's firewall drop the TCP connections it opens
// to port on another host.
func (h *Host) DropTCPPort(t testing.TB, port uint16) {
	t.Helper()
	h.Drop(t, fmt.Sprintf(`oifname != "lo" tcp dport %d`, port))
}

// Drop adds a rule to the host's firewall that drops what it sends and
// match (an nftables match, as `meta l4proto udp`) selects. It skips the
// test without nftables.
func (h *Host) Drop(t testing.TB, match string) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("skipping: nftables' nft is not installed (apt-get install -y nftables)")
	}
	for _, rule := range []string{
		"add table inet sbtest",
		"add chain inet sbtest out { type filter hook output priority 0 ; policy accept ; }",
		"add rule inet sbtest out " + match + " drop",
	} {
		cmd := exec.Command("ip", append([]string{"netns", "exec", h.Name, "nft"}, strings.Fields(rule)...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", rule, err, out)
		}
	}
}

// Dial connects from inside the host's namespace, as a program on that
// host would: to its own loopback, or to another host.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var conn net.Conn
	err := h.inside(func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		conn = c
		return err
	})
	return conn, err
}

// inside runs f on a thread that has entered the namespace. A socket
// belongs to the namespace it was made in, whichever thread uses it later.
func (h *Host) inside(f func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open this thread's namespace: %w", err)
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + h.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open namespace %s: %w", h.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", h.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so Go retires it when this goroutine
		// ends instead of running other goroutines in the namespace.
		return fmt.Errorf("leave namespace %s: %w", h.Name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
