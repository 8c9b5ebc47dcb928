package browsertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/api/apitest"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/web"
)

// chromiumPath is Debian's chromium package; the tests never download a
// browser of their own.
const chromiumPath = "/usr/bin/chromium"

const adminKey = "browser-test-admin-key-0123456789abcdef"

// insecureHost resolves to 127.0.0.1 in the tests' browser
// (--host-resolver-rules) without being localhost, so a page opened by it
// is not a secure context, as the console opened from another machine
// over http:// is not.
const insecureHost = "switchboard.test"

// waitLimit bounds every wait on the page: generous, because the suite runs
// under -race on two cores.
const waitLimit = 20 * time.Second

// The browser is shared by the package's tests; each test opens its own
// tabs (sessionStorage, and so the signed-in identity, is per tab).
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

func startBrowser() {
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.NoFirstRun,
		chromedp.Flag("mute-audio", true),
		// A fake microphone (it beeps) and camera, granted without asking:
		// the media test's caller speaks with them.
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		// A name that is not localhost for the loopback server: a page
		// opened by it is not a secure context (insecureHost).
		chromedp.Flag("host-resolver-rules", "MAP "+insecureHost+" 127.0.0.1"),
	)
	bctx, bcancel := chromedp.NewContext(actx)
	// The first run starts the browser with a blank tab that lives as long
	// as the package's tests.
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		browser.err = err
		return
	}
	browser.ctx = bctx
	browser.cancel = func() {
		bcancel()
		acancel()
	}
}

// tab is one browser tab.
type tab struct {
	t     *testing.T
	ctx   context.Context
	close context.CancelFunc // closes the tab
	srv   *server
}

// newTab opens a tab on the server's console; the test skips when Chromium
// is not installed.
func newTab(t *testing.T, srv *server) *tab {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("skipping the browser test: headless Chromium is not at %s (apt-get install -y chromium)", chromiumPath)
	}
	browser.once.Do(startBrowser)
	if browser.err != nil {
		t.Fatalf("start Chromium: %v", browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx)
	t.Cleanup(cancel)
	// The tab's first run opens it: no timeout on it, or the timeout would
	// close the tab.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	// An uncaught exception in the page fails the test.
	var mu sync.Mutex
	var thrown []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			mu.Lock()
			thrown = append(thrown, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen to the tab: %v", err)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range thrown {
			t.Errorf("uncaught exception in the page: %s", e)
		}
	})
	return &tab{t: t, ctx: ctx, close: cancel, srv: srv}
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v\n%s", what, err, tb.dump())
	}
}

// open loads a page of the console.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.srv.url+path))
}

// waitJS waits until the expression is truthy.
func (tb *tab) waitJS(what, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitLimit+5*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(waitLimit), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		tb.t.Fatalf("waiting for %s: %v\n%s", what, err, tb.dump())
	}
}

// waitLive waits until the console is signed in and has its snapshot.
func (tb *tab) waitLive() {
	tb.t.Helper()
	tb.waitJS("the console to be live", `document.body.dataset.conn === 'open' && document.body.dataset.synced === 'true'`)
}

func (tb *tab) click(css string) {
	tb.t.Helper()
	tb.do("click "+css, chromedp.Click(chromedp.CSS(css)))
}

// key types keys with the focus wherever it is (shortcuts).
func (tb *tab) key(keys string) {
	tb.t.Helper()
	tb.do("type "+keys, chromedp.KeyEvent(keys))
}

// setValue sets a form field's value as typing would leave it.
func (tb *tab) setValue(css, value string) {
	tb.t.Helper()
	ok := evalJS[bool](tb, `(() => {
		const el = document.querySelector(`+jsString(css)+`);
		if (!el) return false;
		el.value = `+jsString(value)+`;
		el.dispatchEvent(new Event('input', { bubbles: true }));
		el.dispatchEvent(new Event('change', { bubbles: true }));
		return true;
	})()`)
	if !ok {
		tb.t.Fatalf("set %s: no such element\n%s", css, tb.dump())
	}
}

