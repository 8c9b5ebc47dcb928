package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/benchenv"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/store"
)

// BenchmarkClusterSwitch measures issue 14's hold switch over HTTP+ws on a
// cluster of two nodes, A and B, on one in-process NATS: an agent owned by
// A resumes one of her held calls, which holds her active one in the same
// step. In "same-node" (the baseline) her callees are owned by A too; in
// "cross-node" by B, so each switch also tells B that one callee's call is
// on hold and another's is not.
//
// Each switch is timed from just before its request to the moment the
// agent's websocket has the stateChanged event saying the resumed call is
// Connected (p50-µs, p99-µs), and to the moment the resumed call's callee
// has its own Connected (far-p99-µs: on B in cross-node). nats-msgs/switch
// and nats-bytes/switch are what the NATS server counted in and out during
// the timing, less what it counted in as long a time when idle just before
// (the leases' renewals, the heartbeats: nats-idle-msgs/s). Both modes share the cluster and
// its background, and alternate at each load. Mind that every call of the
// cross-node mode also carries audio between the nodes, 50 RTP packets a
// second each way, for as long as the benchmark runs (1,000 calls: 100,000
// packets a second on the one host):
//
//	cat /proc/loadavg; go test -run '^$' -bench BenchmarkClusterSwitch -benchtime 5000x ./cmd/switchboard/
//
// SWITCHBOARD_BENCH_AGENTS (100) and SWITCHBOARD_BENCH_CALLS (10 per
// agent) set the size; each call has a callee of its own, connected to the
// event stream on its node, since a callee holding several calls would put
// all but one on hold. SWITCHBOARD_BENCH_LEASE_TTL (seconds, default 3 as
// in serve) sets the leases' life. The nodes log their warnings and errors
// to stderr: a node whose own lease expires (its renewals starved of CPU)
// says so there and drains, and the next set-up fails with 503 draining.
//
// On real hosts, SWITCHBOARD_BENCH_NODES names two running `serve
// --cluster` nodes instead (startSwitchNodes): the load generator is then
// this process alone, and the nodes, NATS and the network are real.
func BenchmarkClusterSwitch(b *testing.B) {
	agents, perAgent := benchenv.Count(b, "SWITCHBOARD_BENCH_AGENTS", 100), benchenv.Count(b, "SWITCHBOARD_BENCH_CALLS", 10)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)
	nodes := startSwitchNodes(b, agents*perAgent)
	modes := []struct {
		name   string
		callee string
	}{{"same-node", nodes.a}, {"cross-node", nodes.b}}
	// Both modes are set up before either is timed, so that each runs
	// beside the other's calls: the cross-node calls' audio weighs on
	// both alike.
	setups := make([][]*switchAgent, len(modes))
	for i, mode := range modes {
		var err error
		if setups[i], err = setUpSwitchAgents(b, client, nodes.key, mode.name, nodes.a, mode.callee, agents, perAgent); err != nil {
			b.Fatal(err)
		}
	}
	for _, inflight := range []int{2, 8, 64} {
		for i, mode := range modes {
			b.Run(fmt.Sprintf("%s/inflight=%d", mode.name, inflight), func(b *testing.B) {
				driveSwitches(b, client, nodes.a, nodes.traffic, setups[i], inflight)
			})
		}
	}
}

// switchNodes is where BenchmarkClusterSwitch runs: the HTTP addresses
// (host:port) of nodes A and B, the admin key they share (to mint tokens),
// and what NATS counted so far, messages and bytes in and out.
type switchNodes struct {
	a, b, key string
	traffic   func() (msgs, bytes int64)
}

