package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/recording"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// queueServer is the real API on a real listener with queues over real
// agent status (calls.Switchboard through queue.WithStatus). The engine
// is stepped by hand; the switchboard and the engine share a fake clock,
// so that wrap-ups end and offers ring out only when the test advances
// it.
type queueServer struct {
	*server
	engine *queue.Engine
	fake   *callstest.Clock
	sw     *countingSwitch
}

func (q *queueServer) clock() time.Time        { return q.fake.Now() }
func (q *queueServer) advance(d time.Duration) { q.fake.Advance(d) }

// status answers GET /api/agents/{rawId}/status as a supervisor sees it.
func (q *queueServer) status(raw string) calls.AgentStatusData {
	q.t.Helper()
	var d calls.AgentStatusData
	q.do(http.MethodGet, "/api/agents/"+raw+"/status", q.token("sue", calls.RoleSupervisor), nil, http.StatusOK, &d)
	return d
}

func (q *queueServer) waitingCount() int {
	st, err := q.engine.Stats(context.Background(), "support")
	if err != nil {
		q.t.Fatal(err)
	}
	return st.Waiting
}

func (q *queueServer) step() { q.engine.Step(context.Background()) }

func newQueueServer(t *testing.T) *queueServer { return newQueueServerWith(t, false) }

// newQueueServerWith is newQueueServer; recorded adds media (a mixer) and
// the recording service, which the engine's Record hook starts, as serve
// wires them.
func newQueueServerWith(t *testing.T, recorded bool) *queueServer {
	t.Helper()
	st := store.NewMemory()
	hub := api.NewHub(nil, 0)
	hub.SetEventLog(api.NewMemoryLog(api.Retention{}, nil))
	fake := callstest.NewClock()
	qt := &api.QueueTransfers{}
	var sb *calls.Switchboard
	var publisher calls.Publisher = hub
	var rec *recording.Service
	var mixer *audio.Mixer
	if recorded {
		mixer = audio.NewMixer(audio.MixerConfig{})
		var err error
		rec, err = recording.New(t.Context(), recording.Config{
			Dir: t.TempDir(), Media: mixer, Store: st, Publisher: hub, NewID: uuid.NewString,
			Calls: recording.CallsFunc(func(ctx context.Context, p calls.Principal, id string) (calls.Call, error) {
				return sb.GetCall(ctx, p, id)
			}),
		})
		if err != nil {
			t.Fatal(err)
		}
		publisher = rec.Publisher(hub)
	}
	wake := api.NewQueueWake(publisher)
	cc := calls.Config{Store: st, Publisher: wake, NewID: uuid.NewString, Clock: fake, Queues: qt}
	if mixer != nil {
		cc.Media = mixer
	}
	sb, err := calls.New(cc)
	if err != nil {
		t.Fatal(err)
	}
	q := &queueServer{fake: fake}
	qs := api.NewQueueSwitch(sb, hub)
	q.sw = &countingSwitch{QueueSwitch: qs}
	// Tests step the engine by hand; one that runs it (Run) has no tick
	// within the test, only wakes. No sweep either: the engine learns of
	// changes to queue calls from the switchboard's events alone
	// (QueueWake → Engine.Changed).
	ec := queue.WithStatus(queue.EngineConfig{Store: queue.NewMemory(), Switch: q.sw, Events: qs, Now: q.clock, Tick: time.Hour, Sweep: time.Hour}, sb)
	ac := api.Config{Switchboard: sb, Hub: hub, Tokens: api.NewTokens(adminKey, nil), Ready: st.Ready, Numbers: st,
		QueueSwitch: qs, WriteTimeout: 2 * time.Second}
	if rec != nil {
		ec.Record = api.QueueRecorder(qs, rec, nil)
		ac.Recordings = rec
	}
	q.engine = queue.NewEngine(ec)
	wake.Bind(q.engine)
	qt.Bind(q.engine, qs)
	ac.Queues = q.engine
	srv := api.New(ac)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = sb.Close(context.Background())
		if rec != nil {
			if err := rec.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}
		srv.Close()
		ts.Close()
	})
	q.server = &server{t: t, url: ts.URL, sb: sb, hub: hub, tokens: ac.Tokens, store: st, api: srv}
	return q
}

