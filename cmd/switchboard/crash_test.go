package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store/pgtest"
)

// The crash test's load and its bounds.
const (
	crashAgents = 4 // agents changing their calls at once
	// crashEndBefore and crashEndAfter bound a crashed call's end time
	// around the moment of the kill.
	crashEndBefore = time.Second
	crashEndAfter  = 100 * time.Millisecond
)

// TestCrashLosesNothing kills the real switchboard (SIGKILL) at random
// moments under a steady load of state changes and starts it again on the
// same data: after each restart every change the API acknowledged (a 2xx
// answer) is in history exactly once and in order, and every call that
// was live at the kill ended with 503/0 by the system at the moment of the
// kill (within crashEndBefore before it, crashEndAfter after it). Each
// agent also keeps a parked call that it put on hold and never touches
// again, so that an end time taken from the call's last event, or from a
// heartbeat seconds old, is caught; and every other kill comes after a
// quiet spell, when the last change is older than crashEndBefore. Half the
// kills are on the embedded SQLite store, half on Postgres, each during a
// Postgres outage. The binary is built once and run as a child process.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("20 kills of a real switchboard")
	}
	bin := buildSwitchboard(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for i, tc := range []struct {
		name     string
		postgres bool
		kills    int
	}{
		{name: "sqlite", kills: 10},
		{name: "postgres-outage", postgres: true, kills: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			env := []string{
				"DATABASE_URL=", "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey,
				"SWITCHBOARD_SPOOL_DIR=" + filepath.Join(dataDir, "spool"),
			}
			var cluster *pgtest.Cluster
			if tc.postgres {
				cluster = pgtest.Start(t)
				env[0] = "DATABASE_URL=" + cluster.URL()
			}
			srv := &crashServer{t: t, bin: bin, env: env,
				args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}}
			srv.start()
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			client := &http.Client{Timeout: 10 * time.Second}
			var epochs []*crashEpoch
			var stats crashStats
			reported := map[*crashEpoch][]string{}
			for k := range tc.kills {
				ep := &crashEpoch{n: k}
				for a := range crashAgents {
					name := fmt.Sprintf("crash-%s-%02d-%d", tc.name, k, a)
					ep.agents = append(ep.agents, &crashAgent{name: name, token: mint(t, name, calls.RoleAgent)})
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				for a, ag := range ep.agents {
					ar := rand.New(rand.NewPCG(seed, uint64(1000*i+10*k+a)))
					wg.Go(func() { ag.run(client, srv.base, ar, stop) })
				}
				stopLoad := sync.OnceFunc(func() {
					close(stop)
					wg.Wait()
				})
				// The moment of the kill is random. Every other kill comes
				// after a quiet spell longer than crashEndBefore, so that
				// an end time taken from the last change is caught.
				ep.quiet = k%2 == 1
				if tc.postgres {
					time.Sleep(randDuration(r, 200*time.Millisecond, 700*time.Millisecond))
					cluster.StopServer()
					time.Sleep(randDuration(r, time.Second, 2500*time.Millisecond))
				} else {
					time.Sleep(randDuration(r, 800*time.Millisecond, 2*time.Second))
				}
				if ep.quiet {
					stopLoad()
					time.Sleep(randDuration(r, crashEndBefore+200*time.Millisecond, crashEndBefore+600*time.Millisecond))
				}
				ep.killedAt = srv.kill()
				stopLoad()
				if tc.postgres {
					cluster.StartServer()
				}
				srv.start()
				problems := checkCrash(t, srv.base, ep, &stats)
				reportCrash(t, ep, "", problems)
				reported[ep] = problems
				epochs = append(epochs, ep)
			}
			// The last start wrote nothing twice from the runs before.
			var again crashStats
			for _, ep := range epochs {
				var fresh []string
				for _, p := range checkCrash(t, srv.base, ep, &again) {
					if !slices.Contains(reported[ep], p) {
						fresh = append(fresh, p)
					}
				}
				reportCrash(t, ep, fmt.Sprintf(", seen after the last start (#%d)", srv.starts), fresh)
			}
			load, _ := os.ReadFile("/proc/loadavg")
			t.Logf("%d kills (%d after a quiet spell): %d changes acknowledged on %d calls (%d in flight at a kill, %d refused); "+
				"lost: %d changes, %d calls of them whole; %d calls live at a kill ended 503; "+
				"their end times before the kill: %v to %v under load, %v to %v after a quiet spell; load average %s",
				tc.kills, tc.kills/2, stats.acked, stats.calls, stats.pending, stats.refused,
				stats.lost, stats.lostCalls, stats.crashed,
				stats.early[0].min, stats.early[0].max, stats.early[1].min, stats.early[1].max, strings.TrimSpace(string(load)))
		})
	}
}