// startSwitchNodes starts nodes A and B in this process on an in-process
// NATS, or, with SWITCHBOARD_BENCH_NODES="hostA:port,hostB:port", uses
// two `serve --cluster` nodes running elsewhere (plain HTTP listeners),
// whose admin key is SWITCHBOARD_BENCH_ADMIN_KEY and whose NATS server's
// monitoring port (nats-server -m 8222) is SWITCHBOARD_BENCH_NATS_MONITOR
// (http://host:8222; without it the NATS figures are 0).
func startSwitchNodes(b *testing.B, nCalls int) switchNodes {
	if remote := os.Getenv("SWITCHBOARD_BENCH_NODES"); remote != "" {
		addrs := strings.Split(remote, ",")
		key := os.Getenv("SWITCHBOARD_BENCH_ADMIN_KEY")
		if len(addrs) != 2 || key == "" {
			b.Fatalf("SWITCHBOARD_BENCH_NODES=%q: want two host:port, and SWITCHBOARD_BENCH_ADMIN_KEY set", remote)
		}
		monitor := os.Getenv("SWITCHBOARD_BENCH_NATS_MONITOR")
		return switchNodes{a: addrs[0], b: addrs[1], key: key, traffic: func() (int64, int64) {
			if monitor == "" {
				return 0, 0
			}
			m, by, err := natsVarzTraffic(monitor)
			if err != nil {
				b.Fatal(err)
			}
			return m, by
		}}
	}
	ttl := time.Duration(benchenv.Count(b, "SWITCHBOARD_BENCH_LEASE_TTL", 3)) * time.Second
	nats := natstest.Start(b)
	cfg := ClusterConfig{URL: nats.URL(), LeaseBucket: "bench_leases", LeaseTTL: ttl,
		SubjectPrefix: "bench", ForwardTimeout: 5 * time.Second}
	// Each call across nodes holds an RTP leg (a port pair) on each node
	// for as long as it lives, held or not, so the nodes' ranges (the
	// default holds 500 calls) are sized to the calls, apart since both
	// nodes listen on one host.
	start := func(id string, firstPort int) *Main {
		c := cfg
		c.NodeID, c.RTPPorts = id, fmt.Sprintf("%d-%d", firstPort, firstPort+4*nCalls)
		m := &Main{Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, Cluster: c},
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", id),
			Stdout: io.Discard, Store: store.NewMemory()}
		if err := m.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close(context.Background()) })
		return m
	}
	a, bNode := start("bench-a", 20000), start("bench-b", 20000+4*nCalls+2)
	return switchNodes{a: a.Addr, b: bNode.Addr, key: testAdminKey, traffic: nats.Traffic}
}

