package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// The queue events.
const (
	EventQueueCallWaiting  calls.EventType = "queueCallWaiting"
	EventQueueStatsChanged calls.EventType = "queueStatsChanged"
)

// QueueCallWaitingData is the data of queueCallWaiting, sent to the caller
// and to supervisors when a call enters a queue.
type QueueCallWaitingData struct {
	Queue    string `json:"queue"`
	CallID   string `json:"callId"`
	Caller   string `json:"caller"`
	Position int    `json:"position"`
}

var errNoQueues = calls.Errorf(calls.CodeNotImplemented, "this switchboard runs no queues")

// QueueCallRequest is POST /api/calls with "queue": the caller's call
// waits in that queue. Skills, optional, are what the agent must have.
type QueueCallRequest struct {
	Queue  string         `json:"queue"`
	Skills map[string]int `json:"skills,omitempty"`
}

// adminOrSupervisor runs h for the admin key or a supervisor's token; any
// other token answers 403.
func (s *Server) adminOrSupervisor(h echo.HandlerFunc) echo.HandlerFunc {
	supervisor := s.authenticate(func(c echo.Context) error {
		if sessionOf(c).Role != calls.RoleSupervisor {
			return calls.Errorf(calls.CodeForbidden, "queues are for supervisors and the admin key")
		}
		return h(c)
	})
	return func(c echo.Context) error {
		if s.cfg.Queues == nil {
			return errNoQueues
		}
		if key := bearer(c.Request()); key != "" && s.cfg.Tokens.IsAdmin(key) {
			return h(c)
		}
		return supervisor(c)
	}
}

// createQueue creates or replaces a queue (admin key or supervisor).
func (s *Server) createQueue(c echo.Context) error {
	var d queue.Definition
	if err := decode(c, &d, false); err != nil {
		return err
	}
	d, err := s.cfg.Queues.Create(c.Request().Context(), d)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, d)
}

// listQueues answers every queue, by name.
func (s *Server) listQueues(c echo.Context) error {
	qs, err := s.cfg.Queues.Store().Queues(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, qs)
}

