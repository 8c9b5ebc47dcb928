package browsertest_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/web/browsertest"
)

// restartable is a media server that can be stopped and started again on
// the same address, as a switchboard restarted under open consoles. Its
// tokens stay valid across restarts (the same admin key signs them).
type restartable struct {
	*server
	addr string
	ts   *httptest.Server
	st   *stack
}

func newRestartable(t *testing.T) *restartable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartable{addr: ln.Addr().String()}
	r.server = &server{t: t, url: "http://" + r.addr, tokens: api.NewTokens(adminKey, nil)}
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *restartable) serve(ln net.Listener) {
	r.st = newStack(r.t, r.tokens, 0, true)
	r.sb, r.mixer = r.st.sb, r.st.mixer
	r.ts = httptest.NewUnstartedServer(r.st.handler)
	r.ts.Listener.Close()
	r.ts.Listener = ln
	r.ts.Start()
}

// stop shuts the server down as a graceful shutdown does: its calls end,
// its media and event connections close, its port is free.
func (r *restartable) stop() {
	if r.ts == nil {
		return
	}
	r.st.close()
	r.ts.Close()
	r.ts = nil
}

// start starts a new server on the address the first one had.
func (r *restartable) start() {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ln, err := net.Listen("tcp", r.addr)
		if err == nil {
			r.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("listen again on %s: %v", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heardLevel is a received level that is sound: the echo bot returning the
// fake microphone's beeps is far above it, a call's silence far below.
const heardLevel = 0.01

// receivedLevel is the loudest level the page receives over ms.
func (tb *tab) receivedLevel(ms int) float64 {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](fmt.Sprintf(browsertest.ReceivedLevelJS, ms), chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("measure the received level: %v", err)
	}
	return v
}

// waitHeard measures the received level until it is sound, and answers it.
func (tb *tab) waitHeard(what string, limit time.Duration) float64 {
	tb.t.Helper()
	deadline := time.Now().Add(limit)
	best := 0.0
	for time.Now().Before(deadline) {
		l := tb.receivedLevel(1200)
		if l >= heardLevel {
			return l
		}
		best = max(best, l)
	}
	tb.t.Fatalf("%s: the page received at most level %.4f within %v, want %.2f\n%s", what, best, limit, heardLevel, tb.dump())
	return 0
}

// pill is the status pill's text, and fails the test when its accessible
// name differs from it.
func (tb *tab) pill() string {
	tb.t.Helper()
	p := evalJS[[]string](tb, `[document.getElementById('conn').textContent, document.getElementById('conn').getAttribute('aria-label') || '']`)
	if p[0] != p[1] {
		tb.t.Errorf("the status pill says %q, its accessible name is %q: want them equal", p[0], p[1])
	}
	return p[0]
}

// waitPill waits until the status pill says text.
func (tb *tab) waitPill(text string) {
	tb.t.Helper()
	tb.waitJS("the status pill to say "+text, `document.getElementById('conn').textContent === `+jsString(text))
	tb.pill()
}

// An agent's console with browser audio, in a call with the echo bot,
// hears itself. The status pill says "Live" only while both the events and
// the audio are up, and which is down otherwise. "Test my audio" reports
// the echo. When the audio leg is lost (replaced on the server), the
// console re-attaches it by itself. When the switchboard is stopped, the
// pill says the events are down; when it starts again on the same
// address, the console reconnects its events and its audio without a
// click, and within 10 s of the start hears the echo bot again.
func TestConsoleAudioHealsAfterRestart(t *testing.T) {
	srv := newRestartable(t)
	aliceRaw := calls.CommunicationUser("alice").RawID()
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)

	page := newTab(t, srv.server)
	page.installProbe(browsertest.RTCProbe)
	page.open("/?token=" + alice)
	page.waitLive()
	page.waitPill("Audio: not attached")

	page.click("#audio-connect")
	page.waitJS("browser audio connected", `document.body.dataset.audio === 'connected'`)
	page.waitPill("Live")
	page.waitJS("the microphone's level meter moving", `Number(document.getElementById('mic-level').dataset.level) > 0.05`)

	// Test my audio: the echo bot plays the fake microphone's beeps back.
	page.click("#audio-test")
	page.waitJS("the audio test's result", `['ok', 'silent', 'no-echo', 'error'].includes(document.getElementById('audio-test-result').dataset.result)`)
	if r := evalJS[string](page, `document.getElementById('audio-test-result').dataset.result + ': ' + document.getElementById('audio-test-result').textContent`); !strings.HasPrefix(r, "ok: Audio came back") {
		t.Fatalf("the audio test says %q, want ok: Audio came back…", r)
	}
	waitFor(t, "the test call hung up", func() bool {
		var list []calls.Call
		srv.do(http.MethodGet, "/api/calls", alice, nil, http.StatusOK, &list)
		return len(list) == 0
	})

	// In a call with the echo bot, the page hears itself.
	srv.call(alice, calls.EchoBot.RawID())
	before := page.waitHeard("the echo before anything breaks", waitLimit)

	// The audio leg is lost while the events stay up: the pill says so,
	// and the console attaches again by itself.
	srv.mixer.Attach(aliceRaw, audio.NewMemoryEndpoint(nil))
	page.waitPill("Audio down — reconnecting")
	lost := time.Now()
	page.waitPill("Live")
	healed := page.waitHeard("the echo after the audio leg was lost", waitLimit)
	t.Logf("lost audio leg: Live again and the echo heard %v after the pill said it was down", time.Since(lost).Round(time.Millisecond))

	// The switchboard stops: the pill says the events are down.
	stopped := time.Now()
	srv.stop()
	page.waitJS("the pill to say the events are down", `document.body.dataset.pill === 'events-down'`)
	if p := page.pill(); !strings.HasPrefix(p, "Events") {
		t.Errorf("with the switchboard stopped the pill says %q, want it to start with Events", p)
	}

	// It starts again on the same address: no click, and within 10 s the
	// console has its events and its audio back, and hears the echo bot in
	// a new call (the restart ended the old one).
	srv.start()
	started := time.Now()
	down := started.Sub(stopped)
	page.waitJS("events and audio back", `document.body.dataset.conn === 'open' && document.body.dataset.audio === 'connected'`)
	attached := time.Since(started)
	page.waitPill("Live")
	silent := page.receivedLevel(600) // no call yet: nothing to hear
	srv.call(alice, calls.EchoBot.RawID())
	after := page.waitHeard("the echo after the restart", 10*time.Second-time.Since(started))
	back := time.Since(started)
	t.Logf("received level: %.3f before, %.3f after the lost leg, %.4f after the restart before a call, %.3f in the new echo call", before, healed, silent, after)
	t.Logf("restart: the server down for %v; events and audio attached %v after it started, the echo heard %v after (load %s)", down.Round(time.Millisecond), attached.Round(time.Millisecond), back.Round(time.Millisecond), loadAverage())
	if silent >= heardLevel {
		t.Errorf("the page hears level %.3f with no call: the echo measurement proves nothing", silent)
	}
	if back > 10*time.Second {
		t.Errorf("audio came back %v after the restart, want within 10 s", back)
	}
}

// loadAverage is the machine's load average, for the log.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
