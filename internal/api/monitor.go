package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// monitor is POST /api/calls/{id}/monitor {"mode": "listen" | "whisper" |
// "barge"}: a supervisor monitors an agent's live call, or changes her
// mode. A supervisor's request naming a call reaches the call's node
// (callRoute); when another node serves her, the call's node sends it on
// to hers (monitorAcross), where her monitor leg is a call of hers.
func (s *Server) monitor(c echo.Context) error {
	var req monitorBody
	if err := decode(c, &req, false); err != nil {
		return err
	}
	return s.monitorAction(c, req, func(p calls.Principal, id string) (calls.Call, error) {
		ctx := c.Request().Context()
		if req.Via != nil {
			return s.cfg.Switchboard.MonitorAcross(ctx, p, *req.Via, calls.MonitorRequest{Mode: req.Mode})
		}
		return s.cfg.Switchboard.Monitor(ctx, p, id, calls.MonitorRequest{Mode: req.Mode})
	})
}

// stopMonitor is DELETE /api/calls/{id}/monitor: she leaves.
func (s *Server) stopMonitor(c echo.Context) error {
	var req monitorBody
	if err := decode(c, &req, true); err != nil {
		return err
	}
	return s.monitorAction(c, req, func(p calls.Principal, id string) (calls.Call, error) {
		ctx := c.Request().Context()
		if req.Via != nil {
			return s.cfg.Switchboard.StopMonitorAcross(ctx, p, req.Via.CallID)
		}
		return s.cfg.Switchboard.StopMonitor(ctx, p, id)
	})
}

// monitorBody is a monitor request's body. Via is set only by the call's
// node when it sends the request on to the supervisor's (monitorAcross):
// the call runs there. ViaSig signs it with a key every node derives from
// the admin key (viaSig), since an entry node forwards a supervisor's own
// body to her node as it is.
type monitorBody struct {
	Mode   calls.MonitorMode `json:"mode"`
	Via    *calls.MonitorVia `json:"via,omitempty"`
	ViaSig []byte            `json:"viaSig,omitempty"`
}

// viaSig is the HMAC-SHA256 of via for the supervisor sup, under a key
// derived from the admin key the nodes share; nil without one.
func (s *Server) viaSig(sup string, via calls.MonitorVia) []byte {
	if s.cfg.Tokens == nil || len(s.cfg.Tokens.adminKey) == 0 {
		return nil
	}
	data, err := json.Marshal(via)
	if err != nil {
		return nil
	}
	derive := hmac.New(sha256.New, s.cfg.Tokens.adminKey)
	derive.Write([]byte("switchboard monitor via v1"))
	mac := hmac.New(sha256.New, derive.Sum(nil))
	mac.Write([]byte(sup))
	mac.Write([]byte{0})
	mac.Write(data)
	return mac.Sum(nil)
}

func (s *Server) monitorAction(c echo.Context, req monitorBody, do func(p calls.Principal, id string) (calls.Call, error)) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	sess := sessionOf(c)
	if req.Via != nil {
		sig := s.viaSig(sess.Identifier.RawID(), *req.Via)
		if fw := forwardedOf(c.Request().Context()); fw == nil || fw.call != "" || req.Via.CallID != id ||
			sig == nil || !hmac.Equal(sig, req.ViaSig) {
			return calls.Errorf(calls.CodeInvalidRequest, "via is for the nodes of a cluster alone")
		}
	} else if done, err := s.monitorAcross(c, sess, id, req); done || err != nil {
		return err
	}
	call, err := do(sess.Principal, id)
	if err != nil {
		return err
	}
	return writeCall(c, http.StatusOK, &call)
}

// monitorAcross sends a monitor request that reached the call's node on
// to the node that serves the supervisor, when that is another node, with
// what it needs of the call (calls.MonitorVia): there her monitor leg
// joins the call across nodes (internal/calls/peermonitor.go). done: the
// other node's answer was written.
func (s *Server) monitorAcross(c echo.Context, sess Session, id string, req monitorBody) (done bool, err error) {
	if s.cfg.Forward == nil || sess.Role != calls.RoleSupervisor {
		return false, nil
	}
	ctx := c.Request().Context()
	node, err := s.cfg.Forward.AgentNode(ctx, sess.Identifier.RawID())
	if err != nil {
		return false, &calls.Error{Code: calls.CodeUnavailable, Op: "monitor", Err: err,
			Message: "this node cannot tell which node serves this supervisor now; try again"}
	}
	if node == "" {
		return false, nil // she is served here, or nowhere (Monitor answers invalid_state)
	}
	via, err := s.cfg.Switchboard.MonitorVia(ctx, sess.Principal, id)
	if err != nil {
		return false, err
	}
	req.Via, req.ViaSig = &via, s.viaSig(sess.Identifier.RawID(), via)
	body, err := json.Marshal(req)
	if err != nil {
		return false, fmt.Errorf("monitor: encode: %w", err)
	}
	r := c.Request()
	freq := ForwardRequest{Method: r.Method, Target: "/api/calls/" + via.CallID + "/monitor",
		Header: http.Header{"Content-Type": {echo.MIMEApplicationJSON}}, Body: body, Client: r.RemoteAddr, Session: sess}
	resp, err := s.cfg.Forward.Forward(ctx, node, freq)
	if err == nil && resp.NotOwner != "" {
		err = fmt.Errorf("node %s no longer serves %s", node, sess.Identifier.RawID())
	}
	if err != nil {
		return false, &calls.Error{Code: calls.CodeUnavailable, Op: "forward to the supervisor's node", Err: err,
			Message: fmt.Sprintf("node %s, which serves this supervisor, did not answer; try again", node)}
	}
	return true, writeForwarded(c, resp)
}
