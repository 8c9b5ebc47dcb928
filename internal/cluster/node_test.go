package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/internal/cluster/natstest"
	"github.com/switchboard/switchboard/internal/natssign"
)

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		url, node string
		ok        bool
	}{
		{"nats://127.0.0.1:4222", "a", true},
		{"nats://n1:4222,nats://n2:4222", "node-1", true},
		{"tls://nats.example:4222", "b", true},
		{"", "a", false},
		{"http://127.0.0.1:4222", "a", false},
		{"127.0.0.1:4222", "a", false},
		{"nats://", "a", false},
		{"nats://h:4222/path", "a", false},
		{"nats://h:4222", "", false},
		{"nats://h:4222", "a.b", false},
		{"nats://h:4222", "a b", false},
		{"nats://h:4222", "a*", false},
	} {
		err := ValidateURL(tt.url)
		if err == nil {
			err = ValidateNodeID(tt.node)
		}
		if (err == nil) != tt.ok {
			t.Errorf("url %q node %q: %v, want ok=%v", tt.url, tt.node, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("url %q node %q: %v does not wrap ErrInvalid", tt.url, tt.node, err)
		}
	}
}

// cluster is the test's bucket and subject prefix on the shared NATS.
type testCluster struct {
	url, bucket, prefix string
}

func newTestCluster(t *testing.T) testCluster {
	url := natstest.SharedURL(t)
	c := testCluster{url: url, bucket: natstest.Name(t, "sbtest_leases_"), prefix: natstest.Name(t, "sbtest")}
	t.Cleanup(func() {
		_, js := natstest.Connect(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, b := range []string{c.bucket, nodeBucket(c.bucket)} {
			if err := js.DeleteKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
				t.Errorf("delete bucket %s: %v", b, err)
			}
		}
	})
	return c
}

func (c testCluster) join(t *testing.T, node string, secret string) *Node {
	t.Helper()
	return c.joinWith(t, Config{Node: node, Secret: []byte(secret)})
}

