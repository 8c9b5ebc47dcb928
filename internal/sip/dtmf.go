package sip

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// infoTones reads the tones of a SIP INFO body: application/dtmf-relay
// ("Signal=5", one per line) or application/dtmf (the tone itself). It
// answers false for another type of body.
func infoTones(contentType string, body []byte) (string, bool) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	var tones strings.Builder
	switch ct {
	case "application/dtmf-relay":
		for _, line := range strings.Split(string(body), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				tones.WriteString(strings.ToUpper(strings.TrimSpace(v)))
			}
		}
	case "application/dtmf":
		tones.WriteString(strings.ToUpper(strings.TrimSpace(string(body))))
	default:
		return "", false
	}
	return tones.String(), true
}

// onInfo takes DTMF tones a phone sends by SIP INFO in a call's dialog.
func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	var (
		callID string
		order  *sync.Mutex
	)
	if in := s.dialogOf(req); in != nil {
		callID, order = in.callID, &in.infoMu
	} else if out := s.outOf(req); out != nil {
		callID, order = out.call.ID, &out.infoMu
	} else {
		respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	contentType := ""
	if h := req.ContentType(); h != nil {
		contentType = h.Value()
	}
	tones, ok := infoTones(contentType, req.Body())
	if !ok {
		respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		return
	}
	// Answered before the switchboard acts on the tones, so that the
	// answer is out before anything the tones cause (a BYE after *6); the
	// call's INFOs take turns, so their tones arrive in order although
	// each request has a goroutine of its own.
	order.Lock()
	defer order.Unlock()
	respond(tx, req, 200, "OK")
	_ = s.cfg.Switchboard.PhoneTones(context.Background(), callID, tones)
}

// toneSender is what a MediaLeg offers when it sends DTMF itself (RFC 4733
// telephone-events, as package audio/rtp's Leg does); without it tones go
// by SIP INFO.
type toneSender interface {
	SendDTMF(ctx context.Context, digit rune, d time.Duration) error
}

// toneDuration is how long each tone the switchboard sends lasts.
const toneDuration = 160 * time.Millisecond

// legEvents are what a MediaLeg may report by itself (package audio/rtp's
// Leg does): its end (silence past the timeout: the call ends 410) and the
// digits the phone sends (RFC 4733).
type legEvents struct {
	done   <-chan struct{}
	digits <-chan rune
}

func eventsOf(leg MediaLeg) legEvents {
	var ev legEvents
	if d, ok := leg.(interface{ Done() <-chan struct{} }); ok {
		ev.done = d.Done()
	}
	if d, ok := leg.(interface{ DTMF() <-chan rune }); ok {
		ev.digits = d.DTMF()
	}
	return ev
}

// sendTones sends tones to the phone: on the media leg when it can, else
// one SIP INFO (application/dtmf-relay) per tone, in order.
func sendTones(d dialog, target sip.Uri, leg MediaLeg, tones string, log *slog.Logger) {
	if ts, ok := leg.(toneSender); ok {
		for _, t := range tones {
			ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
			err := ts.SendDTMF(ctx, t, toneDuration)
			cancel()
			if err != nil {
				log.Warn("sip: DTMF on the media leg failed", "err", err)
				return
			}
		}
		return
	}
	for _, t := range tones {
		req := sip.NewRequest(sip.INFO, target)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		req.SetBody([]byte("Signal=" + string(t) + "\r\nDuration=160\r\n"))
		ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
		res, err := d.Do(ctx, req)
		cancel()
		if err != nil {
			log.Warn("sip: INFO failed", "err", err)
			return
		}
		if !res.IsSuccess() {
			log.Info("sip: INFO refused", "status", res.StatusCode)
			return
		}
	}
}
