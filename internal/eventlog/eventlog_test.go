package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/eventlog"
)

// guard bounds every wait: a failure guard, not a timing assertion.
const guard = 30 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return ctx
}

// servers runs fn against the shared NATS and an in-process one.
func servers(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("shared", func(t *testing.T) { fn(t, natstest.SharedURL(t)) })
	t.Run("inprocess", func(t *testing.T) { fn(t, natstest.Start(t).URL()) })
}

// mustConfig answers a stream and subject no other test uses; the stream
// is deleted when t ends.
func mustConfig(t *testing.T, url string) eventlog.Config {
	t.Helper()
	name := natstest.Name(t, "sbtest_events_")
	_, js := natstest.Connect(t, url)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", name, err)
		}
	})
	return eventlog.Config{Stream: name, Subject: "sbtest." + name, Storage: jetstream.MemoryStorage}
}

// mustOpen opens the log on its own connection (one node's view).
func mustOpen(t *testing.T, url string, cfg eventlog.Config) *eventlog.Log {
	t.Helper()
	_, js := natstest.Connect(t, url)
	l, err := eventlog.Open(ctxT(t), js, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustAppend(t *testing.T, l *eventlog.Log, id, payload string, opts ...eventlog.AppendOption) uint64 {
	t.Helper()
	seq, err := l.Append(ctxT(t), id, []byte(payload), opts...)
	if err != nil {
		t.Fatalf("Append(%q, %q): %v", id, payload, err)
	}
	return seq
}

func payloads(es []eventlog.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Payload))
	}
	return out
}

func TestAppendSince(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		l := mustOpen(t, url, mustConfig(t, url))
		ctx := ctxT(t)
		const alice, bob = "agent:alice", "phone:+1 555.0100>*"
		a1 := mustAppend(t, l, alice, "a1")
		b1 := mustAppend(t, l, bob, "b1")
		a2 := mustAppend(t, l, alice, "a2")
		a3 := mustAppend(t, l, alice, "a3")
		b2 := mustAppend(t, l, bob, "b2")
		if a2 != a1+1 || a3 != a2+1 || b2 != b1+1 {
			t.Fatalf("sequences alice %d %d %d, bob %d %d: want consecutive per identity", a1, a2, a3, b1, b2)
		}
		if last, ok, err := l.Last(ctx, alice); err != nil || !ok || last.Seq != a3 || string(last.Payload) != "a3" {
			t.Fatalf("Last(alice) = %+v, %v, %v; want seq %d a3", last, ok, err, a3)
		}
		if _, ok, err := l.Last(ctx, "agent:nobody"); err != nil || ok {
			t.Fatalf("Last(nobody) ok %v, %v; want none", ok, err)
		}
		for _, tc := range []struct {
			name    string
			id      string
			since   uint64
			want    []string
			wantErr error
		}{
			{"all of alice", alice, 0, []string{"a1", "a2", "a3"}, nil},
			{"alice after a1", alice, a1, []string{"a2", "a3"}, nil},
			{"alice after a3", alice, a3, nil, nil},
			{"alice beyond her last", alice, a3 + 1, nil, eventlog.ErrGone},
			{"bob after b1", bob, b1, []string{"b2"}, nil},
			{"nobody from 0", "agent:nobody", 0, nil, nil},
			{"nobody from 7", "agent:nobody", 7, nil, eventlog.ErrGone},
		} {
			got, err := l.Since(ctx, tc.id, tc.since)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
				continue
			}
			if !slices.Equal(payloads(got), tc.want) {
				t.Errorf("%s: got %q, want %q", tc.name, payloads(got), tc.want)
			}
			for i, e := range got {
				if e.Identity != tc.id || e.Seq != tc.since+uint64(i)+1 && tc.since != 0 {
					t.Errorf("%s: entry %d = %+v", tc.name, i, e)
				}
			}
		}
		if all, _ := l.Since(ctx, alice, 0); len(all) == 0 || !all[0].RunStart || all[1].RunStart {
			t.Errorf("only alice's first event starts her run: %+v", all)
		}
		if _, err := l.Append(ctx, "", []byte("x")); !errors.Is(err, eventlog.ErrInvalid) {
			t.Errorf("Append with no identity: %v, want ErrInvalid", err)
		}
	})
}

