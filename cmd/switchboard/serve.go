package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/audio/rtp"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster"
	"github.com/switchboard/switchboard/internal/holdpolicy"
	"github.com/switchboard/switchboard/internal/recording"
	"github.com/switchboard/switchboard/internal/sip"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/turnserver"
	"github.com/switchboard/switchboard/web"
)

// Config is everything serve reads from flags and the environment.
type Config struct {
	Addr        string
	DatabaseURL string
	SpoolDir    string
	DataDir     string
	// PostgresWait bounds how long start waits for Postgres to answer; 0
	// waits until the switchboard is stopped.
	PostgresWait   time.Duration
	HistoryStore   string // "memory", or "" (see openStore)
	TrustedProxies []netip.Prefix
	AdminKey       string
	RingTimeout    time.Duration
	ResumeLastHeld bool
	AllowedOrigins []string
	Media          MediaConfig
	TLS            TLSConfig
	Limits         LimitsConfig
	Ops            OpsConfig
	OIDC           OIDCConfig
	SIP            SIPConfig
	Cluster        ClusterConfig
	Recording      RecordingConfig
	LogLevel       slog.Level
	LogJSON        bool
	// DrainGrace is how long a node that was told to stop waits for its
	// live calls to end, taking no new ones; 0 ends them at once.
	DrainGrace    time.Duration
	ShutdownGrace time.Duration
}