func TestQueueErrors(t *testing.T) {
	s := newQueueServer(t)
	agent, sup := s.token("alice", calls.RoleAgent), s.token("sue", calls.RoleSupervisor)
	good := map[string]any{"name": "support", "members": []map[string]any{{"agent": "8:acs:alice"}}}
	s.wantError(http.MethodPost, "/api/queues", agent, good, http.StatusForbidden, calls.CodeForbidden)
	s.wantError(http.MethodGet, "/api/queues", agent, nil, http.StatusForbidden, calls.CodeForbidden)
	s.wantError(http.MethodPost, "/api/queues", "", good, http.StatusUnauthorized, calls.CodeUnauthorized)
	s.wantError(http.MethodPost, "/api/queues", sup, map[string]any{"name": "support", "strategy": "random"}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodPost, "/api/queues", sup, map[string]any{"name": "a b"}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodPost, "/api/queues", sup, map[string]any{"name": "x", "members": []map[string]any{{"agent": "4:+14255550123"}}}, http.StatusBadRequest, calls.CodeInvalidRequest)
	s.wantError(http.MethodGet, "/api/queues/nope/stats", sup, nil, http.StatusNotFound, calls.CodeNotFound)
	s.wantError(http.MethodPost, "/api/calls", agent, map[string]any{"queue": "nope"}, http.StatusNotFound, calls.CodeNotFound)

	var d queue.Definition
	s.do(http.MethodPost, "/api/queues", sup, good, http.StatusCreated, &d)
	if d.Strategy != queue.LongestIdle || d.RingTimeoutSeconds != queue.DefaultRingTimeout {
		t.Errorf("created %+v, want the defaults filled", d)
	}
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "billing", "strategy": "round-robin"}, http.StatusCreated, nil)
	var list []queue.Definition
	s.do(http.MethodGet, "/api/queues", adminKey, nil, http.StatusOK, &list)
	if len(list) != 2 || list[0].Name != "billing" || list[1].Name != "support" {
		t.Errorf("GET /api/queues = %+v", list)
	}
	s.wantError(http.MethodPost, "/api/calls", agent, map[string]any{"queue": "support", "extra": 1}, http.StatusBadRequest, calls.CodeInvalidRequest)
}

