package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
)

// loadgenConfig is what `switchboard loadgen` reads from its flags.
type loadgenConfig struct {
	base, adminKey, call, prefix, statsURL string
	cpuProfile, caCert                     string
	legs, setup, senders, sockets          int
	ramp, warmup, duration                 time.Duration
	// setupTimeout bounds one caller's set-up (attach, ICE and DTLS, the
	// call); setupLimit the whole set-up phase.
	setupTimeout, setupLimit time.Duration
	jsonOut                  bool
	relay                    bool
}

// LoadgenWindow is what the load generator measured between its "window
// start" and "window end" lines: the steady state, every leg connected.
type LoadgenWindow struct {
	Seconds float64 `json:"seconds"`
	// Sent and Received are RTP packets the callers sent to the server and
	// got from it; Lost counts gaps in what they got.
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Lost     uint64 `json:"lost"`
	// Server is the difference of the server's GET /debug/media over the
	// window, when --stats-url is set.
	Server *MediaStats `json:"server,omitempty"`
}

// LoadgenSummary is the load generator's report (one JSON line with --json).
// Every run ends with one, whatever went wrong.
type LoadgenSummary struct {
	Legs      int `json:"legs"`
	Connected int `json:"connected"`
	// Failed counts the callers that did not set up (Legs is Connected
	// plus Failed); Failures, how many failed for each reason.
	Failed   int            `json:"failed"`
	Failures map[string]int `json:"failures,omitempty"`
	Setup    float64        `json:"setupSec"` // the first leg's start to the last's call
	Window   LoadgenWindow  `json:"window"`
	// Total is every packet since the first leg connected.
	Total LoadgenWindow `json:"total"`
	// Interrupted tells that the run was stopped (a signal) before its
	// window ended: Window and Total cover what was measured.
	Interrupted bool `json:"interrupted,omitempty"`
}

