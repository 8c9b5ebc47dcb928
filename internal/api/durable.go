package api

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// DefaultDurableWait bounds how long an answer waits for its change to be
// on disk when Config.DurableWait is not set.
const DefaultDurableWait = 5 * time.Second

// recordsNothing are the routes that change something but record no call
// history (tokens keep their own store; media only attaches audio), so
// their answers need not wait for the history store.
var recordsNothing = map[string]bool{
	"/api/tokens":         true,
	"/api/tokens/:id":     true,
	"/api/tokens/refresh": true,
	"/api/media/webrtc":   true,
}

// durableAnswers holds back the answer of every request that may change a
// call until the history store says the change is on disk (Config.Durable),
// so that an acknowledged change survives a crash at any moment. When the
// store cannot say so within DurableWait, the answer is 503 unavailable
// instead: the change was made, but the client should look before it tries
// again. Reads, and failed requests, answer at once.
func (s *Server) durableAnswers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if recordsNothing[c.Path()] {
			return next(c)
		}
		res := c.Response()
		direct := res.Writer
		held := &heldAnswer{ResponseWriter: direct}
		res.Writer = held
		err := next(c)
		res.Writer = direct
		if err != nil || held.status >= http.StatusBadRequest || !res.Committed || held.forwarded {
			held.release()
			return err
		}
		ctx, cancel := context.WithTimeout(req.Context(), s.cfg.DurableWait)
		derr := s.cfg.Durable(ctx)
		cancel()
		if derr == nil {
			held.release()
			return nil
		}
		s.log.Warn("an answer waited too long for history to be on disk",
			"method", req.Method, "route", c.Path(), "status", held.status, "err", derr)
		res.Committed, res.Status, res.Size = false, http.StatusOK, 0
		h := res.Header()
		h.Del("Content-Length")
		h.Del("Location")
		return &calls.Error{Code: calls.CodeUnavailable, Op: "record the change",
			Message: "the change was made but is not yet safely recorded; look at the call before trying again", Err: derr}
	}
}

// heldAnswer keeps an answer's status and body until release sends them.
type heldAnswer struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	// forwarded says another node answered (a cluster's owner), and had
	// its own history store make the change durable first.
	forwarded bool
}

func (h *heldAnswer) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldAnswer) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

// Flush is a no-op: a held answer goes out whole, at release.
func (h *heldAnswer) Flush() {}

// release sends what was held.
func (h *heldAnswer) release() {
	if h.status == 0 {
		return
	}
	h.ResponseWriter.WriteHeader(h.status)
	if h.body.Len() > 0 {
		_, _ = h.ResponseWriter.Write(h.body.Bytes())
	}
}