// TestConcurrentAppendsGapless: two nodes append to one identity at once;
// the expected-last-subject-sequence check keeps its sequence gapless.
func TestConcurrentAppendsGapless(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		cfg := mustConfig(t, url)
		nodes := []*eventlog.Log{mustOpen(t, url, cfg), mustOpen(t, url, cfg)}
		ctx := ctxT(t)
		const id, each = "agent:shared", 40
		var (
			mu   sync.Mutex
			seqs []uint64
			wg   sync.WaitGroup
			errs = make(chan error, 2*each)
		)
		for n, l := range nodes {
			for w := range 2 { // two writers per node too
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each / 2 {
						seq, err := l.Append(ctx, id, fmt.Appendf(nil, "n%d-w%d-%d", n, w, i))
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						seqs = append(seqs, seq)
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		slices.Sort(seqs)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Fatalf("sequences %v: not gapless at %d", seqs, i)
			}
		}
		got, err := nodes[0].Since(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2*each {
			t.Fatalf("Since(0) has %d entries, want %d", len(got), 2*each)
		}
		for i, e := range got {
			if e.Seq != seqs[i] {
				t.Fatalf("entry %d has seq %d, want %d (stream order = sequence order)", i, e.Seq, seqs[i])
			}
		}
	})
}

func TestMsgIDDeduplicates(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		cfg := mustConfig(t, url)
		a, b := mustOpen(t, url, cfg), mustOpen(t, url, cfg)
		ctx := ctxT(t)
		const id = "agent:dedup"
		first := mustAppend(t, a, id, "hold", eventlog.WithMsgID("ev-1"))
		steps := []struct {
			name string
			log  *eventlog.Log
			msg  string
			id   string
			want uint64
		}{
			{"retry on the same node", a, "hold", "ev-1", first},
			{"retry from another node", b, "hold", "ev-1", first},
			{"a new id", a, "unhold", "ev-2", first + 1},
			{"the old id again after a new one", b, "hold", "ev-1", first},
		}
		for _, s := range steps {
			if got := mustAppend(t, s.log, id, s.msg, eventlog.WithMsgID(s.id)); got != s.want {
				t.Errorf("%s: seq %d, want %d", s.name, got, s.want)
			}
		}
		all, err := a.Since(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"hold", "unhold"}; !slices.Equal(payloads(all), want) {
			t.Fatalf("log %q, want %q", payloads(all), want)
		}
		if next := mustAppend(t, b, id, "end"); next != first+2 {
			t.Errorf("append after the duplicates: seq %d, want %d", next, first+2)
		}
	})
}

// TestSinceGone removes events as retention would (DeleteMsg), and then
// lets MaxAge drop a whole identity's run.
func TestSinceGone(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		cfg := mustConfig(t, url)
		cfg.MaxAge = 2 * time.Second
		l := mustOpen(t, url, cfg)
		_, js := natstest.Connect(t, url)
		ctx := ctxT(t)
		stream, err := js.Stream(ctx, cfg.Stream)
		if err != nil {
			t.Fatal(err)
		}
		const id = "agent:gone"
		s1 := mustAppend(t, l, id, "e1")
		mustAppend(t, l, id, "e2")
		s3 := mustAppend(t, l, id, "e3")
		first, _ := l.Since(ctx, id, 0)
		if err := stream.DeleteMsg(ctx, first[0].StreamSeq); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			since   uint64
			want    []string
			wantErr error
		}{
			{0, nil, eventlog.ErrGone}, // the run's start is gone
			{s1 - 1, nil, eventlog.ErrGone},
			{s1, []string{"e2", "e3"}, nil},
			{s1 + 1, []string{"e3"}, nil},
		} {
			got, err := l.Since(ctx, id, tc.since)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) || !slices.Equal(payloads(got), tc.want) {
				t.Errorf("Since(%d) = %q, %v; want %q, %v", tc.since, payloads(got), err, tc.want, tc.wantErr)
			}
		}

		// MaxAge drops the rest; the identity's next event starts a new run
		// above every earlier sequence, so an old cursor is gone, not reused.
		for {
			if _, ok, err := l.Last(ctx, id); err != nil {
				t.Fatal(err)
			} else if !ok {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal("MaxAge never dropped the events")
			case <-time.After(100 * time.Millisecond):
			}
		}
		mustAppend(t, l, "agent:other", "x") // moves the stream on
		n1 := mustAppend(t, l, id, "n1")
		if n1 <= s3 {
			t.Fatalf("new run starts at %d, want above the old last %d", n1, s3)
		}
		if got, err := l.Since(ctx, id, s1); !errors.Is(err, eventlog.ErrGone) {
			t.Errorf("Since(old cursor %d) = %q, %v; want ErrGone", s1, payloads(got), err)
		}
		got, err := l.Since(ctx, id, 0)
		if err != nil || !slices.Equal(payloads(got), []string{"n1"}) || !got[0].RunStart {
			t.Errorf("Since(0) after the new run = %+v, %v; want n1, a run start", got, err)
		}
	})
}

