package main

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
)

// streamLatencies reads an event stream and sends, for each stateChanged
// of call, how long after the event's time it arrived; total counts every
// event read. It ends when the stream does.
func streamLatencies(conn *websocket.Conn, call string, out chan<- time.Duration, total *int64) {
	for {
		var ev struct {
			Type   string    `json:"type"`
			CallID string    `json:"callId"`
			At     time.Time `json:"at"`
		}
		if err := conn.ReadJSON(&ev); err != nil {
			close(out)
			return
		}
		arrived := time.Now()
		*total++
		if ev.Type == string(calls.EventStateChanged) && ev.CallID == call {
			out <- arrived.Sub(ev.At)
		}
	}
}

// TestClusterRemoteStreamFigures measures what an agent's stream on a node
// that does not own her costs against one on the owner: alice (owned by
// A) has a stream on A and one on B, and holds and resumes a call on A
// 100 times. It logs each stream's latency (from the event's time to its
// arrival at the client: median and 95th percentile) and the NATS messages
// per event, all clients in and out, less the idle traffic (leases,
// heartbeats, keepalives), with and without the stream on B. The figures
// are logged, not asserted (BENCHMARKS.md).
func TestClusterRemoteStreamFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("measures")
	}
	natsSrv := natstest.Start(t)
	c := &testCluster{t: t, url: natsSrv.URL(), cfg: ClusterConfig{URL: natsSrv.URL(), ForwardTimeout: time.Second}}
	a, b := c.start("fig-a"), c.start("fig-b")
	waitPeers(t, a, "fig-b")
	alice := mint(t, "alice", calls.RoleAgent)
	if status, body, _ := send(t, a, "GET", "/api/me", alice, ""); status != http.StatusOK {
		t.Fatalf("GET /api/me on a: %d %s", status, body)
	}
	call := startCall(t, "http://"+a.Addr, alice)
	dial := func(m *Main) *websocket.Conn {
		conn, _, err := websocket.DefaultDialer.Dial("ws://"+m.Addr+"/api/events", http.Header{"Authorization": {"Bearer " + alice}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	const cycles = 100
	// phase runs the holds and resumes with streams on the nodes given,
	// and answers the latencies per stream and the NATS messages per event.
	phase := func(nodes ...*Main) (lat [][]time.Duration, msgsPerEvent float64) {
		chans := make([]chan time.Duration, len(nodes))
		totals := make([]int64, len(nodes))
		conns := make([]*websocket.Conn, len(nodes))
		for i, m := range nodes {
			conns[i] = dial(m)
			chans[i] = make(chan time.Duration, 2*cycles+8)
			go streamLatencies(conns[i], call, chans[i], &totals[i])
		}
		lat = make([][]time.Duration, len(nodes))
		time.Sleep(500 * time.Millisecond) // the snapshots are read
		const idle = 2 * time.Second
		m0, _ := natsSrv.Traffic()
		time.Sleep(idle)
		m1, _ := natsSrv.Traffic()
		idleRate := float64(m1-m0) / idle.Seconds()
		start := time.Now()
		for i := range 2 * cycles {
			op := "/hold"
			if i%2 == 1 {
				op = "/resume"
			}
			post(t, "http://"+a.Addr+"/api/calls/"+call+op, alice, "")
			for j, ch := range chans {
				select {
				case d, ok := <-ch:
					if !ok {
						t.Fatalf("stream %d ended", j)
					}
					lat[j] = append(lat[j], d)
				case <-time.After(10 * time.Second):
					t.Fatalf("stream %d: no stateChanged within 10 s", j)
				}
			}
		}
		time.Sleep(200 * time.Millisecond) // the last events' relay
		elapsed := time.Since(start)
		m2, _ := natsSrv.Traffic()
		for _, conn := range conns {
			conn.Close()
		}
		for _, ch := range chans {
			for range ch { // until the reader is done with totals
			}
		}
		events := float64(totals[0] - 1) // less the snapshot
		return lat, (float64(m2-m1) - idleRate*elapsed.Seconds()) / events
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(p*float64(len(s)-1))]
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	loadavg := func() string {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.TrimSpace(string(b))
	}
	t.Logf("loadavg before: %s", loadavg())
	lat, withRemote := phase(a, b)
	_, localOnly := phase(a)
	t.Logf("latency, local stream on the owner: median %.2f ms, p95 %.2f ms (%d events)", ms(pct(lat[0], .5)), ms(pct(lat[0], .95)), len(lat[0]))
	t.Logf("latency, remote stream on another node: median %.2f ms, p95 %.2f ms (%d events)", ms(pct(lat[1], .5)), ms(pct(lat[1], .95)), len(lat[1]))
	t.Logf("NATS messages per event (all clients, in and out, idle subtracted): %.2f with the remote stream, %.2f without", withRemote, localOnly)
	t.Logf("loadavg after: %s", loadavg())
}
