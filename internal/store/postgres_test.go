package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// The Postgres tests need a server: SWITCHBOARD_TEST_DATABASE_URL names a
// database in which they may create and drop schemas. Without it they skip.
const testDatabaseEnv = "SWITCHBOARD_TEST_DATABASE_URL"

func TestPostgres(t *testing.T) {
	testDatabaseBase(t)
	storetest.Run(t, func(t *testing.T) calls.Store {
		return mustOpenPostgres(t, testDatabaseURL(t), PostgresOptions{})
	})
	storetest.RunDurable(t, func(t *testing.T) func(t *testing.T) calls.Store {
		url, spool := testDatabaseURL(t), t.TempDir()
		return func(t *testing.T) calls.Store {
			return mustOpenPostgres(t, url, PostgresOptions{SpoolDir: spool})
		}
	})
}

// testDatabaseURL answers the URL of a fresh, empty schema, dropped when
// tb ends. It skips tb when no database is configured.
func testDatabaseURL(tb testing.TB) string {
	tb.Helper()
	base := testDatabaseBase(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", testDatabaseEnv, err)
	}
	defer conn.Close(ctx)
	schema := "sbtest_" + randomHex(tb, 8)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(tb, base, schema)
}

// testDatabaseBase answers the test database's URL, skipping tb when there
// is none.
func testDatabaseBase(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(testDatabaseEnv)
	if base == "" {
		tb.Skipf("%s is not set: skipping a test that needs Postgres (set it to a database URL, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", testDatabaseEnv)
	}
	return base
}

// withSearchPath is the database URL u with schema first on the search
// path, so that unqualified names (the store's tables) live there.
func withSearchPath(tb testing.TB, u, schema string) string {
	tb.Helper()
	if !strings.Contains(u, "://") {
		return u + " search_path=" + schema // keyword/value form
	}
	parsed, err := url.Parse(u)
	if err != nil {
		tb.Fatalf("%s: %v", testDatabaseEnv, err)
	}
	q := parsed.Query()
	q.Set("search_path", schema)
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// mustOpenPostgres opens a store at databaseURL, closed when t ends. It
// fills in a spool directory and a logger unless opt has them.
func mustOpenPostgres(tb testing.TB, databaseURL string, opt PostgresOptions) *Postgres {
	tb.Helper()
	if opt.SpoolDir == "" {
		opt.SpoolDir = tb.TempDir()
	}
	if opt.Logger == nil {
		opt.Logger = testLogger(tb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := OpenPostgres(ctx, databaseURL, opt)
	if err != nil {
		tb.Fatalf("OpenPostgres: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return p
}

// testLogger logs warnings and errors to the test's output.
func testLogger(tb testing.TB) *slog.Logger {
	var w io.Writer = os.Stderr
	if t, ok := tb.(interface{ Output() io.Writer }); ok {
		w = t.Output()
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// mustFlush waits for the store s to write what was recorded.
func mustFlush(tb testing.TB, s interface{ Flush(context.Context) error }) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		tb.Fatalf("Flush: %v", err)
	}
}

// waitFor polls cond until it holds, failing tb after a while.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// queryInt answers a query's one integer.
func queryInt(tb testing.TB, databaseURL, query string, args ...any) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// mustExec runs a statement.
func mustExec(tb testing.TB, databaseURL, stmt string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt, args...); err != nil {
		tb.Fatalf("%s: %v", stmt, err)
	}
}

// proxy is a loopback TCP proxy to Postgres that a test can cut, to play
// an outage without stopping the shared server: cutting closes every
// connection through it and refuses new ones until Restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// startProxy proxies to the host of databaseURL; stopped when tb ends.
func startProxy(tb testing.TB, databaseURL string) *proxy {
	tb.Helper()
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), conns: make(map[net.Conn]bool)}
	p.wg.Go(p.serve)
	tb.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// url is databaseURL through the proxy.
func (p *proxy) url(tb testing.TB, databaseURL string) string {
	tb.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		tb.Fatalf("the proxy needs a URL, not %q: %v", databaseURL, err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.pipe(c) })
	}
}

// track notes c, unless the proxy is cut.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil || !p.track(up) {
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.Close()
		close(done)
	}()
	io.Copy(c, up)
	c.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

