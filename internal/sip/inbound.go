package sip

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/calls"
)

// ReasonPhoneHungUp is how a phone's own call ends when the phone sends BYE.
var ReasonPhoneHungUp = calls.EndReason{Code: 0, SubCode: 0, Message: "the phone hung up"}

// ReasonNoAck is how a phone's call ends when the phone never acknowledges
// the switchboard's 200 (RFC 3261 13.3.1.4: 64*T1 of retransmissions).
var ReasonNoAck = calls.EndReason{Code: 408, SubCode: 0, Message: "the phone did not acknowledge the answer"}

// ReasonBadAckAnswer ends a call whose ACK did not carry an acceptable
// answer to the switchboard's offer (a delayed-offer INVITE's).
var ReasonBadAckAnswer = calls.EndReason{Code: 488, SubCode: 0, Message: "the phone's answer in the ACK was refused"}

// byeTimeout bounds waiting for the answer to a BYE we send.
const byeTimeout = 5 * time.Second

// allowMethods is what the server answers in Allow headers.
const allowMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"

// line is a calls.PhoneLine: it queues the phone's call as the switchboard
// tells it, for the INVITE's handler to act on in order.
type line struct {
	mu      sync.Mutex
	pending []calls.Call
	ready   chan struct{} // a token when pending is not empty
	tones   chan string   // DTMF tones to send to the phone
}

var _ calls.ToneLine = (*line)(nil)

func newLine() *line { return &line{ready: make(chan struct{}, 1), tones: make(chan string, 16)} }

// SendTones queues tones for the phone (calls.ToneLine); past 16 requests
// waiting, more are dropped rather than block the switchboard.
func (l *line) SendTones(tones string) {
	select {
	case l.tones <- tones:
	default:
	}
}

// Update queues c; it never blocks.
func (l *line) Update(c calls.Call) {
	l.mu.Lock()
	if n := len(l.pending); n > 0 && l.pending[n-1].State == c.State {
		l.pending[n-1] = c // the same state again: keep the latest
	} else {
		l.pending = append(l.pending, c)
	}
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// next answers the oldest change queued, or false when there is none.
func (l *line) next() (calls.Call, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		return calls.Call{}, false
	}
	c := l.pending[0]
	l.pending = l.pending[1:]
	if len(l.pending) > 0 {
		select {
		case l.ready <- struct{}{}: // more to take: stay ready
		default:
		}
	}
	return c, true
}

// inbound is one call from the phone network, from its INVITE to its end.
type inbound struct {
	s      *Server
	ds     *sipgo.DialogServerSession
	line   *line
	leg    MediaLeg
	callID string
	log    *slog.Logger
	// delayed: the INVITE had no offer; the 200 offers, the ACK answers.
	delayed bool

	mu         sync.Mutex
	ackBody    []byte     // the body of the last ACK
	remoteDone bool       // the phone sent BYE
	infoMu     sync.Mutex // INFOs take turns
}

// drainRetryAfter is the Retry-After, in seconds, of the 503 that refuses
// a call while the switchboard drains: about as long as it takes to stop
// and come back.
const drainRetryAfter = "60"

