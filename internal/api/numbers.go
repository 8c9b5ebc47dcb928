package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// NumberRouteRequest is PUT /api/numbers/{e164}: exactly one of Target and
// Queue.
type NumberRouteRequest struct {
	Target *calls.Identifier `json:"target,omitempty"`
	Queue  *string           `json:"queue,omitempty"`
}

var errNoNumbers = calls.Errorf(calls.CodeNotImplemented, "this switchboard keeps no number routes")

// numberParam is the {e164} of the path, validated: + is itself in a path,
// and %2B is + too.
func numberParam(c echo.Context) (string, error) {
	n := c.Param("e164")
	if u, err := url.PathUnescape(n); err == nil {
		n = u
	}
	if err := calls.ValidatePhoneNumber(n); err != nil {
		return "", err
	}
	return n, nil
}

// putNumber routes calls to a number from the phone network (admin key).
func (s *Server) putNumber(c echo.Context) error {
	if err := s.admin(c); err != nil {
		return err
	}
	if s.cfg.Numbers == nil {
		return errNoNumbers
	}
	number, err := numberParam(c)
	if err != nil {
		return err
	}
	var req NumberRouteRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	r := calls.NumberRoute{Number: number, Target: req.Target}
	if req.Queue != nil {
		if *req.Queue == "" {
			return calls.Errorf(calls.CodeInvalidRequest, "the queue name is empty")
		}
		r.Queue = *req.Queue
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if err := s.cfg.Numbers.PutNumberRoute(c.Request().Context(), r); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// listNumbers answers every number route, by number (admin key).
func (s *Server) listNumbers(c echo.Context) error {
	if err := s.admin(c); err != nil {
		return err
	}
	if s.cfg.Numbers == nil {
		return errNoNumbers
	}
	routes, err := s.cfg.Numbers.FindNumberRoutes(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, routes)
}

// deleteNumber removes a number's route (admin key); calls to it are then
// answered 404.
func (s *Server) deleteNumber(c echo.Context) error {
	if err := s.admin(c); err != nil {
		return err
	}
	if s.cfg.Numbers == nil {
		return errNoNumbers
	}
	number, err := numberParam(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Numbers.DeleteNumberRoute(c.Request().Context(), number); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// UnmarshalJSON refuses fields the request does not have, so that a typo
// ("targets") is a 400, not a route to nowhere.
func (r *NumberRouteRequest) UnmarshalJSON(b []byte) error {
	type plain NumberRouteRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		if e, ok := errors.AsType[*calls.Error](err); ok {
			return e
		}
		return calls.Errorf(calls.CodeInvalidRequest, "malformed number route: %v", err)
	}
	*r = NumberRouteRequest(p)
	return nil
}
