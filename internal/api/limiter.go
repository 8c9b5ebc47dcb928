package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard/switchboard/internal/calls"
)

// Failed credentials: each client address may present a wrong admin key or
// token FailureBurst times in a row; after that one more failure is allowed
// every FailureEvery. Past the limit every request with credentials from
// that address, right or wrong, answers 429 rate_limited with Retry-After
// until the allowance has grown back, so guessing gets no faster by
// guessing right. Successful requests use none of the allowance.
const (
	DefaultFailureBurst = 10
	DefaultFailureEvery = 6 * time.Second
)

const codeRateLimited calls.Code = "rate_limited"

// maxLimited bounds how many client addresses the limiter remembers.
const maxLimited = 1 << 16

// failureLimiter counts failed credentials per client address. An address
// whose allowance is full again is forgotten (it would start full anyway),
// so memory stays bounded by the addresses that failed recently.
type failureLimiter struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu        sync.Mutex
	clients   map[string]*rate.Limiter
	lastSweep time.Time
}

func newFailureLimiter(burst int, every time.Duration, now func() time.Time) *failureLimiter {
	if burst <= 0 {
		burst = DefaultFailureBurst
	}
	if every <= 0 {
		every = DefaultFailureEvery
	}
	if now == nil {
		now = time.Now
	}
	return &failureLimiter{every: every, burst: burst, now: now, clients: map[string]*rate.Limiter{}}
}

// blocked answers how long the client must wait before it may try again,
// or 0 when it may try now.
func (l *failureLimiter) blocked(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.clients[client]
	if lim == nil {
		return 0
	}
	missing := 1 - lim.TokensAt(l.now())
	if missing <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(missing * float64(l.every)))
}

// fail counts a failure of the client; it reports whether the client is
// now past the limit.
func (l *failureLimiter) fail(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	lim := l.clients[client]
	if lim == nil {
		if len(l.clients) >= maxLimited {
			clear(l.clients) // only under a flood from very many addresses
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.clients[client] = lim
	}
	lim.AllowN(now, 1)
	return lim.TokensAt(now) < 1
}

// sweep forgets, at most once per refill period, the clients whose
// allowance is full again. The caller holds mu.
func (l *failureLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.every {
		return
	}
	l.lastSweep = now
	for client, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, client)
		}
	}
}

func (l *failureLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// clientAddress is who a request is limited as: the connection's remote
// IP address, and for IPv6 its /64 network (one host usually has all of
// it). When the connection comes from a trusted proxy, the client is the
// last address X-Forwarded-For names that is not a trusted proxy itself.
func clientAddress(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if isTrusted(ip, trusted) {
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			ip = hop.Unmap()
			if !isTrusted(ip, trusted) {
				break
			}
		}
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// rateLimited is the answer past the limit; Retry-After is set besides.
func rateLimited(w http.ResponseWriter, wait time.Duration) error {
	secs := int64(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	return calls.Errorf(codeRateLimited, "too many failed attempts from this address: retry in %d s", max(secs, 1))
}
