package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/calls"
)

func TestEventStream(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, sup := s.token("alice", calls.RoleAgent), s.token("sue", calls.RoleSupervisor)
	caller := s.tokenFor(map[string]any{"phoneNumber": "+14255550199"}, calls.RoleCaller, 3600)

	a := s.connect(alice)
	snap := decodeData[calls.Snapshot](t, a.next())
	if snap.ConnectionState != calls.Connected || len(snap.Calls) != 0 {
		t.Fatalf("alice's snapshot %+v", snap)
	}
	sv := s.connect(sup)
	svSnap := decodeData[calls.Snapshot](t, sv.waitFor(calls.EventSnapshot, ""))
	found := false
	for _, ag := range svSnap.Agents {
		found = found || ag.RawID == "8:acs:alice" && ag.ConnectionState == calls.Connected
	}
	if !found {
		t.Fatalf("supervisor's snapshot does not show alice connected: %+v", svSnap.Agents)
	}

	var c calls.Call
	s.do("POST", "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"id": "8:echo123"}}}, http.StatusCreated, &c)
	added := decodeData[calls.CallsUpdatedData](t, a.waitFor(calls.EventCallsUpdated, c.ID))
	if len(added.Added) != 1 || added.Added[0].State != calls.StateConnected {
		t.Fatalf("callsUpdated %+v", added)
	}
	if ev := sv.waitFor(calls.EventCallsUpdated, c.ID); ev.AgentID != "8:acs:alice" {
		t.Fatalf("supervisor got %s's event, want alice's", ev.AgentID)
	}

	// A caller's own calls are not on dashboards.
	cs := s.connect(caller)
	cs.next()
	var cc calls.Call
	s.do("POST", "/api/calls", caller, map[string]any{"participants": []any{map[string]any{"id": "8:echo123"}}}, http.StatusCreated, &cc)
	cs.waitFor(calls.EventCallsUpdated, cc.ID)
	s.do("POST", "/api/calls/"+c.ID+"/hold", alice, nil, http.StatusOK, nil)
	for {
		ev := sv.next()
		if ev.CallID == cc.ID {
			t.Fatalf("supervisor saw the caller's event %s", ev.Type)
		}
		if ev.CallID == c.ID && ev.Type == calls.EventStateChanged {
			break
		}
	}

	// Events of the past are not shown to a new connection twice: its
	// snapshot has them.
	a2 := s.connect(alice)
	snap = decodeData[calls.Snapshot](t, a2.next())
	if len(snap.Calls) != 1 || snap.Calls[0].State != calls.StateLocalHold {
		t.Fatalf("second connection's snapshot %+v", snap.Calls)
	}
	select {
	case ev := <-a2.events:
		t.Fatalf("unexpected event after the snapshot: %s", ev.Type)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestEventStreamQueryToken(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok := s.token("alice", calls.RoleAgent)
	conn, _, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events?access_token="+tok), nil)
	if err != nil {
		t.Fatalf("dial with access_token: %v", err)
	}
	if ev := s.stream(conn).next(); ev.Type != calls.EventSnapshot {
		t.Fatalf("first event %s", ev.Type)
	}
	// access_token is for the websocket only.
	s.wantError("GET", "/api/calls?access_token="+tok, "", nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	// A forged token gets 401 before any upgrade.
	_, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events?access_token=forged"), nil)
	if err == nil || statusOf(resp) != http.StatusUnauthorized {
		t.Fatalf("forged token: %v, status %d; want 401", err, statusOf(resp))
	}
}

func TestOriginCheck(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok := s.token("alice", calls.RoleAgent)
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{s.url, true},
		{"https://console.example", true},
		{"https://evil.example", false},
		{"null", false},
	}
	for _, tt := range tests {
		h := http.Header{"Authorization": {"Bearer " + tok}}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events"), h)
		if tt.ok != (err == nil) {
			t.Errorf("origin %q: err %v (status %d), want ok=%v", tt.origin, err, statusOf(resp), tt.ok)
		}
		if err == nil {
			conn.Close()
		} else if statusOf(resp) != http.StatusForbidden {
			t.Errorf("origin %q: status %d, want 403", tt.origin, statusOf(resp))
		}
	}
}

func wantCloseCode(t *testing.T, err error, code int) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("stream closed with %v, want close code %d", err, code)
	}
}

func TestOversizeFrame(t *testing.T) {
	s := newServer(t, serverOptions{})
	st := s.connect(s.token("alice", calls.RoleAgent))
	st.next()
	// The server closes as soon as it reads the frame's header; the client
	// may still be writing, so its write may fail, and the close frame may
	// lose the race with the TCP reset. Either way the connection is gone.
	_ = st.conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 64<<10)))
	err := st.closed()
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("closed with %v, want close code %d", err, websocket.CloseMessageTooBig)
	}
	waitClients(t, s, 0)
}

