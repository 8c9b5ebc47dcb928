package sip

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/internal/calls"
)

// directions are SDP's stream directions.
var directions = []string{"sendrecv", "sendonly", "recvonly", "inactive"}

// direction is an SDP's audio direction: the last direction attribute (a
// media-level one follows the session-level one), sendrecv when there is
// none; a connection address of 0.0.0.0 (RFC 2543 hold) is inactive.
func direction(sdp []byte) string {
	dir := "sendrecv"
	for _, line := range strings.Split(string(sdp), "\n") {
		line = strings.TrimSpace(line)
		if line == "c=IN IP4 0.0.0.0" {
			return "inactive"
		}
		for _, d := range directions {
			if line == "a="+d {
				dir = d
			}
		}
	}
	return dir
}

// holds reports whether an offer puts the call on hold: the far end will
// not receive (sendonly or inactive).
func holds(offer []byte) bool {
	d := direction(offer)
	return d == "sendonly" || d == "inactive"
}

// reinvite answers a re-INVITE in a call's dialog: the phone holds the
// call (sendonly, inactive) or resumes it (sendrecv); the media leg
// answers the new offer (its direction answers the offer's).
func (s *Server) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	var (
		leg    MediaLeg
		callID string
	)
	if in := s.dialogOf(req); in != nil {
		leg, callID = in.leg, in.callID
	} else if out := s.outOf(req); out != nil {
		leg, callID = out.leg, out.call.ID
	} else {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	offer := req.Body()
	if len(offer) == 0 {
		// No offer: the 200 carries the leg's, the ACK the answer.
		ours, err := leg.Offer()
		if err != nil {
			s.log.Warn("sip: no offer for an offerless re-INVITE", "call_id", callID, "err", err)
			respond(tx, req, 500, "Server Internal Error")
			return
		}
		s.awaitAnswer(req, pendingAnswer{leg: leg, callID: callID, offered: direction(ours)})
		s.respondSDP(tx, req, ours)
		return
	}
	answer, err := leg.Answer(offer)
	if err != nil {
		code, reason, headers := offerRefused(err)
		respond(tx, req, code, reason, headers...)
		return
	}
	if err := s.cfg.Switchboard.PhoneHold(context.Background(), callID, holds(offer)); err != nil {
		s.log.Info("sip: re-INVITE refused", "call_id", callID, "err", err)
		respond(tx, req, 491, "Request Pending")
		return
	}
	s.respondSDP(tx, req, answer)
}

// respondSDP answers a re-INVITE 200 with a description.
func (s *Server) respondSDP(tx sip.ServerTransaction, req *sip.Request, sdp []byte) {
	res := sip.NewResponseFromRequest(req, 200, "OK", sdp)
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	contact := s.udp.ContactHDR
	if strings.EqualFold(req.Transport(), "TCP") {
		contact = s.tcp.ContactHDR
	}
	res.AppendHeader(&contact)
	_ = tx.Respond(res)
}

// pendingAnswer is a re-INVITE whose 200 offered: its ACK answers.
type pendingAnswer struct {
	leg     MediaLeg
	callID  string
	offered string // the offer's direction
}

// ackWait bounds how long an offer in a 200 waits for its ACK (64*T1 of
// RFC 3261's default T1).
const ackWait = 32 * time.Second

// awaitAnswer notes that req's ACK carries the answer to p's offer.
func (s *Server) awaitAnswer(req *sip.Request, p pendingAnswer) {
	key, ok := ackKey(req)
	if !ok {
		return
	}
	s.mu.Lock()
	s.answers[key] = p
	s.mu.Unlock()
	time.AfterFunc(ackWait, func() {
		s.mu.Lock()
		delete(s.answers, key)
		s.mu.Unlock()
	})
}

// ackAnswer applies the answer an ACK carries to the offer of a
// re-INVITE's 200, if it is one's. An answer that says the phone will not
// receive, to an offer that let it, is the phone holding the call; one
// that lets it receive resumes it.
func (s *Server) ackAnswer(ack *sip.Request) {
	key, ok := ackKey(ack)
	if !ok {
		return
	}
	s.mu.Lock()
	p, ok := s.answers[key]
	delete(s.answers, key)
	s.mu.Unlock()
	if !ok {
		return
	}
	answer := ack.Body()
	if err := p.leg.ApplyAnswer(answer); err != nil {
		s.log.Info("sip: the answer in a re-INVITE's ACK was refused", "call_id", p.callID, "err", err)
		return
	}
	if p.offered != "sendrecv" {
		return // the answer cannot say whether the phone holds
	}
	if err := s.cfg.Switchboard.PhoneHold(context.Background(), p.callID, holds(answer)); err != nil {
		s.log.Info("sip: hold by an ACK's answer refused", "call_id", p.callID, "err", err)
	}
}

// ackKey names an INVITE transaction by what its ACK repeats: Call-ID and
// CSeq number.
func ackKey(req *sip.Request) (string, bool) {
	id, cseq := req.CallID(), req.CSeq()
	if id == nil || cseq == nil {
		return "", false
	}
	return id.Value() + " " + strconv.FormatUint(uint64(cseq.SeqNo), 10), true
}

// dialog is what a call's dialog (either side's) offers for requests in
// it.
type dialog interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	WriteRequest(req *sip.Request) error
}

// holdTimeout bounds a re-INVITE the switchboard sends.
const holdTimeout = 10 * time.Second

// sendHold tells the phone the agent held the call (a re-INVITE whose
// offer, the leg's own, is sendonly: the phone hears the hold audio and
// need not send) or resumed it (sendrecv).
func sendHold(d dialog, target sip.Uri, leg MediaLeg, held bool, log *slog.Logger) {
	leg.Hold(held)
	offer, err := leg.Offer()
	if err != nil {
		log.Warn("sip: no offer for the re-INVITE", "err", err)
		return
	}
	req := sip.NewRequest(sip.INVITE, target)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
	defer cancel()
	res, err := d.Do(ctx, req)
	if err != nil {
		log.Warn("sip: re-INVITE failed", "held", held, "err", err)
		return
	}
	if !res.IsSuccess() {
		log.Info("sip: re-INVITE refused", "held", held, "status", res.StatusCode)
		return
	}
	if err := leg.ApplyAnswer(res.Body()); err != nil {
		log.Info("sip: re-INVITE answer refused", "err", err)
	}
	ack := sip.NewRequest(sip.ACK, target)
	ack.AppendHeader(sip.NewHeader("Content-Length", "0"))
	if err := d.WriteRequest(ack); err != nil {
		log.Warn("sip: ACK of the re-INVITE failed", "err", err)
	}
}

// holdTracker turns the phone's call's states into re-INVITEs: the agent
// holding the call makes it RemoteHold for the phone.
type holdTracker struct{ held bool }

// change answers whether a re-INVITE is due for state c, and which.
func (h *holdTracker) change(state calls.CallState) (send, held bool) {
	switch {
	case state == calls.StateRemoteHold && !h.held:
		h.held = true
		return true, true
	case state == calls.StateConnected && h.held:
		h.held = false
		return true, false
	}
	return false, false
}
