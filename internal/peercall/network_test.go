package peercall

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/natssign"
)

var (
	ctx   = context.Background()
	alice = callstest.Agent("alice")
	bob   = callstest.Agent("bob")
	carol = callstest.Agent("carol")
	sup   = callstest.Supervisor("sue")
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// directory is a fake Directory: who owns which identity.
type directory struct {
	mu    sync.Mutex
	owner map[string]string
}

func (d *directory) OwnerOf(_ context.Context, id string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.owner[id], nil
}

func (d *directory) set(id, node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.owner[id] = node
}

// world is alice's and bob's switchboards: one node, or two nodes (alice
// and sue on a, bob and carol on b) joined by Networks over NATS.
type world struct {
	t         *testing.T
	a, b      *callstest.Fixture
	na, nb    *Network
	dir       *directory
	conn      *nats.Conn
	prefix    string
	aliceCall string
	bobCall   string
	marks     []string
}

func newWorld(t *testing.T, twoNodes bool) *world {
	return newQueueWorld(t, twoNodes, nil, nil)
}

// newQueueWorld is newWorld with queues on a and b (nil: none).
func newQueueWorld(t *testing.T, twoNodes bool, qa, qb calls.Queues) *world {
	w := &world{t: t}
	if !twoNodes {
		w.a = callstest.New(t, calls.Config{Queues: qa})
		w.b = w.a
	} else {
		url := natstest.SharedURL(t)
		w.conn, _ = natstest.Connect(t, url)
		w.prefix = natstest.Name(t, "pctest")
		w.dir = &directory{owner: map[string]string{}}
		for _, p := range []calls.Principal{alice, sup} {
			w.dir.set(p.Identifier.RawID(), "a")
		}
		for _, p := range []calls.Principal{bob, carol} {
			w.dir.set(p.Identifier.RawID(), "b")
		}
		w.na, w.nb = w.network("a"), w.network("b")
		w.a = callstest.New(t, calls.Config{Peers: w.na, Queues: qa})
		b := callstest.IDs()
		w.b = callstest.New(t, calls.Config{Peers: w.nb, Queues: qb, NewID: func() string { return "b" + b() }})
		must(t, w.na.Serve(w.a))
		must(t, w.nb.Serve(w.b))
	}
	w.a.Connect(t, alice)
	w.a.Connect(t, sup)
	return w
}

func (w *world) network(node string) *Network {
	n, err := New(Config{Conn: w.conn, Node: node, SubjectPrefix: w.prefix, Secret: secret, Directory: w.dir,
		Timeout: 200 * time.Millisecond, DialGiveUp: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	must(w.t, err)
	w.t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustCall(t *testing.T) func(calls.Call, error) calls.Call { return callstest.Must[calls.Call](t) }

func to(p calls.Principal) calls.StartCallRequest {
	return calls.StartCallRequest{Participants: []calls.Identifier{p.Identifier}}
}

// flush waits until neither network sends or handles anything.
func (w *world) flush() {
	w.t.Helper()
	if w.na == nil {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); !w.na.idle() || !w.nb.idle(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			w.t.Fatal("the networks are still busy after 10 s")
		}
	}
}

func (w *world) call() {
	w.aliceCall = mustCall(w.t)(w.a.StartCall(ctx, alice, to(bob))).ID
	w.flush()
	if in, err := w.b.ListIncoming(ctx, bob); err == nil && len(in) == 1 {
		w.bobCall = in[0].ID
	}
}

func (w *world) answer() {
	mustCall(w.t)(w.b.Accept(ctx, bob, w.bobCall))
	w.flush()
}

func (w *world) mark(label string) {
	w.t.Helper()
	w.flush()
	w.marks = append(w.marks, fmt.Sprintf("%s: alice %s; bob %s", label, lastRecord(w.a, w.aliceCall), lastRecord(w.b, w.bobCall)))
}

// lastRecord describes a call as last recorded.
func lastRecord(f *callstest.Fixture, id string) string {
	recs := f.Store.Records(id)
	if id == "" || len(recs) == 0 {
		return "none"
	}
	c := recs[len(recs)-1].Call
	var b strings.Builder
	fmt.Fprintf(&b, "%s muted=%v", c.State, c.IsMuted)
	if c.CallEndReason != nil {
		fmt.Fprintf(&b, " ended %d/%d", c.CallEndReason.Code, c.CallEndReason.SubCode)
	}
	for _, p := range c.RemoteParticipants {
		fmt.Fprintf(&b, " [%s %s muted=%v", p.RawID, p.State, p.IsMuted)
		if p.CallEndReason != nil {
			fmt.Fprintf(&b, " ended %d/%d", p.CallEndReason.Code, p.CallEndReason.SubCode)
		}
		b.WriteString("]")
	}
	return b.String()
}

// TestCallsAsOnOneNode plays the domain's scenarios (calls.
// TestPeerCallsAsOnOneNode) over NATS: every call stands as it would on
// one node at every step, and each party has the same events.
func TestCallsAsOnOneNode(t *testing.T) {
	tests := []struct {
		name  string
		steps func(w *world)
	}{
		{"bob answers, both hold and resume, bob hangs up", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.mark("ringing")
			w.answer()
			w.mark("answered")
			mustCall(w.t)(w.b.Hold(ctx, bob, w.bobCall))
			w.mark("bob holds")
			mustCall(w.t)(w.a.Hold(ctx, alice, w.aliceCall))
			w.mark("alice holds too")
			mustCall(w.t)(w.b.Resume(ctx, bob, w.bobCall))
			w.mark("bob resumes")
			mustCall(w.t)(w.a.Resume(ctx, alice, w.aliceCall))
			w.mark("alice resumes")
			mustCall(w.t)(w.b.HangUp(ctx, bob, w.bobCall, false))
			w.mark("bob hung up")
		}},
		{"alice hangs up", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.answer()
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
			w.mark("alice hung up")
		}},
		{"bob declines", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			mustCall(w.t)(w.b.Reject(ctx, bob, w.bobCall))
			w.mark("declined")
		}},
		{"alice gives up while it rings", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
			w.mark("canceled")
		}},
		{"nobody answers", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.b.Clock.Advance(calls.DefaultRingTimeout)
			w.flush()
			if w.a != w.b {
				w.a.Clock.Advance(calls.DefaultRingTimeout)
			}
			w.mark("no answer")
		}},
		{"bob is not connected", func(w *world) {
			w.call()
			w.mark("not connected")
		}},
		{"sue mutes bob, bob unmutes, alice mutes herself", func(w *world) {
			w.b.Connect(w.t, bob)
			w.call()
			w.answer()
			callstest.Must[calls.Participant](w.t)(w.a.MuteParticipant(ctx, sup, w.aliceCall, bob.Identifier.RawID()))
			w.mark("sue muted bob")
			mustCall(w.t)(w.b.SetMuted(ctx, bob, w.bobCall, false))
			w.mark("bob unmuted")
			mustCall(w.t)(w.a.SetMuted(ctx, alice, w.aliceCall, true))
			w.mark("alice muted")
		}},
		{"bob answers while on a call with carol", func(w *world) {
			w.b.Connect(w.t, bob)
			w.b.Connect(w.t, carol)
			mustCall(w.t)(w.b.StartCall(ctx, carol, to(bob)))
			in, err := w.b.ListIncoming(ctx, bob)
			if err != nil || len(in) != 1 {
				w.t.Fatalf("bob's incoming calls: %v, %v", in, err)
			}
			mustCall(w.t)(w.b.Accept(ctx, bob, in[0].ID))
			w.call()
			w.answer()
			w.mark("bob took alice's call")
			mustCall(w.t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
			w.mark("alice hung up")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, two := newWorld(t, false), newWorld(t, true)
			tt.steps(one)
			tt.steps(two)
			if !slices.Equal(one.marks, two.marks) {
				t.Errorf("over NATS:\n  %s\nwant, as on one node:\n  %s", strings.Join(two.marks, "\n  "), strings.Join(one.marks, "\n  "))
			}
			for _, c := range []struct {
				who          calls.Principal
				f1, f2       *callstest.Fixture
				call1, call2 string
			}{
				{alice, one.a, two.a, one.aliceCall, two.aliceCall},
				{bob, one.b, two.b, one.bobCall, two.bobCall},
			} {
				id := c.who.Identifier.RawID()
				if got, want := c.f2.Publisher.Types(id, c.call2), c.f1.Publisher.Types(id, c.call1); !slices.Equal(got, want) {
					t.Errorf("%s's events over NATS: %v, want %v", id, got, want)
				}
			}
		})
	}
}

