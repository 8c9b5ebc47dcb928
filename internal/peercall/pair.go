package peercall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/natssign"
)

// pair is one stand-in's line on this node and what this node knows of the
// far one's messages. Its fields are guarded by Network.mu, except in,
// which serialises the far node's messages (held while the switchboard
// applies one: never with Network.mu held).
type pair struct {
	n       *Network
	id      string // the anchor node, "/", the anchor's stand-in id
	far     string // the far node
	standIn string // this node's stand-in; "" until the dial is handled

	ctx    context.Context // ends when the far node is lost or the network closes
	cancel context.CancelFunc

	// outbound
	prev    *calls.Call
	queue   []message
	nextSeq uint64
	sending bool
	ended   time.Time // when this node's stand-in ended; zero while it is live
	lost    bool      // the far node is lost: nothing more is sent
	farEnd  bool      // the far stand-in ended: nothing more is sent

	// inbound
	in        chanMutex
	lastIn    uint64 // the last message number applied from the far node
	dialReply *reply // the answer to the dial, for a retried one
}

// chanMutex is a mutex that a waiting handler can give up on.
type chanMutex chan struct{}

func (m chanMutex) lock(ctx context.Context) bool {
	select {
	case m <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m chanMutex) unlock() { <-m }

func (n *Network) newPair(id, far, standIn string) *pair {
	ctx, cancel := context.WithCancel(n.ctx)
	return &pair{n: n, id: id, far: far, standIn: standIn, ctx: ctx, cancel: cancel, in: make(chanMutex, 1)}
}

// Update turns the stand-in's update into a change for the far node, and
// queues it. It never blocks.
func (p *pair) Update(c calls.Call) {
	n := p.n
	n.mu.Lock()
	defer n.mu.Unlock()
	ch := calls.PeerChangeOf(p.prev, c)
	p.prev = &c
	if c.State == calls.StateDisconnected && p.ended.IsZero() {
		p.ended = time.Now()
		n.closeMedia(p.standIn)
	}
	if ch.IsZero() || p.lost || p.farEnd || n.closed {
		return // nothing to say, or nobody to hear it
	}
	n.enqueue(p, message{Change: &ch})
}

// Send queues an act for the far node (calls.PeerSender), in order with
// the updates. It never blocks.
func (p *pair) Send(ch calls.PeerChange) {
	n := p.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch.IsZero() || p.lost || p.farEnd || n.closed || !p.ended.IsZero() {
		return
	}
	n.enqueue(p, message{Change: &ch})
}

// Ask queues a question for the far node (calls.PeerAsker), in order with
// the updates, and waits until it answers or ctx ends.
func (p *pair) Ask(ctx context.Context, ch calls.PeerChange) error {
	answer := make(chan error, 1)
	n := p.n
	n.mu.Lock()
	switch {
	case p.lost || n.closed:
		n.mu.Unlock()
		return calls.Errorf(calls.CodeUnavailable, "the far node of call %s is out of reach", p.standIn)
	case p.farEnd || !p.ended.IsZero():
		n.mu.Unlock()
		return calls.Errorf(calls.CodeCallNotFound, "call %s ended", p.standIn)
	}
	n.enqueue(p, message{Change: &ch, answer: answer})
	n.mu.Unlock()
	select {
	case err := <-answer:
		return err
	case <-ctx.Done():
		return fmt.Errorf("peercall: waiting for %s's answer: %w", p.far, ctx.Err())
	}
}

// enqueue numbers m and queues it, starting p's sender if it is idle.
// Network.mu is held.
func (n *Network) enqueue(p *pair, m message) {
	p.nextSeq++
	m.From, m.To, m.Pair, m.Seq, m.At = n.cfg.Node, p.far, p.id, p.nextSeq, time.Now()
	p.queue = append(p.queue, m)
	if !p.sending {
		p.sending = true
		n.wg.Add(1)
		go n.send(p)
	}
}

// send delivers p's queued messages in order, each once answered, until
// none is left or the far node is lost.
func (n *Network) send(p *pair) {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if len(p.queue) == 0 || p.lost {
			p.queue, p.sending = nil, false
			n.mu.Unlock()
			return
		}
		m := p.queue[0]
		n.mu.Unlock()
		if m.Dial != nil && n.cfg.Media != nil {
			d := *m.Dial
			m.Dial = &d
			if offer, err := n.cfg.Media.Offer(p.standIn); err != nil {
				n.log.Warn("no audio leg for a call to another node", "call_id", p.standIn, "err", err)
			} else {
				d.SDP = offer
				n.mediaEnded(p, p.standIn)
			}
		}
		r, err := n.deliver(p, m)
		if err == nil && m.Dial != nil && len(r.SDP) > 0 && n.cfg.Media != nil {
			if aerr := n.cfg.Media.Apply(p.standIn, r.SDP); aerr != nil {
				n.log.Warn("the callee's node answered the audio leg with a description it cannot take", "call_id", p.standIn, "err", aerr)
			}
		}
		n.mu.Lock()
		if len(p.queue) > 0 && p.queue[0].Seq == m.Seq {
			p.queue = p.queue[1:]
		}
		n.mu.Unlock()
		m.tell(answerOf(p, r, err))
		switch {
		case errors.Is(err, errLost):
			n.lose(p, calls.ReasonSwitchboardDied) // lost already, or closing: marks it
		case err != nil && m.Dial != nil:
			n.log.Warn("the callee's node did not answer: the callee ends as if connected nowhere", "far_node", p.far,
				"call_id", p.standIn, "err", err)
			n.lose(p, calls.ReasonNotConnected)
		case err != nil:
			n.log.Warn("the far node of a call did not answer: taking it for lost", "far_node", p.far, "call_id", p.standIn, "err", err)
			n.lose(p, calls.ReasonSwitchboardDied)
		case r.Unknown && m.Change != nil && m.Change.End != nil:
			// The far side is gone already; so is this one.
		case r.Unknown:
			n.log.Warn("the far node does not know a call (it restarted?): ending its stand-in", "far_node", p.far, "call_id", p.standIn)
			n.lose(p, calls.ReasonSwitchboardDied)
		case r.Error != nil && m.Dial != nil:
			reason := calls.ReasonNotConnected
			if r.Error.Code == calls.CodeDraining || r.Error.Code == calls.CodeUnavailable {
				reason = calls.ReasonShutdown
			}
			n.log.Warn("the callee's node refused the call", "far_node", p.far, "call_id", p.standIn,
				"code", r.Error.Code, "message", r.Error.Message, "end", reason.Code)
			n.lose(p, reason)
		case r.Error != nil && m.answer != nil:
			// A question's answer: the asker has it.
		case r.Error != nil:
			n.log.Warn("the far node could not apply a change", "far_node", p.far, "call_id", p.standIn,
				"code", r.Error.Code, "message", r.Error.Message)
		}
	}
}

