package peercall

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/natssign"
)

// message is what a node sends the far node of a pair: the dial (the
// first from the anchor) or a change of its stand-in.
type message struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Pair is the anchor node, "/", the anchor's stand-in id.
	Pair string `json:"pair"`
	// Seq numbers the pair's messages in this direction, from 1.
	Seq uint64 `json:"seq"`
	// At is when the message was made (retries carry the same).
	At     time.Time         `json:"at"`
	Dial   *dial             `json:"dial,omitempty"`
	Change *calls.PeerChange `json:"change,omitempty"`

	// answer, on the sending node only, waits for a question's answer
	// (pair.Ask): told once, by tell.
	answer chan<- error
}

// tell answers m's asker, if any, unless it was answered already.
func (m message) tell(err error) {
	if m.answer == nil {
		return
	}
	select {
	case m.answer <- err:
	default:
	}
}

// dial asks the far node to ring its callee.
type dial struct {
	ServerCallID string           `json:"serverCallId"`
	Kind         calls.Kind       `json:"kind,omitempty"`
	Caller       calls.CallerInfo `json:"caller"`
	Callee       string           `json:"callee"`
	// Join: the caller joins the group call (GroupID) or room (RoomID)
	// the far node anchors as ServerCallID (calls.PeerJoin); no callee.
	Join    bool   `json:"join,omitempty"`
	GroupID string `json:"groupId,omitempty"`
	RoomID  string `json:"roomId,omitempty"`
	// Role, with Join: the joiner's role (calls.PeerJoinRequest.Role).
	Role calls.Role `json:"role,omitempty"`
	// Monitor, with Join: the caller, a supervisor, monitors the call
	// Monitored the far node runs, in this mode (calls.PeerMonitor).
	Monitor   calls.MonitorMode `json:"monitor,omitempty"`
	Monitored string            `json:"monitored,omitempty"`
	// SDP offers the caller's node's audio leg (Config.Media), if any.
	SDP []byte `json:"sdp,omitempty"`
	// Roster: a group call's other parties as the callee sees them
	// (calls.PeerCallRequest.Roster).
	Roster []calls.Participant `json:"roster,omitempty"`
}

// reply answers a message once handled (or refused).
type reply struct {
	// Refused: not handled (unsigned, malformed, too old).
	Refused string `json:"refused,omitempty"`
	// Unknown: the pair is not known here (this node restarted since).
	Unknown bool `json:"unknown,omitempty"`
	// Error is the switchboard's error (a dial refused: draining).
	Error *replyError `json:"error,omitempty"`
	// SDP answers a dial's offer with the callee's node's audio leg.
	SDP []byte `json:"sdp,omitempty"`
}

type replyError struct {
	Code    calls.Code `json:"code"`
	Message string     `json:"message"`
}

// take handles one message on a goroutine of its own once a slot is free;
// NATS's delivery waits meanwhile, which bounds the queue.
func (n *Network) take(msg *nats.Msg) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.inFlight++
	n.wg.Add(1)
	n.mu.Unlock()
	done := func() {
		n.mu.Lock()
		n.inFlight--
		n.mu.Unlock()
		n.wg.Done()
	}
	select {
	case n.slots <- struct{}{}:
	case <-n.ctx.Done():
		done()
		return
	}
	go func() {
		defer done()
		defer func() { <-n.slots }()
		r := n.handle(msg)
		if msg.Reply == "" {
			return
		}
		data, err := json.Marshal(r)
		if err == nil {
			err = msg.Respond(data)
		}
		if err != nil {
			n.log.Warn("could not answer a message", "err", err)
		}
	}()
}

// handle checks one message and applies it unless it is a repeat.
func (n *Network) handle(msg *nats.Msg) reply {
	if !natssign.Valid(n.cfg.Secret, msg) {
		n.log.Warn("refused a message: not signed with the cluster's secret")
		return reply{Refused: "not signed with the cluster's secret"}
	}
	var m message
	if err := json.Unmarshal(msg.Data, &m); err != nil {
		n.log.Warn("refused a malformed message", "err", err)
		return reply{Refused: "malformed message: " + err.Error()}
	}
	if age := time.Since(m.At); age > n.cfg.MaxAge || -age > n.cfg.MaxAge {
		n.log.Warn("refused a message made too long ago (or its node's clock is off)", "from", m.From, "at", m.At)
		return reply{Refused: fmt.Sprintf("made at %s, more than %s away from now", m.At.Format(time.RFC3339Nano), n.cfg.MaxAge)}
	}
	if m.To != n.cfg.Node || m.From == "" || m.Pair == "" || m.Seq == 0 || (m.Dial == nil) == (m.Change == nil) {
		n.log.Warn("refused a malformed message", "from", m.From, "to", m.To, "pair", m.Pair)
		return reply{Refused: "a message is for this node, from a node, of a pair, numbered, and a dial or a change"}
	}
	if m.Dial != nil {
		return n.handleDial(m)
	}
	return n.handleChange(m)
}

