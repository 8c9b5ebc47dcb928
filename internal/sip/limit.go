package sip

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the limit on INVITEs from addresses that are no trunk's.
const (
	DefaultInviteBurst = 20
	DefaultInviteEvery = 100 * time.Millisecond
)

// sourceLimit limits INVITEs per source address: a burst, then one every
// interval. It forgets addresses that were quiet long enough to have their
// whole burst back, so a flood from many addresses cannot grow it for
// good.
type sourceLimit struct {
	burst int
	every time.Duration
	now   func() time.Time

	mu        sync.Mutex
	limiters  map[netip.Addr]*rate.Limiter
	lastPrune time.Time
}

func newSourceLimit(burst int, every time.Duration) *sourceLimit {
	if burst <= 0 {
		burst = DefaultInviteBurst
	}
	if every <= 0 {
		every = DefaultInviteEvery
	}
	return &sourceLimit{burst: burst, every: every, now: time.Now, limiters: map[netip.Addr]*rate.Limiter{}}
}

// allow takes one INVITE of addr's allowance, or reports that it has none.
func (l *sourceLimit) allow(addr netip.Addr) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if refill := time.Duration(l.burst) * l.every; now.Sub(l.lastPrune) > refill {
		for a, lim := range l.limiters {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.limiters, a)
			}
		}
		l.lastPrune = now
	}
	lim := l.limiters[addr]
	if lim == nil {
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.limiters[addr] = lim
	}
	return lim.AllowN(now, 1)
}