// TestQueueTenAgentsHundredCalls: 10 agents on real event streams, 100
// callers' calls queued; each round every free agent is offered a call
// (an incomingCall), oldest call to the agent idle the longest; she
// accepts and hangs up; the stats add up to what happened, and the
// supervisor sees queueCallWaiting and queueStatsChanged.
func TestQueueTenAgentsHundredCalls(t *testing.T) {
	s := newQueueServer(t)
	sup := s.token("sue", calls.RoleSupervisor)
	sv := s.connect(sup)
	const nAgents, nCalls = 10, 100
	agents := make([]string, nAgents)
	tokens := map[string]string{}
	streams := map[string]*stream{}
	var members []map[string]any
	for i := range agents {
		agents[i] = fmt.Sprintf("agent%d", i)
		raw := "8:acs:" + agents[i]
		tokens[raw] = s.token(agents[i], calls.RoleAgent)
		streams[raw] = s.connect(tokens[raw])
		streams[raw].waitFor(calls.EventSnapshot, "")
		members = append(members, map[string]any{"agent": raw})
		// agent0 has been idle (Available) the longest
		if d := s.status(raw); d.Status != routing.Available {
			t.Fatalf("%s connected: %+v, want Available", raw, d)
		}
		s.advance(time.Minute)
	}
	s.do(http.MethodPost, "/api/queues", sup, map[string]any{"name": "support", "members": members, "serviceLevelSeconds": 30, "wrapUpSeconds": 60}, http.StatusCreated, nil)

	callOf := map[string]int{} // caller rawId -> its place in line
	for i := range nCalls {
		caller := fmt.Sprintf("caller%03d", i)
		var call calls.Call
		s.do(http.MethodPost, "/api/calls", s.token(caller, calls.RoleCaller), map[string]any{"queue": "support"}, http.StatusCreated, &call)
		if call.State != calls.StateConnected {
			t.Fatalf("queued call is %s", call.State)
		}
		callOf["8:acs:"+caller] = i
		s.advance(time.Millisecond)
	}
	var st queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", sup, nil, http.StatusOK, &st)
	if st.Waiting != nCalls {
		t.Fatalf("stats before any offer: %+v", st)
	}
	w := sv.waitFor(api.EventQueueCallWaiting, "")
	if d := decodeData[api.QueueCallWaitingData](t, w); d.Queue != "support" || d.Position != 1 {
		t.Errorf("first queueCallWaiting: %+v", d)
	}

	next := 0 // the next call in line
	for round := 0; next < nCalls; round++ {
		// The free agents by idle time, longest first.
		order := append([]string(nil), agents...)
		for i := range order {
			order[i] = "8:acs:" + order[i]
		}
		idle := func(a string) time.Time { return s.sb.IdleSince(a) }
		for i := 1; i < len(order); i++ {
			for j := i; j > 0 && idle(order[j]).Before(idle(order[j-1])); j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
		s.step()
		// Each agent in that order gets the next call in line.
		incoming := map[string]string{}
		got := map[string]int{}
		for _, a := range order {
			ev := streams[a].waitFor(calls.EventIncomingCall, "")
			in := decodeData[calls.IncomingCallData](t, ev).IncomingCall
			got[a] = callOf[in.CallerInfo.Identifier.RawID()]
			incoming[a] = in.ID
		}
		for i, a := range order {
			if got[a] != next+i {
				for _, a := range order {
					t.Logf("%s idle since %v: call %d", a, idle(a), got[a])
				}
				t.Fatalf("round %d: %s was offered call %d, want %d (the oldest waiting to the longest idle)", round, a, got[a], next+i)
			}
		}
		next += len(order)
		for _, a := range order {
			s.do(http.MethodPost, "/api/incoming-calls/"+incoming[a]+"/accept", tokens[a], nil, http.StatusOK, nil)
		}
		s.step() // the answers
		// They hang up in an order of their own: the first is idle the
		// longest next round. Wrap-up (60 s) keeps them from offers till
		// then.
		for i := range order {
			a := order[(i*3+round)%len(order)]
			s.do(http.MethodPost, "/api/calls/"+incoming[a]+"/hangup", tokens[a], nil, http.StatusOK, nil)
			s.step() // the end: idle from now
			s.advance(time.Second)
		}
		s.step()
		if n := s.waitingCount(); n != nCalls-next {
			t.Fatalf("round %d: %d waiting, want %d: an agent in wrap-up was offered a call", round, n, nCalls-next)
		}
		if st, err := s.engine.Stats(context.Background(), "support"); err != nil || st.Offered != next {
			t.Fatalf("round %d: %+v (%v), want %d offered: an agent in wrap-up was offered a call", round, st, err, next)
		}
		if round == 0 {
			// Each is in WrapUp, set by the system, following her call.
			for _, a := range order {
				d := s.status(a)
				if d.Status != routing.WrapUp || d.ChangedBy.Kind != calls.ActorSystem || d.WrapUpUntil == nil || d.WrapUpCallID != incoming[a] {
					t.Fatalf("%s after her queue call: %+v, want WrapUp by the system", a, d)
				}
			}
		}
		if round == 0 {
			// Her wrap-up names her call, which she codes.
			a := order[0]
			s.do(http.MethodPut, "/api/me/wrap-up", tokens[a], map[string]any{"callId": incoming[a], "code": "sale"}, http.StatusOK, nil)
		}
		s.advance(60 * time.Second)
		if round == 0 {
			for _, a := range order {
				if d := s.status(a); d.Status != routing.Available {
					t.Fatalf("%s after wrap-up: %+v, want Available", a, d)
				}
			}
		}
	}
	s.step()
	s.do(http.MethodGet, "/api/queues/support/stats", sup, nil, http.StatusOK, &st)
	if st.Waiting != 0 || st.Answered != nCalls || st.Offered != nCalls || st.Missed != 0 || st.Abandoned != 0 {
		t.Errorf("stats: %+v", st)
	}
	// The first round's calls are answered at once in this clock, the
	// later ones after minutes: some, not all, within 30 s.
	if st.AnsweredInSL == 0 || st.AnsweredInSL == nCalls || st.ServiceLevel != float64(st.AnsweredInSL) {
		t.Errorf("service level: %d of %d within 30 s, %v%%", st.AnsweredInSL, nCalls, st.ServiceLevel)
	}
	ev := sv.waitFor(api.EventQueueStatsChanged, "")
	if d := decodeData[queue.Stats](t, ev); d.Queue != "support" {
		t.Errorf("queueStatsChanged: %+v", d)
	}
}

// TestQueueMissedOffer: an offer that rings out moves on to the next
// agent, whose accept connects her with the caller; a second miss in a
// row marks the first agent Away; a caller who hangs up while waiting is
// abandoned.
func TestQueueMissedOffer(t *testing.T) {
	s := newQueueServer(t)
	sup := s.token("sue", calls.RoleSupervisor)
	a, b := s.token("ann", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	sa, sb := s.connect(a), s.connect(b)
	sa.waitFor(calls.EventSnapshot, "") // online: offerable
	s.advance(time.Hour)                // ann idle the longest
	sb.waitFor(calls.EventSnapshot, "")
	s.do(http.MethodPost, "/api/queues", sup, map[string]any{"name": "support", "ringTimeoutSeconds": 5, "maxMisses": 2,
		"members": []map[string]any{{"agent": "8:acs:ann"}, {"agent": "8:acs:bob"}}}, http.StatusCreated, nil)
	caller := s.token("carl", calls.RoleCaller)
	var call calls.Call
	s.do(http.MethodPost, "/api/calls", caller, map[string]any{"queue": "support"}, http.StatusCreated, &call)
	s.step()
	ann := decodeData[calls.IncomingCallData](t, sa.waitFor(calls.EventIncomingCall, "")).IncomingCall
	s.advance(5 * time.Second)
	s.step()                             // rang out: withdrawn
	sa.waitFor(calls.EventCallEnded, "") // her incoming call, withdrawn
	s.step()                             // to bob
	bob := decodeData[calls.IncomingCallData](t, sb.waitFor(calls.EventIncomingCall, "")).IncomingCall
	s.do(http.MethodPost, "/api/incoming-calls/"+ann.ID+"/accept", a, nil, http.StatusNotFound, nil)
	s.do(http.MethodPost, "/api/incoming-calls/"+bob.ID+"/accept", b, nil, http.StatusOK, nil)
	s.step()
	var got calls.Call
	s.do(http.MethodGet, "/api/calls/"+call.ID, caller, nil, http.StatusOK, &got)
	connected := false
	for _, p := range got.RemoteParticipants {
		connected = connected || (p.RawID == "8:acs:bob" && p.State == calls.ParticipantConnected)
	}
	if !connected {
		t.Fatalf("caller's call after bob accepted: %+v", got.RemoteParticipants)
	}
	if d := s.status("8:acs:ann"); d.ChosenStatus != routing.Available {
		t.Fatalf("one miss: ann %+v, want Available", d)
	}
	// A second call: bob is busy, ann misses again and is marked Away.
	caller2 := s.token("cora", calls.RoleCaller)
	var call2 calls.Call
	s.do(http.MethodPost, "/api/calls", caller2, map[string]any{"queue": "support"}, http.StatusCreated, &call2)
	s.step()
	sa.waitFor(calls.EventIncomingCall, "")
	s.advance(5 * time.Second)
	s.step()
	// Through her status: shown on GET, told to her, kept in history.
	if d := s.status("8:acs:ann"); d.Status != routing.Away || d.ChangedBy.Kind != calls.ActorSystem {
		t.Fatalf("two misses in a row: ann %+v, want Away by the system", d)
	}
	ev := sa.waitFor(calls.EventAgentStatusChanged, "")
	for decodeData[calls.AgentStatusData](t, ev).Status != routing.Away {
		ev = sa.waitFor(calls.EventAgentStatusChanged, "")
	}
	var hist struct {
		Items []struct {
			Chosen routing.Status `json:"chosenStatus"`
			By     calls.Actor    `json:"changedBy"`
		} `json:"items"`
	}
	s.do(http.MethodGet, "/api/history/agent-status?agent=8:acs:ann", sup, nil, http.StatusOK, &hist)
	if len(hist.Items) == 0 || hist.Items[0].Chosen != routing.Away || hist.Items[0].By.Kind != calls.ActorSystem {
		t.Errorf("ann's status history, newest first: %+v, want Away by the system", hist.Items)
	}
	s.do(http.MethodPost, "/api/calls/"+call2.ID+"/hangup", caller2, nil, http.StatusOK, nil)
	s.step()
	var st queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", sup, nil, http.StatusOK, &st)
	if st.Waiting != 0 || st.Answered != 1 || st.Abandoned != 1 || st.Missed != 2 || st.Offered != 3 {
		t.Errorf("stats: %+v", st)
	}
	// Bob hangs up: the caller's call ends too.
	s.do(http.MethodPost, "/api/calls/"+bob.ID+"/hangup", b, nil, http.StatusOK, nil)
	s.step()
	s.wantError(http.MethodGet, "/api/calls/"+call.ID, caller, nil, http.StatusNotFound, calls.CodeCallNotFound)
}

// TestQueueBusyAgent: an agent on a call of her own (to the echo bot) is
// not offered a queue call (maxConcurrentCalls 1); once she hangs up, she
// is.
func TestQueueBusyAgent(t *testing.T) {
	s := newQueueServer(t)
	ann := s.token("ann", calls.RoleAgent)
	sa := s.connect(ann)
	sa.waitFor(calls.EventSnapshot, "")
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support", "members": []map[string]any{{"agent": "8:acs:ann"}}}, http.StatusCreated, nil)
	var own calls.Call
	s.do(http.MethodPost, "/api/calls", ann, map[string]any{"participants": []map[string]any{{"id": "8:echo123"}}}, http.StatusCreated, &own)
	s.do(http.MethodPost, "/api/calls", s.token("carl", calls.RoleCaller), map[string]any{"queue": "support"}, http.StatusCreated, nil)
	s.step()
	s.step()
	var st queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &st)
	if st.Offered != 0 || st.Waiting != 1 {
		t.Fatalf("while ann is on a call: %+v, want no offer", st)
	}
	s.do(http.MethodPost, "/api/calls/"+own.ID+"/hangup", ann, nil, http.StatusOK, nil)
	s.step()
	sa.waitFor(calls.EventIncomingCall, "")
	s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &st)
	if st.Offered != 1 {
		t.Fatalf("after ann hung up: %+v, want one offer", st)
	}
}