// parseServeFlags reads serve's flags; each falls back to an environment
// variable, and flags win.
func parseServeFlags(args []string, stderr io.Writer, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	cfg := Config{DatabaseURL: getenv("DATABASE_URL"), AdminKey: getenv("SWITCHBOARD_ADMIN_KEY")}
	fs.StringVar(&cfg.SpoolDir, "spool-dir", env("SWITCHBOARD_SPOOL_DIR", ""), "with Postgres, the journal's directory: every change is fsynced there before it is acknowledged, and waits there while Postgres is out of reach (env SWITCHBOARD_SPOOL_DIR; default: journal in --data-dir)")
	pgWait := fs.String("postgres-wait", env("SWITCHBOARD_POSTGRES_WAIT", "0"), "how long start waits for Postgres to answer, retrying; 0 waits until stopped (env SWITCHBOARD_POSTGRES_WAIT)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("SWITCHBOARD_DATA_DIR", DefaultDataDir), "where the switchboard keeps its files: the generated admin key, and call history without DATABASE_URL (env SWITCHBOARD_DATA_DIR)")
	fs.StringVar(&cfg.HistoryStore, "store", env("SWITCHBOARD_STORE", ""), "\"memory\" keeps call history in memory only, lost at exit (benchmarks); by default it goes to Postgres with DATABASE_URL, else to "+historyFile+" in --data-dir (env SWITCHBOARD_STORE)")
	fs.StringVar(&cfg.Addr, "addr", env("SWITCHBOARD_ADDR", "127.0.0.1:8080"), "address to listen on (env SWITCHBOARD_ADDR)")
	ring := fs.String("ring-timeout", env("SWITCHBOARD_RING_TIMEOUT", calls.DefaultRingTimeout.String()), "how long an incoming call rings before it ends with 480 (env SWITCHBOARD_RING_TIMEOUT)")
	fs.BoolVar(&cfg.ResumeLastHeld, "resume-last-held", env("SWITCHBOARD_RESUME_LAST_HELD", "") == "true", "when the active call ends, resume the call held last (env SWITCHBOARD_RESUME_LAST_HELD=true)")
	proxies := fs.String("trusted-proxies", env("SWITCHBOARD_TRUSTED_PROXIES", ""), "comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For names the client, for the limit on failed credentials (env SWITCHBOARD_TRUSTED_PROXIES)")
	origins := fs.String("allowed-origins", env("SWITCHBOARD_ALLOWED_ORIGINS", ""), "comma-separated browser origins, besides the server's own, that may open the event stream (env SWITCHBOARD_ALLOWED_ORIGINS)")
	level := fs.String("log-level", env("SWITCHBOARD_LOG_LEVEL", "info"), "debug, info, warn or error (env SWITCHBOARD_LOG_LEVEL)")
	fs.BoolVar(&cfg.LogJSON, "log-json", env("SWITCHBOARD_LOG_JSON", "") == "true", "log JSON lines instead of text (env SWITCHBOARD_LOG_JSON=true)")
	drain := fs.String("drain-grace", env("SWITCHBOARD_DRAIN_GRACE", "30s"), "at the first SIGTERM or SIGINT, how long the switchboard takes no new calls and waits for the live ones to end before it ends them (503/1); 0 ends them at once (env SWITCHBOARD_DRAIN_GRACE)")
	grace := fs.String("shutdown-grace", env("SWITCHBOARD_SHUTDOWN_GRACE", "10s"), "how long shutdown may take once the drain is over (env SWITCHBOARD_SHUTDOWN_GRACE)")
	finishMedia := mediaFlags(fs, &cfg.Media, env)
	finishTLS := tlsFlags(fs, &cfg.TLS, env)
	finishLimits := limitFlags(fs, &cfg.Limits, env)
	opsFlags(fs, &cfg.Ops, env)
	finishOIDC := oidcFlags(fs, &cfg.OIDC, env)
	finishSIP := sipFlags(fs, &cfg.SIP, env)
	finishCluster := clusterFlags(fs, &cfg.Cluster, env)
	finishRecording := recordingFlags(fs, &cfg.Recording, env)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	var err error
	if cfg.HistoryStore != "" && cfg.HistoryStore != "memory" {
		return cfg, fmt.Errorf("--store %q: the only choice is \"memory\" (leave it unset for Postgres or the SQLite file)", cfg.HistoryStore)
	}
	if cfg.PostgresWait, err = time.ParseDuration(*pgWait); err != nil || cfg.PostgresWait < 0 {
		return cfg, fmt.Errorf("--postgres-wait %q is not a duration of 0 or more", *pgWait)
	}
	if cfg.RingTimeout, err = time.ParseDuration(*ring); err != nil || cfg.RingTimeout <= 0 {
		return cfg, fmt.Errorf("--ring-timeout %q is not a positive duration", *ring)
	}
	if cfg.DrainGrace, err = time.ParseDuration(*drain); err != nil || cfg.DrainGrace < 0 {
		return cfg, fmt.Errorf("--drain-grace %q is not a duration of 0 or more", *drain)
	}
	if cfg.ShutdownGrace, err = time.ParseDuration(*grace); err != nil || cfg.ShutdownGrace <= 0 {
		return cfg, fmt.Errorf("--shutdown-grace %q is not a positive duration", *grace)
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return cfg, fmt.Errorf("--log-level %q: %w", *level, err)
	}
	if err := finishMedia(); err != nil {
		return cfg, err
	}
	if err := finishTLS(); err != nil {
		return cfg, err
	}
	if err := finishLimits(); err != nil {
		return cfg, err
	}
	if err := finishOIDC(); err != nil {
		return cfg, err
	}
	if err := finishSIP(); err != nil {
		return cfg, err
	}
	if err := finishCluster(); err != nil {
		return cfg, err
	}
	if err := finishRecording(); err != nil {
		return cfg, err
	}
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return cfg, fmt.Errorf("--trusted-proxies: %q is neither an address nor a CIDR prefix", p)
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		cfg.TrustedProxies = append(cfg.TrustedProxies, prefix.Masked())
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	return cfg, nil
}

// Main is the running service; main and the end-to-end tests share it.
type Main struct {
	Config Config
	Logger *slog.Logger
	// Stdout receives the generated admin key, once.
	Stdout io.Writer
	// Store, when set, is used instead of the store Config selects (tests).
	Store calls.Store

	// ACMEHTTPClient, when set, is the HTTP client of the ACME client
	// (tests: one that trusts a local ACME server).
	ACMEHTTPClient *http.Client

	// Addr is the address the server listens on, once Run returned.
	Addr string
	// HTTPAddr is the address of the plain HTTP listener that redirects
	// to HTTPS, once Run returned; empty when there is none.
	HTTPAddr string
	// DebugAddr is the debug listener's address (--debug-addr), once Run
	// returned; empty when there is none.
	DebugAddr string
	// SIPAddr is where SIP listens (--sip-addr), once Run returned; empty
	// when it does not.
	SIPAddr string

	store       calls.Store
	hub         *api.Hub
	switchboard *calls.Switchboard
	api         *api.Server
	http        *http.Server
	serveDone   chan error
	// redirect is the plain HTTP listener when HTTPS is on.
	redirect     *http.Server
	redirectDone chan error

	mixer     *audio.Mixer
	attacher  *rtc.Attacher
	engine    *rtc.Engine
	turn      *turnserver.Server // nil without --turn-addr
	ice       *iceDirectory
	stopMixer context.CancelFunc
	mixerDone chan error
	sip       *sip.Server    // nil without --sip-addr
	rtp       *rtp.Engine    // the phone calls' RTP legs; nil without --sip-addr
	phones    *sip.Later     // the switchboard's phone network, with --sip-addr
	cluster   *cluster.Node  // nil without --cluster
	peerCalls *peerCalls     // nil without --cluster
	events    *clusterEvents // nil without --cluster
	tokens    *clusterTokens // nil without --cluster
	closed    bool
	// ends holds the ends of a dead node's calls this node recovers
	// until the relay runs (with --cluster and Postgres).
	ends *recoveredEnds
	// recordings records calls (nil without a recordings directory).
	recordings *recording.Service
	// queues runs the contact-center queues (queues.go).
	queues *queues
}

// Run starts the service and returns once it listens.
func (m *Main) Run(ctx context.Context) error {
	log := m.Logger
	var https *httpsSetup
	if m.Config.TLS.On() {
		var err error
		if https, err = newHTTPS(m.Config.TLS, log, m.ACMEHTTPClient); err != nil {
			return err
		}
	}
	if err := m.adminKey(); err != nil {
		return err
	}
	if err := m.openStore(ctx); err != nil {
		return err
	}

	tokens := api.NewTokens(m.Config.AdminKey, nil)
	if err := tokens.Persist(ctx, m.store); err != nil {
		return err
	}

	m.hub = api.NewHub(log, 0)
	m.hub.SetLimits(m.Config.Limits.hubLimits())
	m.hub.SetEventLog(api.NewMemoryLog(m.Config.Limits.EventRetention, nil))
	info := buildInfo()
	metrics := m.newMetrics(info)
	mixer, err := m.newMixer()
	if err != nil {
		return err
	}
	m.mixer = mixer
	var phones calls.PhoneNetwork
	if m.Config.SIP.Addr != "" {
		m.phones = &sip.Later{}
		phones = m.phones
	}
	// The cluster before the switchboard: its calls to other nodes' identities
	// go through the peer network.
	if err := m.joinCluster(ctx); err != nil {
		return err
	}
	peers, err := m.startPeerCalls()
	if err != nil {
		return err
	}
	publisher, err := m.startRecording(ctx, metrics.Publisher(m.hub))
	if err != nil {
		return err
	}
	queueTransfers := &api.QueueTransfers{}  // bound once the queues run
	queueWake := api.NewQueueWake(publisher) // bound once the queues run
	publisher = queueWake
	sb, err := calls.New(calls.Config{
		Queues:      queueTransfers,
		Store:       m.store,
		Publisher:   publisher,
		Media:       m.mixer,
		Phones:      phones,
		Peers:       peers,
		Rooms:       m.roomClaims(),
		JoinWait:    peerJoinWait,
		NewID:       uuid.NewString,
		RingTimeout: m.Config.RingTimeout,
		Policy:      holdpolicy.Options{ResumeLastHeld: m.Config.ResumeLastHeld},
		Logger:      log,
	})
	if err != nil {
		return err
	}
	m.switchboard = sb
	if err := m.servePeerCalls(); err != nil {
		return err
	}
	if err := m.startMedia(); err != nil {
		return err
	}
	signIn, err := m.newSignIn()
	if err != nil {
		return err
	}
	if err := m.startClusterEvents(ctx); err != nil {
		return err
	}
	if err := m.startClusterTokens(ctx, tokens); err != nil {
		return err
	}
	if err := m.startQueues(ctx); err != nil {
		return err
	}
	queueEngine, queueSwitch := m.queueEngine()
	queueTransfers.Bind(queueEngine, queueSwitch)
	queueWake.Bind(queueEngine)
	queueWake.BindBoard(m.queueBoard())
	m.api = api.New(api.Config{
		Media:          m.attacher,
		ICE:            m.ice,
		Switchboard:    sb,
		Hub:            m.hub,
		Tokens:         tokens,
		Ready:          m.ready,
		Durable:        m.store.Durable,
		AllowedOrigins: m.Config.AllowedOrigins,
		TrustedProxies: m.Config.TrustedProxies,
		Console:        web.Console(),
		Logger:         log,
		Build:          info,
		Observer:       metrics,
		Metrics:        metrics.Handler(),
		MetricsPublic:  m.Config.Ops.MetricsPublic,
		AccessLog:      accessLog(m.Config.Ops, log),
		SignIn:         signIn,
		Numbers:        numberRoutes(m.store),
		Trunks:         m.trunkStatus(),
		Forward:        m.apiForwarder(),
		Peers:          m.peers(),
		Attach:         m.streamAttacher(),
		RemoteLog:      m.remoteLog(),
		Recordings:     m.recorder(),
		Queues:         queueEngine,
		QueueSwitch:    queueSwitch,
	})
	if err := m.serveForwarded(); err != nil {
		return err
	}
	if err := m.serveAttach(); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Addr, err)
	}
	m.Addr = ln.Addr().String()
	m.http = newHTTPServer(m.api.Handler(), m.Config.Limits, log)
	m.serveDone = make(chan error, 1)
	scheme := "http"
	if https != nil {
		scheme = "https"
		m.http.TLSConfig = https.tls
		go func() { m.serveDone <- m.http.ServeTLS(ln, "", "") }()
	} else {
		go func() { m.serveDone <- m.http.Serve(ln) }()
	}
	log.Info("switchboard listening", "addr", m.Addr, "scheme", scheme, "version", info.Version,
		"revision", info.Revision, "revision_time", info.Time, "modified", info.Modified)
	if https != nil && m.Config.TLS.HTTPAddr != "" {
		if err := m.startRedirect(https); err != nil {
			return err
		}
	}
	return m.startSIP(ctx)
}

