package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// Attacher attaches an agent's or supervisor's event stream, opened on
// this node, on the node that owns its identity (a cluster; cmd/switchboard wires
// internal/cluster to it). The owner counts the stream as one of the
// identity's connections (calls.Switchboard.Attach), so the identity is
// Connected there and can be called, for as long as the attachment lives.
type Attacher interface {
	// AttachRemote attaches sess's identity on node, which owns it, and
	// answers the owner's snapshot and detach, which ends the attachment
	// with the disconnect's reason. lost is called at most once, on its
	// own goroutine, when the attachment is lost without detach: the
	// owner stopped, expired it or no longer owns the identity.
	//
	// Errors: one wrapping ErrNotOwner when node does not own the
	// identity (now); a *calls.Error the owner's Attach answered; any
	// other when the owner could not be reached.
	AttachRemote(ctx context.Context, node string, sess Session, lost func(error)) (snap calls.Snapshot, detach func(reason string), err error)
}

// ErrNotOwner is wrapped by Attacher.AttachRemote when the node asked does
// not own the identity.
var ErrNotOwner = errors.New("api: the node does not own the identity")

// closeServiceRestart closes a stream attached on another node that lost
// its attachment (that node stopped, or the identity moved): the client
// reconnects, to any node.
const closeServiceRestart = websocket.CloseServiceRestart

const remoteStreamPrefix = "remote/"

// remoteStream is the stream of an identity another node owns, as this
// node follows it: apart from AgentStream, so that this node's own seqs
// for the identity never count events it did not follow.
func remoteStream(rawID string) string { return remoteStreamPrefix + rawID }

// FollowRemote starts delivering identity's events from other nodes
// (DeliverRemote) to the identity's remote stream here, for a connection
// about to attach on the owner. It answers the stream's last seq: the
// events delivered from then on have later ones (subscribeRemote). stop
// ends the following (calling it again does nothing); call it once the
// connection is gone.
func (h *Hub) FollowRemote(identity string) (last uint64, stop func(), err error) {
	h.mu.Lock()
	if h.followed == nil {
		h.followed = map[string]int{}
	}
	h.followed[identity]++
	h.mu.Unlock()
	stop = sync.OnceFunc(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.followed[identity]--; h.followed[identity] <= 0 {
			delete(h.followed, identity)
		}
	})
	stream := remoteStream(identity)
	l := h.lockFor(stream)
	l.Lock()
	last, err = h.events.Last(stream)
	l.Unlock()
	if err != nil {
		stop()
		return 0, nil, fmt.Errorf("last seq of %s: %w", stream, err)
	}
	return last, stop, nil
}

// followedRemote says whether a connection here follows identity's
// remote stream.
func (h *Hub) followedRemote(identity string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.followed[identity] > 0
}

// subscribeRemote starts c on its remote stream with the owner's snapshot
// (given the seq last, which FollowRemote answered), then the events
// delivered since (some of which the snapshot may already show: at least
// once, never lost), then live.
func (h *Hub) subscribeRemote(c *client, last uint64, snapshot []byte) error {
	stream := streamOf(c)
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	since, err := h.events.Since(stream, last)
	if err != nil {
		return fmt.Errorf("events of %s after %d: %w", stream, last, err)
	}
	if !c.fits(since) {
		return fmt.Errorf("events of %s after %d: %d do not fit a queue", stream, last, len(since))
	}
	c.start(last - 1)
	c.enqueue(last, snapshot)
	for _, e := range since {
		c.enqueue(e.Seq, e.Payload)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		c.finish(closeGoingAway, "the switchboard is shutting down")
		return nil
	}
	set := h.subs[stream]
	if set == nil {
		set = map[*client]struct{}{}
		h.subs[stream] = set
	}
	set[c] = struct{}{}
	return nil
}

