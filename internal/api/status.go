package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// agentStatusPath is the supervisors' route to an agent's status; in a
// cluster it runs on the node that owns the agent (agentRoute).
const agentStatusPath = "/api/agents/:rawId/status"

// getMyStatus is GET /api/me/status.
func (s *Server) getMyStatus(c echo.Context) error {
	st, err := s.cfg.Switchboard.AgentStatusOf(c.Request().Context(), sessionOf(c).Principal, "")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// putMyStatus is PUT /api/me/status {"status", "wrapUpSeconds"?, "callId"?}.
func (s *Server) putMyStatus(c echo.Context) error { return s.putStatus(c, "") }

// getAgentStatus is GET /api/agents/{rawId}/status (supervisors).
func (s *Server) getAgentStatus(c echo.Context) error {
	raw, err := pathParam(c, "rawId")
	if err != nil {
		return err
	}
	st, err := s.cfg.Switchboard.AgentStatusOf(c.Request().Context(), sessionOf(c).Principal, raw)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// putAgentStatus is PUT /api/agents/{rawId}/status (supervisors; an agent
// naming herself is allowed, anyone else forbidden).
func (s *Server) putAgentStatus(c echo.Context) error {
	raw, err := pathParam(c, "rawId")
	if err != nil {
		return err
	}
	if raw == "" {
		return calls.Errorf(calls.CodeInvalidIdentifier, "the agent's rawId is empty")
	}
	return s.putStatus(c, raw)
}

func (s *Server) putStatus(c echo.Context, agent string) error {
	var req calls.SetStatusRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	st, err := s.cfg.Switchboard.SetStatus(c.Request().Context(), sessionOf(c).Principal, agent, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// putWrapUpCode is PUT /api/me/wrap-up {"callId", "code"}: the code the
// agent picked for a call she finished.
func (s *Server) putWrapUpCode(c echo.Context) error {
	var req struct {
		CallID string `json:"callId"`
		Code   string `json:"code"`
	}
	if err := decode(c, &req, false); err != nil {
		return err
	}
	w, err := s.cfg.Switchboard.RecordWrapUpCode(c.Request().Context(), sessionOf(c).Principal, req.CallID, req.Code)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, w)
}

// statusChange is one kept change as GET /api/history/agent-status
// answers it.
type statusChange struct {
	AgentID string      `json:"agentId"`
	Status  string      `json:"status"`
	Chosen  string      `json:"chosenStatus"`
	At      time.Time   `json:"at"`
	By      calls.Actor `json:"changedBy"`
}

// statusHistory is GET /api/history/agent-status?agent=&from=&to=&limit=:
// status changes, newest first (an agent's own; a supervisor's anyone's).
func (s *Server) statusHistory(c echo.Context) error {
	q, err := queryParams(c)
	if err != nil {
		return err
	}
	f := calls.StatusFilter{AgentID: q.Get("agent")}
	for _, tf := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(tf.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return calls.Errorf(calls.CodeInvalidRequest, "%s must be an RFC 3339 time", tf.name)
			}
			*tf.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return calls.Errorf(calls.CodeInvalidRequest, "limit must be a positive number")
		}
		f.Limit = n
	}
	changes, err := s.cfg.Switchboard.StatusHistory(c.Request().Context(), sessionOf(c).Principal, f)
	if err != nil {
		return err
	}
	items := make([]statusChange, 0, len(changes))
	for _, ch := range changes {
		items = append(items, statusChange{AgentID: ch.AgentID, Status: string(ch.Status), Chosen: string(ch.Chosen), At: ch.At, By: ch.By})
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

// adminPrincipal is who the admin key acts as on an agent's status: a
// supervisor named admin (the key has no identity of its own).
var adminPrincipal = calls.Principal{
	Identifier: calls.Identifier{Kind: calls.KindUnknown, ID: "admin"}, DisplayName: "admin", Role: calls.RoleSupervisor,
}

// asAdmin runs a request to an agent's status made with the admin key,
// as adminPrincipal: here, or on the agent's node in a cluster.
func (s *Server) asAdmin(c echo.Context, next echo.HandlerFunc) error {
	sess := Session{Principal: adminPrincipal}
	if s.cfg.Forward != nil {
		return s.route(c, sess, next)
	}
	return next(&sessionContext{Context: c, sess: sess})
}