// standIn is n's one pair (the test has one call).
func standIn(t *testing.T, n *Network) *pair {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.pairs) != 1 {
		t.Fatalf("%d pairs on %s, want 1", len(n.pairs), n.cfg.Node)
	}
	for _, p := range n.pairs {
		return p
	}
	return nil
}

// request sends m to node as from, signed with key (none when nil), and
// answers the reply.
func (w *world) request(node string, m message, key []byte) reply {
	w.t.Helper()
	data, err := json.Marshal(m)
	must(w.t, err)
	msg := nats.NewMsg(w.prefix + ".node." + node + ".peercall")
	msg.Data = data
	if key != nil {
		msg.Header.Set(natssign.Header, natssign.Sum(key, msg.Subject, data))
	}
	resp, err := w.conn.RequestMsg(msg, 2*time.Second)
	must(w.t, err)
	var r reply
	must(w.t, json.Unmarshal(resp.Data, &r))
	return r
}

// TestRepeatedMessages: a message sent again (its answer was lost) is
// applied once; a late one, numbered below the last applied, is not
// applied at all; a dial sent again rings once.
func TestRepeatedMessages(t *testing.T) {
	w := newWorld(t, true)
	w.b.Connect(t, bob)
	w.call()
	w.answer()
	p := standIn(t, w.na)

	// a's next two messages, as a's pair would number them: hold, then
	// resume.
	held, resumed := true, false
	w.na.mu.Lock()
	first, second := p.nextSeq+1, p.nextSeq+2
	p.nextSeq += 2
	w.na.mu.Unlock()
	hold := message{From: "a", To: "b", Pair: p.id, Seq: first, At: time.Now(), Change: &calls.PeerChange{Held: &held}}
	resume := message{From: "a", To: "b", Pair: p.id, Seq: second, At: time.Now(), Change: &calls.PeerChange{Held: &resumed}}
	events := func() int { return len(w.b.Publisher.Types(bob.Identifier.RawID(), w.bobCall)) }

	var afterHold []int
	for i := range 2 {
		if r := w.request("b", hold, secret); !reflect.DeepEqual(r, reply{}) {
			t.Fatalf("hold, try %d: %+v", i+1, r)
		}
		w.flush()
		afterHold = append(afterHold, events())
	}
	w.mark("held, sent twice")
	if r := w.request("b", resume, secret); !reflect.DeepEqual(r, reply{}) {
		t.Fatalf("resume: %+v", r)
	}
	w.mark("resumed")
	afterResume := events()
	if r := w.request("b", hold, secret); !reflect.DeepEqual(r, reply{}) { // late: numbered below the resume
		t.Fatalf("late hold: %+v", r)
	}
	w.mark("the hold again, late")
	want := []string{
		"held, sent twice: alice Connected muted=false [8:acs:bob Connected muted=false]; bob RemoteHold muted=false [8:acs:alice Hold muted=false]",
		"resumed: alice Connected muted=false [8:acs:bob Connected muted=false]; bob Connected muted=false [8:acs:alice Connected muted=false]",
		"the hold again, late: alice Connected muted=false [8:acs:bob Connected muted=false]; bob Connected muted=false [8:acs:alice Connected muted=false]",
	}
	if !slices.Equal(w.marks, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(w.marks, "\n  "), strings.Join(want, "\n  "))
	}
	if got := events(); afterHold[1] != afterHold[0] || got != afterResume {
		t.Errorf("bob's events: %v after the hold and after it again, %d after the resume, %d after the late hold; want no new one from the repeats",
			afterHold, afterResume, got)
	}

	// A dial sent again answers as the first and rings nobody twice.
	carolOnA := callstest.Agent("dan")
	w.b.Connect(t, carol)
	d := message{From: "a", To: "b", Pair: "a/dial-twice", Seq: 1, At: time.Now(),
		Dial: &dial{ServerCallID: "00000000-0000-4000-8000-000000000001", Caller: calls.CallerInfo{Identifier: carolOnA.Identifier}, Callee: carol.Identifier.RawID()}}
	for i := range 2 {
		if r := w.request("b", d, secret); !reflect.DeepEqual(r, reply{}) {
			t.Fatalf("dial, try %d: %+v", i+1, r)
		}
	}
	w.flush()
	if in, err := w.b.ListIncoming(ctx, carol); err != nil || len(in) != 1 {
		t.Fatalf("carol's incoming calls after a dial sent twice: %v, %v; want one", in, err)
	}
}

