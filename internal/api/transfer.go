package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// transfer is POST /api/calls/{id}/transfer {"target": {identifier} |
// "queue": "NAME", "mode": "blind" | "consult"}: blind answers the agent's
// call, ended (200); consult answers the consult call it placed (201).
// Like every operation on an agent's own call it reaches the node that
// serves her (route).
func (s *Server) transfer(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var req calls.TransferRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	call, err := s.cfg.Switchboard.Transfer(c.Request().Context(), sessionOf(c).Principal, id, req)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if req.Mode == calls.TransferConsult {
		status = http.StatusCreated
	}
	return writeCall(c, status, &call)
}

// merge is POST /api/calls/{id}/merge {"callId": "..."}: the answer is the
// merged call.
func (s *Server) merge(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var req calls.MergeRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	call, err := s.cfg.Switchboard.Merge(c.Request().Context(), sessionOf(c).Principal, id, req)
	if err != nil {
		return err
	}
	return writeCall(c, http.StatusOK, &call)
}
