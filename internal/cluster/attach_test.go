package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/natssign"
)

// attachLog records what an owner's AttachHandler was asked.
type attachLog struct {
	mu       sync.Mutex
	attached []string // identities
	detached chan string
}

func newAttachLog() *attachLog { return &attachLog{detached: make(chan string, 16)} }

func (l *attachLog) handler(snapshot string) AttachHandler {
	return func(_ context.Context, req AttachRequest) (AttachResponse, func(string)) {
		l.mu.Lock()
		l.attached = append(l.attached, req.Identity)
		l.mu.Unlock()
		return AttachResponse{Snapshot: json.RawMessage(snapshot)}, func(reason string) { l.detached <- req.Identity + "/" + reason }
	}
}

func (l *attachLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.attached)
}

// waitDetached waits up to within for the detach of want (identity/reason).
func (l *attachLog) waitDetached(t *testing.T, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case got := <-l.detached:
		if got != want {
			t.Fatalf("detached %q, want %q", got, want)
		}
	case <-time.After(within):
		t.Fatalf("%s not detached within %s", want, within)
	}
	return time.Since(start)
}

func attachConfig(node, secret string) Config {
	return Config{Node: node, Secret: []byte(secret), AttachKeepalive: 100 * time.Millisecond, AttachExpiry: 300 * time.Millisecond}
}

// TestAttach: b attaches alice on a and gets a's snapshot; b's keepalives
// keep it past the expiry; b's Detach detaches it on a with the reason.
func TestAttach(t *testing.T) {
	c := newTestCluster(t)
	// Twelve keepalives per expiry: a loaded machine's late one does not
	// expire the attachment.
	cfg := func(node string) Config {
		cfg := attachConfig(node, "s")
		cfg.AttachKeepalive, cfg.AttachExpiry = 50*time.Millisecond, 600*time.Millisecond
		return cfg
	}
	a, b := c.joinWith(t, cfg("a")), c.joinWith(t, cfg("b"))
	log := newAttachLog()
	if err := a.ServeAttach(log.handler(`{"calls":[]}`)); err != nil {
		t.Fatal(err)
	}
	lost := make(chan error, 1)
	att, resp, err := b.Attach(ctxT(t), "a", "8:acs:alice", json.RawMessage(`{"p":1}`), func(err error) { lost <- err })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(resp.Snapshot), `{"calls":[]}`; got != want {
		t.Errorf("snapshot %s, want %s", got, want)
	}
	select {
	case d := <-log.detached:
		t.Fatalf("detached %s while keepalives go", d)
	case err := <-lost:
		t.Fatalf("lost while the owner runs: %v", err)
	case <-time.After(1500 * time.Millisecond): // two and a half expiries
	}
	att.Detach("bye")
	log.waitDetached(t, "8:acs:alice/bye", time.Second)
}

// TestAttachExpires: an attachment whose node stops sending keepalives (as
// when it is killed) is detached by its owner after the expiry.
func TestAttachExpires(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.joinWith(t, attachConfig("a", "s")), c.joinWith(t, attachConfig("b", "s"))
	log := newAttachLog()
	if err := a.ServeAttach(log.handler(`{}`)); err != nil {
		t.Fatal(err)
	}
	// An attach with no keepalive goroutine behind it: a killed node's.
	resp, err := b.attachRequest(ctxT(t), "a", AttachRequest{From: "b", ID: "x1", Op: opAttach, Identity: "8:acs:bob", Principal: json.RawMessage(`{}`)})
	if err != nil || string(resp.Snapshot) != `{}` {
		t.Fatalf("attach: %+v, %v", resp, err)
	}
	took := log.waitDetached(t, "8:acs:bob/", 2*time.Second)
	if took < 200*time.Millisecond {
		t.Errorf("detached after %s, before the expiry (300 ms)", took)
	}
	// Its keepalive now finds it gone.
	resp, err = b.attachRequest(ctxT(t), "a", AttachRequest{From: "b", ID: "x1", Op: opKeepalive})
	if err != nil || !resp.Gone {
		t.Errorf("keepalive after the expiry: %+v, %v; want gone", resp, err)
	}
}

