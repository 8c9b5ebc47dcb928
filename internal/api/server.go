package api

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/switchboard/switchboard/internal/buildinfo"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// Config is what the HTTP API needs.
type Config struct {
	Switchboard *calls.Switchboard
	Hub         *Hub
	Tokens      *Tokens
	// Ready answers nil when the store is reachable (GET /readyz), and a
	// *calls.Error with CodeDraining while the node drains.
	Ready func(ctx context.Context) error
	// Trunks, when set, reports the SIP trunks' states, which GET /readyz
	// lists to the admin key (informational: a failed trunk leaves the
	// switchboard ready). Nil, as without SIP: /readyz has no trunks.
	Trunks func() []TrunkStatus
	// Durable returns once the changes made so far are on disk (the
	// history store's Durable); every answer that may have changed a call
	// waits for it, at most DurableWait (default DefaultDurableWait), and
	// answers 503 unavailable when it fails. Nil: answers do not wait.
	Durable     func(ctx context.Context) error
	DurableWait time.Duration
	// AllowedOrigins are the browser origins (scheme://host:port) that may
	// open the event stream besides the server's own.
	AllowedOrigins []string
	// Console is the web console's files, served at /.
	Console fs.FS
	// Media attaches WebRTC audio endpoints (POST /api/media/webrtc); nil
	// answers 501.
	Media MediaAttacher
	// SignIn, when set, is the sign-in with a company account (OIDC):
	// GET /auth/login and GET /auth/callback, which mints a token for who
	// signed in; GET /api/auth/config tells the console it is there.
	SignIn SignIn
	// ICE lists the STUN and TURN servers a client's WebRTC agent may use
	// (GET /api/media/ice-servers); nil answers an empty list.
	ICE ICEServers
	// Numbers keeps the routes of phone numbers (PUT, GET and DELETE
	// /api/numbers, admin key); nil answers 501.
	Numbers calls.NumberRoutes
	Logger  *slog.Logger
	// Build is the running build, answered by GET /version.
	Build buildinfo.Info
	// AccessLog, when set, logs every answered request (method, route,
	// status, duration, client address, identity; never a token).
	AccessLog *slog.Logger
	// Observer, when set, is told of every answered request (metrics).
	Observer RequestObserver
	// Metrics, when set, serves GET /metrics, behind the admin key unless
	// MetricsPublic.
	Metrics       http.Handler
	MetricsPublic bool

	PingInterval  time.Duration // default 20 s
	WriteTimeout  time.Duration // default 5 s
	MaxFrameBytes int64         // default 4 KiB
	MaxBodyBytes  int64         // default 64 KiB

	// Failed admin keys and tokens allowed per client address: a burst,
	// then one every FailureEvery (defaults DefaultFailureBurst and
	// DefaultFailureEvery).
	FailureBurst int
	FailureEvery time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client, for the failure limit.
	TrustedProxies []netip.Prefix
	// Forward, when set, sends each authenticated request whose identity
	// another node owns to that node (a cluster); nil runs every request
	// here.
	Forward Forwarder
	// Peers, when set, adds the other nodes' calls and agents to every
	// supervisor's snapshot (a cluster; see Hub.DeliverRemote for their
	// events).
	Peers Peers
	// Attach, when set (with Forward), lets an identity open its event
	// stream on a node that does not own it: the stream is attached on the
	// owner (an agent's follows its events: Hub.FollowRemote). Nil: such a
	// stream answers 503 wrong_node.
	Attach Attacher
	// RemoteLog, when set (with Attach), replays an agent's event stream
	// opened with sinceSeq on a node that does not own it from the
	// cluster's event log; nil: such a stream starts from a snapshot.
	RemoteLog RemoteLog
	// Recordings, when set, records calls (recording.go); nil answers 501.
	Recordings Recorder
	// Queues, when set with QueueSwitch, runs the contact-center queues
	// (queues.go); nil answers 501.
	Queues      *queue.Engine
	QueueSwitch *QueueSwitch
}

// Server is the HTTP API: routes, auth and the event stream.
type Server struct {
	cfg      Config
	echo     *echo.Echo
	log      *slog.Logger
	upgrader websocket.Upgrader
	timings  wsTimings
	failures *failureLimiter
}

// GCPercent is the collector setting (GOGC) switchboard serve runs with
// when the environment sets none. A switch allocates about 10 KB between
// the HTTP request, the domain and its events; at Go's default of 100 the
// collector's marking and assists, and the pauses they add to requests,
// held the switching benchmark to about 15,000 switches/s with a p99 near
// 4 ms. At 200 the heap may grow to three times what is live instead of
// twice (1,000 agents holding 10 calls each keep about 75 MB live: some
// 225 MB instead of 150 MB) and the same benchmark makes over 20,000
// switches/s with a p99 under 3 ms (BENCHMARKS.md).
const GCPercent = 200