// TestQueueTransfer: ann, on a call with a customer, transfers it blind to
// a queue: her call ends transferred, the customer stays Connected alone
// and waits in the queue, which offers her to bob (idle longer than ann,
// whose call just ended); bob accepts and they are connected.
func TestQueueTransfer(t *testing.T) {
	s := newQueueServer(t)
	ann, bob := s.token("ann", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	cust := s.token("carl", calls.RoleCaller)
	sb, sa, sc := s.connect(bob), s.connect(ann), s.connect(cust)
	for _, st := range []*stream{sa, sb, sc} {
		st.waitFor(calls.EventSnapshot, "")
	}
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support",
		"members": []map[string]any{{"agent": "8:acs:ann"}, {"agent": "8:acs:bob"}}}, http.StatusCreated, nil)
	var custCall, annCall calls.Call
	s.do(http.MethodPost, "/api/calls", cust, map[string]any{"participants": []any{identityJSON("ann")}}, http.StatusCreated, &custCall)
	in := sa.waitFor(calls.EventIncomingCall, "")
	s.do(http.MethodPost, "/api/incoming-calls/"+in.CallID+"/accept", ann, nil, http.StatusOK, &annCall)
	s.advance(time.Minute)

	path := "/api/calls/" + annCall.ID + "/transfer"
	s.wantError(http.MethodPost, path, ann, map[string]any{"queue": "nope", "mode": "blind"}, http.StatusNotFound, calls.CodeNotFound)
	var done calls.Call
	s.do(http.MethodPost, path, ann, map[string]any{"queue": "support", "mode": "blind"}, http.StatusOK, &done)
	if done.State != calls.StateDisconnected || done.CallEndReason == nil || done.CallEndReason.SubCode != calls.ReasonTransferred.SubCode {
		t.Fatalf("ann's call after the transfer: %+v", done)
	}
	var got calls.Call
	s.do(http.MethodGet, "/api/calls/"+custCall.ID, cust, nil, http.StatusOK, &got)
	if got.State != calls.StateConnected {
		t.Fatalf("customer's call after the transfer: %+v, want Connected, waiting", got)
	}
	if n := s.waitingCount(); n != 1 {
		t.Fatalf("%d waiting after the transfer, want the customer", n)
	}
	s.step()
	offer := decodeData[calls.IncomingCallData](t, sb.waitFor(calls.EventIncomingCall, "")).IncomingCall
	if offer.CallerInfo.Identifier.RawID() != "8:acs:carl" {
		t.Errorf("bob's offer is from %+v, want the customer", offer.CallerInfo)
	}
	s.do(http.MethodPost, "/api/incoming-calls/"+offer.ID+"/accept", bob, nil, http.StatusOK, nil)
	s.step()
	s.do(http.MethodGet, "/api/calls/"+custCall.ID, cust, nil, http.StatusOK, &got)
	connected := false
	for _, p := range got.RemoteParticipants {
		connected = connected || (p.RawID == "8:acs:bob" && p.State == calls.ParticipantConnected)
	}
	if !connected {
		t.Fatalf("customer's call after bob accepted: %+v", got.RemoteParticipants)
	}
	var st queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &st)
	if st.Answered != 1 || st.Offered != 1 || st.Waiting != 0 {
		t.Errorf("stats: %+v", st)
	}
	// History: the customer's call went through the queue (by the
	// transfer), ann's call, ended by the transfer, did not.
	var page calls.CallPage
	s.do(http.MethodGet, "/api/history/calls?queue=support", s.token("sue", calls.RoleSupervisor), nil, http.StatusOK, &page)
	inQueue := map[string]bool{}
	for _, c := range page.Items {
		inQueue[c.ID] = true
	}
	if !inQueue[custCall.ID] || inQueue[annCall.ID] || len(page.Items) != 2 {
		t.Errorf("history?queue=support = %+v, want the customer's call and bob's", page.Items)
	}
}