func TestFollow(t *testing.T) {
	servers(t, func(t *testing.T, url string) {
		cfg := mustConfig(t, url)
		l := mustOpen(t, url, cfg)
		ctx := ctxT(t)
		mustAppend(t, l, "agent:a", "before") // not delivered: Follow starts at new events
		type got struct {
			mu sync.Mutex
			es []string
			ch chan struct{}
		}
		follow := func(id string) (*got, *eventlog.Follower) {
			g := &got{ch: make(chan struct{}, 100)}
			f, err := l.Follow(ctx, id, func(e eventlog.Entry) {
				g.mu.Lock()
				g.es = append(g.es, e.Identity+"="+string(e.Payload))
				g.mu.Unlock()
				g.ch <- struct{}{}
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(f.Stop)
			return g, f
		}
		all, fAll := follow(eventlog.All)
		one, _ := follow("agent:a")
		mustAppend(t, l, "agent:a", "1")
		mustAppend(t, l, "agent:b", "2")
		mustAppend(t, l, "agent:a", "3")
		wait := func(g *got, n int) []string {
			for range n {
				select {
				case <-g.ch:
				case <-ctx.Done():
					t.Fatalf("fewer than %d events followed", n)
				}
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			return slices.Clone(g.es)
		}
		if got, want := wait(all, 3), []string{"agent:a=1", "agent:b=2", "agent:a=3"}; !slices.Equal(got, want) {
			t.Errorf("Follow(All) = %q, want %q", got, want)
		}
		if got, want := wait(one, 2), []string{"agent:a=1", "agent:a=3"}; !slices.Equal(got, want) {
			t.Errorf("Follow(agent:a) = %q, want %q", got, want)
		}
		fAll.Stop()
		mustAppend(t, l, "agent:b", "after stop")
		if got := wait(one, 0); len(got) != 2 {
			t.Errorf("the one-identity follower saw another's event: %q", got)
		}
		all.mu.Lock()
		defer all.mu.Unlock()
		if len(all.es) != 3 {
			t.Errorf("a stopped follower got %q", all.es)
		}
		if err := fAll.Err(); err != nil {
			t.Errorf("Err: %v", err)
		}
	})
}

// TestRestartLosesNothingAcknowledged restarts the in-process server while
// a writer appends. The writer retries each failed append with the same
// message id, as a real one would. Afterwards every acknowledged append is
// in the log once, at the sequence it was given, with no gaps.
func TestRestartLosesNothingAcknowledged(t *testing.T) {
	srv := natstest.Start(t)
	cfg := eventlog.Config{Stream: "EVENTS", Subject: "sb.events"} // file storage
	l := mustOpen(t, srv.URL(), cfg)
	ctx := ctxT(t)
	const id, total = "agent:restart", 300

	// A follower across the restart: its ordered consumer starts again
	// after the last event it saw.
	var (
		followMu sync.Mutex
		followed []uint64
	)
	f, err := l.Follow(ctx, eventlog.All, func(e eventlog.Entry) {
		followMu.Lock()
		followed = append(followed, e.Seq)
		followMu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)

	acked := map[uint64]string{}
	restarted := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := range total {
			payload := fmt.Sprintf("ev-%d", i)
			for {
				// A request sent as the server went down gets no reply: each
				// attempt has its own timeout.
				actx, cancel := context.WithTimeout(ctx, time.Second)
				seq, err := l.Append(actx, id, []byte(payload), eventlog.WithMsgID(payload))
				cancel()
				if err == nil {
					acked[seq] = payload
					break
				}
				if ctx.Err() != nil {
					done <- fmt.Errorf("append %s: %w", payload, err)
					return
				}
				t.Logf("retry: %v", err)
				time.Sleep(10 * time.Millisecond) // the server is restarting
			}
			if i == total/3 {
				<-restarted // at least a third before, the rest after
			}
		}
		done <- nil
	}()
	// Restart once a few appends are acknowledged.
	for {
		if last, ok, _ := l.Last(ctx, id); ok && last.Seq > 10 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("no appends before the restart")
		case <-time.After(5 * time.Millisecond):
		}
	}
	srv.Restart()
	close(restarted)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	got, err := l.Since(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total || len(acked) != total {
		t.Fatalf("log has %d entries, %d acknowledged; want %d", len(got), len(acked), total)
	}
	for i, e := range got {
		if i > 0 && e.Seq != got[i-1].Seq+1 {
			t.Fatalf("gap after seq %d: %d", got[i-1].Seq, e.Seq)
		}
		if acked[e.Seq] != string(e.Payload) {
			t.Fatalf("seq %d holds %q, acknowledged as %q", e.Seq, e.Payload, acked[e.Seq])
		}
		if want := fmt.Sprintf("ev-%d", i); string(e.Payload) != want {
			t.Fatalf("entry %d is %q, want %q", i, e.Payload, want)
		}
	}
	for {
		followMu.Lock()
		n := len(followed)
		seqs := slices.Clone(followed)
		followMu.Unlock()
		if n >= total {
			want := make([]uint64, 0, total)
			for _, e := range got {
				want = append(want, e.Seq)
			}
			if !slices.Equal(seqs, want) {
				t.Fatalf("followed %v, want %v", seqs, want)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the follower saw %d of %d events", n, total)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  eventlog.Config
	}{
		{"negative MaxAge", eventlog.Config{MaxAge: -time.Second}},
		{"negative Duplicates", eventlog.Config{Duplicates: -time.Second}},
		{"wildcard subject", eventlog.Config{Subject: "sb.*"}},
		{"subject with a space", eventlog.Config{Subject: "sb events"}},
		{"subject ending in a dot", eventlog.Config{Subject: "sb."}},
	} {
		// Checked before any request: no server is needed.
		if _, err := eventlog.Open(context.Background(), nil, tc.cfg); !errors.Is(err, eventlog.ErrInvalid) {
			t.Errorf("%s: Open = %v, want ErrInvalid", tc.name, err)
		}
	}
}

// TestWithHeader: a caller's header reaches Since, Last and Follow; the
// log's own headers cannot be overridden through it.
func TestWithHeader(t *testing.T) {
	url := natstest.SharedURL(t)
	cfg := mustConfig(t, url)
	l := mustOpen(t, url, cfg)
	got := make(chan eventlog.Entry, 1)
	f, err := l.Follow(ctxT(t), eventlog.All, func(e eventlog.Entry) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	seq := mustAppend(t, l, "alice", "x",
		eventlog.WithHeader("Sb-Node", "a"), eventlog.WithHeader(eventlog.SeqHeader, "999"), eventlog.WithHeader("Nats-Msg-Id", "forged"))
	followed := <-got
	last, ok, err := l.Last(ctxT(t), "alice")
	if err != nil || !ok {
		t.Fatalf("Last: %v %v", ok, err)
	}
	since, err := l.Since(ctxT(t), "alice", 0)
	if err != nil || len(since) != 1 {
		t.Fatalf("Since: %v %v", since, err)
	}
	for name, e := range map[string]eventlog.Entry{"Follow": followed, "Last": last, "Since": since[0]} {
		if e.Header.Get("Sb-Node") != "a" || e.Seq != seq || e.Header.Get("Nats-Msg-Id") == "forged" {
			t.Errorf("%s: Sb-Node %q, seq %d (appended %d), Nats-Msg-Id %q", name, e.Header.Get("Sb-Node"), e.Seq, seq, e.Header.Get("Nats-Msg-Id"))
		}
	}
}