// respond answers req outside any dialog.
func respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// onInvite handles an INVITE from its arrival to the call's end: the
// handler runs as long as the call does.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			s.reinvite(req, tx) // in a dialog: hold, resume, a new address
			return
		}
	}
	if !s.track() {
		respond(tx, req, 503, "Service Unavailable")
		return
	}
	defer s.handlers.Done()
	log := s.log.With("sip_call_id", callIDOf(req), "source", req.Source())
	if _, trunk := s.gate.trunkOf(req); !trunk {
		if a, ok := sourceAddr(req); !ok || !s.limit.allow(a) {
			log.Warn("sip: INVITE refused: too many from this address")
			respond(tx, req, 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
			return
		}
	}

	switch v, _ := s.gate.check(req); v {
	case challenge:
		respond(tx, req, 401, "Unauthorized", s.gate.challengeHeader())
		return
	case forbidden:
		log.Warn("sip: INVITE refused: not from a trunk and not authenticated")
		respond(tx, req, 403, "Forbidden")
		return
	}
	number, ok := calledNumber(req)
	if !ok {
		respond(tx, req, 404, "Not Found")
		return
	}
	route, err := s.cfg.Numbers.FindNumberRoute(s.ctx, number)
	switch {
	case calls.ErrorCode(err) == calls.CodeNotFound:
		log.Info("sip: INVITE to an unrouted number", "number", number)
		respond(tx, req, 404, "Not Found")
		return
	case err != nil:
		log.Warn("sip: number routes unavailable", "number", number, "err", err)
		respond(tx, req, 503, "Service Unavailable")
		return
	case route.Target == nil && route.Queue == "":
		log.Warn("sip: number route with neither target nor queue", "number", number)
		respond(tx, req, 404, "Not Found")
		return
	}
	caller, ok := callerOf(req)
	if !ok {
		respond(tx, req, 433, "Anonymity Disallowed")
		return
	}

	dua := s.udp
	if strings.EqualFold(req.Transport(), "TCP") {
		dua = s.tcp
	}
	ds, err := dua.ReadInvite(req, tx)
	if err != nil {
		respond(tx, req, 400, "Bad Request")
		return
	}
	defer ds.Close()
	_ = ds.Respond(100, "Trying", nil)

	leg, err := s.cfg.Media.NewLeg(s.ctx, caller.Identifier)
	if err != nil {
		log.Warn("sip: no media leg", "err", err)
		_ = ds.Respond(503, "Service Unavailable", nil)
		return
	}
	// The 200 carries the leg's answer, or its offer when the INVITE has
	// none (delayed offer: the ACK answers).
	delayed := len(req.Body()) == 0
	var answer []byte
	if delayed {
		answer, err = leg.Offer()
	} else {
		answer, err = leg.Answer(req.Body())
	}
	if err != nil {
		_ = leg.Close()
		log.Info("sip: offer refused", "err", err, "delayed_offer", delayed)
		code, reason, headers := offerRefused(err)
		_ = ds.Respond(code, reason, nil, headers...)
		return
	}
	in := &inbound{s: s, ds: ds, line: newLine(), leg: leg, log: log, delayed: delayed}
	defer func() { _ = leg.Close() }()
	call, err := s.start(caller, route, in.line)
	if err != nil {
		code, reason := 500, "Server Internal Error"
		var headers []sip.Header
		switch calls.ErrorCode(err) {
		case calls.CodeUnavailable:
			code, reason = 503, "Service Unavailable"
		case calls.CodeDraining:
			// RFC 3261 21.5.4: the carrier or proxy sends no new call here
			// for that long, and tries another node at once (RFC 3263).
			code, reason = 503, "Service Unavailable"
			headers = append(headers, sip.NewHeader("Retry-After", drainRetryAfter))
		case calls.CodeInvalidIdentifier, calls.CodeInvalidPhoneNumber, calls.CodeOperationNotSupportedForIdentity,
			calls.CodeAlternateCallerIDRequired, calls.CodeInvalidRequest, calls.CodeNotFound:
			code, reason = 404, "Not Found"
		}
		log.Warn("sip: the switchboard refused the call", "err", err)
		_ = ds.Respond(code, reason, nil, headers...)
		return
	}
	in.callID = call.ID
	leg.Attach(call)
	if route.Target != nil {
		in.log = log.With("call_id", call.ID, "agent_id", route.Target.RawID(), "caller", caller.Identifier.RawID())
	} else {
		in.log = log.With("call_id", call.ID, "queue", route.Queue, "caller", caller.Identifier.RawID())
	}
	s.mu.Lock()
	s.dialogs[ds.ID] = in
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.dialogs, ds.ID)
		s.mu.Unlock()
	}()
	in.log.Info("sip: call from the phone network", "number", number)
	if in.ring(answer) {
		in.live()
	}
}

