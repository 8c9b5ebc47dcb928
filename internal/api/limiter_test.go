package api

import (
	"fmt"
	"net/http"
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
	tests := []struct{ remote, want string }{
		{"192.0.2.7:51234", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:51234", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"not an address", "not an address"},
	}
	for _, tt := range tests {
		if got := clientAddress(&http.Request{RemoteAddr: tt.remote}); got != tt.want {
			t.Errorf("clientAddress(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