// loadgen loads the media plane: many lightweight pion callers, each
// attached as its own identity's WebRTC endpoint and in a call (by default
// to the echo bot, so media goes both ways through the mixer), each sending
// PCMU at 50 packets/s and counting what comes back. It prints "window
// start" once every leg has connected and warmed up, "window end" after
// --duration, then a summary.
func loadgen(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgenConfig
	fs.StringVar(&cfg.base, "url", serverURL(getenv), urlUsage)
	fs.StringVar(&cfg.adminKey, "admin-key", getenv("SWITCHBOARD_ADMIN_KEY"), "the server's admin key, to mint the callers' tokens (env SWITCHBOARD_ADMIN_KEY)")
	fs.IntVar(&cfg.legs, "legs", 100, "how many callers (WebRTC legs)")
	fs.DurationVar(&cfg.ramp, "ramp", 10*time.Second, "spread the callers' connections over this long")
	fs.IntVar(&cfg.setup, "setup", 32, "at most this many callers connecting at once (a caller takes about 200 ms to attach, connect and call, mostly waiting: 8 at a time set up at most about 37 a second)")
	fs.DurationVar(&cfg.setupTimeout, "setup-timeout", 20*time.Second, "a caller not attached, connected and in its call after this long counts as failed")
	fs.DurationVar(&cfg.setupLimit, "setup-limit", 0, "end the set-up phase after this long, counting the callers not yet set up as failed (default: twice --ramp plus a minute)")
	fs.DurationVar(&cfg.warmup, "warmup", 3*time.Second, "after the last caller connects, wait this long before the measured window")
	fs.DurationVar(&cfg.duration, "duration", 20*time.Second, "the measured window")
	fs.StringVar(&cfg.call, "call", calls.EchoBot.RawID(), "each caller calls this raw id; empty: attach only, no call")
	fs.StringVar(&cfg.prefix, "prefix", "load", "callers are users <prefix>1, <prefix>2...")
	fs.StringVar(&cfg.statsURL, "stats-url", "", "the server's debug listener (serve --debug-addr), as http://127.0.0.1:6060: report its media stats")
	fs.IntVar(&cfg.senders, "senders", runtime.GOMAXPROCS(0), "sender goroutines")
	fs.IntVar(&cfg.sockets, "sockets", 0, "share this many UDP ports among the callers, reading and writing in batches; 0 gives each caller sockets of its own. Callers on one port must reach the server on different ports: serve with --udp-port over at least legs/sockets ports, or with a socket per leg")
	caCertFlag(fs, &cfg.caCert, getenv)
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the summary as one JSON line")
	fs.BoolVar(&cfg.relay, "relay", false, "callers send their media through the switchboard's TURN relay (serve --turn-addr) only")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the load generator's own CPU profile over the measured window to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case cfg.adminKey == "":
		return errors.New("loadgen needs the server's admin key: set SWITCHBOARD_ADMIN_KEY or --admin-key")
	case cfg.legs <= 0 || cfg.setup <= 0 || cfg.senders <= 0:
		return errors.New("--legs, --setup and --senders must be positive")
	case cfg.sockets < 0:
		return errors.New("--sockets must not be negative")
	case cfg.duration <= 0 || cfg.ramp < 0 || cfg.warmup < 0:
		return errors.New("--duration must be positive, --ramp and --warmup not negative")
	case cfg.setupTimeout <= 0 || cfg.setupLimit < 0:
		return errors.New("--setup-timeout must be positive, --setup-limit not negative")
	}
	if cfg.setupLimit == 0 {
		cfg.setupLimit = defaultSetupLimit(cfg.ramp)
	}
	if _, err := url.Parse(cfg.base); err != nil {
		return fmt.Errorf("--url %q: %w", cfg.base, err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := newLoadGen(cfg, log)
	if err != nil {
		return err
	}
	sum, err := g.run(ctx, stdout)
	// The report comes first, whatever happened; closing 2,000 legs
	// takes a moment.
	if cfg.jsonOut {
		if jerr := json.NewEncoder(stdout).Encode(sum); jerr != nil {
			err = errors.Join(err, jerr)
		}
	} else {
		printSummary(stdout, sum)
	}
	g.close()
	return err
}

// defaultSetupLimit is how long the set-up phase may last by default: on
// a loaded host set-up falls behind the ramp (2,000 callers over 40 s took
// over 100 s at a load average of 10), but a run must end.
func defaultSetupLimit(ramp time.Duration) time.Duration { return 2*ramp + time.Minute }

// loadGen is one run of the load generator.
type loadGen struct {
	cfg    loadgenConfig
	log    *slog.Logger
	engine *rtc.Engine
	tokens *api.Tokens
	http   *http.Client
	ulaw   [][]byte // one second of a 400 Hz tone, pre-encoded

	sent    atomic.Uint64
	senders []*sender
	sending sync.WaitGroup
	phones  []*phone.Phone // the callers connected
}

// sender sends one packet every 20 ms on each of its legs.
type sender struct {
	mu   sync.Mutex
	legs []*rtc.Leg
}

func newLoadGen(cfg loadgenConfig, log *slog.Logger) (*loadGen, error) {
	engine, err := rtc.NewEngine(rtc.Config{
		Loopback: true, IPv4Only: true, CountOnly: true, NoReports: true, Logger: log,
		Shared: cfg.sockets > 0, SharedPorts: cfg.sockets,
	})
	if err != nil {
		return nil, err
	}
	tlsConf, err := clientTLS(cfg.caCert)
	if err != nil {
		return nil, errors.Join(err, engine.Close())
	}
	g := &loadGen{
		cfg: cfg, log: log, engine: engine, tokens: api.NewTokens(cfg.adminKey, nil),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.setup, TLSClientConfig: tlsConf}},
	}
	tone := audio.NewTone(400, -20)
	var f audio.Frame
	for range audio.FramesPerSec {
		tone.Next(&f)
		b := make([]byte, audio.FrameSamples)
		audio.EncodeUlaw(b, &f)
		g.ulaw = append(g.ulaw, b)
	}
	for range cfg.senders {
		g.senders = append(g.senders, &sender{})
	}
	return g, nil
}