// start starts the phone's call as its number is routed: ringing the
// route's target, or answered at once and waiting in the route's queue
// (the caller hears the queue music and position prompts over the call,
// as from an ACD; a ringing 180 with early media would leave the carrier
// unbilled and is cut by many carriers after a few minutes, while a queue
// wait may be longer).
func (s *Server) start(caller calls.CallerInfo, route calls.NumberRoute, l *line) (calls.Call, error) {
	if route.Target == nil {
		return s.cfg.Switchboard.StartPhoneQueueCall(s.ctx, calls.PhoneQueueRequest{Caller: caller, Queue: route.Queue, Line: l})
	}
	return s.cfg.Switchboard.StartPhoneCall(s.ctx, calls.PhoneCallRequest{Caller: caller, Callee: *route.Target, Line: l})
}

// ring answers the INVITE as the phone's call goes: 180 while it rings,
// 200 with the answer once it is answered (true), or the end reason's
// status when it ends first (false).
func (in *inbound) ring(answer []byte) bool {
	rang := false
	for {
		select {
		case <-in.line.ready:
			if c, ok := in.line.next(); ok {
				switch {
				case c.State == calls.StateDisconnected:
					code := endStatus(c.CallEndReason)
					in.log.Info("sip: call ended before an answer", "status", code)
					_ = in.ds.Respond(code, reasonPhrase(code), nil)
					return false
				case c.ConnectedTime != nil:
					if err := in.ds.RespondSDP(answer); err != nil {
						in.unacknowledged(err)
						return false
					}
					if in.delayed {
						return in.ackAnswered()
					}
					return true
				case c.State == calls.StateRinging && !rang:
					rang = true
					_ = in.ds.Respond(180, "Ringing", nil)
				}
			}
		case <-in.ds.Context().Done():
			// CANCEL (the transaction layer answered 487) or the
			// transaction's end.
			_ = in.s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, calls.ReasonCanceled)
			return false
		case <-in.s.ctx.Done():
			_ = in.s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, calls.ReasonShutdown)
			_ = in.ds.Respond(503, "Service Unavailable", nil)
			return false
		}
	}
}

// unacknowledged ends the call whose 200 was not acknowledged: the phone
// hung up first (BYE before its ACK, which onBye answered 200), CANCEL
// crossed the answer, or no ACK came in 64*T1.
func (in *inbound) unacknowledged(err error) {
	in.mu.Lock()
	remote := in.remoteDone
	in.mu.Unlock()
	reason := ReasonNoAck
	switch {
	case remote:
		reason = ReasonPhoneHungUp
		in.log.Info("sip: the phone hung up before it acknowledged the answer")
	case errors.Is(context.Cause(in.ds.Context()), sip.ErrTransactionCanceled):
		reason = calls.ReasonCanceled
		in.log.Info("sip: CANCEL crossed the answer")
	default:
		in.log.Warn("sip: the answer was not acknowledged", "err", err)
	}
	_ = in.s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, reason)
}

// ackAnswered applies the answer the ACK carried to a delayed offer; a
// missing or refused one ends the call with BYE (RFC 3261 section
// 13.3.1.4).
func (in *inbound) ackAnswered() bool {
	in.mu.Lock()
	answer := in.ackBody
	in.mu.Unlock()
	if err := in.leg.ApplyAnswer(answer); err != nil {
		in.log.Info("sip: the answer in the ACK was refused", "err", err)
		_ = in.s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, ReasonBadAckAnswer)
		in.hangUp()
		return false
	}
	return true
}