func evalJS[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// dump is what the page shows, for failure messages.
func (tb *tab) dump() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ''`))
	if err != nil {
		return "(the page could not be read: " + err.Error() + ")"
	}
	return "the page shows:\n" + s
}

// screenshot saves the viewport as <name>.png in the directory
// SWITCHBOARD_SCREENSHOTS names, relative to the repository's root
// (docs/screenshots regenerates the ones the README links:
// SWITCHBOARD_SCREENSHOTS=docs/screenshots go test ./web/browsertest/),
// and otherwise in the test's temporary directory, so that a test run
// leaves the repository as it was.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitLimit)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := tb.t.TempDir()
	if d := os.Getenv("SWITCHBOARD_SCREENSHOTS"); d != "" {
		dir = d
		if !filepath.IsAbs(d) {
			dir = filepath.Join("..", "..", d)
		}
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatalf("save screenshot: %v", err)
	}
}

// server is the real API and console on a real listener, with the
// embedded store, built as internal/api's tests build it.
type server struct {
	t      *testing.T
	url    string
	sb     *calls.Switchboard
	tokens *api.Tokens
	// mixer is the media plane's, when the server has one
	// (newMediaServer); nil otherwise.
	mixer *audio.Mixer
}

// newServer starts a server without a media plane (browser audio answers
// not_implemented); queueSize bounds each event connection's queue (0: the
// default).
func newServer(t *testing.T, queueSize int) *server {
	t.Helper()
	return startServer(t, queueSize, false)
}

// newMediaServer starts a server with the media plane wired as serve wires
// it: the mixer's clock running, WebRTC legs answered on loopback too.
func newMediaServer(t *testing.T) *server {
	t.Helper()
	return startServer(t, 0, true)
}

func startServer(t *testing.T, queueSize int, media bool) *server {
	t.Helper()
	tokens := api.NewTokens(adminKey, nil)
	st := newStack(t, tokens, queueSize, media)
	ts := httptest.NewServer(st.handler)
	t.Cleanup(func() {
		st.close()
		ts.Close()
	})
	return &server{t: t, url: ts.URL, sb: st.sb, tokens: tokens, mixer: st.mixer}
}

// stack is a server's parts without its listener: the switchboard, its
// media plane when it has one, and the API's handler.
type stack struct {
	sb      *calls.Switchboard
	mixer   *audio.Mixer
	handler http.Handler
	close   func() // stops it as a shutdown does: calls end, then media, then the API
}

func newStack(t *testing.T, tokens *api.Tokens, queueSize int, media bool) *stack {
	t.Helper()
	st := store.NewMemory()
	hub := api.NewHub(nil, queueSize)
	quiet := slog.New(slog.DiscardHandler)
	var (
		mixer    *audio.Mixer
		sb       *calls.Switchboard
		attacher *rtc.Attacher
	)
	qs := newQueues(hub)
	cfg := calls.Config{Store: st, Publisher: qs.wake, NewID: uuid.NewString, Queues: qs.transfers}
	if media {
		mixer = audio.NewMixer(audio.MixerConfig{
			EchoBot:    calls.EchoBot.RawID(),
			OnSpeaking: func(callID string, speaking bool) { sb.ReportSpeaking(callID, speaking) },
			Logger:     quiet,
		})
		cfg.Media = mixer
	}
	sb, err := calls.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopMedia := func() {}
	if media {
		engine, err := rtc.NewEngine(rtc.Config{Loopback: true, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		attacher = rtc.NewAttacher(engine, mixer, 0, sb.MediaLost, quiet)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = mixer.Run(ctx)
		}()
		stopMedia = func() {
			attacher.Close()
			cancel()
			<-done // the mixer closes every endpoint before Run returns
		}
	}
	acfg := api.Config{
		Switchboard: sb, Hub: hub, Tokens: tokens, Ready: st.Ready,
		Console: web.Console(), WriteTimeout: 2 * time.Second,
	}
	if attacher != nil {
		acfg.Media = attacher
	}
	stopQueues := qs.run(sb, hub, &acfg, nil)
	srv := api.New(acfg)
	return &stack{sb: sb, mixer: mixer, handler: srv.Handler(), close: func() {
		stopQueues()
		_ = sb.Close(context.Background())
		stopMedia()
		srv.Close()
	}}
}

// queues are the contact-center queues, in memory, wired as serve wires
// them: blind transfers to a queue, the engine woken by events, offers to
// Available agents, wrap-up after a queue call.
type queues struct {
	transfers *api.QueueTransfers
	wake      *api.QueueWake
}

// newQueues answers the parts the switchboard's Config takes (Queues and,
// handing events on to next, Publisher), bound once run starts the engine.
func newQueues(next calls.Publisher) *queues {
	return &queues{transfers: &api.QueueTransfers{}, wake: api.NewQueueWake(next)}
}

// run starts the engine on sb and sets it in acfg; record (nil: none)
// records the calls of a queue that says so. stop waits for the engine.
func (q *queues) run(sb *calls.Switchboard, hub *api.Hub, acfg *api.Config, rec api.QueueStarter) (stop func()) {
	quiet := slog.New(slog.DiscardHandler)
	qsw := api.NewQueueSwitch(sb, hub)
	cfg := queue.WithStatus(queue.EngineConfig{Store: queue.NewMemory(), Switch: qsw, Events: qsw, Logger: quiet}, sb)
	if rec != nil {
		cfg.Record = api.QueueRecorder(qsw, rec, quiet)
	}
	engine := queue.NewEngine(cfg)
	acfg.Queues, acfg.QueueSwitch = engine, qsw
	q.transfers.Bind(engine, qsw)
	q.wake.Bind(engine)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		engine.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// token mints a token for a Communication Services user.
func (s *server) token(user, name string, role calls.Role) string {
	s.t.Helper()
	return s.mint(calls.CommunicationUser(user), name, role)
}

func (s *server) mint(id calls.Identifier, name string, role calls.Role) string {
	s.t.Helper()
	m, err := s.tokens.Mint(api.TokenRequest{Identity: id, DisplayName: name, Role: role, TTLSeconds: 3600})
	if err != nil {
		s.t.Fatal(err)
	}
	return m.Token
}

// do sends a request, checks the status and decodes the answer into out
// (when not nil).
func (s *server) do(method, path, token string, body any, want int, out any) {
	s.t.Helper()
	apitest.Do(s.t, s.url, method, path, token, body, want, out)
}

// call starts a call from the token's identity to rawID.
func (s *server) call(token, rawID string) calls.Call {
	s.t.Helper()
	callee, err := calls.ParseRawID(rawID)
	if err != nil {
		s.t.Fatal(err)
	}
	var c calls.Call
	s.do(http.MethodPost, "/api/calls", token, map[string]any{"participants": []calls.Identifier{callee}}, http.StatusCreated, &c)
	return c
}

// incoming waits until the token's identity has a ringing call from
// callerRaw, and answers its id.
func (s *server) incoming(token, callerRaw string) string {
	s.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		var list []calls.IncomingCall
		s.do(http.MethodGet, "/api/incoming-calls", token, nil, http.StatusOK, &list)
		for _, ic := range list {
			if ic.CallerInfo.Identifier.RawID() == callerRaw {
				return ic.ID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("no call from %s rings", callerRaw)
	return ""
}

// accept answers the ringing call from callerRaw for the token's identity.
func (s *server) accept(token, callerRaw string) string {
	s.t.Helper()
	id := s.incoming(token, callerRaw)
	s.do(http.MethodPost, "/api/incoming-calls/"+id+"/accept", token, nil, http.StatusOK, nil)
	return id
}

func (s *server) getCall(token, id string) calls.Call {
	s.t.Helper()
	var c calls.Call
	s.do(http.MethodGet, "/api/calls/"+id, token, nil, http.StatusOK, &c)
	return c
}

// legOf is the leg id of the participant rawID in the call: what the media
// plane names when it reports speaking.
func legOf(t *testing.T, c calls.Call, rawID string) string {
	t.Helper()
	for _, p := range c.RemoteParticipants {
		if p.RawID == rawID && len(p.EndpointDetails) > 0 {
			return p.EndpointDetails[0].ParticipantID
		}
	}
	t.Fatalf("call %s has no participant %s", c.ID, rawID)
	return ""
}

// connect opens an event connection for an identity that has no page, so
// that it can be called; it reads and drops the events until the test ends.
func (s *server) connect(token string) {
	s.t.Helper()
	u := "ws" + strings.TrimPrefix(s.url, "http") + "/api/events"
	conn, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		s.t.Fatalf("dial events: %v", err)
	}
	if _, _, err := conn.ReadMessage(); err != nil { // the snapshot: connected
		s.t.Fatalf("read snapshot: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	s.t.Cleanup(func() {
		conn.Close()
		<-done
	})
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// jsArray quotes a list of strings for JavaScript.
func jsArray(list []string) string {
	b, _ := json.Marshal(list)
	return string(b)
}

// card is the CSS selector of a call's card.
func card(id string) string { return fmt.Sprintf(`li.call-card[data-call-id="%s"]`, id) }