// startRedirect starts the plain HTTP listener: redirects to HTTPS, and
// ACME HTTP-01 challenges.
func (m *Main) startRedirect(https *httpsSetup) error {
	ln, err := net.Listen("tcp", m.Config.TLS.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on --http-addr %s: %w", m.Config.TLS.HTTPAddr, err)
	}
	m.HTTPAddr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(m.Addr)
	m.redirect = newHTTPServer(https.wrapHTTP(redirectToHTTPS(port)), m.Config.Limits, m.Logger)
	m.redirectDone = make(chan error, 1)
	go func() { m.redirectDone <- m.redirect.Serve(ln) }()
	m.Logger.Info("redirecting plain HTTP to HTTPS", "addr", m.HTTPAddr)
	return nil
}

// historyFile is the SQLite history's file in --data-dir.
const historyFile = "history.db"

// openStore opens the store Config selects: memory when HistoryStore is
// "memory" (or with neither DatabaseURL nor DataDir, as in a Main built by
// hand), else Postgres when DATABASE_URL is set (migrated), else the
// SQLite file in the data directory; on both, the calls a crash left live
// are ended with 503 (on Postgres, in a cluster, only this node's: each
// node's calls record it).
func (m *Main) openStore(ctx context.Context) error {
	log := m.Logger
	switch {
	case m.Store != nil:
		m.store = m.Store
	case m.Config.HistoryStore == "memory" || (m.Config.DatabaseURL == "" && m.Config.DataDir == ""):
		m.store = store.NewMemory()
		log.Warn("call history is kept in memory only and lost when the switchboard stops")
	case m.Config.DatabaseURL == "":
		path := filepath.Join(m.Config.DataDir, historyFile)
		sq, err := store.OpenSQLite(ctx, path, store.SQLiteOptions{Logger: log})
		if err != nil {
			return fmt.Errorf("open the history file: %w", err)
		}
		m.store = sq
		n, err := sq.RecoverCrashed(ctx)
		if err != nil {
			return fmt.Errorf("end the calls a previous run left live: %w", err)
		}
		if n > 0 {
			log.Warn("ended the calls a previous run left live (the switchboard had stopped without ending them)", "calls", n, "code", 503)
		}
		log.Info("call history goes to an SQLite file (set DATABASE_URL for Postgres)", "path", sq.Path())
	default:
		pg, err := m.openPostgres(ctx)
		if err != nil {
			return fmt.Errorf("open the Postgres store: %w", err)
		}
		m.store = pg
		log.Info("call history goes to Postgres", "node", m.Config.Cluster.NodeID)
		// Only this node's calls: in a cluster, the others' are live on
		// their nodes.
		n, err := pg.RecoverCrashed(ctx)
		if err != nil {
			return fmt.Errorf("end the calls a previous run left live: %w", err)
		}
		if n > 0 {
			log.Warn("ended the calls a previous run left live (the switchboard had stopped without ending them)", "calls", n, "code", 503)
		}
	}
	return nil
}