// TestQueueRecord: a queue with "record": true records its calls from
// the agent's answer, started by the system; a queue without it does not.
func TestQueueRecord(t *testing.T) {
	s := newQueueServerWith(t, true)
	ann := s.token("ann", calls.RoleAgent)
	sa := s.connect(ann)
	sa.waitFor(calls.EventSnapshot, "")
	members := []map[string]any{{"agent": "8:acs:ann"}}
	var d queue.Definition
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support", "record": true, "members": members}, http.StatusCreated, &d)
	if !d.Record {
		t.Fatalf("created %+v, want record", d)
	}
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "sales", "members": members}, http.StatusCreated, nil)

	answer := func(name, caller string) calls.IncomingCall {
		s.do(http.MethodPost, "/api/calls", s.token(caller, calls.RoleCaller), map[string]any{"queue": name}, http.StatusCreated, nil)
		s.step()
		in := decodeData[calls.IncomingCallData](t, sa.waitFor(calls.EventIncomingCall, "")).IncomingCall
		s.do(http.MethodPost, "/api/incoming-calls/"+in.ID+"/accept", ann, nil, http.StatusOK, nil)
		s.step() // the answer: recorded when the queue says so
		return in
	}
	// sales first: no recording; after ann hangs up (no wrap-up), support.
	in := answer("sales", "cora")
	s.do(http.MethodPost, "/api/calls/"+in.ID+"/hangup", ann, nil, http.StatusOK, nil)
	s.step()
	in = answer("support", "carl")
	ev := sa.waitFor(calls.EventRecordingStateChanged, "")
	got := decodeData[calls.Recording](t, ev)
	if ev.CallID != in.ID || got.State != calls.RecordingActive || ev.Actor == nil || ev.Actor.Kind != calls.ActorSystem {
		t.Fatalf("recordingStateChanged on %s %+v by %+v, want Active on the support call %s by the system", ev.CallID, got, ev.Actor, in.ID)
	}
}