// joinWith joins with cfg, whose URL, bucket, prefix, TTL, forward timeout
// and logger are the test cluster's.
func (c testCluster) joinWith(t *testing.T, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.URL, cfg.LeaseBucket, cfg.SubjectPrefix = c.url, c.bucket, c.prefix
	cfg.LeaseTTL, cfg.ForwardTimeout = time.Second, 500*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := Join(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOwner(t *testing.T) {
	c := newTestCluster(t)
	a, b := c.join(t, "a", "s"), c.join(t, "b", "s")
	ctx := ctxT(t)
	for _, step := range []struct {
		node *Node
		id   string
		want string
	}{
		{a, "8:acs:alice", ""},  // free: a acquires
		{a, "8:acs:alice", ""},  // held
		{b, "8:acs:alice", "a"}, // held by a
		{b, "8:acs:bob", ""},
		{a, "8:acs:bob", "b"},
	} {
		got, err := step.node.Owner(ctx, step.id)
		if err != nil || got != step.want {
			t.Fatalf("%s.Owner(%s) = %q, %v; want %q", step.node.ID(), step.id, got, err, step.want)
		}
	}
	// OwnerOf reads the owner without taking a free identity.
	for _, step := range []struct {
		node *Node
		id   string
		want string
	}{
		{a, "8:acs:alice", ""},
		{b, "8:acs:alice", "a"},
		{a, "8:acs:bob", "b"},
		{a, "8:acs:carol", ""}, // free, and left free
		{b, "8:acs:carol", ""},
	} {
		got, err := step.node.OwnerOf(ctx, step.id)
		if err != nil || got != step.want {
			t.Fatalf("%s.OwnerOf(%s) = %q, %v; want %q", step.node.ID(), step.id, got, err, step.want)
		}
	}
	if got, err := a.leases.Owner(ctx, "8:acs:carol"); err == nil {
		t.Fatalf("carol's lease after OwnerOf: held by %q; want free", got)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// b remembers a for a while, until told to forget.
	if got, err := b.Owner(ctx, "8:acs:alice"); err != nil || got != "a" {
		t.Fatalf("after a closed, b.Owner(alice) = %q, %v; want a, remembered", got, err)
	}
	b.Forget("8:acs:alice")
	if got, err := b.Owner(ctx, "8:acs:alice"); err != nil || got != "" {
		t.Fatalf("after a closed and b forgot, b.Owner(alice) = %q, %v; want b itself", got, err)
	}
}

// echoHandler answers what it got, and the principal's text as the body.
func echoHandler(_ context.Context, req Request) Response {
	return Response{Status: 201, Header: map[string][]string{"X-Method": {req.Method}, "X-Target": {req.Target}},
		Body: append([]byte(req.From+" "), req.Principal...)}
}

func TestForward(t *testing.T) {
	c := newTestCluster(t)
	a, b, stranger := c.join(t, "a", "secret"), c.join(t, "b", "secret"), c.join(t, "stranger", "other")
	if err := a.Serve(echoHandler); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	resp, err := b.Forward(ctx, "a", Request{Method: "POST", Target: "/api/calls?x=1", Body: []byte(`{}`), Principal: json.RawMessage(`{"id":"alice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || resp.Header["X-Target"][0] != "/api/calls?x=1" || string(resp.Body) != `b {"id":"alice"}` {
		t.Fatalf("answer %+v %q", resp, resp.Body)
	}

	for _, tt := range []struct {
		name string
		send func() (Response, error)
		want string
	}{
		{"another secret", func() (Response, error) {
			return stranger.Forward(ctx, "a", Request{Method: "GET", Target: "/api/me", Principal: json.RawMessage(`{}`)})
		}, "not signed"},
		{"unsigned", func() (Response, error) { return raw(ctx, b, "a", []byte(`{"method":"GET"}`), "") }, "not signed"},
		{"malformed", func() (Response, error) {
			data := []byte(`{"method": 12`)
			return raw(ctx, b, "a", data, natssign.Sum(b.cfg.Secret, b.subject("a"), data))
		}, "malformed"},
		{"no principal", func() (Response, error) {
			data := []byte(`{"method":"GET","target":"/api/me"}`)
			return raw(ctx, b, "a", data, natssign.Sum(b.cfg.Secret, b.subject("a"), data))
		}, "principal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.send()
			if err == nil {
				err = errors.New(resp.Refused)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %+v, %v; want a refusal saying %q", resp, err, tt.want)
			}
		})
	}
	// a still serves after the refusals.
	if _, err := b.Forward(ctx, "a", Request{Method: "GET", Target: "/api/me", Principal: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
}

// raw sends data to node's subject over from's connection, with sig as the
// signature header when set, and decodes the answer.
func raw(ctx context.Context, from *Node, node string, data []byte, sig string) (Response, error) {
	msg := nats.NewMsg(from.subject(node))
	msg.Data = data
	if sig != "" {
		msg.Header.Set(natssign.Header, sig)
	}
	reply, err := from.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return Response{}, err
	}
	var resp Response
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return Response{}, err
	}
	if resp.Refused == "" {
		return resp, errors.New("not refused")
	}
	return resp, nil
}

func TestForwardToDeadNode(t *testing.T) {
	c := newTestCluster(t)
	b := c.join(t, "b", "s")
	silent := c.join(t, "silent", "s")
	// silent takes requests and never answers.
	sub, err := silent.nc.Subscribe(silent.subject("silent"), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := silent.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"gone", "silent"} {
		t.Run(node, func(t *testing.T) {
			_, err := b.Forward(ctxT(t), node, Request{Method: "GET", Target: "/api/me", Principal: json.RawMessage(`{}`)})
			if !errors.Is(err, ErrUnavailable) || (node == "silent") != errors.Is(err, context.DeadlineExceeded) ||
				(node == "gone") != errors.Is(err, ErrNoListener) {
				t.Fatalf("forward to %s: %v, want ErrUnavailable", node, err)
			}
		})
	}
}

func TestServeAfterStop(t *testing.T) {
	c := newTestCluster(t)
	a := c.join(t, "a", "s")
	if err := a.StopServing(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := a.Serve(echoHandler); !errors.Is(err, ErrStopped) {
		t.Fatalf("Serve after StopServing: %v, want ErrStopped", err)
	}
}
