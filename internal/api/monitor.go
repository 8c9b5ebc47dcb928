package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// monitor is POST /api/calls/{id}/monitor {"mode": "listen" | "whisper" |
// "barge"}: a supervisor monitors an agent's live call, or changes her
// mode. A supervisor's request naming a call reaches the call's node
// (callRoute), which must also be the node that serves her: her monitor
// leg is a call of hers, with her events and her audio there.
func (s *Server) monitor(c echo.Context) error {
	var req calls.MonitorRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	return s.monitorAction(c, func(p calls.Principal, id string) (calls.Call, error) {
		return s.cfg.Switchboard.Monitor(c.Request().Context(), p, id, req)
	})
}

// stopMonitor is DELETE /api/calls/{id}/monitor: she leaves.
func (s *Server) stopMonitor(c echo.Context) error {
	return s.monitorAction(c, func(p calls.Principal, id string) (calls.Call, error) {
		return s.cfg.Switchboard.StopMonitor(c.Request().Context(), p, id)
	})
}

func (s *Server) monitorAction(c echo.Context, do func(p calls.Principal, id string) (calls.Call, error)) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	sess := sessionOf(c)
	if err := s.monitorHere(c, sess); err != nil {
		return err
	}
	call, err := do(sess.Principal, id)
	if err != nil {
		return err
	}
	return writeCall(c, http.StatusOK, &call)
}

// monitorHere refuses a monitor request forwarded to the call's node when
// another node serves the supervisor: her monitor leg would need a
// stand-in across nodes (internal/calls/peer.go), which monitoring does
// not have yet.
//
// In a cluster a supervisor's event stream is served by the node she
// opened it on, so a monitor request on the call's node while her stream
// is on another is the same case: 501, not the single node's 409 (open
// the event stream first).
func (s *Server) monitorHere(c echo.Context, sess Session) error {
	if s.cfg.Forward == nil || sess.Role != calls.RoleSupervisor {
		return nil
	}
	if c.Request().Method == http.MethodPost && !s.cfg.Switchboard.Connected(sess.Identifier.RawID()) {
		return calls.Errorf(calls.CodeNotImplemented,
			"no event stream of yours is open on this call's node (another node may serve it): monitoring a call across nodes is not supported yet")
	}
	fw := forwardedOf(c.Request().Context())
	if fw == nil || fw.call == "" {
		return nil
	}
	node, err := s.cfg.Forward.AgentNode(c.Request().Context(), sess.Identifier.RawID())
	if err != nil {
		return &calls.Error{Code: calls.CodeUnavailable, Op: "monitor", Err: err,
			Message: "this node cannot tell which node serves this supervisor now; try again"}
	}
	if node != "" {
		return calls.Errorf(calls.CodeNotImplemented,
			"this call runs on another node than the one serving you (%s): monitoring a call across nodes is not supported yet", node)
	}
	return nil
}
