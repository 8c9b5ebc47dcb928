package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// lobbyAdmit is POST /api/calls/{id}/lobby/admit {"rawId": ...} or
// {"all": true}: the room's organizer (id: her call in the room) or a
// supervisor (id: any call in the room) admits waiting joiners. A
// supervisor's request reaches the call's node (callRoute), the
// organizer's her own node, as for every other call operation.
func (s *Server) lobbyAdmit(c echo.Context) error {
	var req calls.LobbyAdmitRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	call, err := s.cfg.Switchboard.AdmitFromLobby(c.Request().Context(), sessionOf(c).Principal, id, req)
	if err != nil {
		return err
	}
	return writeCall(c, http.StatusOK, &call)
}
