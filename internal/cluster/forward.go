package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/natssign"
)

// Request is an HTTP request forwarded to the node that owns its identity.
type Request struct {
	// From is the entry node's id.
	From   string `json:"from"`
	Method string `json:"method"`
	// Target is the request's path and query, as /api/calls?agent=x.
	Target string              `json:"target"`
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"body,omitempty"`
	// Client is the client's address as the entry node saw it (logs).
	Client string `json:"client,omitempty"`
	// Principal is who the entry node verified the request is from,
	// encoded by the API; never a token.
	Principal json.RawMessage `json:"principal"`
	// Call, when set, names the live call the request acts on: it was
	// sent to the node that runs the call, not to the principal's owner
	// (a supervisor's request; the API checks it).
	Call string `json:"call,omitempty"`
	// Agent, when set, names the agent whose calls the request (a
	// supervisor's list) asks for: it was sent to that agent's owner.
	Agent string `json:"agent,omitempty"`
}

// Response is the owner's answer, written back unchanged by the entry node.
type Response struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"body,omitempty"`
	// NotOwner, when set, says the node no longer owns the identity (its
	// lease moved): the request was not run. It names the owner the node
	// knows of, or is "?" when it knows none.
	NotOwner string `json:"notOwner,omitempty"`
	// Refused, when set, says the request was not run because it was
	// malformed or not signed with the cluster's secret.
	Refused string `json:"refused,omitempty"`
}

// Handler serves a forwarded request. ctx ends when the node stops.
type Handler func(ctx context.Context, req Request) Response

var (
	// ErrRefused is wrapped by Forward when the owner refused the request.
	ErrRefused = errors.New("cluster: forwarded request refused")
	// ErrUnavailable is wrapped by Forward when the node did not answer:
	// no node listens on its subject, or it did not answer in time.
	ErrUnavailable = errors.New("cluster: node unavailable")
	// ErrNoListener is wrapped by Forward, with ErrUnavailable, when no
	// node listens on the node's subject: it stopped (or never was), and
	// ran nothing.
	ErrNoListener = errors.New("cluster: no node listens")
	// ErrStopped is answered by Serve after StopServing or Close.
	ErrStopped = errors.New("cluster: node stopped")
)

// Forward sends req to node and answers its Response. A node that does not
// answer within the ForwardTimeout (or before ctx ends) gives an error
// wrapping ErrUnavailable; a refusal, one wrapping ErrRefused.
func (n *Node) Forward(ctx context.Context, node string, req Request) (Response, error) {
	req.From = n.cfg.Node
	var resp Response
	if err := n.request(ctx, n.subject(node), req, &resp); err != nil {
		return Response{}, fmt.Errorf("cluster: forward %s %s to node %s: %w", req.Method, req.Target, node, err)
	}
	if resp.Refused != "" {
		return resp, fmt.Errorf("cluster: forward to node %s: %w: %s", node, ErrRefused, resp.Refused)
	}
	return resp, nil
}

// request sends v, signed, to subject and decodes the answer into out:
// the one request/reply of forwards and attachments. Its errors wrap
// ErrUnavailable when no node answered (ErrNoListener when none listens).
func (n *Node) request(ctx context.Context, subject string, v, out any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	natssign.Sign(n.cfg.Secret, msg)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ForwardTimeout)
	defer cancel()
	reply, err := n.nc.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%w: %w", ErrUnavailable, ErrNoListener)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case err != nil:
		return err
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return fmt.Errorf("malformed answer: %w", err)
	}
	return nil
}

// Serve answers the requests forwarded to this node with h, up to
// MaxInFlight at once, until StopServing or Close.
func (n *Node) Serve(h Handler) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped || n.closed {
		return ErrStopped
	}
	if n.sub != nil {
		return fmt.Errorf("cluster: already serving")
	}
	sub, err := n.nc.Subscribe(n.subject(n.cfg.Node), func(msg *nats.Msg) { n.take(msg, h) })
	if err != nil {
		return fmt.Errorf("cluster: serve %s: %w", n.subject(n.cfg.Node), err)
	}
	n.sub = sub
	// Once the server has the subscription, forwards find this node.
	if err := n.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: serve %s: %w", n.subject(n.cfg.Node), err)
	}
	return nil
}

// take runs one forwarded request on its own goroutine once a slot is
// free; NATS's delivery waits meanwhile, which bounds the queue.
func (n *Node) take(msg *nats.Msg, h Handler) {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.served.Add(1)
	n.mu.Unlock()
	select {
	case n.slots <- struct{}{}:
	case <-n.ctx.Done():
		n.served.Done()
		return
	}
	go func() {
		defer func() { <-n.slots; n.served.Done() }()
		n.respond(msg, n.serveOne(msg, h), "a forwarded request")
	}()
}

// serveOne checks and decodes a forwarded request and runs it.
func (n *Node) serveOne(msg *nats.Msg, h Handler) Response {
	if !natssign.Valid(n.cfg.Secret, msg) {
		n.log.Warn("refused a forwarded request: not signed with the cluster's secret", "reply", msg.Reply)
		return Response{Refused: "not signed with the cluster's secret"}
	}
	var req Request
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		n.log.Warn("refused a malformed forwarded request", "err", err)
		return Response{Refused: "malformed request: " + err.Error()}
	}
	if req.Method == "" || req.Target == "" || len(req.Principal) == 0 {
		n.log.Warn("refused a forwarded request without a method, target or principal", "from", req.From)
		return Response{Refused: "a method, a target and a principal are required"}
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ForwardTimeout)
	defer cancel()
	start := time.Now()
	resp := h(ctx, req)
	n.log.Debug("served a forwarded request", "from", req.From, "method", req.Method, "status", resp.Status,
		"not_owner", resp.NotOwner, "duration", time.Since(start))
	return resp
}

// respond answers msg, a request of the kind what names, with resp; the
// answer of request.
func (n *Node) respond(msg *nats.Msg, resp any, what string) {
	if msg.Reply == "" {
		return
	}
	data, err := json.Marshal(resp)
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil {
		n.log.Warn("could not answer "+what, "err", err)
	}
}