// answerOf is what a question (message.answer) is answered: the far
// node's error, or unavailable when it did not answer or did not know
// the pair.
func answerOf(p *pair, r reply, err error) error {
	switch {
	case err != nil:
		return &calls.Error{Code: calls.CodeUnavailable, Message: fmt.Sprintf("node %s did not answer", p.far), Err: err}
	case r.Unknown:
		return calls.Errorf(calls.CodeUnavailable, "node %s does not know the call (it restarted?)", p.far)
	case r.Error != nil:
		return &calls.Error{Code: r.Error.Code, Message: r.Error.Message}
	}
	return nil
}

// errLost says a message was not delivered because its pair's far node
// was lost or the network closed.
var errLost = errors.New("peercall: the far node is lost")

// deliver sends m to p's far node until it answers, trying again with
// backoff on no answer, for GiveUp (DialGiveUp for a dial) at most.
func (n *Network) deliver(p *pair, m message) (reply, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return reply{}, fmt.Errorf("peercall: encode: %w", err)
	}
	msg := nats.NewMsg(n.subject(p.far))
	msg.Data = data
	natssign.Sign(n.cfg.Secret, msg)
	giveUp := n.cfg.GiveUp
	if m.Dial != nil {
		giveUp = n.cfg.DialGiveUp
	}
	deadline := m.At.Add(giveUp)
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(p.ctx, n.cfg.Timeout)
		resp, err := n.cfg.Conn.RequestMsgWithContext(ctx, msg)
		cancel()
		if err == nil {
			var r reply
			if err := json.Unmarshal(resp.Data, &r); err != nil {
				return reply{}, fmt.Errorf("peercall: malformed answer from %s: %w", p.far, err)
			}
			if r.Refused != "" {
				return reply{}, fmt.Errorf("peercall: %s refused a message: %s", p.far, r.Refused)
			}
			return r, nil
		}
		if p.ctx.Err() != nil {
			return reply{}, errLost
		}
		if time.Now().Add(wait).After(deadline) {
			return reply{}, fmt.Errorf("peercall: %s did not answer %d tries in %s: %w", p.far, attempt, giveUp, err)
		}
		n.log.Debug("a message was not answered; sending it again", "far_node", p.far, "pair", p.id, "seq", m.Seq,
			"attempt", attempt, "err", err)
		select {
		case <-p.ctx.Done():
			return reply{}, errLost
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
