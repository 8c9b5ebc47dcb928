package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Registration is the state of the switchboard's registration with one
// trunk (;register on its URI).
type Registration struct {
	Trunk string
	// Until is when the carrier's last grant runs out; zero before the
	// first, after a failure, and once unregistered.
	Until time.Time
	// Registered counts the REGISTERs the carrier accepted.
	Registered int
	// LastError is why the last REGISTER failed, "" when it succeeded.
	LastError string
}

// Registering: the first retry after a failure waits minRetry, each next
// one twice as long, up to maxRetry; a REGISTER and its challenge have
// registerTimeout, and the unregistering on Close unregisterTimeout.
const (
	minRetry          = time.Second
	maxRetry          = 2 * time.Minute
	registerTimeout   = 40 * time.Second
	unregisterTimeout = 5 * time.Second
)

// registrar keeps one trunk's registration: it registers, refreshes at
// half of each grant, retries failures with a backoff, and unregisters
// when stopped. Its goroutine (run) is the only one that sends; Server
// owns it and stops it on Close.
type registrar struct {
	client  *sipgo.Client
	contact sip.ContactHeader
	trunk   Trunk
	log     *slog.Logger
	now     func() time.Time

	ctx  context.Context // ends on stop
	stop context.CancelFunc
	done chan struct{}

	// Only run touches these.
	callID  string
	fromTag string
	cseq    uint32
	expires time.Duration // what to ask for: the trunk's, or a carrier's Min-Expires

	mu    sync.Mutex
	state Registration
}

func newRegistrar(client *sipgo.Client, contact sip.ContactHeader, t Trunk, log *slog.Logger) *registrar {
	ctx, stop := context.WithCancel(context.Background())
	user := t.User
	if user == "" {
		user = contact.Address.User
	}
	contact.Address.User = user
	return &registrar{client: client, contact: contact, trunk: t, now: time.Now,
		log: log.With("trunk", t.Name), ctx: ctx, stop: stop, done: make(chan struct{}),
		callID: sip.GenerateTagN(24), fromTag: sip.GenerateTagN(16), expires: t.Register,
		state: Registration{Trunk: t.Name}}
}

// run registers until stopped, then unregisters.
func (r *registrar) run() {
	defer close(r.done)
	var backoff time.Duration
	for {
		wait, err := r.register()
		if err != nil {
			backoff = min(max(2*backoff, minRetry), maxRetry)
			wait = backoff
			r.failed(err)
			r.log.Warn("sip: registration failed", "err", err, "retry_in", wait)
		} else {
			backoff = 0
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-r.ctx.Done():
			timer.Stop()
			r.unregister()
			return
		}
	}
}

// register sends one REGISTER (answering a challenge, and a 423 with the
// carrier's Min-Expires) and answers when to refresh it.
func (r *registrar) register() (time.Duration, error) {
	ctx, cancel := context.WithTimeout(r.ctx, registerTimeout)
	defer cancel()
	for range 3 { // a 423 or two, then give up
		res, err := r.do(ctx, r.expires)
		if err != nil {
			return 0, err
		}
		switch {
		case res.StatusCode == sip.StatusIntervalToBrief:
			least, ok := minExpires(res)
			if !ok || least <= r.expires {
				return 0, fmt.Errorf("sip: REGISTER with %s: %s without a longer Min-Expires", r.trunk.Name, res.StartLine())
			}
			r.log.Info("sip: the carrier wants a longer registration", "min_expires", least)
			r.expires = least
			continue
		case res.IsSuccess():
			granted := grantedExpiry(res, r.expires)
			if granted <= 0 {
				return 0, fmt.Errorf("sip: REGISTER with %s: %s granted no time", r.trunk.Name, res.StartLine())
			}
			r.mu.Lock()
			first := r.state.Registered == 0
			r.state.Until, r.state.LastError = r.now().Add(granted), ""
			r.state.Registered++
			r.mu.Unlock()
			if first {
				r.log.Info("sip: registered with the trunk", "expires", granted)
			}
			return max(granted/2, minRetry), nil
		default:
			return 0, fmt.Errorf("sip: REGISTER with %s: %s", r.trunk.Name, res.StartLine())
		}
	}
	return 0, fmt.Errorf("sip: REGISTER with %s: the carrier kept answering 423", r.trunk.Name)
}

// unregister asks the carrier to forget the binding (Expires: 0), if
// there is one.
func (r *registrar) unregister() {
	r.mu.Lock()
	registered := !r.state.Until.IsZero() && r.state.Until.After(r.now())
	r.state.Until = time.Time{}
	r.mu.Unlock()
	if !registered {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), unregisterTimeout)
	defer cancel()
	res, err := r.do(ctx, 0)
	switch {
	case err != nil:
		r.log.Warn("sip: unregistering failed", "err", err)
	case !res.IsSuccess():
		r.log.Warn("sip: unregistering refused", "status", res.StatusCode)
	default:
		r.log.Info("sip: unregistered from the trunk")
	}
}