// openPostgres opens the Postgres store, its journal in SpoolDir (default:
// journal in the data directory). While Postgres does not answer it tries
// again, with backoff, until ctx ends or PostgresWait has passed: a
// switchboard started beside its database (compose, a reboot) waits for
// it rather than failing, and the journal an earlier run left is written
// once it answers.
func (m *Main) openPostgres(ctx context.Context) (*store.Postgres, error) {
	spool := m.Config.SpoolDir
	if spool == "" && m.Config.DataDir != "" {
		spool = filepath.Join(m.Config.DataDir, "journal")
	}
	if m.Config.PostgresWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.Config.PostgresWait)
		defer cancel()
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		opts := store.PostgresOptions{Node: m.Config.Cluster.NodeID, SpoolDir: spool, Logger: m.Logger}
		if m.Config.Cluster.On() {
			opts.HeartbeatInterval, opts.AliveWithin = clusterHeartbeat, clusterAliveWithin
		}
		pg, err := store.OpenPostgres(ctx, m.Config.DatabaseURL, opts)
		if err == nil {
			return pg, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		m.Logger.Warn("Postgres does not answer yet; trying again", "err", err, "attempt", attempt, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// ready answers nil when the node takes new calls: it is not draining and
// its store is reachable (GET /readyz, so that a load balancer sends new
// work elsewhere while it drains).
func (m *Main) ready(ctx context.Context) error {
	if m.switchboard.Draining() {
		return calls.Errorf(calls.CodeDraining, "the switchboard is draining before it stops")
	}
	return m.store.Ready(ctx)
}

// Drain readies the node to stop: it takes no new calls (POST /api/calls,
// joins that would start a call, added participants and SIP INVITEs are
// refused with draining, /readyz answers 503), while everything on the
// calls it has goes on, and it waits until none is left or ctx ends (the
// drain grace, a second signal). Close then ends the calls left with 503/1.
// It answers ctx's error when calls were left.
func (m *Main) Drain(ctx context.Context) error {
	n, idle := m.switchboard.Drain()
	start := time.Now()
	attrs := []any{"calls", n}
	if d, ok := ctx.Deadline(); ok {
		attrs = append(attrs, "grace", time.Until(d).Round(time.Second))
	}
	m.Logger.Info("draining: taking no new calls, waiting for the live ones to end", attrs...)
	select {
	case <-idle:
		m.Logger.Info("drained: no call is left", "took", time.Since(start).Round(time.Millisecond))
		return nil
	case <-ctx.Done():
		if n, _ = m.switchboard.Drain(); n == 0 {
			m.Logger.Info("drained: no call is left", "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		m.Logger.Warn("drain over with calls left: they end with 503/1", "calls", n,
			"took", time.Since(start).Round(time.Millisecond), "why", context.Cause(ctx))
		return ctx.Err()
	}
}

// Close shuts down in the reverse order of start: no new requests (nor
// forwarded ones), every live call ended (503/1) with its events sent and
// the other nodes told, event connections closed, the cluster left (leases released), the store
// flushed.
// Calling it again does nothing.
func (m *Main) Close(ctx context.Context) error {
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	if m.redirect != nil {
		if err := m.redirect.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http redirect shutdown: %w", err))
		}
		if err := <-m.redirectDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("http redirect serve: %w", err))
		}
	}
	if m.http != nil {
		if err := m.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		if err := <-m.serveDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("http serve: %w", err))
		}
	}
	if m.cluster != nil {
		if err := m.cluster.StopServing(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.stopSIP(ctx); err != nil {
		errs = append(errs, err)
	}
	m.stopQueues()
	if m.switchboard != nil {
		if err := m.switchboard.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("end calls: %w", err))
		}
	}
	// After the calls ended (which stopped their recordings): the rest.
	if err := m.stopRecording(ctx); err != nil {
		errs = append(errs, err)
	}
	// After the calls ended: the far nodes hear how.
	if err := m.stopPeerCalls(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := m.stopMedia(); err != nil {
		errs = append(errs, err)
	}
	if m.api != nil {
		m.api.Close()
	}
	if err := m.stopClusterTokens(); err != nil {
		errs = append(errs, err)
	}
	if err := m.stopClusterEvents(ctx); err != nil {
		errs = append(errs, err)
	}
	if m.cluster != nil {
		// After the calls ended: the identities are free for other nodes.
		if err := m.cluster.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if m.store != nil {
		if err := m.store.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseServeFlags(args, stderr, getenv)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var handler slog.Handler = slog.NewTextHandler(stderr, opts)
	if cfg.LogJSON {
		handler = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(handler)
	if getenv("GOGC") == "" {
		debug.SetGCPercent(api.GCPercent)
		log.Debug("garbage collector", "GOGC", api.GCPercent)
	}
	m := &Main{Config: cfg, Logger: log, Stdout: stdout}
	if err := m.Run(ctx); err != nil {
		_ = m.Close(context.Background())
		return err
	}
	select {
	case <-ctx.Done():
		drainCtx, cancel := context.WithTimeoutCause(endNow(ctx), cfg.DrainGrace,
			fmt.Errorf("the drain grace (%s) passed", cfg.DrainGrace))
		_ = m.Drain(drainCtx)
		cancel()
		log.Info("shutting down", "grace", cfg.ShutdownGrace)
	case err := <-m.serveDone:
		m.serveDone <- err
		log.Error("http server stopped", "err", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	if err := m.Close(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("switchboard stopped")
	return nil
}

// DefaultDataDir is --data-dir's default, relative to the working
// directory.
const DefaultDataDir = "switchboard-data"

// MinAdminKeyLength is the shortest admin key serve accepts.
const MinAdminKeyLength = 32

// adminKeyFile is the generated admin key's file in --data-dir.
const adminKeyFile = "admin-key"

// adminKey checks SWITCHBOARD_ADMIN_KEY, or without one takes the key kept
// in --data-dir, generating and keeping it (and printing it once) on the
// first start, so that restarts keep the key and the tokens it signed.
func (m *Main) adminKey() error {
	if key := m.Config.AdminKey; key != "" {
		if len(key) < MinAdminKeyLength {
			return fmt.Errorf("SWITCHBOARD_ADMIN_KEY is %d characters long; it must be at least %d: "+
				"make one with `openssl rand -base64 32`, or unset it and the switchboard generates one and keeps it in %s",
				len(key), MinAdminKeyLength, filepath.Join(m.Config.DataDir, adminKeyFile))
		}
		return nil
	}
	if m.Config.Cluster.On() {
		// Every node signs and checks forwarded requests with a key derived
		// from the admin key, and admin requests may reach any node: a key
		// generated per node would split the cluster.
		return fmt.Errorf("--cluster needs SWITCHBOARD_ADMIN_KEY, the same on every node: " +
			"make one with `openssl rand -base64 32` and give it to each node (compose: switchboard.env)")
	}
	key, created, err := loadAdminKey(m.Config.DataDir)
	if err != nil {
		return err
	}
	m.Config.AdminKey = key
	path := filepath.Join(m.Config.DataDir, adminKeyFile)
	if created {
		fmt.Fprintf(m.Stdout, "SWITCHBOARD_ADMIN_KEY was not set; the admin key generated and kept in %s is:\n\n    %s\n\n", path, key)
		return nil
	}
	m.Logger.Info("SWITCHBOARD_ADMIN_KEY is not set: using the admin key kept in the data directory", "file", path)
	return nil
}

// loadAdminKey reads the admin key kept in dir, or generates one and
// writes it there (the directory 0700, the file 0600); created says which.
func loadAdminKey(dir string) (key string, created bool, err error) {
	if dir == "" {
		dir = DefaultDataDir
	}
	path := filepath.Join(dir, adminKeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		key = strings.TrimSpace(string(b))
		if len(key) < MinAdminKeyLength {
			return "", false, fmt.Errorf("the admin key in %s is %d characters long, shorter than %d: delete the file to have a new one generated", path, len(key), MinAdminKeyLength)
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read the admin key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, fmt.Errorf("generate admin key: %w", err)
	}
	key = base64.RawURLEncoding.EncodeToString(raw)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("create the data directory for the admin key: %w", err)
	}
	// O_EXCL: of two switchboards starting at once on one data directory,
	// the second fails here rather than overwrite the first's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("keep the admin key: %w", err)
	}
	_, err = f.WriteString(key + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", false, fmt.Errorf("keep the admin key: %w", err)
	}
	return key, true, nil
}

// numberRoutes is the store's number routes, when it keeps them (every
// store of package store does; a test's store may not).
func numberRoutes(st calls.Store) calls.NumberRoutes {
	if nr, ok := st.(calls.NumberRoutes); ok {
		return nr
	}
	return nil
}
