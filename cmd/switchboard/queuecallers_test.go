package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/routing"
)

// TestQueuePionCallers: the real program with real media, 10 agents and
// queued callers on pion WebRTC phones (20; SWITCHBOARD_QUEUE_CALLERS sets
// how many, in rounds of 10: 100 for the figure). Each round the callers enter one after the
// other; each call is offered to the longest-idle Available agent (the
// first round: the order they connected in; later ones: the order they
// hung up in, their wrap-ups ending in that order), never before her
// wrap-up ends, and once she accepts, the caller's tone reaches her ear.
// Then on a second queue an agent lets two offers ring out: the call moves
// on to the other agent, and the second miss in a row marks her Away. The
// stats add up to what happened.
func TestQueuePionCallers(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end with 32 WebRTC phones")
	}
	const nAgents, custHz = 10, 400
	nCalls := 20
	if n, err := strconv.Atoi(os.Getenv("SWITCHBOARD_QUEUE_CALLERS")); err == nil && n > 0 {
		nCalls = (n + nAgents - 1) / nAgents * nAgents
	}
	const wrapUp = 2 * time.Second
	m := startMediaServer(t, MediaConfig{Grace: time.Minute, QueueHold: QueueHoldConfig{PromptEvery: time.Minute}})
	base := "http://" + m.Addr
	_, connect := softphones(t, base)

	type agent = queueAgent
	agents := make([]*agent, nAgents)
	var members []string
	for i := range agents {
		name := fmt.Sprintf("agent%d", i)
		a := &agent{raw: "8:acs:" + name, tok: mint(t, name, calls.RoleAgent)}
		a.next = pumpEvents(t, m.Addr, a.tok)
		firstSnapshots(t, a.next)
		a.ph = connect(a.tok, float64(1100+100*i))
		agents[i] = a
		members = append(members, `{"agent":"`+a.raw+`"}`)
		time.Sleep(5 * time.Millisecond) // a distinct idle time each: agent0 the longest
	}
	post(t, base+"/api/queues", testAdminKey, `{"name":"support","ringTimeoutSeconds":60,"serviceLevelSeconds":60,"wrapUpSeconds":`+
		strconv.Itoa(int(wrapUp/time.Second))+`,"members":[`+strings.Join(members, ",")+`]}`)

	order := agents // who is idle the longest, first
	began := time.Now()
	for round := 0; round*nAgents < nCalls; round++ {
		// The callers of this round enter, oldest first.
		callers := make([]string, nAgents)
		for k := range callers {
			name := fmt.Sprintf("caller%03d", round*nAgents+k)
			tok := mint(t, name, calls.RoleCaller)
			connect(tok, custHz)
			post(t, base+"/api/calls", tok, `{"queue":"support"}`)
			callers[k] = "8:acs:" + name
		}
		// The k-th longest idle agent is offered the k-th call.
		incoming := make([]string, nAgents)
		for k, a := range order {
			ev := waitEvent(t, a.next, "incomingCall")
			in := ev["data"].(map[string]any)["incomingCall"].(map[string]any)
			from := in["callerInfo"].(map[string]any)["identifier"].(map[string]any)["rawId"]
			if from != callers[k] {
				t.Fatalf("round %d: %s (idle the longest but %d) was offered %v's call, want %s's", round, a.raw, k, from, callers[k])
			}
			incoming[k] = in["id"].(string)
			if round > 0 { // wrap-up blocks offers: none before it ends
				at, err := time.Parse(time.RFC3339Nano, ev["at"].(string))
				if err != nil || at.Before(a.wrapUntil) {
					t.Errorf("round %d: %s was offered a call at %v (%v), in her wrap-up until %v", round, a.raw, at, err, a.wrapUntil)
				}
			}
		}
		for k, a := range order {
			post(t, base+"/api/incoming-calls/"+incoming[k]+"/accept", a.tok, "")
		}
		at := time.Now()
		for _, a := range order {
			// Half a second of her caller's tone (not necessarily in a row:
			// on a loaded machine the phones' own clocks fall behind).
			if !within(15*time.Second, func() bool { return countTone(framesSince(a.ph, at), custHz) >= 25 }) {
				fs := framesSince(a.ph, at)
				t.Fatalf("round %d: %s does not hear her caller: the tone in %d of %d frames since the accepts (her own in %d, music %d)",
					round, a.raw, countTone(fs, custHz), len(fs), countTone(fs, 1100), countTone(fs, 700))
			}
		}
		// They hang up in an order of their own: the first to hang up
		// is the longest idle once the wrap-ups end.
		next := make([]*agent, 0, nAgents)
		for i := range order {
			next = append(next, order[(i*3+round+1)%nAgents])
		}
		for _, a := range next {
			k := slices.Index(order, a)
			post(t, base+"/api/calls/"+incoming[k]+"/hangup", a.tok, "")
			// The queue puts her in wrap-up as it sees her call end.
			var d calls.AgentStatusData
			for d.ChosenStatus != routing.WrapUp {
				ev := waitEvent(t, a.next, "agentStatusChanged")
				b, _ := json.Marshal(ev["data"])
				if err := json.Unmarshal(b, &d); err != nil {
					t.Fatal(err)
				}
			}
			if d.WrapUpUntil == nil || d.ChangedBy.Kind != calls.ActorSystem || d.WrapUpCallID != incoming[k] {
				t.Fatalf("%s after her queue call: %+v, want WrapUp by the system after %s", a.raw, d, incoming[k])
			}
			a.wrapUntil = *d.WrapUpUntil
			time.Sleep(20 * time.Millisecond)
		}
		order = next
		t.Logf("round %d done at %v", round, time.Since(began).Round(time.Millisecond))
	}
	waitStats(t, m, func(s queue.Stats) bool {
		return s.Waiting == 0 && s.Offered == nCalls && s.Answered == nCalls && s.Missed == 0 && s.Abandoned == 0 &&
			s.AnsweredInSL == nCalls && s.ServiceLevel == 100
	})

	// Missed offers: on "misses", ann (idle the longest) lets the first
	// call ring out; it moves on to bob, who accepts. Ann lets the second
	// ring out too (bob is busy): two misses in a row mark her Away.
	ann, bob := order[0], order[1]
	time.Sleep(wrapUp) // both Available again
	post(t, base+"/api/queues", testAdminKey, `{"name":"misses","ringTimeoutSeconds":1,"maxMisses":2,"members":[{"agent":"`+ann.raw+`"},{"agent":"`+bob.raw+`"}]}`)
	first := mint(t, "carl", calls.RoleCaller)
	connect(first, custHz)
	post(t, base+"/api/calls", first, `{"queue":"misses"}`)
	waitEvent(t, ann.next, "incomingCall") // rings out
	bobCall := waitIncoming(t, bob.next)
	post(t, base+"/api/incoming-calls/"+bobCall+"/accept", bob.tok, "")
	if d := agentStatus(t, m, ann.raw); d.ChosenStatus != routing.Available {
		t.Fatalf("one miss: %s %+v, want Available", ann.raw, d)
	}
	second := mint(t, "cora", calls.RoleCaller)
	connect(second, custHz)
	secondCall := post(t, base+"/api/calls", second, `{"queue":"misses"}`)
	waitEvent(t, ann.next, "incomingCall") // rings out: the second miss
	for {
		ev := waitEvent(t, ann.next, "agentStatusChanged")
		d := ev["data"].(map[string]any)
		if d["status"] == string(routing.Away) {
			if by := d["changedBy"].(map[string]any); by["kind"] != string(calls.ActorSystem) {
				t.Errorf("%s marked Away by %v, want the system", ann.raw, by)
			}
			break
		}
	}
	post(t, base+"/api/calls/"+secondCall["id"].(string)+"/hangup", second, "") // gives up: abandoned
	waitStatsOf(t, m, "misses", func(s queue.Stats) bool {
		return s.Waiting == 0 && s.Offered == 3 && s.Missed == 2 && s.Answered == 1 && s.Abandoned == 1
	})
}

