package sip

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/calls"
)

var _ calls.PhoneNetwork = (*Server)(nil)

// ReasonNoTrunk ends a call to a phone number when no trunk takes it (none
// is configured, or all have prefixes and none matches).
var ReasonNoTrunk = calls.EndReason{Code: 503, SubCode: 0, Message: "no SIP trunk to call phone numbers through"}

// outbound is one call to the phone network, from its INVITE to its end.
type outbound struct {
	s      *Server
	call   calls.Call // the phone's call, as dialed
	line   *line
	leg    MediaLeg
	trunk  Trunk
	log    *slog.Logger
	dcs    *sipgo.DialogClientSession
	mu     sync.Mutex
	remote bool       // the phone sent BYE
	infoMu sync.Mutex // INFOs take turns
}

// Dial implements calls.PhoneNetwork: it sends the INVITE through the
// trunk for the number (the longest ;prefix= that matches, else the first
// trunk without prefixes), in the background.
func (s *Server) Dial(c calls.Call) calls.PhoneLine {
	ln := newLine()
	if !s.track() {
		go func() { _ = s.cfg.Switchboard.EndPhoneCall(context.Background(), c.ID, calls.ReasonShutdown) }()
		return ln
	}
	out := &outbound{s: s, call: c, line: ln,
		log: s.log.With("call_id", c.ID, "callee", c.AgentID, "caller_id", c.CallerInfo.Identifier.RawID())}
	go out.run()
	return ln
}

func (o *outbound) end(reason calls.EndReason) {
	_ = o.s.cfg.Switchboard.EndPhoneCall(context.Background(), o.call.ID, reason)
}

func (o *outbound) run() {
	s := o.s
	defer s.handlers.Done()
	number := strings.TrimPrefix(o.call.AgentID, "4:")
	trunk, ok := trunkFor(s.cfg.Trunks, number)
	if !ok {
		o.end(ReasonNoTrunk)
		return
	}
	o.trunk = trunk
	from := o.call.CallerInfo.Identifier.ID
	leg, err := s.cfg.Media.NewLeg(s.ctx, calls.PhoneNumber(number))
	if err != nil {
		o.log.Warn("sip: no media leg", "err", err)
		o.end(calls.EndReason{Code: 503, Message: "no media for the call"})
		return
	}
	o.leg = leg
	defer func() { _ = leg.Close() }()
	offer, err := leg.Offer()
	if err != nil {
		o.end(calls.EndReason{Code: 503, Message: "no media for the call"})
		return
	}
	leg.Attach(o.call)

	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: number, Host: o.trunk.Host, Port: o.trunk.Port})
	fromParams := sip.NewParams()
	fromParams.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&sip.FromHeader{DisplayName: o.call.CallerInfo.DisplayName,
		Address: sip.Uri{Scheme: "sip", User: from, Host: s.host}, Params: fromParams})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: number, Host: o.trunk.Host, Port: o.trunk.Port}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+from+"@"+s.host+">"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dua := s.udp
	if o.trunk.TCP {
		dua = s.tcp
		req.SetTransport("TCP")
	}
	dcs, err := dua.WriteInvite(ctx, req)
	if err != nil {
		o.log.Warn("sip: INVITE not sent", "err", err)
		o.end(calls.EndReason{Code: 503, Message: "the trunk cannot be reached"})
		return
	}
	o.dcs = dcs
	defer dcs.Close()
	answer := make(chan error, 1)
	go func() {
		answer <- dcs.WaitAnswer(ctx, sipgo.AnswerOptions{
			Username: o.trunk.User, Password: o.trunk.Password,
			OnResponse: o.progress,
		})
	}()
	for {
		select {
		case err := <-answer:
			if err != nil {
				o.failed(err)
				return
			}
			if o.answered() {
				o.live()
			}
			return
		case <-o.line.ready:
			if c, ok := o.line.next(); ok && c.State == calls.StateDisconnected {
				cancel() // WaitAnswer sends CANCEL
				if err := <-answer; err == nil {
					o.hangUp() // the answer crossed the CANCEL
				}
				return
			}
		case <-s.ctx.Done():
			o.end(calls.ReasonShutdown)
			cancel()
			if err := <-answer; err == nil {
				o.hangUp()
			}
			return
		}
	}
}

// progress reports provisional answers: 180 rings, 183 with SDP is early
// media.
func (o *outbound) progress(res *sip.Response) error {
	switch {
	case res.StatusCode == 180:
		_ = o.s.cfg.Switchboard.PhoneProgress(context.Background(), o.call.ID, false)
	case res.StatusCode == 183 && len(res.Body()) > 0:
		if err := o.leg.ApplyAnswer(res.Body()); err != nil {
			o.log.Info("sip: early media SDP refused", "err", err)
			return nil
		}
		_ = o.s.cfg.Switchboard.PhoneProgress(context.Background(), o.call.ID, true)
	}
	return nil
}

