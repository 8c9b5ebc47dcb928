package api

import (
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// events is GET /api/events: the identity's event connection. The first
// message is the snapshot, or, when sinceSeq names an event its stream
// still holds, the first event after it (see Hub.subscribe); every message
// carries its seq in the stream.
func (s *Server) events(c echo.Context) error {
	sess := sessionOf(c)
	if !websocket.IsWebSocketUpgrade(c.Request()) {
		return calls.Errorf(calls.CodeInvalidRequest, "GET /api/events is a websocket: send Upgrade: websocket")
	}
	if !s.checkOrigin(c.Request()) {
		return calls.Errorf(calls.CodeForbidden, "origin %q may not open the event stream", c.Request().Header.Get("Origin"))
	}
	since, resume, err := sinceSeq(c.QueryParams())
	if err != nil {
		return err
	}
	if owner := c.(*sessionContext).owner; owner != "" {
		return s.remoteEvents(c, sess, owner)
	}
	log := s.log.With("agent_id", sess.Identifier.RawID())
	release, err := s.cfg.Hub.admit(sess.Identifier.RawID())
	if err != nil {
		log.Warn("event connection refused", "remote", c.Request().RemoteAddr, "err", err)
		return err
	}
	defer release()
	bw := &batchingWriter{ResponseWriter: c.Response()}
	conn, err := s.upgrader.Upgrade(bw, c.Request(), nil)
	if err != nil {
		return nil // the upgrader has answered
	}
	cl := newClient(s.cfg.Hub, conn, bw.conn, sess, s.timings, log)

	var remote []calls.Snapshot
	letPeersIn := func() {}
	if cl.supervisor && resume {
		s.cfg.Hub.supervisedCaughtUp(c.Request().Context(), since)
	}
	if s.cfg.Peers != nil && cl.supervisor {
		// The other nodes' events wait until the connection is subscribed.
		remote, letPeersIn = s.cfg.Peers.Snapshots(c.Request().Context())
	}
	var pre []Entry
	switch {
	case cl.supervisor && resume:
		pre = s.cfg.Hub.supervisedReplay(c.Request().Context(), since, cap(cl.queue)-1)
	case resume:
		pre = s.agentReplay(c.Request().Context(), cl.agentID, since, cap(cl.queue)-1)
	}
	detach, err := s.cfg.Switchboard.Attach(c.Request().Context(), sess.Principal, func(snap calls.Snapshot) {
		if len(remote) > 0 {
			snap = mergeSnapshots(snap, remote)
		}
		resumed, err := s.cfg.Hub.subscribe(cl, resume, since, pre, func() ([]byte, error) {
			return encodeEvent(calls.Event{
				Type: calls.EventSnapshot, At: time.Now(), AgentID: cl.agentID, Data: snap,
			})
		})
		if err != nil {
			log.Error("subscribe to events", "err", err)
			cl.finish(websocketInternalError, "internal error")
			return
		}
		if resume {
			log.Debug("event connection resumed", "since_seq", since, "replayed", resumed)
		}
	})
	letPeersIn()
	if err != nil {
		code, msg := classify(err)
		cl.finish(closeTryAgainLater, string(code)+": "+msg)
		go cl.writeLoop()
		<-cl.stopped
		return nil
	}
	go cl.writeLoop()
	expiry := time.AfterFunc(time.Until(sess.ExpiresAt), cl.expire)
	cl.readLoop(s.cfg.MaxFrameBytes)
	<-cl.stopped
	expiry.Stop()
	s.cfg.Hub.remove(cl)
	reason := ""
	if cl.wasExpired() {
		reason = "invalidToken"
	}
	detach(reason)
	return nil
}

const websocketInternalError = 1011

// sinceSeq reads the sinceSeq query parameter: the seq of the last event a
// reconnecting client saw.
func sinceSeq(q url.Values) (seq uint64, ok bool, err error) {
	v, ok := q["sinceSeq"]
	if !ok {
		return 0, false, nil
	}
	if len(v) != 1 {
		return 0, false, calls.Errorf(calls.CodeInvalidRequest, "sinceSeq is given %d times: give it once", len(v))
	}
	seq, err = strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		return 0, false, calls.Errorf(calls.CodeInvalidRequest, "sinceSeq %q is not a seq (a whole number of 0 or more)", v[0])
	}
	return seq, true, nil
}
