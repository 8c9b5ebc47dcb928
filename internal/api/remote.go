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
	// answers what the owner's AttachHere answered (since is the seq the
	// stream was opened with, nil: none); its Detach ends the attachment
	// with the disconnect's reason. lost is called at most once, on its
	// own goroutine, when the attachment is lost without detach: the
	// owner stopped, expired it or no longer owns the identity.
	//
	// Errors: one wrapping ErrNotOwner when node does not own the
	// identity (now); a *calls.Error the owner's Attach answered; any
	// other when the owner could not be reached.
	AttachRemote(ctx context.Context, node string, sess Session, since *uint64, lost func(error)) (Attached, error)
}

// Attached is the owner's answer to an attach (AttachHere).
type Attached struct {
	Snapshot calls.Snapshot
	// Seq is the snapshot's seq in the identity's stream on the owner:
	// the identity's next event there is Seq+1.
	Seq uint64
	// Resumable says that the seq asked for is one of the owner's
	// stream and the owner still holds every event after it: the seqs
	// after it are those the owner gave (not those of an earlier owner
	// or run), so a replay from the RemoteLog may continue it.
	Resumable bool
	// Detach ends the attachment with the disconnect's reason.
	Detach func(reason string)
}

// RemoteLog reads back an identity's events, on any node of a cluster, as
// the node that published them numbered them: the seqs its consoles saw
// there (cmd/switchboard wires internal/relay to it).
type RemoteLog interface {
	// EventsSince answers identity's events after seq, oldest first:
	// seq+1, seq+2, … as many as the log holds now, at most limit. It
	// answers an error wrapping ErrGone when the log does not hold every
	// one of them (the client starts from a snapshot).
	EventsSince(ctx context.Context, identity string, seq uint64, limit int) ([]Entry, error)
}

// replayTimeout bounds reading a reconnecting stream's missed events from
// the RemoteLog; past it the stream starts from the snapshot.
const replayTimeout = 2 * time.Second

// ErrNotOwner is wrapped by Attacher.AttachRemote when the node asked does
// not own the identity.
var ErrNotOwner = errors.New("api: the node does not own the identity")

// closeServiceRestart closes a stream attached on another node that lost
// its attachment (that node stopped, or the identity moved): the client
// reconnects, to any node.
const closeServiceRestart = websocket.CloseServiceRestart

const remoteStreamPrefix = "remote/"

// remoteStream is the stream of an identity another node owns, as this
// node follows it: apart from AgentStream, and numbered with the owner's
// seqs (those the relay carries), not this node's, so that a console may
// move between nodes with the last seq it saw. It is not kept in the
// hub's EventLog: a reconnect here replays from the RemoteLog.
func remoteStream(rawID string) string { return remoteStreamPrefix + rawID }

// remoteFollow is an identity another node owns that connections here
// follow. Guarded by Hub.mu, but recent by the remote stream's lock.
type remoteFollow struct {
	conns   int // following connections
	pending int // of which not yet subscribed (subscribeRemote)
	// recent holds the events delivered while a connection is pending,
	// at most the hub's queue size, for subscribeRemote.
	recent []Entry
}

// RemoteFollowing is one connection's following of an identity another
// node owns (FollowRemote).
type RemoteFollowing struct {
	h        *Hub
	identity string
	pending  bool // guarded by h.mu
	stop     func()
}

// FollowRemote starts delivering identity's events from other nodes
// (DeliverRemote) to the identity's remote stream here, for a connection
// about to attach on the owner: those delivered until it is subscribed
// (subscribeRemote) are kept for it. Stop the following once the
// connection is gone.
func (h *Hub) FollowRemote(identity string) *RemoteFollowing {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.followed == nil {
		h.followed = map[string]*remoteFollow{}
	}
	f := h.followed[identity]
	if f == nil {
		f = &remoteFollow{}
		h.followed[identity] = f
	}
	f.conns++
	f.pending++
	fl := &RemoteFollowing{h: h, identity: identity, pending: true}
	fl.stop = sync.OnceFunc(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		fl.subscribedLocked(f)
		if f.conns--; f.conns <= 0 {
			delete(h.followed, identity)
		}
	})
	return fl
}

// Stop ends the following; calling it again does nothing.
func (fl *RemoteFollowing) Stop() { fl.stop() }

// subscribedLocked notes that the connection no longer waits for its
// subscribe: recent is let go when none waits. Under h.mu.
func (fl *RemoteFollowing) subscribedLocked(f *remoteFollow) {
	if !fl.pending {
		return
	}
	fl.pending = false
	if f.pending--; f.pending == 0 {
		f.recent = nil
	}
}

// followedRemote says whether a connection here follows identity's
// remote stream.
func (h *Hub) followedRemote(identity string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.followed[identity] != nil
}