// natsVarzTraffic reads a NATS server's messages and bytes in and out,
// all clients together, from its monitoring endpoint's /varz.
func natsVarzTraffic(monitor string) (msgs, bytes int64, err error) {
	resp, err := http.Get(strings.TrimSuffix(monitor, "/") + "/varz")
	if err != nil {
		return 0, 0, fmt.Errorf("NATS monitoring: %w", err)
	}
	defer resp.Body.Close()
	var v struct {
		InMsgs   int64 `json:"in_msgs"`
		OutMsgs  int64 `json:"out_msgs"`
		InBytes  int64 `json:"in_bytes"`
		OutBytes int64 `json:"out_bytes"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("NATS monitoring: GET /varz: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, 0, fmt.Errorf("NATS monitoring: /varz: %w", err)
	}
	return v.InMsgs + v.OutMsgs, v.InBytes + v.OutBytes, nil
}

// switchAgent is one agent of the benchmark and its calls' callees.
type switchAgent struct {
	auth    string
	events  *stateEvents
	calls   []string // the agent's call ids
	callees []switchCallee
	active  int // index of the Connected call
}

// switchCallee is the callee of one call: its own event stream and its
// view's call id.
type switchCallee struct {
	events *stateEvents
	call   string
}

// stateEvents reads one event stream in a goroutine of its own and hands
// on its stateChanged events (and incomingCall ids) as they arrive.
type stateEvents struct {
	conn     *websocket.Conn
	changes  chan stateArrival
	incoming chan string
	done     chan struct{}
}

type stateArrival struct {
	call  string
	state calls.CallState
	at    time.Time
}

// openStateEvents connects auth's identity on the node at addr; the
// connection is closed when owner ends.
func openStateEvents(owner testing.TB, addr, auth string) (*stateEvents, error) {
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/events", http.Header{"Authorization": {auth}})
	if err != nil {
		return nil, fmt.Errorf("dial events: %w", err)
	}
	s := &stateEvents{conn: conn, changes: make(chan stateArrival, 1024), incoming: make(chan string, 16), done: make(chan struct{})}
	owner.Cleanup(func() { conn.Close(); <-s.done })
	snapshot := make(chan struct{})
	go func() {
		defer close(s.done)
		for first := true; ; first = false {
			_, raw, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if first {
				close(snapshot) // the identity is connected: it can be called
			}
			at := time.Now()
			var ev struct {
				Type   calls.EventType `json:"type"`
				CallID string          `json:"callId"`
				Data   json.RawMessage `json:"data"`
			}
			if json.Unmarshal(raw, &ev) != nil {
				continue
			}
			switch ev.Type {
			case calls.EventStateChanged:
				var d calls.StateChangedData
				if json.Unmarshal(ev.Data, &d) == nil {
					s.changes <- stateArrival{call: ev.CallID, state: d.State, at: at}
				}
			case calls.EventIncomingCall:
				var d calls.IncomingCallData
				if json.Unmarshal(ev.Data, &d) == nil {
					s.incoming <- d.IncomingCall.ID
				}
			}
		}
	}()
	select {
	case <-snapshot:
	case <-s.done:
		return nil, errors.New("event stream closed before its snapshot")
	}
	return s, nil
}

// await waits for call to reach state, dropping the other changes.
func (s *stateEvents) await(call string, state calls.CallState) (time.Time, error) {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-s.changes:
			if got.call == call && got.state == state {
				return got.at, nil
			}
		case <-s.done:
			return time.Time{}, fmt.Errorf("event stream closed waiting for %s to be %s", call, state)
		case <-timeout:
			return time.Time{}, fmt.Errorf("%s not %s within 10 s", call, state)
		}
	}
}

func benchAuth(adminKey, user string) string {
	m, err := api.NewTokens(adminKey, nil).Mint(api.TokenRequest{
		Identity: calls.CommunicationUser(user), DisplayName: user, Role: calls.RoleAgent})
	if err != nil {
		panic(err) // a fixed, valid request
	}
	return "Bearer " + m.Token
}

// benchPost sends a POST and answers the JSON body's id.
func benchPost(client *http.Client, url, auth string, body any) (string, error) {
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(http.MethodPost, url, r)
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	var out struct{ ID string }
	_ = json.Unmarshal(raw, &out)
	return out.ID, nil
}

// setUpSwitchAgents connects agents on the node at a, each with perAgent
// calls accepted by callees connected to the node at calleeNode, tokens
// minted with adminKey; 16 agents at a time. The connections last as long
// as owner.
func setUpSwitchAgents(owner testing.TB, client *http.Client, adminKey, mode, a, calleeNode string, agents, perAgent int) ([]*switchAgent, error) {
	out := make([]*switchAgent, agents)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		setErr  error
	)
	for range min(16, agents) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < agents; i = int(next.Add(1)) - 1 {
				ag, err := setUpSwitchAgent(owner, client, adminKey, fmt.Sprintf("%s-agent%03d", mode, i), a, calleeNode, perAgent)
				if err != nil {
					errOnce.Do(func() { setErr = err })
					return
				}
				out[i] = ag
			}
		})
	}
	wg.Wait()
	return out, setErr
}

func setUpSwitchAgent(owner testing.TB, client *http.Client, adminKey, name, a, calleeNode string, perAgent int) (*switchAgent, error) {
	ag := &switchAgent{auth: benchAuth(adminKey, name)}
	var err error
	if ag.events, err = openStateEvents(owner, a, ag.auth); err != nil {
		return nil, err
	}
	for j := range perAgent {
		callee := fmt.Sprintf("%s-callee%02d", name, j)
		var ce switchCallee
		if ce.events, err = openStateEvents(owner, calleeNode, benchAuth(adminKey, callee)); err != nil {
			return nil, err
		}
		id, err := benchPost(client, "http://"+a+"/api/calls", ag.auth,
			map[string]any{"participants": []map[string]string{{"communicationUserId": callee}}})
		if err != nil {
			return nil, err
		}
		select {
		case ce.call = <-ce.events.incoming:
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("%s: no incoming call", callee)
		}
		if _, err := benchPost(client, "http://"+calleeNode+"/api/incoming-calls/"+ce.call+"/accept", benchAuth(adminKey, callee), nil); err != nil {
			return nil, err
		}
		if _, err := ag.events.await(id, calls.StateConnected); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		ag.calls, ag.callees, ag.active = append(ag.calls, id), append(ag.callees, ce), j
	}
	return ag, nil
}

// driveSwitches runs b.N switches from inflight goroutines, goroutine w
// switching agents w, w+inflight, ... in turn, and reports the figures.
func driveSwitches(b *testing.B, client *http.Client, a string, traffic func() (msgs, bytes int64), agents []*switchAgent, inflight int) {
	inflight = min(inflight, len(agents))
	idle := 2 * time.Second
	m0, by0 := traffic()
	time.Sleep(idle)
	m1, by1 := traffic()
	idleMsgs, idleBytes := float64(m1-m0)/idle.Seconds(), float64(by1-by0)/idle.Seconds()

	type sample struct{ agent, far time.Duration }
	samples := make([][]sample, inflight)
	var (
		tickets atomic.Int64
		failed  atomic.Bool
		errOnce sync.Once
		runErr  error
		wg      sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for w := range inflight {
		wg.Go(func() {
			i := w
			for !failed.Load() && tickets.Add(1) <= int64(b.N) {
				ag := agents[i]
				next := (ag.active + 1) % len(ag.calls)
				t0 := time.Now()
				_, err := benchPost(client, "http://"+a+"/api/calls/"+ag.calls[next]+"/resume", ag.auth, nil)
				var atAgent, atFar time.Time
				if err == nil {
					atAgent, err = ag.events.await(ag.calls[next], calls.StateConnected)
				}
				if err == nil {
					ce := ag.callees[next]
					atFar, err = ce.events.await(ce.call, calls.StateConnected)
				}
				if err != nil {
					errOnce.Do(func() { runErr = err })
					failed.Store(true)
					return
				}
				ag.active = next
				samples[w] = append(samples[w], sample{atAgent.Sub(t0), atFar.Sub(t0)})
				if i += inflight; i >= len(agents) {
					i = w
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	m2, by2 := traffic()
	if runErr != nil {
		b.Fatal(runErr)
	}
	all := slices.Concat(samples...)
	n := float64(len(all))
	pct := func(d []time.Duration, p int) float64 {
		slices.Sort(d)
		i := (len(d)*p + 99) / 100
		return float64(d[max(i-1, 0)]) / float64(time.Microsecond)
	}
	agentLat, farLat := make([]time.Duration, len(all)), make([]time.Duration, len(all))
	for i, s := range all {
		agentLat[i], farLat[i] = s.agent, s.far
	}
	b.ReportMetric(n/elapsed.Seconds(), "switches/s")
	b.ReportMetric(pct(agentLat, 50), "p50-µs")
	b.ReportMetric(pct(agentLat, 99), "p99-µs")
	b.ReportMetric(pct(farLat, 99), "far-p99-µs")
	b.ReportMetric((float64(m2-m1)-idleMsgs*elapsed.Seconds())/n, "nats-msgs/switch")
	b.ReportMetric((float64(by2-by1)-idleBytes*elapsed.Seconds())/n, "nats-bytes/switch")
	b.ReportMetric(idleMsgs, "nats-idle-msgs/s")
}

// TestNATSVarzTraffic: BenchmarkClusterSwitch on real hosts reads NATS's
// counts from the server's monitoring /varz.
func TestNATSVarzTraffic(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/varz" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"server_id":"x","in_msgs":10,"out_msgs":32,"in_bytes":1000,"out_bytes":2500,"connections":3}`)
	}))
	defer srv.Close()
	msgs, bytes, err := natsVarzTraffic(srv.URL + "/")
	if err != nil || msgs != 42 || bytes != 3500 {
		t.Errorf("natsVarzTraffic = %d, %d, %v; want 42, 3500, nil", msgs, bytes, err)
	}
	if _, _, err := natsVarzTraffic(srv.URL + "/nothing"); err == nil {
		t.Error("natsVarzTraffic of a path that is no monitoring port: no error")
	}
}