var tBase = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// conversation is nCalls calls recorded as the switchboard would, one
// change at a time, round robin: each call rings, connects, gets a second
// participant, and (but the last call) ends. Each change carries one or
// two events, each caused by someone.
func conversation(nCalls int) []calls.Record {
	cs := make([]calls.Call, nCalls)
	for i := range cs {
		start := tBase.Add(time.Duration(i) * time.Second)
		cs[i] = calls.Call{
			ID: fmt.Sprintf("call-%04d", i), ServerCallID: fmt.Sprintf("srv-%04d", i),
			AgentID: fmt.Sprintf("8:acs:agent-%d", i%3), Direction: calls.Incoming, Kind: calls.OneToOne,
			State:      calls.StateRinging,
			CallerInfo: calls.CallerInfo{Identifier: calls.PhoneNumber("+1555010000" + fmt.Sprint(i%10))},
			RemoteParticipants: []calls.Participant{{
				Identifier: calls.PhoneNumber("+1555010000" + fmt.Sprint(i%10)), RawID: "4:+1555010000" + fmt.Sprint(i%10),
				State: calls.ParticipantConnected, EndpointDetails: []calls.EndpointDetail{{ParticipantID: "ep"}},
			}},
			StartTime: start,
		}
	}
	var recs []calls.Record
	step := func(i int, at time.Time, change func(c *calls.Call), evs ...calls.Event) {
		c := &cs[i]
		change(c)
		view := *c
		view.RemoteParticipants = append([]calls.Participant(nil), c.RemoteParticipants...)
		for k := range evs {
			evs[k].At, evs[k].AgentID, evs[k].CallID = at, c.AgentID, c.ID
		}
		recs = append(recs, calls.Record{Call: view, Events: evs})
	}
	for i := range cs {
		step(i, cs[i].StartTime, func(*calls.Call) {}, calls.Event{Type: calls.EventIncomingCall,
			Actor: &calls.Actor{Kind: calls.ActorRemote, RawID: cs[i].RemoteParticipants[0].RawID},
			Data:  calls.IncomingCallData{IncomingCall: calls.IncomingCall{ID: cs[i].ID, AgentID: cs[i].AgentID, CallerInfo: cs[i].CallerInfo}}})
	}
	for i := range cs {
		at := cs[i].StartTime.Add(2 * time.Second)
		step(i, at, func(c *calls.Call) {
			c.State, c.IsActive, c.ConnectedTime = calls.StateConnected, true, &at
		}, calls.Event{Type: calls.EventStateChanged, Actor: &calls.Actor{Kind: calls.ActorAgent, RawID: cs[i].AgentID},
			Data: calls.StateChangedData{OldState: calls.StateRinging, State: calls.StateConnected, IsActive: true}})
	}
	for i := range cs {
		at := cs[i].StartTime.Add(30 * time.Second)
		p := calls.Participant{Identifier: calls.CommunicationUser("expert"), RawID: "8:acs:expert", DisplayName: "Expert",
			State: calls.ParticipantConnected, EndpointDetails: []calls.EndpointDetail{{ParticipantID: "ep2"}}}
		step(i, at, func(c *calls.Call) {
			c.Kind = calls.Group
			c.RemoteParticipants = append(c.RemoteParticipants, p)
		},
			calls.Event{Type: calls.EventRemoteParticipantsUpdated, Actor: &calls.Actor{Kind: calls.ActorSupervisor, RawID: "8:acs:boss"},
				Data: calls.ParticipantsUpdatedData{Added: []calls.Participant{p}, Removed: []calls.Participant{}}},
			calls.Event{Type: calls.EventKindChanged, Actor: &calls.Actor{Kind: calls.ActorSupervisor, RawID: "8:acs:boss"},
				Data: calls.KindChangedData{Kind: calls.Group}})
	}
	for i := range cs[:nCalls-1] {
		at := cs[i].StartTime.Add(90 * time.Second)
		step(i, at, func(c *calls.Call) {
			r := calls.ReasonHungUp
			c.State, c.IsActive, c.CallEndReason, c.EndTime = calls.StateDisconnected, false, &r, &at
			for k := range c.RemoteParticipants {
				pr := calls.ReasonRemoteHungUp
				c.RemoteParticipants[k].State = calls.ParticipantDisconnected
				c.RemoteParticipants[k].CallEndReason = &pr
			}
		}, calls.Event{Type: calls.EventCallEnded, Actor: &calls.Actor{Kind: calls.ActorSystem},
			Data: calls.CallEndedData{CallEndReason: calls.ReasonHungUp}})
	}
	return recs
}

// checkStored checks that the store holds exactly recs: each call's latest
// view, each event once, in the order recorded.
func checkStored(t *testing.T, databaseURL string, p *Postgres, recs []calls.Record) {
	t.Helper()
	views := make(map[string]calls.Call)
	timelines := make(map[string][]calls.Event)
	var ids []string
	events := 0
	for _, r := range recs {
		if _, ok := views[r.Call.ID]; !ok {
			ids = append(ids, r.Call.ID)
		}
		views[r.Call.ID] = r.Call
		timelines[r.Call.ID] = append(timelines[r.Call.ID], r.Events...)
		events += len(r.Events)
	}
	if got := queryInt(t, databaseURL, `SELECT count(*) FROM calls`); got != len(ids) {
		t.Errorf("calls rows = %d, want %d", got, len(ids))
	}
	if got := queryInt(t, databaseURL, `SELECT count(*) FROM call_events`); got != events {
		t.Errorf("call_events rows = %d, want %d", got, events)
	}
	for _, id := range ids {
		h, err := p.FindCallByID(t.Context(), id)
		if err != nil {
			t.Fatalf("FindCallByID(%s): %v", id, err)
		}
		if got, want := jsonOf(t, h.Call), jsonOf(t, views[id]); !reflect.DeepEqual(got, want) {
			t.Errorf("call %s:\n got %v\nwant %v", id, got, want)
		}
		want := timelines[id]
		if len(h.Timeline) != len(want) {
			t.Errorf("call %s has %d events, want %d", id, len(h.Timeline), len(want))
			continue
		}
		for i, e := range h.Timeline {
			w := want[i]
			if e.Type != w.Type || !e.At.Equal(w.At) || !reflect.DeepEqual(e.Actor, w.Actor) ||
				!reflect.DeepEqual(jsonOf(t, e.Data), jsonOf(t, w.Data)) {
				t.Errorf("call %s event %d = %s at %v by %+v, want %s at %v by %+v", id, i, e.Type, e.At, e.Actor, w.Type, w.At, w.Actor)
			}
		}
	}
}

// jsonOf is v through JSON, as plain values.
func jsonOf(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