// queueStats answers a queue's live stats.
func (s *Server) queueStats(c echo.Context) error {
	st, err := s.cfg.Queues.Stats(c.Request().Context(), c.Param("name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// queueCall places the caller's call into a queue: the caller joins a
// group call of its own, alone, and the queue's engine offers it to agents
// one at a time (AddParticipant).
func (s *Server) queueCall(c echo.Context, body []byte) error {
	if s.cfg.Queues == nil || s.cfg.QueueSwitch == nil {
		return errNoQueues
	}
	var req QueueCallRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return calls.Errorf(calls.CodeInvalidRequest, "malformed queue call: %v", err)
	}
	if err := queue.ValidateName(req.Queue); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.cfg.Queues.Check(ctx, req.Queue); err != nil {
		return err
	}
	p := sessionOf(c).Principal
	call, err := s.cfg.Switchboard.JoinCall(ctx, p, calls.JoinRequest{GroupID: uuid.NewString()})
	if err != nil {
		return err
	}
	s.cfg.QueueSwitch.remember(call.ID, p)
	if _, err := s.cfg.Queues.Enter(ctx, req.Queue, call.ID, p.Identifier.RawID(), req.Skills); err != nil {
		_, _ = s.cfg.Switchboard.HangUp(context.WithoutCancel(ctx), p, call.ID, false)
		s.cfg.QueueSwitch.forget(call.ID)
		return err
	}
	return writeCall(c, http.StatusCreated, &call)
}

// hasQueue reports whether a POST /api/calls body names a queue.
func hasQueue(body []byte) bool {
	var probe struct {
		Queue *json.RawMessage `json:"queue"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.Queue != nil
}

// peekBody reads the request body and puts it back for decode.
func peekBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if isTooLarge(err) {
			return nil, errTooLarge
		}
		return nil, calls.Errorf(calls.CodeInvalidRequest, "reading the request body failed")
	}
	c.Request().Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// QueueSwitch is queue.Switch over the Switchboard: the engine acts on a
// waiting call as its caller (who added the agent, removes her). It is
// also queue.Events over the Hub. Server.QueuePorts answers it.
type QueueSwitch struct {
	sb  *calls.Switchboard
	hub *Hub

	mu      sync.Mutex
	callers map[string]calls.Principal // caller's call id -> caller
	remote  QueueRemote                // the agents of other nodes (SetRemote)
}

// remember keeps the caller of a call entering the queue; her call ends
// its agent's with it once answered (calls.Switchboard.EndWithCaller).
func (q *QueueSwitch) remember(callID string, p calls.Principal) {
	q.sb.EndWithCaller(callID)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.callers[callID] = p
}

func (q *QueueSwitch) forget(callID string) {
	q.mu.Lock()
	delete(q.callers, callID)
	q.mu.Unlock()
	q.sb.ForgetQueueCall(callID)
}

func (q *QueueSwitch) caller(w queue.Waiting) (calls.Principal, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p, ok := q.callers[w.CallID]
	if !ok {
		return calls.Principal{}, calls.Errorf(calls.CodeCallNotFound, "call %s is not a waiting call of this node", w.CallID)
	}
	return p, nil
}

// Offer implements queue.Switch.
func (q *QueueSwitch) Offer(ctx context.Context, w queue.Waiting, agent string) error {
	p, err := q.caller(w)
	if err != nil {
		return err
	}
	id, err := calls.ParseRawID(agent)
	if err != nil {
		return err
	}
	_, err = q.sb.AddParticipant(ctx, p, w.CallID, calls.AddParticipantRequest{Identifier: id})
	return err
}

// Withdraw implements queue.Switch.
func (q *QueueSwitch) Withdraw(ctx context.Context, w queue.Waiting, agent string) error {
	p, err := q.caller(w)
	if err != nil {
		return err
	}
	err = q.sb.WithdrawOffer(ctx, p, w.CallID, agent)
	if e, ok := errors.AsType[*calls.Error](err); ok && (e.Code == calls.CodeParticipantNotFound || e.Code == calls.CodeCallNotFound) {
		return nil
	}
	return err
}

// Done implements queue.Switch: the queue is done with the call.
func (q *QueueSwitch) Done(_ context.Context, w queue.Waiting) { q.forget(w.CallID) }

// Status implements queue.Switch.
func (q *QueueSwitch) Status(ctx context.Context, w queue.Waiting, agent string) (queue.Status, error) {
	p, err := q.caller(w)
	if err != nil {
		return queue.Status{}, err
	}
	call, err := q.sb.GetCall(ctx, p, w.CallID)
	if e, ok := errors.AsType[*calls.Error](err); ok && e.Code == calls.CodeCallNotFound {
		// The caller's call ended and is gone, and so is the agent's part.
		st := queue.Status{CallerGone: true, AgentGone: agent != "", Answered: agent != "" && q.sb.AnsweredIn(w.CallID, agent)}
		q.forget(w.CallID)
		return st, nil
	}
	if err != nil {
		return queue.Status{}, err
	}
	var st queue.Status
	if call.State == calls.StateDisconnected || call.State == calls.StateDisconnecting {
		st.CallerGone = true
		q.forget(w.CallID)
	}
	if agent == "" {
		return st, nil
	}
	st.AgentGone = true
	for _, m := range call.RemoteParticipants {
		if m.RawID != agent {
			continue
		}
		switch m.State {
		case calls.ParticipantDisconnected:
		case calls.ParticipantConnected, calls.ParticipantHold:
			st.Answered, st.AgentGone = true, false
		default:
			st.AgentGone = false
		}
	}
	if st.AgentGone && q.sb.AnsweredIn(w.CallID, agent) {
		// She accepted and left before this step saw her connected: the
		// caller was served, not declined.
		st.Answered = true
	}
	return st, nil
}

// End implements queue.Switch: the caller's call ends.
func (q *QueueSwitch) End(ctx context.Context, w queue.Waiting, reason string) error {
	p, err := q.caller(w)
	if err != nil {
		return err
	}
	defer q.forget(w.CallID)
	_, err = q.sb.HangUp(ctx, p, w.CallID, false)
	if e, ok := errors.AsType[*calls.Error](err); ok && e.Code == calls.CodeCallNotFound {
		return nil
	}
	return err
}

// QueueCallWaiting implements queue.Events: to the caller and supervisors.
func (q *QueueSwitch) QueueCallWaiting(w queue.Waiting, position int) {
	q.hub.Publish(calls.Event{
		Type: EventQueueCallWaiting, At: w.EnteredAt, AgentID: w.Caller, CallID: w.CallID, Supervised: true,
		Data: QueueCallWaitingData{Queue: w.Queue, CallID: w.CallID, Caller: w.Caller, Position: position},
	})
}

// QueueStatsChanged implements queue.Events: to the supervisors of every
// node. It is in no identity's stream; the relay carries it under the
// queue's own identity (queueIdentity) into the cluster's supervised feed,
// which numbers it and hands it back to this node too, so it is
// delivered here only when there is no such feed (as PublishRecovered).
func (q *QueueSwitch) QueueStatsChanged(st queue.Stats) {
	h := q.hub
	body, err := encodeEvent(calls.Event{Type: EventQueueStatsChanged, At: time.Now(), Data: st, Supervised: true})
	if err != nil {
		h.log.Error("hub: encode event", "type", EventQueueStatsChanged, "err", err)
		return
	}
	if !h.clusterSupervised() { // else it comes back numbered (DeliverSupervised)
		h.deliver(SupervisorStream, body)
	}
	if h.relay != nil {
		h.relay.Relay(queueIdentity(st.Queue), true, body)
	}
}

// queueIdentity is the identity a queue's stats go under in the relay's
// log: one that no user has (user identities are raw ids such as
// 8:acs:…), so that one queue's events keep their order.
func queueIdentity(name string) string { return "queue:" + name }

// NewQueueSwitch answers the queue ports over a switchboard and hub; give
// the same one to queue.NewEngine (Switch, Events) and Config.QueueSwitch.
func NewQueueSwitch(sb *calls.Switchboard, hub *Hub) *QueueSwitch {
	return &QueueSwitch{sb: sb, hub: hub, callers: map[string]calls.Principal{}}
}