// waitClients waits until the hub has n clients.
func waitClients(t *testing.T, s *server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.hub.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d clients, want %d", s.hub.Clients(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTokenExpiresMidSession(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok, err := s.tokens.Mint(apiTokenRequest("alice", calls.RoleAgent, 1))
	if err != nil {
		t.Fatal(err)
	}
	sv := s.connect(s.token("sue", calls.RoleSupervisor))
	sv.next()
	st := s.connect(tok.Token)
	st.next()
	ev := st.waitFor(calls.EventConnectionStateChanged, "")
	d := decodeData[calls.ConnectionStateData](t, ev)
	if d.OldState != calls.Connected || d.NewState != calls.Disconnected || d.Reason != "invalidToken" {
		t.Fatalf("connectionStateChanged %+v, want Connected → Disconnected, invalidToken", d)
	}
	wantCloseCode(t, st.closed(), websocket.ClosePolicyViolation)
	// Supervisors see alice go (after seeing her come).
	for {
		ev := sv.waitFor(calls.EventConnectionStateChanged, "")
		if d := decodeData[calls.ConnectionStateData](t, ev); ev.AgentID == "8:acs:alice" && d.NewState == calls.Disconnected {
			if d.Reason != "invalidToken" {
				t.Errorf("supervisor sees reason %q, want invalidToken", d.Reason)
			}
			break
		}
	}
}