// TestRefusesForged: a message unsigned, signed with another key, too
// old, or malformed is refused and changes nothing.
func TestRefusesForged(t *testing.T) {
	w := newWorld(t, true)
	w.b.Connect(t, bob)
	dialBob := func(at time.Time) message {
		return message{From: "a", To: "b", Pair: "a/forged", Seq: 1, At: at,
			Dial: &dial{ServerCallID: "00000000-0000-4000-8000-000000000002", Caller: calls.CallerInfo{Identifier: alice.Identifier}, Callee: bob.Identifier.RawID()}}
	}
	tests := []struct {
		name string
		m    message
		key  []byte
		want string
	}{
		{"unsigned", dialBob(time.Now()), nil, "not signed"},
		{"another key", dialBob(time.Now()), []byte("another secret, another cluster!"), "not signed"},
		{"too old", dialBob(time.Now().Add(-time.Hour)), secret, "more than"},
		{"for another node", func() message { m := dialBob(time.Now()); m.To = "c"; return m }(), secret, "for this node"},
		{"neither dial nor change", func() message { m := dialBob(time.Now()); m.Dial = nil; return m }(), secret, "a dial or a change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := w.request("b", tt.m, tt.key); !strings.Contains(r.Refused, tt.want) {
				t.Errorf("%+v, want refused: %q", r, tt.want)
			}
		})
	}
	w.flush()
	if in, err := w.b.ListIncoming(ctx, bob); err != nil || len(in) != 0 {
		t.Errorf("bob's incoming calls after forged dials: %v, %v; want none", in, err)
	}
}

