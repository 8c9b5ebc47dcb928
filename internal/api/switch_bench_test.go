package api_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
)

// Issue 2's load: 1,000 connected agents, each holding 10 calls to the echo
// bot, switching the active call.
const (
	benchAgents  = 1000
	benchCalls   = 10 // per agent
	setupWorkers = 16 // goroutines that connect agents and place calls
	eventTimeout = 10 * time.Second
)

// benchInflight are the loads measured: how many switches are in progress
// at once, each by a goroutine of its own that starts the next when the
// last is done (a closed loop).
var benchInflight = []int{2, 8, 32, 64}

// BenchmarkSwitch measures switching the active call (issue 2): resuming a
// held call, which holds the active one in the same step.
//
// domain calls Switchboard.Resume in process: the baseline. http+ws sends
// POST /api/calls/{id}/resume to the real server over loopback and times
// each switch from just before the request is sent to the moment the
// agent's websocket reader has the stateChanged event saying the call is
// Connected. Both are measured in the same run, so their ratio is what
// compares across machines.
//
// Setup (1,000 agents, 10,000 calls) happens once for domain and once for
// http+ws (which first measures memory on a throwaway setup), outside the
// timing; their inflight=N sub-benchmarks share it. Goroutine w of N
// switches agents w, w+N, w+2N, ... in turn, so each agent is switched by
// one goroutine only and it knows which of its calls are held.
//
// Metrics: switches/s; p50-µs and p99-µs, the latency of the call (domain)
// or of request → event (http+ws); rtt-p99-µs, the HTTP round trip alone;
// retained-B/switch, how much the live heap grew per switch (the embedded
// store keeps every event); heap-sys-MB, the heap the process holds from
// the system at the end of the timing (what the collector setting costs);
// events/switch, the events the domain published; and the memory figures
// of the setup (see memFigures). Throughput and latency depend on the
// collector, which the setup leaves idle: run at least -benchtime 20000x
// so that a timing spans several collections. The collector runs as
// switchboard serve runs it: at api.GCPercent unless GOGC is set.
func BenchmarkSwitch(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(api.GCPercent))
	}
	b.Run("domain", func(b *testing.B) {
		d := newDomainBench(b)
		for _, n := range benchInflight {
			b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
				b.ReportAllocs()
				events := d.pub.n.Load()
				drive(b, n, d.mem, func(i int) (sample, error) { return d.switchOnce(d.agents[i]) })
				b.ReportMetric(float64(d.pub.n.Load()-events)/float64(b.N), "events/switch")
			})
		}
	})
	b.Run("http+ws", func(b *testing.B) {
		w := newWebBench(b)
		for _, n := range benchInflight {
			b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
				b.ReportAllocs()
				drive(b, n, w.mem, func(i int) (sample, error) { return w.switchOnce(w.agents[i]) })
			})
		}
	})
}

// sample is one switch's latencies: event is until the event reached the
// agent (the call's return, in process), rtt the HTTP round trip alone.
type sample struct{ event, rtt time.Duration }

// memFigures are a setup's memory, in bytes of live heap after a GC.
type memFigures struct {
	perAgent       float64 // per connected agent without calls; http+ws: the server's share
	clientPerAgent float64 // http+ws: the load generator's share (websocket client, reader)
	stackPerAgent  float64 // http+ws: goroutine stacks, server and client together
	perCall        float64 // per call placed; http+ws: the server's share
	http           bool
}

func (m memFigures) report(b *testing.B) {
	if !m.http {
		b.ReportMetric(m.perAgent, "B/agent")
		b.ReportMetric(m.perCall, "B/call")
		return
	}
	b.ReportMetric(m.perAgent, "srv-B/agent")
	b.ReportMetric(m.clientPerAgent, "cli-B/agent")
	b.ReportMetric(m.stackPerAgent, "stack-B/agent")
	b.ReportMetric(m.perCall, "srv-B/call")
}