// live waits for the answered call's end: BYE from the phone (onBye ends
// the phone's call), or the call ending in the switchboard, which sends
// BYE.
func (in *inbound) live() {
	var hold holdTracker
	var mute muteTracker
	ev := eventsOf(in.leg)
	for {
		select {
		case <-ev.done:
			ev.done = nil
			_ = in.s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, calls.ReasonMediaLost)
		case d, ok := <-ev.digits:
			if !ok {
				ev.digits = nil
				continue
			}
			_ = in.s.cfg.Switchboard.PhoneTones(context.Background(), in.callID, string(d))
		case <-in.line.ready:
			if c, ok := in.line.next(); ok {
				if c.State == calls.StateDisconnected {
					in.hangUp()
					return
				}
				if send, held := hold.change(c.State); send {
					sendHold(in.ds, in.ds.InviteRequest.Contact().Address, in.leg, held, in.log)
				}
				mute.follow(c, in.leg)
			}
		case tones := <-in.line.tones:
			sendTones(in.ds, in.ds.InviteRequest.Contact().Address, in.leg, tones, in.log)
		case <-in.ds.Context().Done():
			// BYE from the phone: onBye ended the call; wait for its end.
			in.mu.Lock()
			remote := in.remoteDone
			in.mu.Unlock()
			if !remote {
				_ = in.s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, ReasonPhoneHungUp)
			}
			return
		case <-in.s.ctx.Done():
			_ = in.s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, calls.ReasonShutdown)
			in.hangUp()
			return
		}
	}
}

// hangUp sends BYE, unless the phone already did.
func (in *inbound) hangUp() {
	in.mu.Lock()
	remote := in.remoteDone
	in.mu.Unlock()
	if remote {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := in.ds.Bye(ctx); err != nil {
		in.log.Warn("sip: BYE failed", "err", err)
	}
}

func (s *Server) dialogOf(req *sip.Request) *inbound {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dialogs[id]
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	s.ackAnswer(req) // a re-INVITE's, when its 200 offered
	if in := s.dialogOf(req); in != nil {
		in.mu.Lock()
		in.ackBody = req.Body()
		in.mu.Unlock()
		_ = in.ds.ReadAck(req, tx)
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if out := s.outOf(req); out != nil {
		out.mu.Lock()
		out.remote = true
		out.mu.Unlock()
		if err := out.dcs.ReadBye(req, tx); err != nil {
			out.log.Warn("sip: BYE", "err", err)
		}
		return // live sees the dialog end and ends the call
	}
	in := s.dialogOf(req)
	if in == nil {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	// remoteDone before ReadBye ends the dialog: ring and live, woken by
	// its end, must see the phone hung up.
	in.setRemoteDone(true)
	if err := in.ds.ReadBye(req, tx); err != nil {
		if errors.Is(err, sipgo.ErrDialogInvalidCseq) {
			in.setRemoteDone(false) // not this dialog's BYE: it goes on
			respond(tx, req, 500, "Server Internal Error")
			return
		}
		in.log.Warn("sip: BYE", "err", err)
	}
	_ = s.cfg.Switchboard.EndPhoneCall(context.Background(), in.callID, ReasonPhoneHungUp)
}

func (in *inbound) setRemoteDone(done bool) {
	in.mu.Lock()
	in.remoteDone = done
	in.mu.Unlock()
}

// onCancel answers a CANCEL that matched no INVITE in progress (the
// transaction layer answers the ones that do, with 200 and 487).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 200, "OK", sip.NewHeader("Allow", allowMethods), sip.NewHeader("Accept", "application/sdp"))
}

// onNoRoute answers any other method: 405 with what is allowMethods.
func (s *Server) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	respond(tx, req, 405, "Method Not Allowed", sip.NewHeader("Allow", allowMethods))
}

// offerRefused is the answer to an offer a media leg refused: 400 for one
// that is not SDP, else 488 (no PCMU).
func offerRefused(err error) (int, string, []sip.Header) {
	if errors.Is(err, ErrBadSDP) {
		return 400, "Bad Request", []sip.Header{sip.NewHeader("Warning", `399 switchboard "the offer is not valid SDP"`)}
	}
	return 488, "Not Acceptable Here", []sip.Header{sip.NewHeader("Warning", `304 switchboard "PCMU only"`)}
}

// endStatus is the SIP status an unanswered call ends with: its end
// reason's code when it is one, else 480.
func endStatus(r *calls.EndReason) int {
	if r != nil && r.Code >= 300 && r.Code < 700 {
		return r.Code
	}
	return 480
}

// reasonPhrase is the usual phrase of a status.
func reasonPhrase(code int) string {
	switch code {
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 410:
		return "Gone"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Call Ended"
}

func callIDOf(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}
