package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/natssign"
)

// Defaults of an attachment's timing (Config.AttachKeepalive and
// Config.AttachExpiry).
const (
	DefaultAttachKeepalive = time.Second
	DefaultAttachExpiry    = 3 * time.Second
)

// Attachment operations.
const (
	opAttach    = "attach"
	opKeepalive = "keepalive"
	opDetach    = "detach"
)

// AttachRequest is what a node that holds an identity's event stream sends
// to the identity's owner, on <prefix>.node.<owner>.attach, signed as a
// forwarded request is.
type AttachRequest struct {
	// From is the entry node's id.
	From string `json:"from"`
	// ID names the attachment, chosen by the entry node.
	ID string `json:"id"`
	// Op is attach, keepalive or detach.
	Op string `json:"op"`
	// Identity is the attached identity's raw id (logs, the lease check).
	Identity string `json:"identity,omitempty"`
	// Principal is who the entry node verified the stream is from,
	// encoded by the API (attach only).
	Principal json.RawMessage `json:"principal,omitempty"`
	// Reason is the disconnect's reason (detach only).
	Reason string `json:"reason,omitempty"`
}

// AttachResponse is the owner's answer.
type AttachResponse struct {
	// Snapshot is the identity's snapshot, encoded by the API (attach).
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
	// Seq is the seq the snapshot has in the identity's event stream on
	// the owner (attach).
	Seq uint64 `json:"seq,omitempty"`
	// Resumable says the owner's event stream of the identity holds every
	// event after the seq the stream was opened with, which the API
	// encodes in the principal (attach).
	Resumable bool `json:"resumable,omitempty"`
	// Error, when set, is the API's encoded error: the attach failed.
	Error json.RawMessage `json:"error,omitempty"`
	// NotOwner, when set, says the node does not own the identity (its
	// lease moved): nothing was attached.
	NotOwner string `json:"notOwner,omitempty"`
	// Gone says the owner holds no such attachment: it expired (no
	// keepalive came for AttachExpiry) or was never made.
	Gone bool `json:"gone,omitempty"`
	// Refused, when set, says the request was not run: malformed, or not
	// signed with the cluster's secret.
	Refused string `json:"refused,omitempty"`
}

// AttachHandler attaches a principal on this node (the identity's owner).
// On success it answers the response carrying the snapshot and detach,
// which ends the attachment; else a response with Error or NotOwner set,
// and a nil detach.
type AttachHandler func(ctx context.Context, req AttachRequest) (resp AttachResponse, detach func(reason string))

var (
	// ErrAttachmentLost is given to an attachment's lost callback: the
	// owner no longer holds it (it expired, the owner stopped or its lease
	// moved).
	ErrAttachmentLost = errors.New("cluster: attachment lost")
	// ErrAttachRefused is wrapped by Attach when the owner answered with
	// an error, or refused the request.
	ErrAttachRefused = errors.New("cluster: attach refused")
)

// attachments are the attachments this node holds as an owner.
type attachments struct {
	mu   sync.Mutex
	byID map[string]*held
	// gone are the ids detached before their attach was held (it was
	// still running when its node gave up on it), until AttachExpiry.
	gone   map[string]time.Time
	closed bool // stopAttachments ran: nothing more is held
	sub    *nats.Subscription
	stopWG sync.WaitGroup // the reaper, and the keepalives of this node's own attachments
}

// held is one attachment on its owner.
type held struct {
	from, identity string
	detach         func(reason string)
	deadline       time.Time
}

func (n *Node) attachSubject(node string) string {
	return n.cfg.SubjectPrefix + ".node." + node + ".attach"
}

// ServeAttach answers attach requests with h until StopServing or Close,
// which detach every attachment held. An attachment that gets no keepalive
// for AttachExpiry is detached.
func (n *Node) ServeAttach(h AttachHandler) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped || n.closed {
		return ErrStopped
	}
	if n.att.sub != nil {
		return fmt.Errorf("cluster: already serving attachments")
	}
	sub, err := n.nc.Subscribe(n.attachSubject(n.cfg.Node), func(msg *nats.Msg) { n.takeAttach(msg, h) })
	if err != nil {
		return fmt.Errorf("cluster: serve %s: %w", n.attachSubject(n.cfg.Node), err)
	}
	n.att.sub = sub
	if err := n.nc.Flush(); err != nil {
		return fmt.Errorf("cluster: serve %s: %w", n.attachSubject(n.cfg.Node), err)
	}
	n.att.stopWG.Add(1)
	go n.reapAttachments()
	return nil
}