// New returns the API server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 20 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = 4 << 10
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.DurableWait <= 0 {
		cfg.DurableWait = DefaultDurableWait
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) error { return nil }
	}
	s := &Server{cfg: cfg, log: cfg.Logger, timings: wsTimings{ping: cfg.PingInterval, write: cfg.WriteTimeout},
		failures: newFailureLimiter(cfg.FailureBurst, cfg.FailureEvery, nil)}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferSize: 4096,
		CheckOrigin:     s.checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid_request","message":"websocket upgrade failed"}}`))
		},
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(cfg.Logger)
	if cfg.AccessLog != nil || cfg.Observer != nil {
		e.Use(s.access)
	}
	e.Use(middleware.BodyLimit(sizeString(cfg.MaxBodyBytes)))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true}))
	if cfg.Durable != nil {
		e.Use(s.durableAnswers)
	}
	s.echo = e
	s.routes()
	return s
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// routes registers every route in one readable place.
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/version", s.version)
	if s.cfg.Metrics != nil {
		e.GET("/metrics", s.metrics)
	}
	e.GET("/api/openapi.yaml", s.openAPI)
	e.GET("/api/auth/config", s.authConfig)
	e.GET(signInLoginPath, s.signInLogin)
	e.GET(signInCallbackPath, s.signInCallback)

	e.POST("/api/tokens", s.mintToken)
	e.DELETE("/api/tokens/:id", s.revokeToken)
	e.POST("/api/tokens/refresh", s.refreshToken)
	e.GET("/api/numbers", s.listNumbers)
	e.PUT("/api/numbers/:e164", s.putNumber)
	e.DELETE("/api/numbers/:e164", s.deleteNumber)
	e.POST("/api/queues", s.adminOrSupervisor(s.createQueue))
	e.GET("/api/queues", s.adminOrSupervisor(s.listQueues))
	e.GET("/api/queues/:name/stats", s.adminOrSupervisor(s.queueStats))

	api := &authed{g: e.Group("/api"), mw: s.authenticate}
	api.GET("/me", s.me)
	api.GET("/events", s.events)

	api.POST("/calls", s.startCall)
	api.POST("/calls/join", s.joinCall)
	api.GET("/calls", s.listCalls)
	api.GET("/calls/:id", s.getCall)
	api.POST("/calls/:id/hold", s.callAction(s.cfg.Switchboard.Hold))
	api.POST("/calls/:id/resume", s.callAction(s.cfg.Switchboard.Resume))
	api.POST("/calls/:id/mute", s.muteAction(s.cfg.Switchboard.SetMuted, true))
	api.POST("/calls/:id/unmute", s.muteAction(s.cfg.Switchboard.SetMuted, false))
	api.POST("/calls/:id/mute-incoming-audio", s.muteAction(s.cfg.Switchboard.SetIncomingAudioMuted, true))
	api.POST("/calls/:id/unmute-incoming-audio", s.muteAction(s.cfg.Switchboard.SetIncomingAudioMuted, false))
	api.POST("/calls/:id/participants", s.addParticipant)
	api.DELETE("/calls/:id/participants/:rawId", s.removeParticipant)
	api.POST("/calls/:id/participants/:rawId/mute", s.muteParticipant)
	api.POST("/calls/:id/mute-all", s.callAction(s.cfg.Switchboard.MuteAll))
	api.POST("/calls/:id/hangup", s.hangUp)
	api.POST("/calls/:id/dtmf", s.sendDTMF)
	api.POST("/calls/:id/monitor", s.monitor)
	api.DELETE("/calls/:id/monitor", s.stopMonitor)
	api.POST("/calls/:id/lobby/admit", s.lobbyAdmit)
	api.POST("/calls/:id/transfer", s.transfer)
	api.POST("/calls/:id/transfer/complete", s.callAction(s.cfg.Switchboard.CompleteTransfer))
	api.POST("/calls/:id/transfer/cancel", s.callAction(s.cfg.Switchboard.CancelTransfer))
	api.POST("/calls/:id/merge", s.merge)

	api.GET("/incoming-calls", s.listIncoming)
	api.POST("/incoming-calls/:id/accept", s.callAction(s.cfg.Switchboard.Accept))
	api.POST("/incoming-calls/:id/reject", s.callAction(s.cfg.Switchboard.Reject))

	api.GET("/history/calls", s.history)
	api.GET("/history/calls/:id", s.historyCall)
	s.recordingRoutes(api)
	api.GET("/history/agent-status", s.statusHistory)

	api.GET("/me/status", s.getMyStatus)
	api.PUT("/me/status", s.putMyStatus)
	api.PUT("/me/wrap-up", s.putWrapUpCode)
	api.GET("/agents/:rawId/status", s.getAgentStatus)
	api.PUT("/agents/:rawId/status", s.putAgentStatus)

	api.POST("/media/webrtc", s.mediaWebRTC)
	api.GET("/media/ice-servers", s.mediaICEServers)

	if s.cfg.Console != nil {
		e.GET(consoleRoute, consoleFiles(s.cfg.Console))
	}
}

