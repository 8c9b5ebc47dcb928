package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/internal/api"
)

// LimitsConfig bounds what clients may hold open: the HTTP server's
// timeouts and header size, and the number of event connections.
type LimitsConfig struct {
	// ReadHeaderTimeout is how long a client may take to send a request's
	// header, from the moment the connection is accepted or, on a kept-alive
	// connection, the request's first byte (default 10 s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout is how long a client may take to send a whole request,
	// body included (default 30 s). Event connections set their own read
	// deadlines once upgraded.
	ReadTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its next
	// request (default 120 s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (default 64 KiB).
	MaxHeaderBytes int

	// WSPerIdentity and WSTotal cap the open event connections, of one
	// identity and in all (flags; 0 in a Config built by hand is the
	// default).
	WSPerIdentity int
	WSTotal       int

	// EventRetention is how long and how many of each event stream's
	// recent events are kept, for a client that reconnects with sinceSeq
	// (0: api.DefaultRetention's).
	EventRetention api.Retention
}

// Defaults of LimitsConfig.
const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultIdleTimeout       = 120 * time.Second
	defaultMaxHeaderBytes    = 64 << 10
	defaultWSPerIdentity     = 8
	defaultWSTotal           = 10_000
)

// withDefaults fills what is zero with the defaults.
func (l LimitsConfig) withDefaults() LimitsConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, defaultReadHeaderTimeout)
	def(&l.ReadTimeout, defaultReadTimeout)
	def(&l.IdleTimeout, defaultIdleTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if l.WSPerIdentity <= 0 {
		l.WSPerIdentity = defaultWSPerIdentity
	}
	if l.WSTotal <= 0 {
		l.WSTotal = defaultWSTotal
	}
	return l
}

// hubLimits are the caps the event hub enforces.
func (l LimitsConfig) hubLimits() api.HubLimits {
	l = l.withDefaults()
	return api.HubLimits{PerIdentity: l.WSPerIdentity, Total: l.WSTotal}
}

// limitFlags registers the flags of the event connection caps; finish
// parses them.
func limitFlags(fs *flag.FlagSet, cfg *LimitsConfig, env func(name, def string) string) (finish func() error) {
	per := fs.String("max-websockets-per-identity", env("SWITCHBOARD_MAX_WEBSOCKETS_PER_IDENTITY", strconv.Itoa(defaultWSPerIdentity)), "how many event connections (websockets) one identity may hold open; past it GET /api/events answers 429 too_many_connections (env SWITCHBOARD_MAX_WEBSOCKETS_PER_IDENTITY)")
	total := fs.String("max-websockets", env("SWITCHBOARD_MAX_WEBSOCKETS", strconv.Itoa(defaultWSTotal)), "how many event connections (websockets) may be open in all; past it GET /api/events answers 503 unavailable (env SWITCHBOARD_MAX_WEBSOCKETS)")
	age := fs.String("event-retention", env("SWITCHBOARD_EVENT_RETENTION", api.DefaultRetention.MaxAge.String()), "how long each event stream's events are kept for clients that reconnect with GET /api/events?sinceSeq=N; a client away longer gets a fresh snapshot (env SWITCHBOARD_EVENT_RETENTION)")
	count := fs.String("event-retention-events", env("SWITCHBOARD_EVENT_RETENTION_EVENTS", strconv.Itoa(api.DefaultRetention.MaxEvents)), "how many of each event stream's events are kept for clients that reconnect (env SWITCHBOARD_EVENT_RETENTION_EVENTS)")
	return func() error {
		var err error
		if cfg.EventRetention.MaxAge, err = time.ParseDuration(*age); err != nil || cfg.EventRetention.MaxAge <= 0 {
			return fmt.Errorf("--event-retention %q is not a positive duration", *age)
		}
		if cfg.EventRetention.MaxEvents, err = strconv.Atoi(*count); err != nil || cfg.EventRetention.MaxEvents < 1 {
			return fmt.Errorf("--event-retention-events %q is not a positive number", *count)
		}
		if cfg.WSPerIdentity, err = strconv.Atoi(*per); err != nil || cfg.WSPerIdentity < 1 {
			return fmt.Errorf("--max-websockets-per-identity %q is not a positive number", *per)
		}
		if cfg.WSTotal, err = strconv.Atoi(*total); err != nil || cfg.WSTotal < 1 {
			return fmt.Errorf("--max-websockets %q is not a positive number", *total)
		}
		return nil
	}
}

// newHTTPServer is an http.Server for handler with the limits: every
// listener of serve (HTTP, HTTPS, the redirect to HTTPS) is one.
func newHTTPServer(handler http.Handler, l LimitsConfig, log *slog.Logger) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
