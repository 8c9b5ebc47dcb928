package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/api/apitest"
	"github.com/switchboard/switchboard/internal/benchenv"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// BenchmarkQueueRouting measures issue 15's routing load through the real
// path: the API on a loopback listener with the queue engine running as
// `switchboard serve` runs it (real clock, its default 200 ms tick, poked
// at once by each entry), SWITCHBOARD_BENCH_QUEUE_AGENTS agents (1,000)
// on real websockets, members of one longest-idle queue with no wrap-up,
// their status the switchboard's agent status (queue.WithStatus, as serve),
// and SWITCHBOARD_BENCH_QUEUE_CALLS callers (10,000) placing their calls
// with POST /api/calls {"queue"}. Each agent accepts an offer over HTTP,
// talks SWITCHBOARD_BENCH_QUEUE_TALK_MS (500), give or take
// SWITCHBOARD_BENCH_QUEUE_TALK_JITTER_PCT percent (0: every call as long,
// so that agents freed together stay together and hang up in bursts),
// and hangs up.
//
// Two phases, each timed per call:
//
//   - backlog: all agents are held Away (set in process, as the system)
//     while the 10,000 calls enter; then all become Available at
//     once and the queue drains. free→offer is, for each offer after an
//     agent's first, the time from her hangup's HTTP answer to the next
//     incomingCall reaching her websocket: how long routing leaves an
//     agent idle while calls wait. release→offer is the first offers,
//     from the moment all became Available. wait is each call's POST
//     answer → its offer: time in line, set by the backlog, not by routing.
//   - arrival: the queue empty, every agent free, SWITCHBOARD_BENCH_QUEUE_ARRIVALS
//     calls (2,000) placed by SWITCHBOARD_BENCH_QUEUE_PLACERS goroutines
//     (50), each placing its next call once its agent hung up the last (a
//     closed loop: about 50 calls in progress); enter→offer
//     is from just before the POST is sent to the incomingCall reaching
//     the chosen agent's websocket.
//
// Beside them, in the same run, the in-process routing decision alone:
// queue.Pick, longest-idle over the same number of members (half
// offerable, a skill filter), timed one call at a time.
//
// store=memory is one node's store; store=jetstream keeps the queue state
// in JetStream key-value buckets as a cluster does, on the NATS server at
// SWITCHBOARD_BENCH_QUEUE_NATS (skipped when unset), in buckets of its own
// that it deletes afterwards. One run is a whole scenario: use
// -benchtime 1x.
func BenchmarkQueueRouting(b *testing.B) {
	b.Run("store=memory", func(b *testing.B) {
		for range b.N {
			runQueueRouting(b, queue.NewMemory())
		}
	})
	b.Run("store=jetstream", func(b *testing.B) {
		url := os.Getenv("SWITCHBOARD_BENCH_QUEUE_NATS")
		if url == "" {
			b.Skip("SWITCHBOARD_BENCH_QUEUE_NATS unset (e.g. nats://127.0.0.1:4222)")
		}
		for range b.N {
			runQueueRouting(b, openBenchJetStream(b, url))
		}
	})
}

func openBenchJetStream(b *testing.B, url string) queue.Store {
	b.Helper()
	ctx := context.Background()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatalf("connect to NATS %s: %v", url, err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	bucket := "qbench_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "") + "_queues"
	st, err := queue.OpenJetStream(ctx, js, bucket, jetstream.FileStorage)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := st.Close(); err != nil {
			b.Logf("close the store: %v", err)
		}
		for _, name := range []string{bucket, bucket + "_offers"} {
			if err := js.DeleteKeyValue(ctx, name); err != nil {
				b.Logf("delete bucket %s: %v", name, err)
			}
		}
	})
	return st
}

// incomingCallType is how an offer's type reads on the wire; the agents'
// readers decode only the events that carry it.
var incomingCallType = []byte(`"type":"` + calls.EventIncomingCall + `"`)

// qbAgent is one benchmark agent: her event stream's reader hands each
// offer to her worker, which answers it.
type qbAgent struct {
	raw    string
	token  string
	conn   *websocket.Conn
	offers chan qbOffer
	mu     sync.Mutex
	freeAt time.Time // her last hangup's answer; zero before
}

type qbOffer struct {
	id, caller string
	at         time.Time
}