// consoleRoute takes every path no other route takes, for the console.
const consoleRoute = "/*"

// consoleFiles serves the console, but no path under /api/: those are
// routes, and one that does not exist answers not_found in the error
// format (one that exists for other methods, method_not_allowed).
func consoleFiles(console fs.FS) echo.HandlerFunc {
	files := echo.WrapHandler(http.FileServerFS(console))
	return func(c echo.Context) error {
		if p := c.Request().URL.Path; isAPIPath(p) {
			if routedOtherwise(c.Echo(), p) {
				return calls.Errorf(codeMethodNotAllowed, "method not allowed on this route")
			}
			return errNoRoute
		}
		return files(c)
	}
}

// routedOtherwise reports whether a route other than the console's takes
// path for a method besides GET.
func routedOtherwise(e *echo.Echo, path string) bool {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		c := e.NewContext(nil, nil)
		e.Router().Find(m, path, c)
		if p := c.Path(); p != "" && p != consoleRoute {
			return true
		}
	}
	return false
}

func isAPIPath(p string) bool { return p == "/api" || strings.HasPrefix(p, "/api/") }

var errNoRoute = calls.Errorf(calls.CodeNotFound, "no such route")

// authed registers routes that need a token. (Group-level middleware would
// also run for unknown routes and hide 405s behind 404s.)
type authed struct {
	g  *echo.Group
	mw echo.MiddlewareFunc
}

func (a *authed) GET(path string, h echo.HandlerFunc)    { a.g.GET(path, h, a.mw) }
func (a *authed) POST(path string, h echo.HandlerFunc)   { a.g.POST(path, h, a.mw) }
func (a *authed) DELETE(path string, h echo.HandlerFunc) { a.g.DELETE(path, h, a.mw) }
func (a *authed) PUT(path string, h echo.HandlerFunc)    { a.g.PUT(path, h, a.mw) }

// sessionContext is the request's context once authenticate verified its
// token: it carries the session without echo's per-request map.
type sessionContext struct {
	echo.Context
	sess Session
	// owner, on the event stream only, is the node that owns the
	// identity when it is another (the stream attaches there: Attach).
	owner string
}

func sessionOf(c echo.Context) Session { return c.(*sessionContext).sess }

// authenticate verifies the bearer token (or, for the event stream only,
// the access_token query parameter a browser websocket must use). In a
// cluster it then runs the request here or forwards it to the node that
// owns its identity (route); a request forwarded here carries its session
// instead of a token (routeForwarded).
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if f := forwardedOf(c.Request().Context()); f != nil {
			noteIdentity(c, f.sess)
			return s.routeForwarded(c, f, next)
		}
		token := bearer(c.Request())
		if token == "" && c.Path() == "/api/events" {
			token = c.QueryParam("access_token")
		}
		if token == "" {
			return calls.Errorf(calls.CodeUnauthorized, "a bearer token is required")
		}
		if c.Path() == agentStatusPath && s.cfg.Tokens.IsAdmin(token) {
			return s.asAdmin(c, next)
		}
		var sess Session
		err := s.limitFailures(c, "token", func() error {
			var err error
			sess, err = s.cfg.Tokens.Verify(token)
			return err
		})
		if err != nil {
			return err
		}
		noteIdentity(c, sess)
		if s.cfg.Forward != nil {
			return s.route(c, sess, next)
		}
		return next(&sessionContext{Context: c, sess: sess})
	}
}

// limitFailures runs check, which verifies the credentials (what: "token"
// or "admin key") the request presents, unless its client address failed
// too often lately: then it answers 429 rate_limited with Retry-After
// without checking. A failed check counts against the address and is
// logged with the address, never with the credentials.
func (s *Server) limitFailures(c echo.Context, what string, check func() error) error {
	r := c.Request()
	client := clientAddress(r, s.cfg.TrustedProxies)
	if wait := s.failures.blocked(client); wait > 0 {
		s.log.Debug("credentials refused unchecked: too many failures", "client", client, "what", what,
			"method", r.Method, "path", r.URL.Path, "retry_after", wait.Round(time.Second))
		return rateLimited(c.Response(), wait)
	}
	err := check()
	if err == nil {
		return nil
	}
	blocked := s.failures.fail(client)
	s.log.Warn("authentication failed", "client", client, "what", what, "method", r.Method, "path", r.URL.Path,
		"rate_limited", blocked)
	return err
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// checkOrigin lets non-browser clients (no Origin), the server's own pages
// and the configured origins open the event stream.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			return true
		}
	}
	return false
}

// Close ends every event connection after what is queued was written.
func (s *Server) Close() { s.cfg.Hub.Close() }

func sizeString(n int64) string {
	switch {
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "M"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "K"
	}
	return strconv.FormatInt(n, 10)
}

var errTooLarge = calls.Errorf(codePayloadTooLarge, "the request body is too large")

// isTooLarge reports whether a body read failed on the size limit.
func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
