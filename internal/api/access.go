package api

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// RequestObserver is told of every answered request (the metrics). route
// is the route's pattern, as /api/calls/:id, never the request's path.
type RequestObserver interface {
	ObserveRequest(method, route string, status int, d time.Duration)
}

// accessContext carries what the access log learns while a request runs:
// authenticate notes the identity on it.
type accessContext struct {
	echo.Context
	identity string
}

// noteIdentity tells the access log who made the request, when it logs.
func noteIdentity(c echo.Context, s Session) {
	if ac, ok := c.(*accessContext); ok {
		ac.identity = s.Identifier.RawID()
	}
}

// access is the outermost middleware: it answers the handler's error
// itself (so it sees the status the client gets), then logs the request
// and tells the observer. The log names the route's pattern, never the
// path or the query, and no header: tokens (an Authorization header, an
// access_token query parameter) are never printed.
func (s *Server) access(next echo.HandlerFunc) echo.HandlerFunc {
	log, obs := s.cfg.AccessLog, s.cfg.Observer
	return func(c echo.Context) error {
		start := time.Now()
		ac := &accessContext{Context: c}
		if err := next(ac); err != nil {
			c.Error(err)
		}
		d := time.Since(start)
		req, resp := c.Request(), c.Response()
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := resp.Status
		if !resp.Committed && strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			status = http.StatusSwitchingProtocols // the upgrader wrote it on the hijacked connection
		}
		if obs != nil {
			obs.ObserveRequest(req.Method, route, status, d)
		}
		if log == nil {
			return nil
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelWarn
		}
		if !log.Enabled(req.Context(), level) {
			return nil
		}
		client := req.RemoteAddr
		if host, _, err := net.SplitHostPort(client); err == nil {
			client = host
		}
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", d),
			slog.Int64("bytes", resp.Size),
			slog.String("client", client),
		}
		if ac.identity != "" {
			attrs = append(attrs, slog.String("identity", ac.identity))
		}
		log.LogAttrs(req.Context(), level, "http request", attrs...)
		return nil
	}
}
