package api

import (
	"time"

	"github.com/gorilla/websocket"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// events is GET /api/events: the identity's event connection. The first
// message is the snapshot; every message carries the connection's seq.
func (s *Server) events(c echo.Context) error {
	sess := sessionOf(c)
	if !websocket.IsWebSocketUpgrade(c.Request()) {
		return calls.Errorf(calls.CodeInvalidRequest, "GET /api/events is a websocket: send Upgrade: websocket")
	}
	if !s.checkOrigin(c.Request()) {
		return calls.Errorf(calls.CodeForbidden, "origin %q may not open the event stream", c.Request().Header.Get("Origin"))
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

	detach, err := s.cfg.Switchboard.Attach(c.Request().Context(), sess.Principal, func(snap calls.Snapshot) {
		body, err := encodeEvent(calls.Event{
			Type: calls.EventSnapshot, At: time.Now(), AgentID: cl.agentID, Data: snap,
		})
		if err != nil {
			log.Error("encode snapshot", "err", err)
			cl.finish(websocketInternalError, "internal error")
			return
		}
		cl.enqueue(body)
		if !s.cfg.Hub.add(cl) {
			cl.finish(closeGoingAway, "the switchboard is shutting down")
		}
	})
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