// TestQueueAnsweredAndGoneBeforeAStep: an agent who accepts an offer and
// hangs up before the engine's next step saw her connected served the
// caller: the step counts the call answered, and offers it to nobody
// else (it was taken for a decline and offered to the next agent).
func TestQueueAnsweredAndGoneBeforeAStep(t *testing.T) {
	s := newQueueServer(t)
	sup := s.token("sue", calls.RoleSupervisor)
	a, b := s.token("ann", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	sa, sb := s.connect(a), s.connect(b)
	sa.waitFor(calls.EventSnapshot, "")
	s.advance(time.Hour) // ann idle the longest
	sb.waitFor(calls.EventSnapshot, "")
	s.do(http.MethodPost, "/api/queues", sup, map[string]any{"name": "support", "ringTimeoutSeconds": 5,
		"members": []map[string]any{{"agent": "8:acs:ann"}, {"agent": "8:acs:bob"}}}, http.StatusCreated, nil)
	caller := s.token("carl", calls.RoleCaller)
	s.do(http.MethodPost, "/api/calls", caller, map[string]any{"queue": "support"}, http.StatusCreated, nil)
	s.step()
	ann := decodeData[calls.IncomingCallData](t, sa.waitFor(calls.EventIncomingCall, "")).IncomingCall
	var answered calls.Call
	s.do(http.MethodPost, "/api/incoming-calls/"+ann.ID+"/accept", a, nil, http.StatusOK, &answered)
	s.do(http.MethodPost, "/api/calls/"+answered.ID+"/hangup", a, nil, http.StatusOK, nil)
	s.step()
	s.step()
	var st queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", sup, nil, http.StatusOK, &st)
	if st.Answered != 1 || st.Missed != 0 || st.Waiting != 0 {
		t.Errorf("stats after ann answered and hung up between steps: %+v, want 1 answered, none missed or waiting", st)
	}
	var incoming []calls.IncomingCall
	s.do(http.MethodGet, "/api/incoming-calls", b, nil, http.StatusOK, &incoming)
	if len(incoming) != 0 {
		t.Errorf("bob is offered %+v, a call ann answered", incoming)
	}
}

// answeredQueueCall makes the queue "support" of ann alone (30 s of
// wrap-up), places carl's call in it, steps, and has ann accept the offer
// sa tells her of: carl's waiting call and ann's.
func answeredQueueCall(t *testing.T, s *queueServer, sa *stream, ann, carl string) (waiting, annCall calls.Call) {
	t.Helper()
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support", "wrapUpSeconds": 30,
		"members": []map[string]any{{"agent": "8:acs:ann"}}}, http.StatusCreated, nil)
	s.do(http.MethodPost, "/api/calls", carl, map[string]any{"queue": "support"}, http.StatusCreated, &waiting)
	s.step()
	offer := decodeData[calls.IncomingCallData](t, sa.waitFor(calls.EventIncomingCall, "")).IncomingCall
	s.do(http.MethodPost, "/api/incoming-calls/"+offer.ID+"/accept", ann, nil, http.StatusOK, &annCall)
	return waiting, annCall
}

