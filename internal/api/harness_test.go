package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/api/apitest"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
)

const adminKey = "test-admin-key-0123456789abcdefghij"

// server is the real API on a real listener.
type server struct {
	t      *testing.T
	url    string
	sb     *calls.Switchboard
	hub    *api.Hub
	tokens *api.Tokens
	store  *store.Memory
	api    *api.Server
}

type serverOptions struct {
	queueSize    int
	pingInterval time.Duration
	ringTimeout  time.Duration
	ready        func(context.Context) error
	ice          api.ICEServers
	writeTimeout time.Duration // default 2 s
	console      fs.FS
	limits       api.HubLimits
	durable      func(context.Context) error
	durableWait  time.Duration
	retention    api.Retention // of the hub's MemoryLog (zero: the default)
	trunks       func() []api.TrunkStatus
	forward      api.Forwarder
	media        calls.Media // nil: none (DTMF answers not_implemented)
}

func newServer(t *testing.T, opt serverOptions) *server {
	t.Helper()
	st := store.NewMemory()
	hub := api.NewHub(nil, opt.queueSize)
	hub.SetLimits(opt.limits)
	hub.SetEventLog(api.NewMemoryLog(opt.retention, nil))
	if opt.writeTimeout == 0 {
		opt.writeTimeout = 2 * time.Second
	}
	sb, err := calls.New(calls.Config{Store: st, Publisher: hub, Media: opt.media, NewID: uuid.NewString, RingTimeout: opt.ringTimeout})
	if err != nil {
		t.Fatal(err)
	}
	tokens := api.NewTokens(adminKey, nil)
	ready := opt.ready
	if ready == nil {
		ready = st.Ready
	}
	srv := api.New(api.Config{
		Switchboard: sb, Hub: hub, Tokens: tokens, Ready: ready,
		AllowedOrigins: []string{"https://console.example"},
		PingInterval:   opt.pingInterval, WriteTimeout: opt.writeTimeout,
		ICE: opt.ice, Console: opt.console, Numbers: st,
		Durable: opt.durable, DurableWait: opt.durableWait, Trunks: opt.trunks,
		Forward: opt.forward,
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = sb.Close(context.Background())
		srv.Close()
		ts.Close()
	})
	return &server{t: t, url: ts.URL, sb: sb, hub: hub, tokens: tokens, store: st, api: srv}
}

// token mints a token through the API.
func (s *server) token(user string, role calls.Role) string {
	s.t.Helper()
	return s.tokenFor(map[string]any{"communicationUserId": user}, role, 3600)
}

func (s *server) tokenFor(identity map[string]any, role calls.Role, ttl int) string {
	s.t.Helper()
	var out struct{ Token string }
	s.do(http.MethodPost, "/api/tokens", adminKey, map[string]any{
		"identity": identity, "displayName": "Test " + role, "role": role, "ttlSeconds": ttl,
	}, http.StatusCreated, &out)
	return out.Token
}

// do sends a request and checks the status; body may be nil, a string (sent
// as is) or a value (sent as JSON); out may be nil.
func (s *server) do(method, path, token string, body any, wantStatus int, out any) []byte {
	s.t.Helper()
	return apitest.Do(s.t, s.url, method, path, token, body, wantStatus, out)
}

// wantError checks a request fails with the contract's error format.
func (s *server) wantError(method, path, token string, body any, status int, code calls.Code) {
	s.t.Helper()
	var e struct {
		Error struct {
			Code    calls.Code `json:"code"`
			Message string     `json:"message"`
		} `json:"error"`
	}
	s.do(method, path, token, body, status, &e)
	if e.Error.Code != code || e.Error.Message == "" {
		s.t.Fatalf("%s %s: error %+v, want code %s and a message", method, path, e.Error, code)
	}
}

// event is a message of the event stream.
type event struct {
	Type    calls.EventType `json:"type"`
	Seq     uint64          `json:"seq"`
	At      time.Time       `json:"at"`
	AgentID string          `json:"agentId"`
	CallID  string          `json:"callId"`
	Actor   *calls.Actor    `json:"actor"`
	Data    json.RawMessage `json:"data"`
}