// buildSwitchboard builds this command into a temporary directory.
func buildSwitchboard(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchboard")
	began := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the switchboard in %v", time.Since(began).Round(time.Millisecond))
	return bin
}

func randDuration(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// crashServer is `switchboard serve` as a process of its own, started and
// killed again and again on the same data.
type crashServer struct {
	t    *testing.T
	bin  string
	args []string
	env  []string

	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd has exited
	base   string
	log    *serveLog
	starts int
}

// start starts the switchboard and waits until it listens and /readyz
// answers 200, for 30 s at most.
func (s *crashServer) start() {
	t := s.t
	t.Helper()
	s.starts++
	f, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("serve-%02d.log", s.starts)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s.log = &serveLog{file: f, addr: make(chan string, 1)}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.After(30 * time.Second)
	select {
	case addr := <-s.log.addr:
		s.base = "http://" + addr
	case <-done:
		t.Fatalf("start #%d: serve exited before listening:\n%s", s.starts, s.log.tail())
	case <-deadline:
		t.Fatalf("start #%d: serve did not listen within 30 s:\n%s", s.starts, s.log.tail())
	}
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("start #%d: serve exited before /readyz said ok:\n%s", s.starts, s.log.tail())
		case <-deadline:
			t.Fatalf("start #%d: /readyz did not answer 200 within 30 s (%v):\n%s", s.starts, err, s.log.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL, waits for the process to end, and answers the
// moment just before the signal.
func (s *crashServer) kill() time.Time {
	s.t.Helper()
	at := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill: %v", err)
	}
	<-s.done
	return at
}

var listeningRe = regexp.MustCompile(`switchboard listening"? addr=(\S+)`)

// serveLog keeps a switchboard's output in a file and finds the address
// it listens on.
type serveLog struct {
	mu    sync.Mutex
	file  *os.File
	line  []byte // the start of a line not yet complete, until the address is found
	addr  chan string
	found bool
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.found {
		l.line = append(l.line, p...)
		for {
			i := bytes.IndexByte(l.line, '\n')
			if i < 0 {
				break
			}
			if m := listeningRe.FindSubmatch(l.line[:i]); m != nil {
				l.found = true
				l.addr <- string(m[1])
				l.line = nil
				break
			}
			l.line = l.line[i+1:]
		}
	}
	return l.file.Write(p)
}

// tail answers the last lines of the log.
func (l *serveLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, _ := os.ReadFile(l.file.Name())
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// crashEpoch is one run of the switchboard, from a start to a kill, with
// agents of its own.
type crashEpoch struct {
	n        int
	agents   []*crashAgent
	quiet    bool // the load had stopped for a while before the kill
	killedAt time.Time
}

// crashCall is what the test knows of one call: the timeline entries (see
// entryKey) of the changes the API acknowledged, in order, and of the
// change that was in flight at the kill.
type crashCall struct {
	id      string
	parked  bool
	acked   []string
	pending []string // nil: none in flight
	hungUp  bool     // the hang-up was acknowledged
}

// crashAgent is one agent's load: a parked call put on hold, then one
// call at a time that it holds, resumes, mutes, unmutes and hangs up.
type crashAgent struct {
	name, token string
	calls       []*crashCall
	// pendingStart: a start was in flight at the kill; its call, if it was
	// made, is unknown.
	pendingStart bool
	// refused are the answers that were not 2xx; the agent stops at the
	// first.
	refused []crashRefusal
}

// run changes calls until stop is closed or a change gets no 2xx answer
// (the switchboard was killed). Each change waits for the one before.
func (a *crashAgent) run(client *http.Client, base string, r *rand.Rand, stop <-chan struct{}) {
	start := func() (*crashCall, calls.Call) {
		got, ok := a.change(client, base+"/api/calls", `{"participants":[{"id":"8:echo123"}]}`, nil, []string{"added"})
		if !ok {
			return nil, got
		}
		c := &crashCall{id: got.ID, acked: []string{"added"}}
		a.calls = append(a.calls, c)
		return c, got
	}
	// op makes one change to c and tells whether it was acknowledged.
	op := func(c *crashCall, name string, want string) (calls.Call, bool) {
		body := ""
		if name == "hangup" {
			body = `{}`
		}
		got, ok := a.change(client, base+"/api/calls/"+c.id+"/"+name, body, c, []string{want})
		if !ok {
			return got, false
		}
		switch name {
		case "hold", "resume":
			c.acked = append(c.acked, "state:"+string(got.State))
		case "mute", "unmute":
			c.acked = append(c.acked, fmt.Sprintf("muted:%t", got.IsMuted))
		case "hangup":
			c.acked = append(c.acked, endKey(got.CallEndReason))
			c.hungUp = true
		}
		return got, true
	}

	park, _ := start()
	if park == nil {
		return
	}
	park.parked = true
	if _, ok := op(park, "hold", "state:LocalHold"); !ok {
		return
	}
	var cur *crashCall
	var view calls.Call
	for {
		select {
		case <-stop:
			return
		case <-time.After(randDuration(r, 2*time.Millisecond, 10*time.Millisecond)):
		}
		var ok bool
		switch n := r.IntN(20); {
		case cur == nil:
			cur, view = start()
			ok = cur != nil
		case n == 0:
			_, ok = op(cur, "hangup", endKey(&calls.ReasonHungUp))
			cur = nil
		case n < 7 && view.IsMuted:
			view, ok = op(cur, "unmute", "muted:false")
		case n < 7:
			view, ok = op(cur, "mute", "muted:true")
		case view.State == calls.StateLocalHold:
			view, ok = op(cur, "resume", "state:Connected")
		default:
			view, ok = op(cur, "hold", "state:LocalHold")
		}
		if !ok {
			return
		}
	}
}

// crashRefusal is an answer that was not 2xx.
type crashRefusal struct {
	status int
	what   string
}

// change POSTs one change. c is the call (nil for a start) and want the
// timeline entries the change makes. Without a 2xx answer the change is
// pending: it may or may not have been made.
func (a *crashAgent) change(client *http.Client, url, body string, c *crashCall, want []string) (calls.Call, bool) {
	var got calls.Call
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err == nil {
		raw, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			err = rerr
		case resp.StatusCode/100 != 2:
			a.refused = append(a.refused, crashRefusal{resp.StatusCode, fmt.Sprintf("POST %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(raw))})
			err = fmt.Errorf("refused")
		default:
			err = json.Unmarshal(raw, &got)
		}
	}
	if err != nil {
		if c == nil {
			a.pendingStart = true
		} else {
			c.pending = want
		}
		return got, false
	}
	return got, true
}

func endKey(r *calls.EndReason) string {
	if r == nil {
		return "ended:none"
	}
	return fmt.Sprintf("ended:%d/%d", r.Code, r.SubCode)
}

// entryKey names a timeline entry as the test counts changes: "added"
// (callsUpdated adding the call), "removed", "state:<state>",
// "muted:<bool>", "ended:<code>/<subCode>", or its type.
func entryKey(e calls.TimelineEntry) string {
	raw, _ := json.Marshal(e.Data)
	switch e.Type {
	case calls.EventCallsUpdated:
		var d calls.CallsUpdatedData
		_ = json.Unmarshal(raw, &d)
		if len(d.Added) > 0 {
			return "added"
		}
		return "removed"
	case calls.EventStateChanged:
		var d calls.StateChangedData
		_ = json.Unmarshal(raw, &d)
		return "state:" + string(d.State)
	case calls.EventIsMutedChanged:
		var d calls.MutedData
		_ = json.Unmarshal(raw, &d)
		return fmt.Sprintf("muted:%t", d.IsMuted)
	case calls.EventCallEnded:
		var d calls.CallEndedData
		_ = json.Unmarshal(raw, &d)
		return endKey(&d.CallEndReason)
	}
	return string(e.Type)
}

// crashStats are the figures the test logs.
type crashStats struct {
	acked, calls, pending, refused, crashed int
	// lost counts the acknowledged changes missing from history (from
	// the first that differs, in a call's timeline), lostCalls the calls.
	lost, lostCalls int
	// early is how long before the kill the crashed calls ended: [0]
	// under load, [1] after a quiet spell.
	early [2]struct {
		n        int
		min, max time.Duration
	}
}

func (s *crashStats) ended(quiet bool, early time.Duration) {
	e := &s.early[0]
	if quiet {
		e = &s.early[1]
	}
	if e.n == 0 || early < e.min {
		e.min = early
	}
	if e.n == 0 || early > e.max {
		e.max = early
	}
	e.n++
}

// reportCrash fails t with an epoch's problems, if any.
func reportCrash(t *testing.T, ep *crashEpoch, when string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	quiet := ""
	if ep.quiet {
		quiet = ", after a quiet spell"
	}
	t.Errorf("kill #%d (at %s%s)%s: %d problems:\n  %s", ep.n+1, ep.killedAt.Format(time.StampMicro), quiet, when,
		len(problems), strings.Join(problems[:min(len(problems), 15)], "\n  "))
}

var crashEnded = endKey(&calls.ReasonSwitchboardDied)

// checkCrash checks the history of one epoch's agents after a restart and
// answers what is wrong.
func checkCrash(t *testing.T, base string, ep *crashEpoch, st *crashStats) []string {
	t.Helper()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, a := range ep.agents {
		for _, r := range a.refused {
			// 5xx: the switchboard could not take the change now (it is
			// then in flight); anything else is a wrong answer.
			if r.status < 500 {
				bad("agent %s: %s", a.name, r.what)
			}
		}
		st.refused += len(a.refused)
		if a.pendingStart {
			st.pending++
		}
		listed := historyIDs(t, base, a.token)
		known := map[string]bool{}
		for _, c := range a.calls {
			known[c.id] = true
			st.calls++
			st.acked += len(c.acked)
			if c.pending != nil {
				st.pending++
			}
			if !slices.Contains(listed, c.id) {
				bad("agent %s: call %s (%d changes acknowledged) is not in the history list", a.name, c.id, len(c.acked))
				st.lost += len(c.acked)
				st.lostCalls++
				continue
			}
			h := historyOf(t, base, a.token, c.id)
			checkCrashedCall(h, c, ep, st, func(format string, args ...any) {
				bad("agent %s: call %s: "+format, append([]any{a.name, c.id}, args...)...)
			})
		}
		var unknown []string
		for _, id := range listed {
			if !known[id] {
				unknown = append(unknown, id)
			}
		}
		switch {
		case len(unknown) == 0:
		case len(unknown) > 1 || !a.pendingStart:
			bad("agent %s: calls in history it never started (start in flight at the kill: %t): %v", a.name, a.pendingStart, unknown)
		default:
			// The start in flight at the kill was made: the call is there
			// once, started and ended by the crash.
			h := historyOf(t, base, a.token, unknown[0])
			c := &crashCall{id: unknown[0], pending: []string{"added"}}
			checkCrashedCall(h, c, ep, st, func(format string, args ...any) {
				bad("agent %s: call %s (start in flight at the kill): "+format, append([]any{a.name, unknown[0]}, args...)...)
			})
		}
	}
	return problems
}

// checkCrashedCall checks one call's history against what the API
// acknowledged: those entries first, exactly once and in order, then the
// change in flight at the kill or not, then, unless it was hung up, its
// end with 503/0 by the system at the kill.
func checkCrashedCall(h calls.CallHistory, c *crashCall, ep *crashEpoch, st *crashStats, bad func(string, ...any)) {
	type entry struct {
		typ  calls.EventType
		at   time.Time
		data string
	}
	seen := map[entry]int{}
	var got []string
	for _, e := range h.Timeline {
		raw, _ := json.Marshal(e.Data)
		seen[entry{e.Type, e.At, string(raw)}]++
		if k := entryKey(e); k != "removed" {
			got = append(got, k)
		}
	}
	for e, n := range seen {
		if n > 1 {
			bad("%s at %s is in its timeline %d times", e.typ, e.at.Format(time.StampMicro), n)
		}
	}
	n := len(c.acked)
	if len(got) < n || !slices.Equal(got[:n], c.acked) {
		i := 0
		for i < min(len(got), n) && got[i] == c.acked[i] {
			i++
		}
		bad("%d changes acknowledged, %d entries in history; they differ from #%d: acknowledged %v, history %v",
			n, len(got), i+1, window(c.acked, i), window(got, i))
		st.lost += n - i
		return
	}
	rest := got[n:]
	hungUp := c.hungUp
	var allowed [][]string
	switch {
	case hungUp:
		allowed = [][]string{{}}
	case c.pending == nil:
		allowed = [][]string{{crashEnded}}
	case slices.ContainsFunc(c.pending, func(k string) bool { return strings.HasPrefix(k, "ended:") }):
		allowed = [][]string{{crashEnded}, c.pending}
	default:
		allowed = [][]string{{crashEnded}, append(slices.Clone(c.pending), crashEnded)}
	}
	if !slices.ContainsFunc(allowed, func(a []string) bool { return slices.Equal(a, rest) }) {
		bad("after its %d acknowledged changes history has %v, want one of %v (in flight at the kill: %v)", n, rest, allowed, c.pending)
		return
	}
	if len(rest) == 0 || rest[len(rest)-1] != crashEnded {
		return // hung up, acknowledged or not
	}
	st.crashed++
	call := h.Call
	if call.State != calls.StateDisconnected || call.CallEndReason == nil || *call.CallEndReason != calls.ReasonSwitchboardDied {
		bad("live at the kill (parked %t): %s %+v, want Disconnected %+v", c.parked, call.State, call.CallEndReason, calls.ReasonSwitchboardDied)
	}
	last := h.Timeline[len(h.Timeline)-1]
	if last.Type != calls.EventCallEnded || last.Actor == nil || last.Actor.Kind != calls.ActorSystem {
		bad("live at the kill: its last entry is %s by %+v, want callEnded by the system", last.Type, last.Actor)
	}
	if call.EndTime == nil {
		bad("live at the kill: no end time")
		return
	}
	early := ep.killedAt.Sub(*call.EndTime)
	st.ended(ep.quiet, early)
	if early > crashEndBefore || early < -crashEndAfter {
		bad("live at the kill (parked %t): ended at %s, %v before the kill, want within %v before and %v after",
			c.parked, call.EndTime.Format(time.StampMicro), early, crashEndBefore, crashEndAfter)
	}
}

// window answers a few keys of s from i on.
func window(s []string, i int) []string {
	return s[i:min(len(s), i+4)]
}

// historyIDs answers the ids of every call in the token holder's history.
func historyIDs(t *testing.T, base, token string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		query := "?limit=500"
		if cursor != "" {
			query += "&cursor=" + url.QueryEscape(cursor)
		}
		status, raw := request(t, "GET", base+"/api/history/calls"+query, token, "")
		var page calls.CallPage
		if status != http.StatusOK || json.Unmarshal(raw, &page) != nil {
			t.Fatalf("history: %d %s", status, raw)
		}
		for _, c := range page.Items {
			ids = append(ids, c.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		cursor = page.NextCursor
	}
}
