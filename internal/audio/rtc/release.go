package rtc

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"

	"github.com/switchboard/switchboard/internal/audio/udpbatch"
)

// Releasing the ICE agent. An answering leg on a shared port is ICE-lite:
// once its media takes the fast path (fastpath.go), all its agent still
// does is answer the peer's connectivity checks (consent, RFC 7675) and
// tell from what arrives whether the peer is still there. For that the
// agent keeps about six goroutines, a candidate per local address with an
// 8 KB read buffer, its own buffers and ICE-TCP's passive candidates:
// most of a leg's memory. So once the peer's media arrives on the fast
// path the leg lets the agent go, answers the routed peer's binding
// requests itself on the socket's reading goroutine, and checks every
// Config.KeepAlive when it last heard the peer, reporting disconnected
// and failed after Config.DisconnectedAfter and FailedAfter of silence,
// and connected again when the peer comes back. The cost: a released leg
// does not follow a peer that moves to another address (an ICE restart);
// its peer is then silent, and the leg fails as pion's agent would have.

// errReleased is a released leg's answer where its agent would be needed.
var errReleased = errors.New("rtc: the leg's ICE agent was released (its media takes the fast path)")

// releaseICELater releases the agent on a goroutine of the leg's (closing
// it waits for the agent's goroutines; the fast path calls this on a
// socket's reading goroutine), once.
func (l *Leg) releaseICELater() {
	if !l.releasing.CompareAndSwap(false, true) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.done.Add(1)
	go func() { defer l.done.Done(); l.releaseICE() }()
}

// releaseICE lets the agent go (see above); the leg's DTLS connection goes
// with it.
func (l *Leg) releaseICE() {
	agent := l.agent.Load()
	keys := l.keys.Load()
	if agent == nil || keys == nil {
		return
	}
	path := l.Path()
	l.releaseDTLS()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	// From here the agent's state changes are not the leg's (it reports
	// closed as it goes): the leg tells its own.
	l.released.Store(true)
	l.path = path
	l.liveState = ice.ConnectionStateConnected
	l.heard.Store(time.Now().UnixNano())
	l.alive = time.AfterFunc(l.engine.cfg.KeepAlive, l.checkAlive)
	l.pipe = nil
	// The descriptions were for setting up (the checks it answers need
	// the leg's own ICE credentials alone): their strings hold on to the
	// SDP they came from.
	l.remote = nil
	l.local.candidates = nil
	// The keys without the agent's transport: sending goes to the
	// socket alone (Leg.transmit).
	k := *keys
	k.conn = nil
	l.keys.Store(&k)
	l.agent.Store(nil)
	l.mu.Unlock()
	if err := agent.Close(); err != nil && !errors.Is(err, ice.ErrClosed) {
		l.engine.cfg.Logger.Debug("rtc: releasing the ICE agent", "err", err)
	}
}

// checkAlive reports the leg's state from when it last heard its peer;
// it runs every Config.KeepAlive until the leg closes.
func (l *Leg) checkAlive() {
	cfg := &l.engine.cfg
	silent := time.Since(time.Unix(0, l.heard.Load()))
	s := ice.ConnectionStateConnected
	switch {
	case silent >= cfg.FailedAfter:
		s = ice.ConnectionStateFailed
	case silent >= cfg.DisconnectedAfter:
		s = ice.ConnectionStateDisconnected
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	changed := s != l.liveState
	l.liveState = s
	f := l.onState
	l.alive.Reset(cfg.KeepAlive)
	l.mu.Unlock()
	if changed && f != nil {
		f(s)
	}
}

// answerCheck answers a released leg's peer's binding request (RFC 8445
// section 7.3, as ICE-lite: no checks of its own): one for the leg's
// credentials gets a success response with the peer's address, signed
// with the leg's password; anything else is dropped. It runs on the
// socket's reading goroutine.
func (l *Leg) answerCheck(b []byte, from netip.AddrPort, c *udpbatch.Conn) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if m.Decode() != nil || m.Type != stun.BindingRequest {
		return
	}
	var user stun.Username
	if user.GetFrom(m) != nil || !strings.HasPrefix(string(user), l.local.ufrag+":") {
		return
	}
	integrity := stun.NewShortTermIntegrity(l.local.pwd)
	if integrity.Check(m) != nil {
		return
	}
	l.heard.Store(time.Now().UnixNano())
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		integrity, stun.Fingerprint)
	if err != nil {
		return
	}
	if _, err := c.WriteToAddrPort(resp.Raw, from); err == nil {
		l.checks.Add(1)
	}
}