// remoteEvents is GET /api/events of an identity node owner owns: the
// stream is attached there, so that the identity counts as connected on
// its owner, and is closed with 1012 when the attachment is lost. An
// agent's stream starts with the owner's snapshot and follows the
// identity's events through this node's relay; sinceSeq is read but not
// replayed: it always starts from a snapshot. A supervisor's stream is
// the one it would have on its owner (subscribeRemoteSupervisor).
func (s *Server) remoteEvents(c echo.Context, sess Session, owner string) error {
	identity := sess.Identifier.RawID()
	log := s.log.With("agent_id", identity, "owner", owner)
	release, err := s.cfg.Hub.admit(identity)
	if err != nil {
		log.Warn("event connection refused", "remote", c.Request().RemoteAddr, "err", err)
		return err
	}
	release = sync.OnceFunc(release)
	defer release()
	last, unfollow := uint64(0), func() {}
	if sess.Role != calls.RoleSupervisor { // a supervisor follows the supervisors' stream
		if last, unfollow, err = s.cfg.Hub.FollowRemote(identity); err != nil {
			return &calls.Error{Code: calls.CodeInternal, Op: "follow the identity's events", Err: err, Message: "internal error"}
		}
	}
	defer unfollow()

	ctx := c.Request().Context()
	lost := make(chan error, 1)
	onLost := func(err error) {
		select {
		case lost <- err:
		default:
		}
	}
	snap, detach, err := s.cfg.Attach.AttachRemote(ctx, owner, sess, onLost)
	if errors.Is(err, ErrNotOwner) && s.cfg.Forward != nil {
		// The lease moved since we read it: read the owner again, once.
		var again string
		if again, err = s.cfg.Forward.Owner(ctx, identity); err == nil {
			if again == "" {
				unfollow()
				release()
				return s.events(&sessionContext{Context: c, sess: sess})
			}
			owner = again
			snap, detach, err = s.cfg.Attach.AttachRemote(ctx, owner, sess, onLost)
		}
	}
	var cerr *calls.Error
	switch {
	case errors.As(err, &cerr):
		return err
	case err != nil:
		c.Response().Header().Set("Retry-After", "1")
		return &calls.Error{Code: calls.CodeUnavailable, Op: "attach the event stream on the identity's node", Err: err,
			Message: fmt.Sprintf("node %s, which serves this identity, did not answer; try again", owner)}
	}
	bw := &batchingWriter{ResponseWriter: c.Response()}
	conn, err := s.upgrader.Upgrade(bw, c.Request(), nil)
	if err != nil {
		detach("")
		return nil // the upgrader has answered
	}
	cl := newClient(s.cfg.Hub, conn, bw.conn, sess, s.timings, log)
	if cl.supervisor {
		s.subscribeRemoteSupervisor(c, cl, log)
	} else {
		cl.remote = true
		body, err := encodeEvent(calls.Event{Type: calls.EventSnapshot, At: time.Now(), AgentID: identity, Data: snap})
		if err == nil {
			err = s.cfg.Hub.subscribeRemote(cl, last, body)
		}
		if err != nil {
			log.Warn("subscribe to another node's events", "err", err)
			cl.finish(closeTryAgainLater, "events were missed: reconnect")
		}
	}
	go cl.writeLoop()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case err := <-lost:
			log.Info("event stream's attachment on its node lost: closing it", "err", err)
			cl.finish(closeServiceRestart, "the node serving this identity is gone: reconnect")
		case <-cl.stopped:
		}
	}()
	expiry := time.AfterFunc(time.Until(sess.ExpiresAt), cl.expire)
	cl.readLoop(s.cfg.MaxFrameBytes)
	<-cl.stopped
	<-watchDone
	expiry.Stop()
	s.cfg.Hub.remove(cl)
	reason := ""
	if cl.wasExpired() {
		reason = "invalidToken"
	}
	detach(reason)
	return nil
}

// subscribeRemoteSupervisor subscribes a supervisor's connection attached
// on the owner of its identity as a supervisor's connection on its owner
// is: to this node's supervisors' stream (which has every node's
// supervised events; sinceSeq replays it), starting with this node's
// supervised snapshot merged with the other nodes'. The owner's snapshot
// is not used: the other nodes' answers have the owner's, and are newer.
func (s *Server) subscribeRemoteSupervisor(c echo.Context, cl *client, log *slog.Logger) {
	since, resume, _ := sinceSeq(c.QueryParams()) // checked by events
	var remote []calls.Snapshot
	letPeersIn := func() {}
	if s.cfg.Peers != nil {
		remote, letPeersIn = s.cfg.Peers.Snapshots(c.Request().Context())
	}
	defer letPeersIn()
	s.cfg.Switchboard.WithSupervisedSnapshot(func(snap calls.Snapshot) {
		snap = mergeSnapshots(snap, remote)
		_, err := s.cfg.Hub.subscribe(cl, resume, since, func() ([]byte, error) {
			return encodeEvent(calls.Event{Type: calls.EventSnapshot, At: time.Now(), AgentID: cl.agentID, Data: snap})
		})
		if err != nil {
			log.Error("subscribe to events", "err", err)
			cl.finish(websocketInternalError, "internal error")
		}
	})
}

// AttachHere attaches sess's identity here for a stream another node
// holds (the owner's side of Attacher.AttachRemote): it answers the
// snapshot and the detach, or an error wrapping ErrNotOwner when this node
// does not own the identity, or the Attach's *calls.Error.
func (s *Server) AttachHere(ctx context.Context, sess Session) (calls.Snapshot, func(reason string), error) {
	if err := sess.Identifier.Validate(); err != nil || !sess.Role.Valid() {
		return calls.Snapshot{}, nil, calls.Errorf(calls.CodeInvalidRequest, "an attach must carry a valid identity and role")
	}
	if s.cfg.Forward != nil {
		owner, err := s.cfg.Forward.Owner(ctx, sess.Identifier.RawID())
		if err != nil {
			return calls.Snapshot{}, nil, &calls.Error{Code: calls.CodeUnavailable, Op: "find the identity's node", Err: err,
				Message: "this node cannot tell which node serves this identity now; try again"}
		}
		if owner != "" {
			return calls.Snapshot{}, nil, fmt.Errorf("node %s owns %s: %w", owner, sess.Identifier.RawID(), ErrNotOwner)
		}
	}
	var snap calls.Snapshot
	detach, err := s.cfg.Switchboard.Attach(ctx, sess.Principal, func(sn calls.Snapshot) { snap = sn })
	if err != nil {
		return calls.Snapshot{}, nil, err
	}
	return snap, detach, nil
}
