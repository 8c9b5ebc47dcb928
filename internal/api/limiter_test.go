package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// The limiter forgets an address once its allowance is full again, so its
// memory is bounded by the addresses that failed lately.
func TestFailureLimiterForgets(t *testing.T) {
	now := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	l := newFailureLimiter(3, time.Second, func() time.Time { return now })
	for i := range 100 {
		l.fail(fmt.Sprintf("10.0.0.%d", i))
	}
	for range 3 {
		l.fail("10.0.1.1")
	}
	if wait := l.blocked("10.0.1.1"); wait <= 0 || wait > time.Second {
		t.Errorf("after the burst: wait %v, want up to 1 s", wait)
	}
	if wait := l.blocked("10.0.0.1"); wait != 0 {
		t.Errorf("one failure: wait %v, want none", wait)
	}
	if n := l.size(); n != 101 {
		t.Fatalf("%d addresses remembered, want 101", n)
	}
	now = now.Add(3 * time.Second) // every allowance is full again
	l.fail("10.0.2.1")
	if n := l.size(); n != 1 {
		t.Errorf("%d addresses remembered after they all refilled, want 1", n)
	}
	if wait := l.blocked("10.0.1.1"); wait != 0 {
		t.Errorf("after refilling: wait %v, want none", wait)
	}
}

func TestClientAddress(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("172.18.0.0/16"), netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"IPv4", "192.0.2.7:51234", nil, nil, "192.0.2.7"},
		{"IPv4 in IPv6", "[::ffff:192.0.2.7]:51234", nil, nil, "192.0.2.7"},
		{"IPv6: its /64", "[2001:db8:1:2:3:4:5:6]:443", nil, nil, "2001:db8:1:2::/64"},
		{"IPv6: the same /64", "[2001:db8:1:2:ffff::1]:443", nil, nil, "2001:db8:1:2::/64"},
		{"not an address", "not an address", nil, nil, "not an address"},
		{"X-Forwarded-For from an untrusted peer is ignored", "192.0.2.7:1", []string{"198.51.100.1"}, proxies, "192.0.2.7"},
		{"X-Forwarded-For ignored without trusted proxies", "172.18.0.3:1", []string{"198.51.100.1"}, nil, "172.18.0.3"},
		{"a trusted proxy's client", "172.18.0.3:1", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"the last untrusted hop, not what the client claims", "172.18.0.3:1", []string{"203.0.113.9, 198.51.100.1"}, proxies, "198.51.100.1"},
		{"through two trusted proxies", "127.0.0.1:1", []string{"203.0.113.9", "198.51.100.1, 172.18.0.9"}, proxies, "198.51.100.1"},
		{"a malformed hop stops the walk", "172.18.0.3:1", []string{"198.51.100.1, junk"}, proxies, "172.18.0.3"},
		{"a trusted proxy without the header", "172.18.0.3:1", nil, proxies, "172.18.0.3"},
	}
	for _, tt := range tests {
		r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientAddress(r, tt.trusted); got != tt.want {
			t.Errorf("%s: clientAddress = %q, want %q", tt.name, got, tt.want)
		}
	}
}
