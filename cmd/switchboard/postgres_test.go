package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/pgtest"
)

// countingStore passes records on and counts what it was given: the
// events of each call and each call's last view.
type countingStore struct {
	calls.Store
	mu     sync.Mutex
	events map[string]int
	last   map[string]calls.Call
}

func (c *countingStore) Record(recs ...calls.Record) {
	c.mu.Lock()
	for _, r := range recs {
		c.events[r.Call.ID] += len(r.Events)
		c.last[r.Call.ID] = r.Call
	}
	c.mu.Unlock()
	c.Store.Record(recs...)
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func request(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := checkedClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// TestPostgresOutage stops Postgres for 30 s in the middle of 200 live
// calls that keep changing, and starts it again: then every call and every
// event the switchboard recorded is in the database exactly once.
func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s outage")
	}
	ctx := context.Background()
	cluster := pgtest.Start(t)
	pg, err := store.OpenPostgres(ctx, cluster.URL(), store.PostgresOptions{
		SpoolDir: t.TempDir(), QueueSize: 512, RetryMax: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingStore{Store: pg, events: map[string]int{}, last: map[string]calls.Call{}}
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard, Store: counted,
	}
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	base := "http://" + m.Addr

	// 20 agents with 10 calls each: 200 live calls.
	type agent struct {
		token string
		calls []string
	}
	agents := make([]*agent, 20)
	for i := range agents {
		a := &agent{token: mint(t, fmt.Sprintf("agent%02d", i), calls.RoleAgent)}
		for range 10 {
			status, raw := request(t, "POST", base+"/api/calls", a.token, `{"participants":[{"id":"8:echo123"}]}`)
			if status != http.StatusCreated {
				t.Fatalf("start call: %d %s", status, raw)
			}
			var c calls.Call
			_ = json.Unmarshal(raw, &c)
			a.calls = append(a.calls, c.ID)
		}
		agents[i] = a
	}

	// Work goes on through the outage: swaps, mutes, calls ending and new
	// ones starting.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ops sync.Map
	for i, a := range agents {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			n := 0
			for {
				select {
				case <-stop:
					ops.Store(i, n)
					return
				case <-time.After(20 * time.Millisecond):
				}
				id := a.calls[r.IntN(len(a.calls))]
				switch r.IntN(10) {
				case 0:
					request(t, "POST", base+"/api/calls/"+id+"/hangup", a.token, "")
					status, raw := request(t, "POST", base+"/api/calls", a.token, `{"participants":[{"id":"8:echo123"}]}`)
					var c calls.Call
					if status == http.StatusCreated && json.Unmarshal(raw, &c) == nil {
						a.calls[slicesIndex(a.calls, id)] = c.ID
					}
				case 1, 2:
					request(t, "POST", base+"/api/calls/"+id+"/mute", a.token, "")
				default:
					request(t, "POST", base+"/api/calls/"+id+"/resume", a.token, "")
				}
				n++
			}
		})
	}

	time.Sleep(2 * time.Second)
	cluster.StopServer()
	outage := time.Now()
	sawBehind := false
	for time.Since(outage) < 30*time.Second {
		if getStatus(t, base+"/readyz") == http.StatusServiceUnavailable {
			sawBehind = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	cluster.StartServer()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if !sawBehind {
		t.Error("/readyz never said the store was behind during the outage")
	}

	flushCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := pg.Flush(flushCtx); err != nil {
		t.Fatalf("flush after the outage: %v", err)
	}
	if status := getStatus(t, base+"/readyz"); status != http.StatusOK {
		t.Errorf("/readyz after the outage: %d, want 200", status)
	}

	conn, err := pgx.Connect(ctx, cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	counted.mu.Lock()
	defer counted.mu.Unlock()
	total := 0
	for _, n := range counted.events {
		total += n
	}
	var dbEvents, dbCalls int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM call_events`).Scan(&dbEvents); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM calls`).Scan(&dbCalls); err != nil {
		t.Fatal(err)
	}
	t.Logf("outage of 30 s: %d calls and %d events recorded; database has %d and %d", len(counted.last), total, dbCalls, dbEvents)
	if dbCalls != len(counted.last) || dbEvents != total {
		t.Fatalf("database has %d calls and %d events, want %d and %d", dbCalls, dbEvents, len(counted.last), total)
	}
	rows, err := conn.Query(ctx, `SELECT c.id, c.state, (SELECT count(*) FROM call_events e WHERE e.call_id = c.id) FROM calls c`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, state string
		var n int
		if err := rows.Scan(&id, &state, &n); err != nil {
			t.Fatal(err)
		}
		if want := counted.last[id]; string(want.State) != state || counted.events[id] != n {
			t.Errorf("call %s: database has %s with %d events, want %s with %d", id, state, n, want.State, counted.events[id])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return 0
}

// startServe runs `switchboard serve` as a process of its own with env,
// and returns it with the address it listens on.
func startServe(t *testing.T, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// A data directory of its own unless env names one: the history file
	// is there without DATABASE_URL.
	cmd.Env = append(append(os.Environ(), "SWITCHBOARD_TEST_RUN=serve --addr 127.0.0.1:0", "SWITCHBOARD_ADMIN_KEY="+testAdminKey,
		"SWITCHBOARD_DATA_DIR="+t.TempDir()), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	addrRe := regexp.MustCompile(`switchboard listening"? addr=(\S+)`)
	var log strings.Builder
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("serve exited before listening:\n%s", log.String())
			}
			log.WriteString(line + "\n")
			if m := addrRe.FindStringSubmatch(line); m != nil {
				go func() {
					for range lines {
					}
				}()
				return cmd, m[1]
			}
		case <-timeout:
			t.Fatalf("serve did not listen within 30 s:\n%s", log.String())
		}
	}
}

// TestKilledWithLiveCalls kills the switchboard (SIGKILL) with live calls;
// at the next start those calls show 503 in history.
func TestKilledWithLiveCalls(t *testing.T) {
	cluster := pgtest.Start(t)
	testKilledWithLiveCalls(t, "DATABASE_URL="+cluster.URL(), "SWITCHBOARD_SPOOL_DIR="+t.TempDir())
}

// TestMigrateCommand: switchboard migrate applies the migrations to an
// empty database, and again is a no-op.
func TestMigrateCommand(t *testing.T) {
	cluster := pgtest.Start(t)
	for i := range 2 {
		var stderr strings.Builder
		if code := run(context.Background(), []string{"migrate", "--database-url", cluster.URL()}, io.Discard, &stderr, env(nil)); code != 0 {
			t.Fatalf("migrate #%d exited %d: %s", i+1, code, stderr.String())
		}
	}
	conn, err := pgx.Connect(context.Background(), cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, table := range []string{"calls", "participants", "call_events", "switchboard_heartbeat"} {
		var exists bool
		if err := conn.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s after migrate: exists=%v, %v", table, exists, err)
		}
	}
}
