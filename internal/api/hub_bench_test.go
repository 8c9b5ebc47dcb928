package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
)

// BenchmarkHubFanout measures the hub delivering events (issue 14): each
// op is one Hub.Publish of a small supervised event of alice's, delivered
// over real websockets (loopback) to alice's connection and to every
// supervisor's, and read there. nobody publishes to an identity with no
// connection and no supervisor connected (what it costs to keep events for
// replay when nobody listens). The publisher keeps at most fanoutWindow
// events ahead of the slowest reader, so no client falls a queue behind.
func BenchmarkHubFanout(b *testing.B) {
	b.Run("nobody", func(b *testing.B) {
		f := newFanout(b, 0, false)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			f.hub.Publish(f.event("8:acs:nobody"))
		}
	})
	for _, sups := range []int{0, 8, 32} {
		b.Run(fmt.Sprintf("supervisors=%d", sups), func(b *testing.B) {
			f := newFanout(b, sups, true)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				f.waitBehind(i - fanoutWindow)
				f.hub.Publish(f.event("8:acs:alice"))
			}
			f.waitBehind(b.N)
			b.StopTimer()
			b.ReportMetric(float64(b.N*(sups+1))/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

const fanoutWindow = 256

type fanout struct {
	hub *api.Hub

	mu     sync.Mutex
	cond   *sync.Cond
	read   []int // events read by each reader, after its snapshot
	target int   // what waitBehind waits for
	ended  error
}

func (f *fanout) event(agent string) calls.Event {
	return calls.Event{
		Type: calls.EventIsMutedChanged, At: time.Now(), AgentID: agent, CallID: "bench-call",
		Data: map[string]bool{"isMuted": true}, Supervised: true,
	}
}

// waitBehind waits until every reader has read more than n events.
func (f *fanout) waitBehind(n int) {
	if n < 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.target = n
	for f.ended == nil && slicesMin(f.read) < n {
		f.cond.Wait()
	}
	if f.ended != nil {
		panic(f.ended)
	}
}

func slicesMin(xs []int) int {
	m := int(^uint(0) >> 1)
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

// newFanout starts a server and connects alice (when agent) and sups
// supervisors, each read by a goroutine of its own.
func newFanout(b *testing.B, sups int, agent bool) *fanout {
	b.Helper()
	st := store.NewMemory()
	hub := api.NewHub(nil, 0)
	sb, err := calls.New(calls.Config{Store: st, Publisher: hub, NewID: uuid.NewString})
	if err != nil {
		b.Fatal(err)
	}
	tokens := api.NewTokens(adminKey, nil)
	srv := api.New(api.Config{Switchboard: sb, Hub: hub, Tokens: tokens, Ready: st.Ready, Numbers: st})
	ts := httptest.NewServer(srv.Handler())
	f := &fanout{hub: hub}
	f.cond = sync.NewCond(&f.mu)
	var conns []*websocket.Conn
	var wg sync.WaitGroup
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		_ = sb.Close(context.Background())
		srv.Close()
		ts.Close()
	})
	var who []api.TokenRequest
	if agent {
		who = append(who, apiTokenRequest("alice", calls.RoleAgent, 3600))
	}
	for i := range sups {
		who = append(who, apiTokenRequest(fmt.Sprint("sup", i), calls.RoleSupervisor, 3600))
	}
	f.read = make([]int, len(who))
	for i, req := range who {
		tok, err := tokens.Mint(req)
		if err != nil {
			b.Fatal(err)
		}
		conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/api/events", http.Header{"Authorization": {"Bearer " + tok.Token}})
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, conn)
		if _, _, err := conn.ReadMessage(); err != nil { // the snapshot
			b.Fatal(err)
		}
		wg.Go(func() {
			for {
				_, msg, err := conn.ReadMessage()
				f.mu.Lock()
				if err != nil {
					if f.ended == nil {
						f.ended = fmt.Errorf("reader %d: %w", i, err)
					}
					f.cond.Broadcast()
					f.mu.Unlock()
					return
				}
				if strings.Contains(string(msg), "bench-call") {
					f.read[i]++
					if f.read[i]%32 == 0 || f.read[i] == f.target {
						f.cond.Broadcast()
					}
				}
				f.mu.Unlock()
			}
		})
	}
	// Supervisors see each other connect: let that settle before timing.
	time.Sleep(50 * time.Millisecond)
	return f
}