// deliverRemote queues an event of identity another node published, with
// seq, its seq there, for the connections following it here, and keeps
// it for those about to subscribe.
func (h *Hub) deliverRemote(identity string, seq uint64, body []byte) {
	stream := remoteStream(identity)
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	h.mu.RLock()
	defer h.mu.RUnlock()
	f := h.followed[identity]
	if f == nil || seq == 0 {
		return
	}
	if f.pending > 0 {
		if len(f.recent) >= h.queueSize {
			f.recent = f.recent[1:] // a subscribe that needs it finds the gap
		}
		f.recent = append(f.recent, Entry{Seq: seq, Payload: body})
	}
	for c := range h.subs[stream] {
		c.enqueueNew(seq, body)
	}
}

// subscribeRemote starts c, which follows fl, on its remote stream after
// seq prev with the events first (the owner's snapshot with its seq, or
// the events missed, read from the RemoteLog), then those delivered since
// FollowRemote that come after them, then live ones: each seq once and
// in order; a gap closes c with 1013 (it reconnects).
func (h *Hub) subscribeRemote(c *client, fl *RemoteFollowing, prev uint64, first []Entry) {
	stream := streamOf(c)
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	c.start(prev)
	for _, e := range first {
		c.enqueue(e.Seq, e.Payload)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.followed[fl.identity]; f != nil {
		for _, e := range f.recent {
			c.enqueueNew(e.Seq, e.Payload)
		}
		fl.subscribedLocked(f)
	}
	if h.closed {
		c.finish(closeGoingAway, "the switchboard is shutting down")
		return
	}
	set := h.subs[stream]
	if set == nil {
		set = map[*client]struct{}{}
		h.subs[stream] = set
	}
	set[c] = struct{}{}
}

// remoteEvents is GET /api/events of an identity node owner owns: the
// stream is attached there, so that the identity counts as connected on
// its owner, and is closed with 1012 when the attachment is lost. An
// agent's stream follows the identity's events through this node's
// relay, numbered as on the owner; it starts with the events after
// sinceSeq read from the RemoteLog when it holds them all, else with the
// owner's snapshot (remoteStart). A supervisor's stream is the one it
// would have on its owner (subscribeRemoteSupervisor).
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
	var follow *RemoteFollowing
	unfollow := func() {}
	if sess.Role != calls.RoleSupervisor { // a supervisor follows the supervisors' stream
		follow = s.cfg.Hub.FollowRemote(identity)
		unfollow = follow.Stop
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
	var since *uint64
	if seq, resume, _ := sinceSeq(c.QueryParams()); resume && sess.Role != calls.RoleSupervisor { // checked by events
		since = &seq
	}
	att, err := s.cfg.Attach.AttachRemote(ctx, owner, sess, since, onLost)
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
			att, err = s.cfg.Attach.AttachRemote(ctx, owner, sess, since, onLost)
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
		att.Detach("")
		return nil // the upgrader has answered
	}
	cl := newClient(s.cfg.Hub, conn, bw.conn, sess, s.timings, log)
	if cl.supervisor {
		s.subscribeRemoteSupervisor(c, cl, log)
	} else {
		cl.remote = true
		prev, first, err := s.remoteStart(c, cl, att, log)
		if err != nil {
			log.Error("encode the owner's snapshot", "err", err)
			cl.finish(websocketInternalError, "internal error")
		} else {
			s.cfg.Hub.subscribeRemote(cl, follow, prev, first)
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
	att.Detach(reason)
	return nil
}

// remoteStart answers how an agent's stream on a non-owner starts: after
// seq prev with the events first. Reconnecting with sinceSeq N that the
// owner found in its stream (Attached.Resumable), it gets the events after
// N from the RemoteLog (none when N is the seq of the owner's snapshot,
// taken after the stream began following) when the log holds them all
// and they fit its queue; else it starts with the owner's snapshot and
// its seq there.
func (s *Server) remoteStart(c echo.Context, cl *client, att Attached, log *slog.Logger) (prev uint64, first []Entry, err error) {
	since, resume, _ := sinceSeq(c.QueryParams()) // checked by events
	snapSeq := att.Seq
	if resume && att.Resumable && snapSeq != 0 {
		switch {
		case since == snapSeq:
			log.Debug("event connection resumed", "since_seq", since, "replayed", 0)
			return since, nil, nil
		case since < snapSeq && s.cfg.RemoteLog != nil:
			missed, err := s.eventsSince(c.Request().Context(), cl.agentID, since, cap(cl.queue)-1)
			switch {
			case err == nil && cl.fits(missed):
				log.Debug("event connection resumed", "since_seq", since, "replayed", len(missed))
				return since, missed, nil
			case err != nil && !errors.Is(err, ErrGone):
				log.Warn("replay from the cluster's event log: starting from a snapshot", "since_seq", since, "err", err)
			}
		}
	}
	body, err := encodeEvent(calls.Event{Type: calls.EventSnapshot, At: time.Now(), AgentID: cl.agentID, Data: att.Snapshot})
	if err != nil {
		return 0, nil, err
	}
	return snapSeq - 1, []Entry{{Seq: snapSeq, Payload: body}}, nil
}

// eventsSince reads the identity's events after since from the RemoteLog,
// within replayTimeout: while the log has not caught up with since (the
// owner gave it, and said so, but its relay has not appended it yet:
// ErrBehind), it reads again every 10 ms.
func (s *Server) eventsSince(ctx context.Context, identity string, since uint64, limit int) ([]Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	for {
		missed, err := s.cfg.RemoteLog.EventsSince(ctx, identity, since, limit)
		if !errors.Is(err, ErrBehind) {
			return missed, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// subscribeRemoteSupervisor subscribes a supervisor's connection attached
// on the owner of its identity as a supervisor's connection on its owner
// is: to this node's supervisors' stream (which has every node's
// supervised events; sinceSeq replays it), starting with this node's
// supervised snapshot merged with the other nodes'. The owner's snapshot
// is not used: the other nodes' answers have the owner's, and are newer.
func (s *Server) subscribeRemoteSupervisor(c echo.Context, cl *client, log *slog.Logger) {
	since, resume, _ := sinceSeq(c.QueryParams()) // checked by events
	if resume {
		s.cfg.Hub.supervisedCaughtUp(c.Request().Context(), since)
	}
	var remote []calls.Snapshot
	letPeersIn := func() {}
	if s.cfg.Peers != nil {
		remote, letPeersIn = s.cfg.Peers.Snapshots(c.Request().Context())
	}
	defer letPeersIn()
	var pre []Entry
	if resume {
		pre = s.cfg.Hub.supervisedReplay(c.Request().Context(), since, cap(cl.queue)-1)
	}
	s.cfg.Switchboard.WithSupervisedSnapshot(func(snap calls.Snapshot) {
		snap = mergeSnapshots(snap, remote)
		_, err := s.cfg.Hub.subscribe(cl, resume, since, pre, func() ([]byte, error) {
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
// snapshot with its seq in the identity's stream here (read with it, so
// the identity's next event here is seq+1), whether this stream holds
// every event after since (when not nil), and the detach; or an error
// wrapping ErrNotOwner when this node does not own the identity, or the
// Attach's *calls.Error.
func (s *Server) AttachHere(ctx context.Context, sess Session, since *uint64) (Attached, error) {
	if err := sess.Identifier.Validate(); err != nil || !sess.Role.Valid() {
		return Attached{}, calls.Errorf(calls.CodeInvalidRequest, "an attach must carry a valid identity and role")
	}
	if s.cfg.Forward != nil {
		owner, err := s.cfg.Forward.Owner(ctx, sess.Identifier.RawID())
		if err != nil {
			return Attached{}, &calls.Error{Code: calls.CodeUnavailable, Op: "find the identity's node", Err: err,
				Message: "this node cannot tell which node serves this identity now; try again"}
		}
		if owner != "" {
			return Attached{}, fmt.Errorf("node %s owns %s: %w", owner, sess.Identifier.RawID(), ErrNotOwner)
		}
	}
	var (
		att     Attached
		lastErr error
	)
	stream := AgentStream(sess.Identifier.RawID())
	detach, err := s.cfg.Switchboard.Attach(ctx, sess.Principal, func(sn calls.Snapshot) {
		att.Snapshot = sn
		att.Seq, att.Resumable, lastErr = s.cfg.Hub.last(stream, since)
	})
	if err != nil {
		return Attached{}, err
	}
	if lastErr != nil {
		detach("")
		return Attached{}, fmt.Errorf("attach: %w", lastErr)
	}
	att.Detach = detach
	return att, nil
}

// last answers the seq of the stream's last event and, when since is not
// nil, whether the stream holds every event after it, read under the
// stream's lock.
func (h *Hub) last(stream string, since *uint64) (seq uint64, holds bool, err error) {
	l := h.lockFor(stream)
	l.Lock()
	defer l.Unlock()
	seq, err = h.events.Last(stream)
	if err != nil {
		return 0, false, fmt.Errorf("last seq of %s: %w", stream, err)
	}
	if since != nil {
		_, err := h.events.Since(stream, *since)
		switch {
		case err == nil || h.continuedBefore(stream, *since):
			// Held, or continued from her earlier owner's stream: the
			// RemoteLog's read checks those seqs follow on.
			holds = true
		case !errors.Is(err, ErrGone):
			return 0, false, fmt.Errorf("events of %s after %d: %w", stream, *since, err)
		}
	}
	return seq, holds, nil
}