// stream is one websocket client of the event stream, read by a goroutine
// of its own into a channel.
type stream struct {
	t      *testing.T
	conn   *websocket.Conn
	events chan event
	done   chan struct{}
	err    error
	mu     sync.Mutex
	seq    uint64 // the last seq read
	// started is set once the first message was read (or, resuming, once
	// seq is sinceSeq).
	started bool
}

func (s *server) wsURL(path string) string { return "ws" + strings.TrimPrefix(s.url, "http") + path }

// connect opens the event stream with the token in the header.
func (s *server) connect(token string) *stream {
	s.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + token}}
	conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/api/events"), h)
	if err != nil {
		s.t.Fatalf("dial events: %v (status %v)", err, statusOf(resp))
	}
	return s.stream(conn)
}

// connectSince opens the event stream resuming after seq: its first
// message must be a snapshot or carry seq+1.
func (s *server) connectSince(token string, seq uint64) *stream {
	s.t.Helper()
	h := http.Header{"Authorization": {"Bearer " + token}}
	conn, resp, err := websocket.DefaultDialer.Dial(s.wsURL(fmt.Sprintf("/api/events?sinceSeq=%d", seq)), h)
	if err != nil {
		s.t.Fatalf("dial events since %d: %v (status %v)", seq, err, statusOf(resp))
	}
	st := s.stream(conn)
	st.seq = seq
	return st
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

func (s *server) stream(conn *websocket.Conn) *stream {
	st := &stream{t: s.t, conn: conn, events: make(chan event, 4096), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		for {
			var ev event
			if err := conn.ReadJSON(&ev); err != nil {
				st.mu.Lock()
				st.err = err
				st.mu.Unlock()
				return
			}
			st.events <- ev
		}
	}()
	s.t.Cleanup(func() {
		conn.Close()
		for { // the reader may be blocked on a full channel: drain it
			select {
			case <-st.events:
			case <-st.done:
				return
			}
		}
	})
	return st
}

// next returns the next event, checking seq grows by one.
func (st *stream) next() event {
	st.t.Helper()
	var ev event
	select {
	case ev = <-st.events:
	case <-st.done:
		select { // events read before the close come first
		case ev = <-st.events:
		default:
			st.t.Fatalf("event stream closed: %v", st.closeErr())
		}
	case <-time.After(5 * time.Second):
		st.t.Fatal("no event within 5 s")
	}
	// A connection's first message, the snapshot, carries its stream's
	// seq, whatever it is; a resumed one's continues from sinceSeq.
	if !st.started && ev.Type == calls.EventSnapshot {
		st.seq = ev.Seq - 1
	}
	st.started = true
	st.seq++
	if ev.Seq != st.seq {
		st.t.Fatalf("event %s has seq %d, want %d", ev.Type, ev.Seq, st.seq)
	}
	return ev
}

// waitFor returns the first event of type typ about call (any call when
// call is ""), skipping others.
func (st *stream) waitFor(typ calls.EventType, call string) event {
	st.t.Helper()
	for {
		ev := st.next()
		if ev.Type == typ && (call == "" || ev.CallID == call) {
			return ev
		}
	}
}

// closed waits for the server to close the stream and returns the close
// error.
func (st *stream) closed() error {
	st.t.Helper()
	select {
	case <-st.done:
		return st.closeErr()
	case <-time.After(5 * time.Second):
		st.t.Fatal("stream not closed within 5 s")
	}
	return nil
}

func (st *stream) closeErr() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

func decodeData[T any](t *testing.T, ev event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		t.Fatalf("decoding %s data %s: %v", ev.Type, ev.Data, err)
	}
	return v
}

func identityJSON(user string) map[string]any { return map[string]any{"communicationUserId": user} }

func apiTokenRequest(user string, role calls.Role, ttl int) api.TokenRequest {
	return api.TokenRequest{Identity: calls.CommunicationUser(user), DisplayName: user, Role: role, TTLSeconds: ttl}
}