// handleDial rings the callee for the far node's caller, once per pair.
func (n *Network) handleDial(m message) reply {
	n.mu.Lock()
	p := n.pairs[m.Pair]
	if p == nil {
		p = n.newPair(m.Pair, m.From, "")
		n.pairs[m.Pair] = p
	}
	sb := n.sb
	n.mu.Unlock()
	if p.far != m.From {
		return reply{Refused: "a pair of another node"}
	}
	if !p.in.lock(n.ctx) {
		return reply{Refused: "closing"}
	}
	defer p.in.unlock()
	if p.dialReply != nil {
		return *p.dialReply // a retried dial: answered as the first
	}
	r := n.startPeerCall(sb, p, m)
	p.lastIn = m.Seq
	p.dialReply = &r
	return r
}

func (n *Network) startPeerCall(sb Switchboard, p *pair, m message) reply {
	fail := func(err error) reply {
		n.mu.Lock()
		p.lost = true
		if p.ended.IsZero() {
			p.ended = time.Now()
		}
		n.mu.Unlock()
		return reply{Error: &replyError{Code: calls.ErrorCode(err), Message: err.Error()}}
	}
	var c calls.Call
	var err error
	if m.Dial.Join && m.Dial.Monitor != "" {
		c, err = n.peerMonitor(sb, p, m.Dial)
	} else if m.Dial.Join {
		c, err = sb.PeerJoin(p.ctx, calls.PeerJoinRequest{ServerCallID: m.Dial.ServerCallID, GroupID: m.Dial.GroupID,
			RoomID: m.Dial.RoomID, Joiner: m.Dial.Caller, Role: m.Dial.Role, Line: p})
	} else {
		var callee calls.Identifier
		if callee, err = calls.ParseRawID(m.Dial.Callee); err != nil {
			return fail(err)
		}
		c, err = sb.StartPeerCall(p.ctx, calls.PeerCallRequest{ServerCallID: m.Dial.ServerCallID, Kind: m.Dial.Kind,
			Caller: m.Dial.Caller, Callee: callee, Line: p, Roster: m.Dial.Roster})
	}
	if err != nil {
		n.log.Info("refused a call from another node", "from", m.From, "callee", m.Dial.Callee, "err", err)
		return fail(err)
	}
	n.mu.Lock()
	p.standIn = c.ID
	live := p.ended.IsZero()
	n.mu.Unlock()
	n.log.Debug("a call from another node rings here", "from", m.From, "callee", m.Dial.Callee, "call_id", c.ID)
	var r reply
	if len(m.Dial.SDP) > 0 && n.cfg.Media != nil && live {
		answer, err := n.cfg.Media.Answer(c.ID, m.Dial.SDP)
		if err != nil {
			n.log.Warn("no audio leg for a call from another node", "from", m.From, "call_id", c.ID, "err", err)
		} else {
			r.SDP = answer
			n.mediaEnded(p, c.ID)
		}
	}
	return r
}

// handleChange applies the far node's change to this node's stand-in,
// unless it was applied already (a repeat or a late message).
func (n *Network) handleChange(m message) reply {
	n.mu.Lock()
	p := n.pairs[m.Pair]
	sb := n.sb
	n.mu.Unlock()
	if p == nil {
		return reply{Unknown: true}
	}
	if p.far != m.From {
		return reply{Refused: "a pair of another node"}
	}
	if !p.in.lock(n.ctx) {
		return reply{Refused: "closing"}
	}
	defer p.in.unlock()
	// A question (pair.Ask) changes nothing: a repeat, whose first answer
	// may have been lost, is answered afresh.
	question := m.Change.QueueCheck != ""
	if m.Seq <= p.lastIn && !question {
		n.log.Debug("a message applied already", "from", m.From, "pair", m.Pair, "seq", m.Seq, "last", p.lastIn)
		return reply{}
	}
	p.lastIn = max(p.lastIn, m.Seq)
	n.mu.Lock()
	id, live := p.standIn, p.ended.IsZero()
	if m.Change.End != nil {
		p.farEnd = true // this stand-in's end, which follows, need not be told
	}
	n.mu.Unlock()
	if id == "" || !live {
		if question {
			return reply{Error: &replyError{Code: calls.CodeCallNotFound, Message: "the call ended"}}
		}
		return reply{} // ended here: the far node hears it from this node
	}
	if err := sb.ApplyPeerChange(n.ctx, id, *m.Change); err != nil {
		if question { // refused: the asker answers with it
			n.log.Info("refused a queue transfer from another node", "from", m.From, "call_id", id, "err", err)
			return reply{Error: &replyError{Code: calls.ErrorCode(err), Message: calls.ErrorMessage(err)}}
		}
		if calls.ErrorCode(err) == calls.CodeCallNotFound {
			return reply{}
		}
		n.log.Warn("could not apply a change from another node", "from", m.From, "call_id", id, "err", err)
		return reply{Error: &replyError{Code: calls.ErrorCode(err), Message: err.Error()}}
	}
	return reply{}
}