// TestFarNodeLost: a callee whose node does not answer ends 480 (as if
// connected nowhere); a live call whose far node is gone ends 503/0 on
// this node; a far node that stopped without saying so, 503/1.
func TestFarNodeLost(t *testing.T) {
	t.Run("no answer to the dial", func(t *testing.T) {
		w := newWorld(t, true)
		w.dir.set(bob.Identifier.RawID(), "ghost")
		w.call()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(lastRecord(w.a, w.aliceCall), "ended 480/0") {
			if time.Now().After(deadline) {
				t.Fatalf("alice's call to bob on a node that never answers: %s; want ended 480", lastRecord(w.a, w.aliceCall))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("the far node restarted", func(t *testing.T) {
		w := newWorld(t, true)
		w.b.Connect(t, bob)
		w.call()
		w.answer()
		// b's network starts over (a restart with the same id): it knows
		// no pair, so a's next change is answered unknown.
		must(t, w.nb.Close(ctx))
		w.nb = w.network("b")
		must(t, w.nb.Serve(w.b))
		mustCall(t)(w.a.Hold(ctx, alice, w.aliceCall))
		w.mark("b restarted")
		if !strings.HasPrefix(w.marks[0], "b restarted: alice Disconnected muted=false ended 503/0") {
			t.Errorf("%s; want alice's call ended 503/0", w.marks[0])
		}
	})
	for _, tt := range []struct {
		graceful bool
		want     string
	}{{false, "ended 503/0"}, {true, "ended 503/1"}} {
		t.Run(fmt.Sprintf("graceful=%v", tt.graceful), func(t *testing.T) {
			w := newWorld(t, true)
			w.b.Connect(t, bob)
			w.call()
			w.answer()
			w.na.NodeGone("b", tt.graceful)
			w.na.NodeGone("c", tt.graceful) // another node: nothing to do
			w.mark("b gone")
			if !strings.HasPrefix(w.marks[0], "b gone: alice Disconnected muted=false "+tt.want) {
				t.Errorf("%s; want alice's call %s", w.marks[0], tt.want)
			}
		})
	}
}

// stuckDirectory never answers before its context ends.
type stuckDirectory struct{}

func (stuckDirectory) OwnerOf(ctx context.Context, _ string) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// TestLocate: callees owned by other nodes are named, this node's and
// nobody's are left out; a directory that does not answer (NATS out of
// reach) gives an error within Timeout, not later.
func TestLocate(t *testing.T) {
	dir := &directory{owner: map[string]string{"8:acs:bob": "b", "8:acs:alice": "a"}}
	conn, _ := natstest.Connect(t, natstest.SharedURL(t))
	for _, tt := range []struct {
		name string
		dir  Directory
		want map[string]string
	}{
		{"directory", dir, map[string]string{"8:acs:bob": "b"}},
		{"stuck", stuckDirectory{}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(Config{Conn: conn, Node: "a", Directory: tt.dir, Timeout: 100 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			must(t, err)
			t.Cleanup(func() { _ = n.Close(context.Background()) })
			began := time.Now()
			got, err := n.Locate(ctx, []string{"8:acs:alice", "8:acs:bob", "8:acs:carol"})
			if took := time.Since(began); took > time.Second {
				t.Errorf("Locate took %v, want about the 100 ms Timeout at most", took)
			}
			if tt.want == nil {
				if err == nil {
					t.Errorf("Locate = %v, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Locate = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// slowSwitchboard takes longer than the network's Timeout to apply the
// first change, so that its sender sends it again meanwhile.
type slowSwitchboard struct {
	Switchboard
	delay   time.Duration
	mu      sync.Mutex
	applied int
}

func (s *slowSwitchboard) ApplyPeerChange(ctx context.Context, id string, ch calls.PeerChange) error {
	s.mu.Lock()
	s.applied++
	first := s.applied == 1
	s.mu.Unlock()
	if first {
		time.Sleep(s.delay)
	}
	return s.Switchboard.ApplyPeerChange(ctx, id, ch)
}

// TestSlowFarNode: a far node slower than the Timeout gets the change
// again while it applies it; it applies it once, and the call stands as it
// should.
func TestSlowFarNode(t *testing.T) {
	w := &world{t: t}
	url := natstest.SharedURL(t)
	w.conn, _ = natstest.Connect(t, url)
	w.prefix = natstest.Name(t, "pctest")
	w.dir = &directory{owner: map[string]string{alice.Identifier.RawID(): "a", bob.Identifier.RawID(): "b"}}
	w.na, w.nb = w.network("a"), w.network("b")
	w.a = callstest.New(t, calls.Config{Peers: w.na})
	ids := callstest.IDs()
	w.b = callstest.New(t, calls.Config{Peers: w.nb, NewID: func() string { return "b" + ids() }})
	slow := &slowSwitchboard{Switchboard: w.b, delay: 3 * w.na.cfg.Timeout}
	must(t, w.na.Serve(w.a))
	must(t, w.nb.Serve(slow))
	w.a.Connect(t, alice)
	w.b.Connect(t, bob)

	// Count what reaches b's subject: every try of every message.
	tries := map[uint64]int{}
	var mu sync.Mutex
	sub, err := w.conn.Subscribe(w.prefix+".node.b.peercall", func(msg *nats.Msg) {
		var m message
		if json.Unmarshal(msg.Data, &m) == nil && m.Change != nil {
			mu.Lock()
			tries[m.Seq]++
			mu.Unlock()
		}
	})
	must(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	must(t, w.conn.Flush())

	w.call()
	w.answer()
	mustCall(t)(w.a.Hold(ctx, alice, w.aliceCall)) // the first change b applies: slow
	w.mark("alice holds")
	want := "alice holds: alice LocalHold muted=false [8:acs:bob Connected muted=false]; bob RemoteHold muted=false [8:acs:alice Hold muted=false]"
	if w.marks[0] != want {
		t.Errorf("%s\nwant %s", w.marks[0], want)
	}
	mu.Lock()
	defer mu.Unlock()
	slow.mu.Lock()
	defer slow.mu.Unlock()
	var retried bool
	for _, n := range tries {
		retried = retried || n > 1
	}
	if !retried || slow.applied != 1 {
		t.Errorf("tries per message %v, changes applied %d; want a message sent again and applied once", tries, slow.applied)
	}
}

// TestForgetsEndedPairs: a pair is forgotten Retain after its stand-in
// ended, on both nodes; a live one is kept.
func TestForgetsEndedPairs(t *testing.T) {
	w := &world{t: t}
	w.conn, _ = natstest.Connect(t, natstest.SharedURL(t))
	w.prefix = natstest.Name(t, "pctest")
	w.dir = &directory{owner: map[string]string{alice.Identifier.RawID(): "a", bob.Identifier.RawID(): "b", carol.Identifier.RawID(): "b"}}
	network := func(node string) *Network {
		n, err := New(Config{Conn: w.conn, Node: node, SubjectPrefix: w.prefix, Secret: secret, Directory: w.dir,
			GiveUp: time.Second, DialGiveUp: time.Second, MaxAge: 2 * time.Second, Retain: 2500 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		must(t, err)
		t.Cleanup(func() { _ = n.Close(context.Background()) })
		return n
	}
	w.na, w.nb = network("a"), network("b")
	w.a = callstest.New(t, calls.Config{Peers: w.na})
	ids := callstest.IDs()
	w.b = callstest.New(t, calls.Config{Peers: w.nb, NewID: func() string { return "b" + ids() }})
	must(t, w.na.Serve(w.a))
	must(t, w.nb.Serve(w.b))
	w.a.Connect(t, alice)
	w.b.Connect(t, bob)
	w.b.Connect(t, carol)

	w.call()
	w.answer()
	mustCall(t)(w.a.HangUp(ctx, alice, w.aliceCall, false))
	live := mustCall(t)(w.a.StartCall(ctx, alice, to(carol))) // rings on: its pair stays
	w.flush()
	pairs := func(n *Network) int {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.pairs)
	}
	if a, b := pairs(w.na), pairs(w.nb); a != 2 || b != 2 {
		t.Fatalf("pairs right after the first call ended: a %d, b %d; want 2 each", a, b)
	}
	for deadline := time.Now().Add(10 * time.Second); pairs(w.na) != 1 || pairs(w.nb) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pairs 10 s after the first call ended: a %d, b %d; want 1 each (the call still ringing)", pairs(w.na), pairs(w.nb))
		}
	}
	if got := lastRecord(w.a, live.ID); !strings.HasPrefix(got, "Ringing") {
		t.Errorf("the call still ringing: %s", got)
	}
}

// TestQueueTransferAcross: alice, on a, blind-transfers bob, on b, to the
// queue "support" over NATS. a asks b first (calls.PeerAsker): when b
// runs no queues, its refusal is alice's answer (not_found), and both
// calls stay Connected, and the question sent again is answered the
// same; when b runs the queue, alice's call ends 0/7015
// and b's queue gets bob's call, still Connected.
func TestQueueTransferAcross(t *testing.T) {
	for _, tt := range []struct {
		name    string
		bQueues bool
		wantErr calls.Code
		want    string // the mark after the transfer
	}{
		{name: "b runs no queues: refused", wantErr: calls.CodeNotFound,
			want: "after: alice Connected muted=false [8:acs:bob Connected muted=false]; bob Connected muted=false [8:acs:alice Connected muted=false]"},
		{name: "b queues bob", bQueues: true,
			want: "after: alice Disconnected muted=false ended 0/7015 [8:acs:bob Disconnected muted=false ended 0/5000]; bob Connected muted=false [8:acs:alice Disconnected muted=false ended 0/7015]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			qb := &callstest.Queues{}
			var bq calls.Queues
			if tt.bQueues {
				bq = qb
			}
			w := newQueueWorld(t, true, &callstest.Queues{}, bq)
			w.b.Connect(t, bob)
			w.call()
			w.answer()
			_, err := w.a.Transfer(ctx, alice, w.aliceCall, calls.TransferRequest{Queue: "support", Mode: calls.TransferBlind})
			if got := calls.ErrorCode(err); (err != nil || tt.wantErr != "") && got != tt.wantErr {
				t.Fatalf("transfer: %v (code %s), want code %q", err, got, tt.wantErr)
			}
			w.mark("after")
			if w.marks[0] != tt.want {
				t.Errorf("%s\nwant %s", w.marks[0], tt.want)
			}
			if tt.wantErr != "" {
				// The question sent again (its answer lost), as a's pair
				// would: answered afresh, the same refusal, not skipped as
				// a repeat.
				p := standIn(t, w.na)
				w.na.mu.Lock()
				p.nextSeq++
				q := message{From: "a", To: "b", Pair: p.id, Seq: p.nextSeq, At: time.Now(), Change: &calls.PeerChange{QueueCheck: "support"}}
				w.na.mu.Unlock()
				for i := range 2 {
					if r := w.request("b", q, secret); r.Error == nil || r.Error.Code != tt.wantErr {
						t.Errorf("the question, try %d: %+v, want refused %s", i+1, r, tt.wantErr)
					}
				}
			}
			var want []string
			if tt.bQueues {
				want = []string{w.bobCall}
			}
			if got := qb.CallIDs(); !slices.Equal(got, want) {
				t.Errorf("b's queue got %v, want %v", got, want)
			}
		})
	}
}