// TestQueueAgentHangsUpAfterAnswer: an agent who hangs up a queue call
// she answered ends its caller's call in the same step (remote hung up,
// as in a 1:1 call), before the engine looks again; the engine's next
// look still counts the call answered, and her wrap-up starts.
func TestQueueAgentHangsUpAfterAnswer(t *testing.T) {
	tests := []struct {
		name        string
		stepBetween bool // the engine saw her connected before she hung up
	}{
		{name: "engine saw the answer", stepBetween: true},
		{name: "answered and gone before a step", stepBetween: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newQueueServer(t)
			ann, carl := s.token("ann", calls.RoleAgent), s.token("carl", calls.RoleCaller)
			sa, sc := s.connect(ann), s.connect(carl)
			sa.waitFor(calls.EventSnapshot, "")
			sc.waitFor(calls.EventSnapshot, "")
			waiting, annCall := answeredQueueCall(t, s, sa, ann, carl)
			if tt.stepBetween {
				s.step()
			}
			s.do(http.MethodPost, "/api/calls/"+annCall.ID+"/hangup", ann, nil, http.StatusOK, nil)

			// No step yet: the switchboard ended carl's call itself.
			ended := decodeData[calls.CallEndedData](t, sc.waitFor(calls.EventCallEnded, waiting.ID))
			if r := ended.CallEndReason; r.Code != 0 || r.SubCode != calls.ReasonRemoteHungUp.SubCode {
				t.Fatalf("carl's call ended %+v after ann hung up, want remote hung up", r)
			}
			s.step()
			s.step()
			if st := s.status("8:acs:ann"); st.Status != routing.WrapUp {
				t.Errorf("ann after the call: %+v, want WrapUp", st)
			}
			var stats queue.Stats
			s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &stats)
			if stats.Answered != 1 || stats.Abandoned != 0 || stats.Missed != 0 || stats.Waiting != 0 {
				t.Errorf("stats: %+v, want one answered", stats)
			}
		})
	}
}