// takeAttach serves one attach request: keepalives and detaches at once,
// an attach on its own goroutine (it takes the switchboard's lock).
func (n *Node) takeAttach(msg *nats.Msg, h AttachHandler) {
	answer := func(resp AttachResponse) { n.respond(msg, resp, "an attach request") }
	if !natssign.Valid(n.cfg.Secret, msg) {
		n.log.Warn("refused an attach request: not signed with the cluster's secret", "reply", msg.Reply)
		answer(AttachResponse{Refused: "not signed with the cluster's secret"})
		return
	}
	var req AttachRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil || req.ID == "" || req.From == "" {
		n.log.Warn("refused a malformed attach request", "err", err)
		answer(AttachResponse{Refused: "malformed attach request"})
		return
	}
	switch req.Op {
	case opKeepalive:
		n.att.mu.Lock()
		a, ok := n.att.byID[req.ID]
		if ok {
			a.deadline = time.Now().Add(n.cfg.AttachExpiry)
		}
		n.att.mu.Unlock()
		answer(AttachResponse{Gone: !ok})
	case opDetach:
		n.att.mu.Lock()
		a, ok := n.att.byID[req.ID]
		delete(n.att.byID, req.ID)
		if !ok {
			if n.att.gone == nil {
				n.att.gone = map[string]time.Time{}
			}
			n.att.gone[req.ID] = time.Now().Add(n.cfg.AttachExpiry)
		}
		n.att.mu.Unlock()
		if ok {
			a.detach(req.Reason)
		}
		answer(AttachResponse{Gone: !ok})
	case opAttach:
		if len(req.Principal) == 0 {
			answer(AttachResponse{Refused: "an attach carries a principal"})
			return
		}
		n.mu.Lock()
		if n.stopped {
			n.mu.Unlock()
			answer(AttachResponse{Refused: "the node is stopping"})
			return
		}
		n.served.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.served.Done()
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ForwardTimeout)
			defer cancel()
			resp, detach := h(ctx, req)
			if detach != nil && !n.hold(req, detach) {
				detach("")
				resp = AttachResponse{Gone: true, Refused: "detached, or the node is stopping"}
			}
			answer(resp)
		}()
	default:
		answer(AttachResponse{Refused: "unknown attach operation " + req.Op})
	}
}

// hold records an attachment made here, unless the node stopped holding
// any.
func (n *Node) hold(req AttachRequest, detach func(string)) bool {
	n.att.mu.Lock()
	defer n.att.mu.Unlock()
	if _, gone := n.att.gone[req.ID]; gone || n.att.closed {
		return false
	}
	if n.att.byID == nil {
		n.att.byID = map[string]*held{}
	}
	n.att.byID[req.ID] = &held{from: req.From, identity: req.Identity, detach: detach,
		deadline: time.Now().Add(n.cfg.AttachExpiry)}
	n.log.Debug("attached a stream of another node", "from", req.From, "identity", req.Identity)
	return true
}

// reapAttachments detaches the attachments whose keepalives stopped.
func (n *Node) reapAttachments() {
	defer n.att.stopWG.Done()
	tick := time.NewTicker(max(n.cfg.AttachExpiry/6, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-n.ctx.Done():
			return
		}
		now := time.Now()
		var expired []*held
		n.att.mu.Lock()
		for id, a := range n.att.byID {
			if now.After(a.deadline) {
				expired = append(expired, a)
				delete(n.att.byID, id)
			}
		}
		for id, until := range n.att.gone {
			if now.After(until) {
				delete(n.att.gone, id)
			}
		}
		n.att.mu.Unlock()
		for _, a := range expired {
			n.log.Info("an attachment of another node expired: its keepalives stopped", "from", a.from, "identity", a.identity)
			a.detach("")
		}
	}
}

// stopAttachments stops answering attach requests and detaches every
// attachment held.
func (n *Node) stopAttachments() error {
	n.mu.Lock()
	sub := n.att.sub
	n.att.sub = nil
	n.mu.Unlock()
	var err error
	if sub != nil {
		if uerr := sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("cluster: stop serving attachments: %w", uerr)
		}
	}
	n.att.mu.Lock()
	all := n.att.byID
	n.att.byID, n.att.closed = nil, true
	n.att.mu.Unlock()
	for _, a := range all {
		a.detach("")
	}
	return err
}

// Attachment is an identity's attachment on its owner, held by the node
// that holds the identity's event stream: it sends keepalives until
// Detach, or until it is lost.
type Attachment struct {
	n        *Node
	owner    string
	req      AttachRequest
	lost     func(error)
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// Attach attaches identity, as principal, on its owner node and answers
// the attachment and the owner's snapshot. From then on it sends a
// keepalive every AttachKeepalive; lost is called once (on its own
// goroutine) when the attachment is lost: the owner answers that it holds
// it no more, or stopped listening, or no keepalive got through for
// AttachExpiry, or the identity's lease moved to another node. An owner
// that does not answer gives an error wrapping ErrUnavailable; one that
// answers an error, one wrapping ErrAttachRefused (and the response).
func (n *Node) Attach(ctx context.Context, owner, identity string, principal json.RawMessage, lost func(error)) (*Attachment, AttachResponse, error) {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	a := &Attachment{n: n, owner: owner, lost: lost, stop: make(chan struct{}), done: make(chan struct{}),
		req: AttachRequest{From: n.cfg.Node, ID: hex.EncodeToString(id), Identity: identity}}
	req := a.req
	req.Op, req.Principal = opAttach, principal
	resp, err := n.attachRequest(ctx, owner, req)
	if err != nil {
		if errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrNoListener) {
			// The owner may have attached it after all: tell it not to
			// wait for the expiry.
			n.detachLate(owner, a.req)
		}
		return nil, resp, err
	}
	if resp.NotOwner != "" || len(resp.Error) > 0 || resp.Refused != "" {
		return nil, resp, fmt.Errorf("cluster: attach %s on node %s: %w", identity, owner, ErrAttachRefused)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, AttachResponse{}, fmt.Errorf("cluster: attach %s on node %s: %w", identity, owner, ErrStopped)
	}
	n.att.stopWG.Add(1) // under mu: Close waits only once closed is set
	n.mu.Unlock()
	go a.keepalive()
	return a, resp, nil
}