// failed ends the call with the final answer's status.
func (o *outbound) failed(err error) {
	var de *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &de):
		o.end(calls.EndReason{Code: de.Res.StatusCode, Message: "the phone network answered " + de.Res.StartLine()})
	case errors.Is(err, context.Canceled):
		// The switchboard ended the call; CANCEL was sent.
	case errors.Is(err, sip.ErrTransactionTimeout):
		o.end(calls.EndReason{Code: 408, Message: "the phone network did not answer"})
	default:
		o.log.Warn("sip: call out failed", "err", err)
		o.end(calls.EndReason{Code: 503, Message: "the call through the trunk failed"})
	}
}

// answered acknowledges the 200 and tells the switchboard; false when the
// call ended meanwhile (then BYE was sent).
func (o *outbound) answered() bool {
	if err := o.leg.ApplyAnswer(o.dcs.InviteResponse.Body()); err != nil {
		o.log.Info("sip: answer SDP refused", "err", err)
	}
	o.s.mu.Lock()
	o.s.outs[o.dcs.ID] = o // before the ACK: the phone may hang up as soon as it has it
	o.s.mu.Unlock()
	if err := o.dcs.Ack(context.Background()); err != nil {
		o.log.Warn("sip: ACK failed", "err", err)
	}
	if err := o.s.cfg.Switchboard.PhoneAnswered(context.Background(), o.call.ID); err != nil {
		o.hangUp()
		o.forget()
		return false
	}
	return true
}

func (o *outbound) forget() {
	o.s.mu.Lock()
	delete(o.s.outs, o.dcs.ID)
	o.s.mu.Unlock()
}

// live waits for the answered call's end: BYE from the phone, or the call
// ending in the switchboard, which sends BYE.
func (o *outbound) live() {
	defer o.forget()
	var hold holdTracker
	var mute muteTracker
	ev := eventsOf(o.leg)
	for {
		select {
		case <-ev.done:
			ev.done = nil
			o.end(calls.ReasonMediaLost)
		case d, ok := <-ev.digits:
			if !ok {
				ev.digits = nil
				continue
			}
			_ = o.s.cfg.Switchboard.PhoneTones(context.Background(), o.call.ID, string(d))
		case <-o.line.ready:
			c, ok := o.line.next()
			if !ok {
				continue
			}
			if c.State == calls.StateDisconnected {
				o.hangUp()
				return
			}
			if send, held := hold.change(c.State); send {
				if contact := o.dcs.InviteResponse.Contact(); contact != nil {
					sendHold(o.dcs, contact.Address, o.leg, held, o.log)
				}
			}
			mute.follow(c, o.leg)
		case tones := <-o.line.tones:
			if contact := o.dcs.InviteResponse.Contact(); contact != nil {
				sendTones(o.dcs, contact.Address, o.leg, tones, o.log)
			}
		case <-o.dcs.Context().Done():
			o.end(ReasonPhoneHungUp)
			return
		case <-o.s.ctx.Done():
			o.end(calls.ReasonShutdown)
			o.hangUp()
			return
		}
	}
}

func (o *outbound) hangUp() {
	o.mu.Lock()
	remote := o.remote
	o.mu.Unlock()
	if remote {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
	defer cancel()
	if err := o.dcs.Bye(ctx); err != nil {
		o.log.Warn("sip: BYE failed", "err", err)
	}
}

// outOf finds the call out a request from the phone belongs to.
func (s *Server) outOf(req *sip.Request) *outbound {
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outs[id]
}

// Later is the calls.PhoneNetwork of a switchboard made before its SIP
// server (the switchboard needs its network when it is made, the server
// needs the switchboard): Set hands it the server. A call dialed before
// that rings until the ring timeout ends it.
type Later struct {
	srv atomic.Pointer[Server]
}

var _ calls.PhoneNetwork = (*Later)(nil)

// Set makes srv the network.
func (l *Later) Set(srv *Server) { l.srv.Store(srv) }

// Trunks reports the server's trunks (Server.Trunks), none before there
// is a server.
func (l *Later) Trunks() []TrunkStatus {
	if srv := l.srv.Load(); srv != nil {
		return srv.Trunks()
	}
	return nil
}

// Dial dials through the server, once there is one.
func (l *Later) Dial(c calls.Call) calls.PhoneLine {
	if srv := l.srv.Load(); srv != nil {
		return srv.Dial(c)
	}
	return newLine()
}
