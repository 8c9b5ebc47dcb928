package browsertest_test

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// benchEnv turns the latency measurement on; it only logs figures and
// asserts nothing about them.
const benchEnv = "SWITCHBOARD_CONSOLE_BENCH"

// TestConsoleLatency measures how long the console takes to show a change:
// from the moment an event reaches the page (the websocket's onmessage) to
// the end of the first frame painted after the DOM reflecting it was
// updated. The changes are isSpeakingChanged events (the echo bot starts or
// stops speaking in one of the agent's calls), paced like a busy console,
// with 1 call on screen (the baseline) and with 50, in the agent's view and
// in a supervisor's.
//
//	SWITCHBOARD_CONSOLE_BENCH=1 go test -run TestConsoleLatency -v ./web/browsertest/
func TestConsoleLatency(t *testing.T) {
	if os.Getenv(benchEnv) == "" {
		t.Skipf("set %s=1 to measure the console's latency (figures in BENCHMARKS.md)", benchEnv)
	}
	const events = 600
	const pace = 10 * time.Millisecond
	srv := newServer(t, 0)
	sue := srv.token("sue", "Sue Supervisor", calls.RoleSupervisor)
	t.Logf("%d isSpeakingChanged events, one every %s; latency from onmessage to after the next paint", events, pace)
	t.Logf("%-52s %6s %7s %7s %7s %7s", "view", "events", "p50 ms", "p99 ms", "max ms", "draw ms")
	for _, sc := range []struct {
		calls      int
		supervisor bool
		inView     bool // change only the calls whose cards are in the viewport
	}{{1, false, false}, {50, false, false}, {50, false, true}, {1, true, false}, {50, true, false}, {50, true, true}} {
		agent := fmt.Sprintf("agent%d", sc.calls)
		token := srv.token(agent, fmt.Sprintf("Agent %d", sc.calls), calls.RoleAgent)
		who, viewer := "agent", token
		if sc.supervisor {
			who, viewer = "supervisor", sue
			agent = fmt.Sprintf("watched%d", sc.calls)
			token = srv.token(agent, fmt.Sprintf("Watched %d", sc.calls), calls.RoleAgent)
			srv.connect(token)
		}
		page := newTab(t, srv)
		page.open("/?perf=1&token=" + viewer)
		page.waitLive()
		for range sc.calls {
			srv.call(token, "8:echo123")
		}
		var list []calls.Call
		srv.do(http.MethodGet, "/api/calls", token, nil, http.StatusOK, &list)
		if len(list) != sc.calls {
			t.Fatalf("%s has %d calls, want %d", agent, len(list), sc.calls)
		}
		page.waitJS(fmt.Sprintf("%d cards", sc.calls), fmt.Sprintf(`document.querySelectorAll('li.call-card').length === %d`, sc.calls))
		legByCall := map[string]string{}
		for _, c := range list {
			legByCall[c.ID] = legOf(t, c, "8:echo123")
		}
		changed := evalJS[[]string](page, `[...document.querySelectorAll('li.call-card')].map((e) => e.dataset.callId)`)
		what := "changes to all"
		if sc.inView {
			changed = evalJS[[]string](page, `[...document.querySelectorAll('li.call-card')].filter((e) => {
				const r = e.getBoundingClientRect();
				return r.bottom > 0 && r.top < innerHeight;
			}).map((e) => e.dataset.callId)`)
			what = fmt.Sprintf("changes to the %d in view", len(changed))
		}
		legs := make([]string, len(changed))
		for i, id := range changed {
			legs[i] = legByCall[id]
		}
		speaking := make([]bool, len(legs))
		evalJS[bool](page, `window.__switchboardPerf.reset(), true`)
		for i := range events {
			n := i % len(legs)
			speaking[n] = !speaking[n]
			srv.sb.ReportSpeaking(legs[n], speaking[n])
			time.Sleep(pace)
		}
		page.waitJS("every event measured", fmt.Sprintf(`window.__switchboardPerf.samples.length >= %d`, events))
		samples := evalJS[[]float64](page, `window.__switchboardPerf.samples`)
		renders := evalJS[[]float64](page, `window.__switchboardPerf.renders`)
		s, r := stats(samples), stats(renders)
		t.Logf("%-52s %6d %7.1f %7.1f %7.1f %7.2f", fmt.Sprintf("%s, %d call(s), %s", who, sc.calls, what), len(samples), s.p50, s.p99, s.max, r.p50)
		page.close()
		for _, c := range list {
			srv.do(http.MethodPost, "/api/calls/"+c.ID+"/hangup", token, nil, http.StatusOK, nil)
		}
	}
}

type figures struct{ p50, p99, max float64 }

func stats(v []float64) figures {
	if len(v) == 0 {
		return figures{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	at := func(q float64) float64 { return s[int(q*float64(len(s)-1)+0.5)] }
	return figures{p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}