// detachLate detaches, on its own goroutine, an attachment whose attach
// was not answered in time.
func (n *Node) detachLate(owner string, req AttachRequest) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.att.stopWG.Add(1)
	go func() {
		defer n.att.stopWG.Done()
		req.Op = opDetach
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.AttachKeepalive)
		defer cancel()
		_, _ = n.attachRequest(ctx, owner, req)
	}()
}

// attachRequest sends one signed attach request and reads the answer.
func (n *Node) attachRequest(ctx context.Context, node string, req AttachRequest) (AttachResponse, error) {
	var resp AttachResponse
	if err := n.request(ctx, n.attachSubject(node), req, &resp); err != nil {
		return AttachResponse{}, fmt.Errorf("cluster: %s %s on node %s: %w", req.Op, req.Identity, node, err)
	}
	if resp.Refused != "" {
		return resp, fmt.Errorf("cluster: %s on node %s: %w: %s", req.Op, node, ErrAttachRefused, resp.Refused)
	}
	return resp, nil
}

// keepalive keeps the attachment alive until Detach, or until it is lost.
func (a *Attachment) keepalive() {
	defer a.n.att.stopWG.Done()
	defer close(a.done)
	n := a.n
	tick := time.NewTicker(n.cfg.AttachKeepalive)
	defer tick.Stop()
	lastOK := time.Now()
	req := a.req
	req.Op = opKeepalive
	for {
		select {
		case <-a.stop:
			return
		case <-n.ctx.Done():
			a.lose(fmt.Errorf("%w: this node is stopping", ErrAttachmentLost))
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.AttachKeepalive)
		resp, err := n.attachRequest(ctx, a.owner, req)
		cancel()
		var why error
		switch {
		case errors.Is(err, ErrNoListener):
			why = fmt.Errorf("%w: node %s stopped", ErrAttachmentLost, a.owner)
		case err != nil && time.Since(lastOK) >= n.cfg.AttachExpiry:
			why = fmt.Errorf("%w: no keepalive reached node %s for %s: %w", ErrAttachmentLost, a.owner, n.cfg.AttachExpiry, err)
		case err != nil:
			n.log.Warn("an attachment's keepalive failed", "owner", a.owner, "identity", a.req.Identity, "err", err)
		case resp.Gone:
			why = fmt.Errorf("%w: node %s no longer holds it", ErrAttachmentLost, a.owner)
		default:
			lastOK = time.Now()
			why = a.moved()
		}
		if why != nil {
			a.lose(why)
			return
		}
	}
}

// moved answers an error when the identity's lease is on another node than
// the attachment's owner now.
func (a *Attachment) moved() error {
	ctx, cancel := context.WithTimeout(a.n.ctx, a.n.cfg.AttachKeepalive)
	defer cancel()
	owner, err := a.n.leases.Owner(ctx, a.req.Identity)
	if err != nil || owner == a.owner {
		return nil // no owner (it lapsed) is the keepalives' to find out
	}
	return fmt.Errorf("%w: the identity's lease moved from node %s to node %s", ErrAttachmentLost, a.owner, owner)
}

func (a *Attachment) lose(why error) {
	a.n.log.Info("lost an attachment", "owner", a.owner, "identity", a.req.Identity, "err", why)
	a.stopOnce.Do(func() { close(a.stop) })
	if a.lost != nil {
		go a.lost(why)
	}
}

// Detach ends the attachment: no more keepalives, and the owner is told
// (best effort; it would expire it anyway), with the disconnect's reason.
func (a *Attachment) Detach(reason string) {
	a.stopOnce.Do(func() { close(a.stop) })
	<-a.done
	req := a.req
	req.Op, req.Reason = opDetach, reason
	ctx, cancel := context.WithTimeout(a.n.ctx, a.n.cfg.AttachKeepalive)
	defer cancel()
	if _, err := a.n.attachRequest(ctx, a.owner, req); err != nil && !errors.Is(err, ErrNoListener) {
		a.n.log.Debug("could not tell an attachment's owner it ended", "owner", a.owner, "err", err)
	}
}