// run connects the callers and measures the window. It returns the
// summary in every case; the error tells why the run did not measure what
// it should (interrupted, or no caller connected).
func (g *loadGen) run(ctx context.Context, stdout io.Writer) (LoadgenSummary, error) {
	sum := LoadgenSummary{Legs: g.cfg.legs}
	sendCtx, stopSending := context.WithCancel(context.Background())
	defer func() { stopSending(); g.sending.Wait() }()
	for k, s := range g.senders {
		g.sending.Add(1)
		offset := time.Duration(k) * audio.FrameDuration / time.Duration(len(g.senders))
		go func() { defer g.sending.Done(); g.send(sendCtx, s, offset) }()
	}

	start := time.Now()
	sum.Failures = g.connect(ctx)
	sum.Connected = len(g.phones)
	for _, n := range sum.Failures {
		sum.Failed += n
	}
	sum.Setup = time.Since(start).Seconds()
	if sum.Connected == 0 {
		if ctx.Err() != nil {
			sum.Interrupted = true
			return sum, fmt.Errorf("loadgen: %w", ctx.Err())
		}
		return sum, fmt.Errorf("loadgen: none of %d callers connected", g.cfg.legs)
	}
	fmt.Fprintf(stdout, "loadgen: %d of %d callers connected (%d failed) in %.1f s\n", sum.Connected, g.cfg.legs, sum.Failed, sum.Setup)
	total0 := g.snapshot(ctx)
	// interrupted measures up to now and says so.
	interrupted := func(w0 point) (LoadgenSummary, error) {
		sum.Interrupted = true
		w1 := g.snapshot(context.Background())
		if !w0.at.IsZero() {
			sum.Window = w1.minus(w0)
		}
		sum.Total = w1.minus(total0)
		return sum, fmt.Errorf("loadgen: %w", ctx.Err())
	}
	select {
	case <-time.After(g.cfg.warmup):
	case <-ctx.Done():
		return interrupted(point{})
	}
	w0 := g.snapshot(ctx)
	if g.cfg.cpuProfile != "" {
		stop, err := startCPUProfile(g.cfg.cpuProfile)
		if err != nil {
			return sum, err
		}
		defer stop()
	}
	fmt.Fprintln(stdout, "loadgen: window start")
	select {
	case <-time.After(g.cfg.duration):
	case <-ctx.Done():
		return interrupted(w0)
	}
	fmt.Fprintln(stdout, "loadgen: window end")
	w1 := g.snapshot(ctx)
	sum.Window = w1.minus(w0)
	sum.Total = w1.minus(total0)
	return sum, nil
}

// closeTimeout bounds closing the callers at the end of a run.
const closeTimeout = 30 * time.Second

// close ends the callers' legs, a few at a time; a run ends even if some
// never finish closing.
func (g *loadGen) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		slots := make(chan struct{}, 16)
		for _, p := range g.phones {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				_ = p.Close()
			}()
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		g.log.Warn("some callers did not close in time", "after", closeTimeout)
	}
	_ = g.engine.Close()
}

// connect attaches the callers, spread over the ramp, and puts each in its
// call. A caller gets --setup-timeout; the whole phase --setup-limit, after
// which the callers still setting up are stopped and those not started
// are not. Those that made it are g.phones; it returns how many failed,
// by reason.
func (g *loadGen) connect(ctx context.Context) map[string]int {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.setupLimit)
	defer cancel()
	var (
		mu       sync.Mutex
		failures = map[string]int{}
		wg       sync.WaitGroup
	)
	fail := func(i int, reason string, err error) {
		mu.Lock()
		defer mu.Unlock()
		failures[reason]++
		if n := failures[reason]; n <= 3 {
			g.log.Warn("a caller failed", "caller", i+1, "err", err)
		}
	}
	slots := make(chan struct{}, g.cfg.setup)
	every := g.cfg.ramp / time.Duration(g.cfg.legs)
	next := time.Now()
	started := 0
	for i := range g.cfg.legs {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		next = next.Add(every)
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p, err := g.caller(ctx, i)
			if err != nil {
				fail(i, failureReason(err), err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			g.phones = append(g.phones, p)
			s := g.senders[i%len(g.senders)]
			s.mu.Lock()
			s.legs = append(s.legs, p.Leg())
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	if n := g.cfg.legs - started; n > 0 {
		reason := "not started: the set-up limit passed"
		if ctx.Err() == context.Canceled {
			reason = "not started: interrupted"
		}
		failures[reason] += n
	}
	return failures
}

// failureReason is what a caller's error says without the caller's name,
// so that the summary can count callers by it.
func failureReason(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, ": "); ok {
		msg = rest
	}
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return msg
}

// caller connects caller i and places its call, within --setup-timeout.
func (g *loadGen) caller(ctx context.Context, i int) (*phone.Phone, error) {
	user := fmt.Sprintf("%s%d", g.cfg.prefix, i+1)
	tok, err := g.tokens.Mint(api.TokenRequest{Identity: calls.CommunicationUser(user), DisplayName: user, Role: calls.RoleCaller})
	if err != nil {
		return nil, fmt.Errorf("minting %s's token: %w", user, err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.setupTimeout)
	defer cancel()
	p, err := phone.Connect(ctx, g.engine, g.cfg.base, tok.Token, phone.Options{HTTP: g.http, Relay: g.cfg.relay})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", user, err)
	}
	if g.cfg.call != "" {
		if _, err := p.Call(ctx, g.cfg.call); err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("%s: %w", user, err)
		}
	}
	return p, nil
}