// drive runs b.N switches from inflight goroutines, each with one switch in
// progress at a time, and reports throughput, latencies and memory.
func drive(b *testing.B, inflight int, mem memFigures, do func(agent int) (sample, error)) {
	inflight = min(inflight, benchAgents)
	samples := make([][]sample, inflight)
	for w := range samples {
		samples[w] = make([]sample, 0, b.N/inflight+1)
	}
	heapBefore := liveHeap()
	var (
		tickets atomic.Int64
		failed  atomic.Bool
		errOnce sync.Once
		runErr  error
		wg      sync.WaitGroup
	)
	stopProfile := profileTimed(b)
	b.ResetTimer()
	start := time.Now()
	for w := range inflight {
		wg.Go(func() {
			agent := w
			for !failed.Load() && tickets.Add(1) <= int64(b.N) {
				s, err := do(agent)
				if err != nil {
					errOnce.Do(func() { runErr = err })
					failed.Store(true)
					return
				}
				samples[w] = append(samples[w], s)
				if agent += inflight; agent >= benchAgents {
					agent = w
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	stopProfile()
	if runErr != nil {
		b.Fatal(runErr)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms) // before liveHeap's collection
	retained := float64(liveHeap()-heapBefore) / float64(b.N)

	all := slices.Concat(samples...)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "switches/s")
	slices.SortFunc(all, func(x, y sample) int { return cmp.Compare(x.event, y.event) })
	b.ReportMetric(micros(percentile(all, 50).event), "p50-µs")
	b.ReportMetric(micros(percentile(all, 99).event), "p99-µs")
	if mem.http {
		slices.SortFunc(all, func(x, y sample) int { return cmp.Compare(x.rtt, y.rtt) })
		b.ReportMetric(micros(percentile(all, 99).rtt), "rtt-p99-µs")
	}
	b.ReportMetric(retained, "retained-B/switch")
	b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-sys-MB")
	mem.report(b)
}

// profileTimed starts a CPU profile of the timed loop alone when
// SWITCHBOARD_BENCH_CPUPROFILE names a file (-test.cpuprofile would also
// take in the setup, which dwarfs it); the returned func stops it. With
// several sub-benchmarks, the last one's profile is left in the file.
func profileTimed(b *testing.B) (stop func()) {
	path := os.Getenv("SWITCHBOARD_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// percentile returns the p-th percentile of sorted samples (nearest rank).
func percentile(sorted []sample, p int) sample {
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return sorted[max(i-1, 0)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// liveHeap returns the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// countingPublisher counts events and keeps none, so a long run does not
// grow it.
type countingPublisher struct{ n atomic.Int64 }

func (p *countingPublisher) Publish(calls.Event) { p.n.Add(1) }

// domainBench is the baseline: the Switchboard called in process, with the
// embedded store the server uses and a publisher that discards.
type domainBench struct {
	sb     *calls.Switchboard
	pub    *countingPublisher
	agents []*domainAgent
	mem    memFigures
}

type domainAgent struct {
	p      calls.Principal
	calls  [benchCalls]string
	active int // index of the Connected call
}

func benchAgentName(i int) string { return fmt.Sprintf("agent%04d", i) }

func newDomainBench(b *testing.B) *domainBench {
	b.Helper()
	ctx := context.Background()
	pub := &countingPublisher{}
	sb, err := calls.New(calls.Config{Store: store.NewMemory(), Publisher: pub, NewID: uuid.NewString})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sb.Close(ctx) })
	d := &domainBench{sb: sb, pub: pub, agents: make([]*domainAgent, benchAgents)}
	for i := range d.agents {
		name := benchAgentName(i)
		d.agents[i] = &domainAgent{p: calls.Principal{Identifier: calls.CommunicationUser(name), DisplayName: name, Role: calls.RoleAgent}}
	}

	heap0 := liveHeap()
	for _, a := range d.agents {
		detach, err := sb.Attach(ctx, a.p, func(calls.Snapshot) {})
		if err != nil {
			b.Fatalf("attach %s: %v", a.p.Identifier.RawID(), err)
		}
		b.Cleanup(func() { detach("") })
	}
	heap1 := liveHeap()
	req := calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}}
	for _, a := range d.agents {
		for j := range a.calls {
			c, err := sb.StartCall(ctx, a.p, req)
			if err != nil {
				b.Fatalf("start call: %v", err)
			}
			if c.State != calls.StateConnected {
				b.Fatalf("call to the echo bot is %s, want Connected", c.State)
			}
			a.calls[j], a.active = c.ID, j
		}
	}
	heap2 := liveHeap()
	d.mem = memFigures{
		perAgent: float64(heap1-heap0) / benchAgents,
		perCall:  float64(heap2-heap1) / (benchAgents * benchCalls),
	}
	return d
}

// switchOnce resumes the agent's next held call.
func (d *domainBench) switchOnce(a *domainAgent) (sample, error) {
	next := (a.active + 1) % benchCalls
	t0 := time.Now()
	c, err := d.sb.Resume(context.Background(), a.p, a.calls[next])
	took := time.Since(t0)
	if err != nil {
		return sample{}, fmt.Errorf("resume %s: %w", a.calls[next], err)
	}
	if c.State != calls.StateConnected {
		return sample{}, fmt.Errorf("resumed call %s is %s, want Connected", c.ID, c.State)
	}
	a.active = next
	return sample{event: took, rtt: took}, nil
}

// webBench is the real server on a loopback listener with 1,000 agents
// connected to the event stream.
type webBench struct {
	url    string
	client *http.Client
	agents []*webAgent
	mem    memFigures
	close  func()
}

// webAgent is one agent: a token, an event stream read by a goroutine of
// its own, and its calls.
type webAgent struct {
	auth   string // "Bearer <token>"
	conn   *websocket.Conn
	events chan arrival
	done   chan struct{} // closed when the reader has exited
	err    error         // why the reader exited; read after done

	calls  [benchCalls]string
	resume [benchCalls][]byte // each call's resume request, as sent
	active int                // index of the Connected call
	http   *agentConn         // the agent's keep-alive connection for switches
}

// agentConn is one agent's HTTP/1.1 keep-alive connection, used by one
// goroutine at a time: the load generator writes a request net/http
// serialized at setup and reads the answer with http.ReadResponse, on the
// goroutine that times it. An http.Client would add its pool and two
// goroutines per connection, which hand each request and answer over
// channels: load-generator work that competes with the server for the
// same two cores.
type agentConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// do sends one serialized request and returns the answer's status, its
// body read and dropped.
func (c *agentConn) do(req []byte) (int, error) {
	if _, err := c.conn.Write(req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		err = cmp.Or(err, errors.New("the server closed the keep-alive connection"))
	}
	return resp.StatusCode, err
}

// serializeRequest returns the bytes net/http sends for req.
func serializeRequest(req *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// arrival is a stateChanged event as the reader received it.
type arrival struct {
	callID string
	state  calls.CallState
	at     time.Time
}

// newWebBench measures the memory of a setup on a server of its own, closes
// it, and returns another for the timing: the allocation profile the
// measurement needs stays attached to every object it saw, and would slow
// the collector for as long as those live.
func newWebBench(b *testing.B) *webBench {
	b.Helper()
	m := startWeb(b, true)
	m.close()
	w := startWeb(b, false)
	w.mem = m.mem
	// Warm up: one switch per agent at the highest load, so that every
	// agent's keep-alive connection is open before the timing.
	hi := min(slices.Max(benchInflight), benchAgents)
	setupParallel(b, hi, func(g int) error {
		for i := g; i < benchAgents; i += hi {
			if _, err := w.switchOnce(w.agents[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return w
}

// startWeb starts the server and connects the agents, each with its calls;
// with measure, it profiles every allocation meanwhile, so that the
// server's heap can be told from the load generator's, and fills w.mem.
// Cleanup (or close, once) shuts everything down.
func startWeb(b *testing.B, measure bool) *webBench {
	b.Helper()
	goroutines0 := runtime.NumGoroutine()
	st := store.NewMemory()
	hub := api.NewHub(nil, 0)
	sb, err := calls.New(calls.Config{Store: st, Publisher: hub, NewID: uuid.NewString})
	if err != nil {
		b.Fatal(err)
	}
	tokens := api.NewTokens(adminKey, nil)
	srv := api.New(api.Config{Switchboard: sb, Hub: hub, Tokens: tokens, Ready: st.Ready})
	ts := httptest.NewServer(srv.Handler())
	transport := &http.Transport{MaxIdleConnsPerHost: 2 * benchAgents, DisableCompression: true}
	w := &webBench{url: ts.URL, client: &http.Client{Transport: transport}, agents: make([]*webAgent, benchAgents)}
	quit := make(chan struct{})
	var once sync.Once
	w.close = func() {
		once.Do(func() {
			close(quit)
			_ = sb.Close(context.Background())
			srv.Close() // closes every event stream after what is queued
			for _, a := range w.agents {
				if a != nil && a.conn != nil {
					a.conn.Close()
					<-a.done
				}
				if a != nil && a.http != nil {
					a.http.conn.Close()
				}
			}
			transport.CloseIdleConnections()
			ts.Close()
			waitGoroutines(b, goroutines0)
		})
	}
	b.Cleanup(w.close)

	for i := range w.agents {
		name := benchAgentName(i)
		tok, err := tokens.Mint(api.TokenRequest{Identity: calls.CommunicationUser(name), DisplayName: name, Role: calls.RoleAgent})
		if err != nil {
			b.Fatal(err)
		}
		w.agents[i] = &webAgent{auth: "Bearer " + tok.Token, events: make(chan arrival, 2*benchCalls), done: make(chan struct{})}
	}
	body, err := json.Marshal(calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}})
	if err != nil {
		b.Fatal(err)
	}
	// Open the keep-alive connections setup will use before measuring.
	setupParallel(b, setupWorkers, func(int) error { return w.get("/healthz") })

	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/api/events"
	connect := func() { setupParallel(b, benchAgents, func(i int) error { return w.agents[i].connect(wsURL, quit) }) }
	place := func() { setupParallel(b, benchAgents, func(i int) error { return w.placeCalls(w.agents[i], body) }) }
	if !measure {
		connect()
		place()
		return w
	}
	rate := runtime.MemProfileRate
	defer func() { runtime.MemProfileRate = rate }()
	runtime.MemProfileRate = 1
	srv0, cli0, stack0 := heapBySide()
	connect()
	srv1, cli1, stack1 := heapBySide()
	place()
	srv2, _, _ := heapBySide()
	w.mem = memFigures{
		http:           true,
		perAgent:       float64(srv1-srv0) / benchAgents,
		clientPerAgent: float64(cli1-cli0) / benchAgents,
		stackPerAgent:  float64(stack1-stack0) / benchAgents,
		perCall:        float64(srv2-srv1) / (benchAgents * benchCalls),
	}
	return w
}

// setupParallel runs f(0) to f(n-1) on at most setupWorkers goroutines and
// fails b with the first error.
func setupParallel(b *testing.B, n int, f func(i int) error) {
	b.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range min(n, setupWorkers) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Fatal(errs[0])
	}
}

// get sends a GET and checks for 200.
func (w *webBench) get(path string) error {
	resp, err := w.client.Get(w.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, want 200", path, resp.StatusCode)
	}
	return nil
}

// connect opens the agent's event stream, reads the snapshot and starts
// the reader.
func (a *webAgent) connect(url string, quit <-chan struct{}) error {
	d := websocket.Dialer{HandshakeTimeout: eventTimeout}
	conn, resp, err := d.Dial(url, http.Header{"Authorization": {a.auth}})
	if err != nil {
		close(a.done)
		return fmt.Errorf("dial events: %v (status %d)", err, statusOf(resp))
	}
	a.conn = conn
	_, msg, err := conn.ReadMessage()
	if err != nil || !bytes.Contains(msg, []byte(`"type":"snapshot"`)) {
		close(a.done)
		return fmt.Errorf("first event %.60s (%v), want a snapshot", msg, err)
	}
	go a.read(quit)
	return nil
}

var (
	stateChangedType = []byte(`"type":"stateChanged"`)
	callIDKey        = []byte(`"callId":"`)
	dataKey          = []byte(`"data":{`)
	stateKey         = []byte(`"state":"`)
)

// read is the agent's reader: it passes on each stateChanged event with the
// time it arrived.
func (a *webAgent) read(quit <-chan struct{}) {
	defer close(a.done)
	for {
		_, msg, err := a.conn.ReadMessage()
		if err != nil {
			a.err = err
			return
		}
		at := time.Now()
		if !bytes.Contains(msg, stateChangedType) {
			continue
		}
		callID, state, err := parseStateChanged(msg)
		if err != nil {
			a.err = err
			return
		}
		select {
		case a.events <- arrival{callID: callID, state: state, at: at}:
		case <-quit:
			return
		}
	}
}

// parseStateChanged picks the call id and the new state out of a
// stateChanged event without decoding all of it: the ids and states the
// switchboard gives need no escaping, so the value runs to the next quote.
func parseStateChanged(msg []byte) (string, calls.CallState, error) {
	id, ok := stringAfter(msg, callIDKey)
	i := bytes.Index(msg, dataKey)
	if !ok || i < 0 {
		return "", "", fmt.Errorf("stateChanged event without callId or data: %s", msg)
	}
	st, ok := stringAfter(msg[i:], stateKey)
	if !ok {
		return "", "", fmt.Errorf("stateChanged event without data.state: %s", msg)
	}
	var state calls.CallState
	switch string(st) {
	case string(calls.StateConnected):
		state = calls.StateConnected
	case string(calls.StateLocalHold):
		state = calls.StateLocalHold
	default:
		state = calls.CallState(st)
	}
	return string(id), state, nil
}

// stringAfter returns the JSON string value that follows key (which ends
// with the opening quote), up to the closing quote.
func stringAfter(msg, key []byte) ([]byte, bool) {
	i := bytes.Index(msg, key)
	if i < 0 {
		return nil, false
	}
	v := msg[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 || bytes.IndexByte(v[:j], '\\') >= 0 {
		return nil, false
	}
	return v[:j], true
}

// placeCalls places the agent's calls to the echo bot over HTTP; each
// holds the one before. It returns once the stream said the last of those
// went on hold, and drops what the reader passed on until then.
func (w *webBench) placeCalls(a *webAgent, body []byte) error {
	for j := range a.calls {
		req, err := http.NewRequest(http.MethodPost, w.url+"/api/calls", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", a.auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := w.client.Do(req)
		if err != nil {
			return err
		}
		var c calls.Call
		err = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated || c.State != calls.StateConnected {
			return fmt.Errorf("POST /api/calls: status %d, call %s (%v); want 201 and Connected", resp.StatusCode, c.State, err)
		}
		a.calls[j] = c.ID
		resume, err := http.NewRequest(http.MethodPost, w.url+"/api/calls/"+c.ID+"/resume", nil)
		if err != nil {
			return err
		}
		resume.Header.Set("Authorization", a.auth)
		if a.resume[j], err = serializeRequest(resume); err != nil {
			return err
		}
		a.active = j
	}
	return a.await(a.calls[benchCalls-2], calls.StateLocalHold)
}

// await waits for the reader to pass on the event that call went to state,
// dropping the ones before it, and returns when it arrived.
func (a *webAgent) await(call string, state calls.CallState) error {
	_, err := a.awaitAt(call, state)
	return err
}

func (a *webAgent) awaitAt(call string, state calls.CallState) (time.Time, error) {
	timeout := time.NewTimer(eventTimeout)
	defer timeout.Stop()
	for {
		select {
		case ev := <-a.events:
			if ev.callID == call && ev.state == state {
				return ev.at, nil
			}
		case <-a.done:
			return time.Time{}, fmt.Errorf("event stream closed waiting for %s to go %s: %v", call, state, a.err)
		case <-timeout.C:
			return time.Time{}, fmt.Errorf("no event within %v saying %s went %s", eventTimeout, call, state)
		}
	}
}

// switchOnce resumes the agent's next held call over HTTP and waits for
// the stream to say it is Connected.
func (w *webBench) switchOnce(a *webAgent) (sample, error) {
	next := (a.active + 1) % benchCalls
	if a.http == nil {
		conn, err := net.Dial("tcp", strings.TrimPrefix(w.url, "http://"))
		if err != nil {
			return sample{}, err
		}
		a.http = &agentConn{conn: conn, r: bufio.NewReader(conn)}
	}
	t0 := time.Now()
	status, err := a.http.do(a.resume[next])
	rtt := time.Since(t0)
	if err != nil {
		return sample{}, fmt.Errorf("resuming %s: %w", a.calls[next], err)
	}
	if status != http.StatusOK {
		return sample{}, fmt.Errorf("resuming %s: status %d, want 200", a.calls[next], status)
	}
	at, err := a.awaitAt(a.calls[next], calls.StateConnected)
	if err != nil {
		return sample{}, err
	}
	a.active = next
	return sample{event: at.Sub(t0), rtt: rtt}, nil
}

// heapBySide returns the live heap the memory profile attributes to the
// server (allocated under net/http's server or this module's packages) and
// to the rest (the load generator), and the goroutine stacks in use. It is
// exact only while runtime.MemProfileRate is 1.
func heapBySide() (server, client, stacks int64) {
	// The profile lags up to two collections behind.
	for range 3 {
		runtime.GC()
	}
	n, _ := runtime.MemProfile(nil, true)
	var recs []runtime.MemProfileRecord
	for {
		recs = make([]runtime.MemProfileRecord, n+n/4+16)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	for i := range recs {
		if serverSide(recs[i].Stack()) {
			server += recs[i].InUseBytes()
		} else {
			client += recs[i].InUseBytes()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return server, client, int64(ms.StackInuse)
}

const modulePrefix = "github.com/switchboard/switchboard/internal/"

func serverSide(stk []uintptr) bool {
	frames := runtime.CallersFrames(stk)
	for {
		f, more := frames.Next()
		fn := f.Function
		switch {
		case strings.HasPrefix(fn, "net/http.(*conn)."), strings.HasPrefix(fn, "net/http.(*Server)."):
			return true
		case strings.HasPrefix(fn, modulePrefix) && !strings.HasPrefix(fn, modulePrefix+"api_test."):
			return true
		}
		if !more {
			return false
		}
	}
}

// waitGoroutines fails b if goroutines started since there were want are
// still running a while after everything was closed.
func waitGoroutines(b *testing.B, want int) {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			b.Errorf("%d goroutines still running after cleanup, want %d", runtime.NumGoroutine(), want)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