func TestRevokedToken(t *testing.T) {
	s := newServer(t, serverOptions{})
	var minted struct{ Token, ID string }
	s.do("POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("alice"), "role": "agent"}, http.StatusCreated, &minted)
	st := s.connect(minted.Token)
	st.next()
	s.wantError("DELETE", "/api/tokens/"+minted.ID, minted.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	s.do("DELETE", "/api/tokens/"+minted.ID, adminKey, nil, http.StatusNoContent, nil)
	d := decodeData[calls.ConnectionStateData](t, st.waitFor(calls.EventConnectionStateChanged, ""))
	if d.Reason != "invalidToken" {
		t.Fatalf("reason %q, want invalidToken", d.Reason)
	}
	st.closed()
	s.wantError("GET", "/api/calls", minted.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
}

func TestPingPong(t *testing.T) {
	s := newServer(t, serverOptions{pingInterval: 50 * time.Millisecond})
	tok := s.token("alice", calls.RoleAgent)

	// A client that reads answers pings and stays.
	st := s.connect(tok)
	st.next()
	time.Sleep(300 * time.Millisecond)
	if err := st.closeErr(); err != nil {
		t.Fatalf("a live client was closed: %v", err)
	}

	// A client that never reads never answers; the server gives up on it.
	conn, _, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events"), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitClients(t, s, 2)
	waitClients(t, s, 1)
}

// TestSlowClient: a client that stops reading is closed once its queue is
// full, the switchboard goes on, and a reconnect starts from a fresh
// snapshot.
func TestSlowClient(t *testing.T) {
	s := newServer(t, serverOptions{queueSize: 16})
	tok := s.token("alice", calls.RoleAgent)
	alice := calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent}
	conn, _, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events"), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Dial returns once the upgrade is written; the server subscribes the
	// client just after. Until it has, "no clients" would end the loop below
	// before it began.
	waitClients(t, s, 1)
	c, err := s.sb.StartCall(context.Background(), alice, calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; s.hub.Clients() > 0; i++ {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("slow client still open after %d events", 2*i)
		}
		if _, err := s.sb.SetMuted(context.Background(), alice, c.ID, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	// The client reads what reached it, then the close.
	var closeErr error
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for closeErr == nil {
		_, _, closeErr = conn.ReadMessage()
	}
	wantCloseCode(t, closeErr, websocket.CloseTryAgainLater)

	st := s.connect(tok)
	snap := decodeData[calls.Snapshot](t, st.next())
	if len(snap.Calls) != 1 || snap.Calls[0].ID != c.ID {
		t.Fatalf("fresh snapshot %+v", snap.Calls)
	}
}

// TestSnapshotThenEvents: connections open while calls change; for each,
// the snapshot plus the events that follow it give exactly the state the
// API answers in the end.
func TestSnapshotThenEvents(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok := s.token("alice", calls.RoleAgent)
	alice := calls.Principal{Identifier: calls.CommunicationUser("alice"), Role: calls.RoleAgent}
	ctx := context.Background()
	var ids []string
	for range 4 {
		c, err := s.sb.StartCall(ctx, alice, calls.StartCallRequest{Participants: []calls.Identifier{calls.EchoBot}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Bounded and paced, so no stream falls a queue (1,024 events) behind
	// and is dropped as too slow: that is another test.
	wg.Go(func() {
		for i := 0; i < 300; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = s.sb.Resume(ctx, alice, ids[i%len(ids)])
			time.Sleep(100 * time.Microsecond)
		}
	})
	var streams []*stream
	for range 10 {
		streams = append(streams, s.connect(tok))
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	var final []calls.Call
	s.do("GET", "/api/calls", tok, nil, http.StatusOK, &final)
	want := map[string]calls.CallState{}
	for _, c := range final {
		want[c.ID] = c.State
	}
	for i, st := range streams {
		state := map[string]calls.CallState{}
		for _, c := range decodeData[calls.Snapshot](t, st.next()).Calls {
			state[c.ID] = c.State
		}
	drain:
		for {
			select {
			case ev := <-st.events:
				st.seq++
				if ev.Seq != st.seq {
					t.Fatalf("stream %d: seq %d, want %d", i, ev.Seq, st.seq)
				}
				if ev.Type == calls.EventStateChanged {
					d := decodeData[calls.StateChangedData](t, ev)
					if state[ev.CallID] != d.OldState {
						t.Fatalf("stream %d: %s went %s → %s, but the stream had it %s", i, ev.CallID, d.OldState, d.State, state[ev.CallID])
					}
					state[ev.CallID] = d.State
				}
			case <-time.After(200 * time.Millisecond):
				break drain
			}
		}
		if err := st.closeErr(); err != nil {
			t.Fatalf("stream %d was closed: %v", i, err)
		}
		for id, want := range want {
			if state[id] != want {
				t.Errorf("stream %d: call %s is %s by snapshot and events, %s by the API", i, id, state[id], want)
			}
		}
	}
}

// A supervisor's action reaches the agent with the supervisor's name from
// her token, so that the console can say who ended the call.
func TestSupervisorActorNamed(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, bob := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	sup := s.token("sue", calls.RoleSupervisor)
	st := s.connect(alice)
	// Bob is online once his snapshot came: a call to him before that
	// would end at once (480), and the hang-up find no call.
	if ev := s.connect(bob).next(); ev.Type != calls.EventSnapshot {
		t.Fatalf("bob's first event is %s, want the snapshot", ev.Type)
	}
	var a calls.Call
	s.do("POST", "/api/calls", alice, map[string]any{"participants": []any{identityJSON("bob")}}, http.StatusCreated, &a)
	s.do("POST", "/api/calls/"+a.ID+"/hangup", sup, map[string]any{"forEveryone": true}, http.StatusOK, nil)
	ev := st.waitFor(calls.EventCallEnded, a.ID)
	want := calls.Actor{Kind: calls.ActorSupervisor, RawID: "8:acs:sue", DisplayName: "Test supervisor"}
	if ev.Actor == nil || *ev.Actor != want {
		t.Errorf("callEnded actor = %+v, want %+v", ev.Actor, want)
	}
}