// queueAgent is an agent of TestQueuePionCallers.
type queueAgent struct {
	raw, tok  string
	next      func() (map[string]any, error)
	ph        *phone.Phone
	wrapUntil time.Time // when her last wrap-up ends
}

// pumpEvents opens an event stream read by a goroutine of its own, so
// that the server's pings are answered while the test does other things;
// the function it answers takes the next event (20 s at most).
func pumpEvents(t *testing.T, addr, token string) func() (map[string]any, error) {
	t.Helper()
	ch := eventChan(t, addr, token)
	return func() (map[string]any, error) {
		select {
		case ev, ok := <-ch:
			if !ok {
				return nil, errors.New("the event stream ended")
			}
			return ev, nil
		case <-time.After(20 * time.Second):
			return nil, errors.New("no event for 20 s")
		}
	}
}

// eventChan opens an event stream whose events a goroutine of its own
// hands over on the channel it answers; the goroutine ends, closing the
// channel, when the test's cleanup closes the stream.
func eventChan(t *testing.T, addr, token string) <-chan map[string]any {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/events", http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial events: %v", err)
	}
	ch := make(chan map[string]any, 1024)
	go func() {
		defer close(ch)
		for {
			var ev map[string]any
			if conn.ReadJSON(&ev) != nil {
				return
			}
			ch <- ev
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		for range ch { // until the goroutine ends
		}
	})
	return ch
}

// agentStatus is GET /api/agents/{raw}/status, as the admin.
func agentStatus(t *testing.T, m *Main, raw string) calls.AgentStatusData {
	t.Helper()
	status, body, _ := send(t, m, http.MethodGet, "/api/agents/"+url.PathEscape(raw)+"/status", testAdminKey, "")
	var d calls.AgentStatusData
	if status != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil {
		t.Fatalf("status of %s: %d %s", raw, status, body)
	}
	return d
}

// waitEvent reads next until an event of type typ.
func waitEvent(t *testing.T, next func() (map[string]any, error), typ string) map[string]any {
	t.Helper()
	for {
		ev, err := next()
		if err != nil {
			t.Fatalf("no %s: %v", typ, err)
		}
		if ev["type"] == typ {
			return ev
		}
	}
}

// waitStatsOf polls the stats of queue name until ok.
func waitStatsOf(t *testing.T, m *Main, name string, ok func(queue.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body, _ := send(t, m, http.MethodGet, "/api/queues/"+name+"/stats", testAdminKey, "")
		var st queue.Stats
		if status == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats of %s: %d %s", name, status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