// qbRun gathers one scenario's samples.
type qbRun struct {
	mu      sync.Mutex
	sentAt  map[string]time.Time     // caller raw id -> POST sent (arrival) or answered (backlog)
	offered map[string]string        // caller -> "agent (incoming id)"
	notify  map[string]chan struct{} // caller -> closed at the hangup
	phase   string
	release time.Time
	free    []time.Duration
	first   []time.Duration
	wait    []time.Duration
	enter   []time.Duration
	// decided: caller -> when the engine asked the switch to offer her
	// call; toDecide and toSocket split free→offer there.
	decided  map[string]time.Time
	toDecide []time.Duration
	toSocket []time.Duration
	errs     []error
	answered int
}

func runQueueRouting(b *testing.B, qst queue.Store) {
	nAgents := benchenv.Count(b, "SWITCHBOARD_BENCH_QUEUE_AGENTS", 1000)
	nCalls := benchenv.Count(b, "SWITCHBOARD_BENCH_QUEUE_CALLS", 10000)
	nArrivals := benchenv.Count(b, "SWITCHBOARD_BENCH_QUEUE_ARRIVALS", 2000)
	talk := time.Duration(benchenv.Count(b, "SWITCHBOARD_BENCH_QUEUE_TALK_MS", 500)) * time.Millisecond
	jitter := benchenv.Percent(b, "SWITCHBOARD_BENCH_QUEUE_TALK_JITTER_PCT", 0)
	talkFor := func() time.Duration { // talk ± jitter %, uniform
		if jitter == 0 {
			return talk
		}
		return talk + time.Duration(float64(talk)*float64(jitter)/100*(2*rand.Float64()-1))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	st := store.NewMemory()
	hub := api.NewHub(nil, 0)
	hub.SetEventLog(api.NewMemoryLog(api.Retention{}, nil))
	wake := api.NewQueueWake(hub) // as serve wires it: ends and status changes wake the engine
	sb, err := calls.New(calls.Config{Store: st, Publisher: wake, NewID: uuid.NewString})
	if err != nil {
		b.Fatal(err)
	}
	qs := api.NewQueueSwitch(sb, hub)
	run := &qbRun{phase: "backlog", sentAt: map[string]time.Time{}, offered: map[string]string{}, notify: map[string]chan struct{}{}, decided: map[string]time.Time{}}
	// Agent status as serve wires it: the switchboard's own.
	engine := queue.NewEngine(queue.WithStatus(queue.EngineConfig{Store: qst, Switch: timedSwitch{qs, run}, Events: qs, Sweep: queue.DefaultSweep, AgentWakes: true}, sb))
	wake.Bind(engine)
	tokens := api.NewTokens(adminKey, nil)
	srv := api.New(api.Config{Switchboard: sb, Hub: hub, Tokens: tokens, Ready: st.Ready, Numbers: st,
		Queues: engine, QueueSwitch: qs, WriteTimeout: 10 * time.Second})
	ts := httptest.NewServer(srv.Handler())
	engineDone := make(chan struct{})
	go func() { defer close(engineDone); engine.Run(ctx) }()
	var workers sync.WaitGroup
	defer func() {
		cancel()
		<-engineDone
		_ = sb.Close(context.Background())
		srv.Close()
		ts.Close()
		workers.Wait()
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	mint := func(user string, role calls.Role) string {
		var out struct{ Token string }
		apitest.Do(b, ts.URL, http.MethodPost, "/api/tokens", adminKey, map[string]any{
			"identity": map[string]any{"communicationUserId": user}, "displayName": user, "role": role, "ttlSeconds": 3600,
		}, http.StatusCreated, &out)
		return out.Token
	}
	post := func(path, token string, body string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		return resp.StatusCode, data, err
	}

	setStatus := func(agent string, st routing.Status) {
		if _, err := sb.SetStatusBySystem(ctx, agent, calls.SetStatusRequest{Status: st}); err != nil {
			b.Fatalf("set %s %s: %v", agent, st, err)
		}
	}
	fail := func(err error) {
		run.mu.Lock()
		run.errs = append(run.errs, err)
		run.mu.Unlock()
	}

	// The agents: connected, members, Away until the backlog is in.
	agents := make([]*qbAgent, nAgents)
	var members []map[string]any
	for i := range agents {
		name := fmt.Sprintf("qagent%04d", i)
		a := &qbAgent{raw: "8:acs:" + name, token: mint(name, calls.RoleAgent), offers: make(chan qbOffer, 16)}
		conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/api/events",
			http.Header{"Authorization": {"Bearer " + a.token}})
		if err != nil {
			b.Fatalf("dial events for %s: %v (status %v)", name, err, statusOf(resp))
		}
		a.conn = conn
		agents[i] = a
		members = append(members, map[string]any{"agent": a.raw})
		setStatus(a.raw, routing.Away)
		workers.Add(2)
		go func() { // reader
			defer workers.Done()
			defer close(a.offers)
			for {
				_, msg, err := conn.ReadMessage()
				if err != nil {
					return
				}
				at := time.Now()
				if !bytes.Contains(msg, incomingCallType) {
					// Not an offer: a browser would read it on its own
					// machine; here it would take the server's cores.
					continue
				}
				var ev event
				if json.Unmarshal(msg, &ev) != nil || ev.Type != calls.EventIncomingCall {
					continue
				}
				var d calls.IncomingCallData
				if err := json.Unmarshal(ev.Data, &d); err != nil {
					fail(err)
					continue
				}
				a.offers <- qbOffer{id: d.IncomingCall.ID, caller: d.IncomingCall.CallerInfo.Identifier.RawID(), at: at}
			}
		}()
		go func() { // worker
			defer workers.Done()
			for o := range a.offers {
				run.record(a, o)
				if code, body, err := post("/api/incoming-calls/"+o.id+"/accept", a.token, ""); err != nil || code != http.StatusOK {
					if ctx.Err() == nil {
						fail(fmt.Errorf("%s accept %s: %d %s %v", a.raw, o.id, code, body, err))
					}
					continue
				}
				select {
				case <-time.After(talkFor()):
				case <-ctx.Done():
					return
				}
				if code, body, err := post("/api/calls/"+o.id+"/hangup", a.token, ""); err != nil || code != http.StatusOK {
					if ctx.Err() == nil {
						fail(fmt.Errorf("%s hang up %s: %d %s %v", a.raw, o.id, code, body, err))
					}
					continue
				}
				a.mu.Lock()
				a.freeAt = time.Now()
				a.mu.Unlock()
				run.mu.Lock()
				run.answered++
				if ch := run.notify[o.caller]; ch != nil {
					close(ch)
				}
				run.mu.Unlock()
			}
		}()
	}
	b.Cleanup(func() {
		for _, a := range agents {
			if a != nil {
				a.conn.Close()
			}
		}
	})
	apitest.Do(b, ts.URL, http.MethodPost, "/api/queues", adminKey, map[string]any{
		"name": "support", "members": members, "wrapUpSeconds": 0, "ringTimeoutSeconds": 60,
	}, http.StatusCreated, nil)
	callers := make([]string, nCalls+nArrivals)
	for i := range callers {
		callers[i] = mint(fmt.Sprintf("qcaller%05d", i), calls.RoleCaller)
	}
	body := `{"queue":"support"}`
	place := func(from, to, par int, stamp func(caller string, sent, answered time.Time)) {
		var wg sync.WaitGroup
		for g := range par {
			wg.Go(func() {
				for i := from + g; i < to; i += par {
					caller := fmt.Sprintf("8:acs:qcaller%05d", i)
					sent := time.Now()
					run.mu.Lock()
					run.sentAt[caller] = sent // replaced by stamp for the backlog
					run.notify[caller] = make(chan struct{})
					run.mu.Unlock()
					code, data, err := post("/api/calls", callers[i], body)
					if err != nil || code != http.StatusCreated {
						fail(fmt.Errorf("POST /api/calls by %s: %d %s %v", caller, code, data, err))
						continue
					}
					stamp(caller, sent, time.Now())
				}
			})
		}
		wg.Wait()
	}
	waitAnswered := func(n int, what string) {
		deadline := time.Now().Add(time.Duration(n/nAgents+2)*(talk+2*time.Second) + time.Minute)
		for {
			run.mu.Lock()
			got, errs := run.answered, len(run.errs)
			run.mu.Unlock()
			if got >= n {
				return
			}
			if errs > 0 || time.Now().After(deadline) {
				run.mu.Lock()
				defer run.mu.Unlock()
				b.Fatalf("%s: %d of %d calls answered; errors: %v", what, got, n, run.errs[:min(len(run.errs), 5)])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The routing decision alone, in the same run.
	pick := pickLatencies(nAgents, 10000)

	b.ResetTimer()
	// Backlog.
	place(0, nCalls, 8, func(caller string, _, answered time.Time) {
		run.mu.Lock()
		run.sentAt[caller] = answered
		run.mu.Unlock()
	})
	if n := len(run.errs); n > 0 {
		b.Fatalf("placing the backlog: %d errors, first %v", n, run.errs[0])
	}
	stats, err := engine.Stats(ctx, "support")
	if err != nil || stats.Waiting != nCalls {
		b.Fatalf("before the release: %+v, %v; want %d waiting", stats, err, nCalls)
	}
	run.mu.Lock()
	run.release = time.Now()
	run.mu.Unlock()
	for _, a := range agents {
		setStatus(a.raw, routing.Available)
	}
	waitAnswered(nCalls, "backlog")

	// Arrivals.
	run.mu.Lock()
	run.phase = "arrival"
	run.mu.Unlock()
	// Closed loop: each goroutine places its next call once its last one
	// was hung up, so that calls find free agents.
	placers := min(benchenv.Count(b, "SWITCHBOARD_BENCH_QUEUE_PLACERS", 50), max(nAgents/4, 1))
	place(nCalls, nCalls+nArrivals, placers, func(caller string, _, _ time.Time) {
		run.mu.Lock()
		ch := run.notify[caller]
		run.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			fail(fmt.Errorf("the call of %s not offered and hung up within 30 s", caller))
		}
	})
	waitAnswered(nCalls+nArrivals, "arrival")
	b.StopTimer()

	if n := len(run.errs); n > 0 {
		b.Fatalf("%d errors, first %v", n, run.errs[0])
	}
	report := func(name string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		slices.Sort(ds)
		b.ReportMetric(durMs(ds[len(ds)/2]), name+"-p50-ms")
		b.ReportMetric(durMs(ds[(len(ds)*99+99)/100-1]), name+"-p99-ms")
	}
	report("free-to-offer", run.free)
	report("free-to-decision", run.toDecide)
	report("decision-to-socket", run.toSocket)
	report("release-to-offer", run.first)
	report("wait", run.wait)
	report("enter-to-offer", run.enter)
	slices.Sort(pick)
	b.ReportMetric(float64(pick[len(pick)/2])/float64(time.Microsecond), "pick-p50-µs")
	b.ReportMetric(float64(pick[(len(pick)*99+99)/100-1])/float64(time.Microsecond), "pick-p99-µs")
	b.Logf("agents %d, backlog %d (free→offer samples %d, first offers %d), arrivals %d by %d placers; talk %v ± %d%%",
		nAgents, nCalls, len(run.free), len(run.first), nArrivals, placers, talk, jitter)
}

// record files an offer's latencies.
func (r *qbRun) record(a *qbAgent, o qbOffer) {
	a.mu.Lock()
	freeAt := a.freeAt
	a.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.offered[o.caller]; ok {
		r.errs = append(r.errs, fmt.Errorf("call of %s offered twice: %s then %s (%s)", o.caller, prev, a.raw, o.id))
		return
	}
	r.offered[o.caller] = a.raw + " (" + o.id + ")"

	sent, ok := r.sentAt[o.caller]
	if !ok {
		r.errs = append(r.errs, fmt.Errorf("offer of an unknown caller %s", o.caller))
		return
	}
	switch r.phase {
	case "backlog":
		r.wait = append(r.wait, o.at.Sub(sent))
		if freeAt.IsZero() {
			r.first = append(r.first, o.at.Sub(r.release))
		} else {
			r.free = append(r.free, o.at.Sub(freeAt))
			if at, ok := r.decided[o.caller]; ok {
				r.toDecide = append(r.toDecide, at.Sub(freeAt))
				r.toSocket = append(r.toSocket, o.at.Sub(at))
			}
		}
	default:
		r.enter = append(r.enter, o.at.Sub(sent))
	}
}

// timedSwitch is the engine's switch, noting when each offer was decided.
type timedSwitch struct {
	*api.QueueSwitch
	run *qbRun
}

func (s timedSwitch) Offer(ctx context.Context, w queue.Waiting, agent string) error {
	s.run.mu.Lock()
	s.run.decided[w.Caller] = time.Now()
	s.run.mu.Unlock()
	return s.QueueSwitch.Offer(ctx, w, agent)
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pickLatencies times queue.Pick n times, one call at a time, over
// members candidates like BenchmarkPick's (internal/queue).
func pickLatencies(members, n int) []time.Duration {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cands := make([]queue.Candidate, members)
	for i := range cands {
		cands[i] = queue.Candidate{Agent: fmt.Sprintf("8:acs:a%d", i), Offerable: i%2 == 0,
			IdleSince: t0.Add(time.Duration((i*7919)%1000) * time.Second), Skills: map[string]int{"fr": i % 3}}
	}
	need := map[string]int{"fr": 1}
	out := make([]time.Duration, n)
	for i := range out {
		start := time.Now()
		if queue.Pick(queue.LongestIdle, cands, need, nil, "") == "" {
			panic("pick: nobody")
		}
		out[i] = time.Since(start)
	}
	return out
}