// do sends a REGISTER asking for expires, and answers a digest challenge
// with the trunk's credentials.
func (r *registrar) do(ctx context.Context, expires time.Duration) (*sip.Response, error) {
	req := r.request(expires)
	res, err := r.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("sip: REGISTER with %s: %w", r.trunk.Name, err)
	}
	if (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired) && r.trunk.User != "" {
		res, err = r.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: r.trunk.User, Password: r.trunk.Password})
		if cseq := req.CSeq(); cseq != nil {
			r.cseq = cseq.SeqNo // the challenge's answer took the next one
		}
		if err != nil {
			return nil, fmt.Errorf("sip: REGISTER with %s, answering the challenge: %w", r.trunk.Name, err)
		}
	}
	return res, nil
}

// request is the next REGISTER of the binding: one Call-ID, a CSeq that
// rises (RFC 3261 section 10.2).
func (r *registrar) request(expires time.Duration) *sip.Request {
	t := r.trunk
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: t.Host, Port: t.Port})
	aor := sip.Uri{Scheme: "sip", User: r.contact.Address.User, Host: t.Host}
	fromParams := sip.NewParams()
	fromParams.Add("tag", r.fromTag)
	req.AppendHeader(&sip.FromHeader{Address: aor, Params: fromParams})
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	callID := sip.CallIDHeader(r.callID)
	req.AppendHeader(&callID)
	r.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	contact := r.contact
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	if t.TCP {
		req.SetTransport("TCP")
	}
	return req
}

func (r *registrar) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state.Until, r.state.LastError = time.Time{}, err.Error()
}

func (r *registrar) snapshot() Registration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// minExpires reads a 423's Min-Expires.
func minExpires(res *sip.Response) (time.Duration, bool) {
	h := res.GetHeader("Min-Expires")
	if h == nil {
		return 0, false
	}
	sec, err := strconv.Atoi(strings.TrimSpace(h.Value()))
	if err != nil || sec <= 0 {
		return 0, false
	}
	return time.Duration(sec) * time.Second, true
}

// grantedExpiry is what a 200 to a REGISTER grants: the expires of its
// (first) Contact, else its Expires header, else what was asked for.
func grantedExpiry(res *sip.Response, asked time.Duration) time.Duration {
	if c := res.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if sec, err := strconv.Atoi(v); err == nil {
				return time.Duration(sec) * time.Second
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if sec, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			return time.Duration(sec) * time.Second
		}
	}
	return asked
}

// startRegistrations starts a registrar per trunk with ;register.
func (s *Server) startRegistrations() {
	for _, t := range s.cfg.Trunks {
		if t.Register <= 0 {
			continue
		}
		contact := s.udp.ContactHDR
		if t.TCP {
			contact = s.tcp.ContactHDR
		}
		r := newRegistrar(s.udp.Client, contact, t, s.log)
		s.regs = append(s.regs, r)
		go r.run()
	}
}

// stopRegistrations unregisters every registration, waiting for them
// until ctx ends.
func (s *Server) stopRegistrations(ctx context.Context) error {
	for _, r := range s.regs {
		r.stop()
	}
	for _, r := range s.regs {
		select {
		case <-r.done:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), errors.New("sip: unregistering did not finish"))
		}
	}
	return nil
}

// Registrations reports each registering trunk's state, in the order of
// the trunks.
func (s *Server) Registrations() []Registration {
	out := make([]Registration, 0, len(s.regs))
	for _, r := range s.regs {
		out = append(out, r.snapshot())
	}
	return out
}

// TrunkStatus is one trunk as an operator sees it (GET /readyz with the
// admin key).
type TrunkStatus struct {
	Name  string
	State string // one of the Trunk states below
	// Error is why the last REGISTER failed, with TrunkFailed.
	Error string
}

// The states of a trunk in TrunkStatus.
const (
	// TrunkStatic: the trunk has no ;register; there is nothing to keep.
	TrunkStatic = "static"
	// TrunkRegistering: the first REGISTER has had no answer yet.
	TrunkRegistering = "registering"
	// TrunkRegistered: the carrier's grant runs.
	TrunkRegistered = "registered"
	// TrunkFailed: the last REGISTER failed; it is retried with a backoff.
	TrunkFailed = "failed"
	// TrunkUnregistered: the carrier's grant ran out, or Close
	// unregistered.
	TrunkUnregistered = "unregistered"
)

// Trunks reports every trunk's state, in the order of the trunks.
func (s *Server) Trunks() []TrunkStatus {
	now := time.Now()
	out := make([]TrunkStatus, 0, len(s.cfg.Trunks))
	regs := s.regs
	for _, t := range s.cfg.Trunks {
		st := TrunkStatus{Name: t.Name, State: TrunkStatic}
		if t.Register > 0 && len(regs) > 0 {
			reg := regs[0].snapshot()
			regs = regs[1:]
			switch {
			case reg.LastError != "":
				st.State, st.Error = TrunkFailed, reg.LastError
			case reg.Until.After(now):
				st.State = TrunkRegistered
			case reg.Registered == 0:
				st.State = TrunkRegistering
			default:
				st.State = TrunkUnregistered
			}
		}
		out = append(out, st)
	}
	return out
}