// TestAttachRefusesForged: an attach not signed with the cluster's secret
// is refused and attaches nothing.
func TestAttachRefusesForged(t *testing.T) {
	c := newTestCluster(t)
	a := c.joinWith(t, attachConfig("a", "s"))
	forger := c.joinWith(t, attachConfig("f", "not the secret"))
	log := newAttachLog()
	if err := a.ServeAttach(log.handler(`{}`)); err != nil {
		t.Fatal(err)
	}
	nc, _ := natstest.Connect(t, c.url)
	req := AttachRequest{From: "f", ID: "y", Op: opAttach, Identity: "8:acs:alice", Principal: json.RawMessage(`{"role":"supervisor"}`)}
	data, _ := json.Marshal(req)
	for _, tt := range []struct {
		name string
		sig  string
	}{
		{"unsigned", ""},
		{"another secret", natssign.Sum(forger.cfg.Secret, a.attachSubject("a"), data)},
		{"not hex", "zz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := nats.NewMsg(a.attachSubject("a"))
			msg.Data = data
			if tt.sig != "" {
				msg.Header.Set(natssign.Header, tt.sig)
			}
			reply, err := nc.RequestMsg(msg, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var resp AttachResponse
			if err := json.Unmarshal(reply.Data, &resp); err != nil || resp.Refused == "" || len(resp.Snapshot) > 0 {
				t.Errorf("answer %s (%v), want refused", reply.Data, err)
			}
		})
	}
	if _, _, err := forger.Attach(ctxT(t), "a", "8:acs:alice", json.RawMessage(`{}`), nil); !errors.Is(err, ErrAttachRefused) {
		t.Errorf("Attach signed with another secret: %v, want ErrAttachRefused", err)
	}
	if n := log.count(); n != 0 {
		t.Errorf("%d attaches ran, want none", n)
	}
}

// TestAttachLost: the attaching node is told when the attachment is lost.
func TestAttachLost(t *testing.T) {
	for _, tt := range []struct {
		name string
		// lose makes the attachment of alice, held by a for b, lost.
		lose func(t *testing.T, a, other *Node)
	}{
		{"owner stops", func(t *testing.T, a, _ *Node) {
			if err := a.StopServing(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}},
		{"lease moves", func(t *testing.T, _, other *Node) {
			if owner, err := other.Owner(ctxT(t), "8:acs:alice"); err != nil || owner != "" {
				t.Fatalf("c takes alice: %q, %v", owner, err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t)
			a, b := c.joinWith(t, attachConfig("a", "s")), c.joinWith(t, attachConfig("b", "s"))
			other := c.joinWith(t, attachConfig("c", "s"))
			log := newAttachLog()
			if err := a.ServeAttach(log.handler(`{}`)); err != nil {
				t.Fatal(err)
			}
			// No node holds alice's lease: the attachment stands on its own.
			lost := make(chan error, 1)
			att, _, err := b.Attach(ctxT(t), "a", "8:acs:alice", json.RawMessage(`{}`), func(err error) { lost <- err })
			if err != nil {
				t.Fatal(err)
			}
			defer att.Detach("")
			tt.lose(t, a, other)
			select {
			case err := <-lost:
				if !errors.Is(err, ErrAttachmentLost) {
					t.Errorf("lost with %v, want ErrAttachmentLost", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the attachment was not lost")
			}
		})
	}
}

// TestAttachLate: an attach the owner answers too late (its node gave up
// on it) is detached on the owner at once, not after the expiry, whether
// the owner holds it when the late detach comes or only after.
func TestAttachLate(t *testing.T) {
	c := newTestCluster(t)
	cfg := attachConfig("a", "s")
	cfg.AttachExpiry = 10 * time.Second // so that only the late detach can end it
	a, b := c.joinWith(t, cfg), c.joinWith(t, attachConfig("b", "s"))
	log := newAttachLog()
	slow := log.handler(`{}`)
	if err := a.ServeAttach(func(ctx context.Context, req AttachRequest) (AttachResponse, func(string)) {
		time.Sleep(700 * time.Millisecond) // past the forward timeout (500 ms)
		return slow(ctx, req)
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err := b.Attach(ctxT(t), "a", "8:acs:alice", json.RawMessage(`{}`), nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Attach: %v, want ErrUnavailable", err)
	}
	log.waitDetached(t, "8:acs:alice/", 3*time.Second)
}