// send sends a frame of the tone on each of s's legs every 20 ms, offset
// from the other senders' ticks.
func (g *loadGen) send(ctx context.Context, s *sender, offset time.Duration) {
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	var legs []*rtc.Leg
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		legs = append(legs[:0], s.legs...)
		s.mu.Unlock()
		frame := g.ulaw[n%len(g.ulaw)]
		g.engine.Burst(func() {
			for _, l := range legs {
				l.Send(frame)
			}
		})
		g.sent.Add(uint64(len(legs)))
	}
}

// startCPUProfile profiles this process into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("loadgen: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("loadgen: --cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// point is the counters at one moment.
type point struct {
	at     time.Time
	sent   uint64
	legs   rtc.Stats
	server *MediaStats
}

func (g *loadGen) snapshot(ctx context.Context) point {
	p := point{at: time.Now(), sent: g.sent.Load(), legs: g.engine.Stats()}
	if g.cfg.statsURL != "" {
		s, err := g.serverStats(ctx)
		if err != nil {
			g.log.Warn("reading the server's media stats", "err", err)
		} else {
			p.server = &s
		}
	}
	return p
}

func (p point) minus(q point) LoadgenWindow {
	w := LoadgenWindow{
		Seconds: p.at.Sub(q.at).Seconds(), Sent: p.sent - q.sent,
		Received: p.legs.Received - q.legs.Received, Lost: p.legs.Lost - q.legs.Lost,
	}
	if p.server != nil && q.server != nil {
		d := *p.server
		d.Mixer.Ticks -= q.server.Mixer.Ticks
		d.Mixer.Late -= q.server.Mixer.Late
		d.Mixer.Busy -= q.server.Mixer.Busy
		d.Legs.Received -= q.server.Legs.Received
		d.Legs.Lost -= q.server.Legs.Lost
		d.Legs.Sent -= q.server.Legs.Sent
		d.Legs.SendErrors -= q.server.Legs.SendErrors
		d.CPU.User -= q.server.CPU.User
		d.CPU.System -= q.server.CPU.System
		w.Server = &d
	}
	return w
}

// serverStats reads GET /debug/media.
func (g *loadGen) serverStats(ctx context.Context) (MediaStats, error) {
	var s MediaStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(g.cfg.statsURL, "/")+"/debug/media", nil)
	if err != nil {
		return s, fmt.Errorf("media stats: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.cfg.adminKey)
	resp, err := g.http.Do(req)
	if err != nil {
		return s, fmt.Errorf("media stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("media stats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("media stats: %w", err)
	}
	return s, nil
}

func printSummary(w io.Writer, s LoadgenSummary) {
	fmt.Fprintf(w, "callers: %d of %d connected (%d failed) in %.1f s\n", s.Connected, s.Legs, s.Failed, s.Setup)
	reasons := make([]string, 0, len(s.Failures))
	for r := range s.Failures {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int { return cmp.Or(s.Failures[b]-s.Failures[a], strings.Compare(a, b)) })
	for _, r := range reasons {
		fmt.Fprintf(w, "  %d failed: %s\n", s.Failures[r], r)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "interrupted: the figures cover what was measured before")
	}
	for _, part := range []struct {
		name string
		w    LoadgenWindow
	}{{"window", s.Window}, {"total", s.Total}} {
		win := part.w
		if win.Seconds == 0 {
			continue // not measured
		}
		fmt.Fprintf(w, "%s (%.1f s): callers sent %d packets (%.0f/s), received %d (%.0f/s), lost %d\n",
			part.name, win.Seconds, win.Sent, float64(win.Sent)/win.Seconds, win.Received, float64(win.Received)/win.Seconds, win.Lost)
		if sv := win.Server; sv != nil {
			fmt.Fprintf(w, "  server: legs open %d, received %d, lost %d, sent %d (%d refused); mixer ticks %d, late %d, max late %.2f ms (whole run), busy %.0f ms; CPU %.2f s user + %.2f s system\n",
				sv.Legs.Open, sv.Legs.Received, sv.Legs.Lost, sv.Legs.Sent, sv.Legs.SendErrors,
				sv.Mixer.Ticks, sv.Mixer.Late, sv.Mixer.MaxLate, sv.Mixer.Busy, sv.CPU.User, sv.CPU.System)
			if n := sv.Legs.Received + sv.Legs.Sent; n > 0 {
				fmt.Fprintf(w, "  server CPU per packet: %.2f µs\n", (sv.CPU.User+sv.CPU.System)*1e6/float64(n))
			}
		}
	}
}