// TestQueueCallerHangsUpAfterAnswer: a queue's caller who hangs up after
// the agent answered ends the agent's call too (remote hung up, as in a
// 1:1 call); she is not left alone in an empty group call, and her
// wrap-up starts. A group call that is no queue's keeps its last member.
func TestQueueCallerHangsUpAfterAnswer(t *testing.T) {
	s := newQueueServer(t)
	ann, carl := s.token("ann", calls.RoleAgent), s.token("carl", calls.RoleCaller)
	sa := s.connect(ann)
	sa.waitFor(calls.EventSnapshot, "")
	waiting, annCall := answeredQueueCall(t, s, sa, ann, carl)
	s.step()
	s.do(http.MethodPost, "/api/calls/"+waiting.ID+"/hangup", carl, nil, http.StatusOK, nil)

	ended := decodeData[calls.CallEndedData](t, sa.waitFor(calls.EventCallEnded, annCall.ID))
	if r := ended.CallEndReason; r.Code != 0 || r.SubCode != calls.ReasonRemoteHungUp.SubCode {
		t.Fatalf("ann's call ended %+v after the caller hung up, want remote hung up", r)
	}
	s.step()
	if st := s.status("8:acs:ann"); st.Status != routing.WrapUp {
		t.Errorf("ann after the call: %+v, want WrapUp", st)
	}
	var stats queue.Stats
	s.do(http.MethodGet, "/api/queues/support/stats", adminKey, nil, http.StatusOK, &stats)
	if stats.Answered != 1 || stats.Abandoned != 0 {
		t.Errorf("stats: %+v, want one answered", stats)
	}

	// Not a queue's call: bob stays in the group call carl left.
	bob := s.token("bob", calls.RoleAgent)
	sb := s.connect(bob)
	sb.waitFor(calls.EventSnapshot, "")
	var group, bobCall calls.Call
	s.do(http.MethodPost, "/api/calls/join", carl, map[string]any{"groupId": uuid.NewString()}, http.StatusCreated, &group)
	s.do(http.MethodPost, "/api/calls/"+group.ID+"/participants", carl, map[string]any{"identifier": identityJSON("bob")}, http.StatusCreated, nil)
	in := sb.waitFor(calls.EventIncomingCall, "")
	s.do(http.MethodPost, "/api/incoming-calls/"+in.CallID+"/accept", bob, nil, http.StatusOK, &bobCall)
	s.do(http.MethodPost, "/api/calls/"+group.ID+"/hangup", carl, nil, http.StatusOK, nil)
	var got calls.Call
	s.do(http.MethodGet, "/api/calls/"+bobCall.ID, bob, nil, http.StatusOK, &got)
	if got.State != calls.StateConnected {
		t.Errorf("bob's group call is %s after carl left, want Connected", got.State)
	}
}
