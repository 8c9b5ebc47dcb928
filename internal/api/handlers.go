package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// decode reads a JSON body into v. An empty body is allowed when optional;
// malformed JSON is invalid_request; a malformed identifier keeps its own
// code.
func decode(c echo.Context, v any, optional bool) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		if isTooLarge(err) {
			return errTooLarge
		}
		return calls.Errorf(calls.CodeInvalidRequest, "reading the request body failed")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return calls.Errorf(calls.CodeInvalidRequest, "the request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		if e, ok := errors.AsType[*calls.Error](err); ok {
			return e
		}
		return calls.Errorf(calls.CodeInvalidRequest, "malformed JSON: %v", err)
	}
	if dec.More() {
		return calls.Errorf(calls.CodeInvalidRequest, "malformed JSON: more than one value")
	}
	return nil
}

// jsonContentType is the Content-Type of JSON answers, as echo's c.JSON
// sets it; shared, and never changed.
var jsonContentType = []string{echo.MIMEApplicationJSON}

// writeCall answers a call: the same bytes and headers as c.JSON, encoded
// without reflection into a pooled buffer. A query string (echo's ?pretty)
// or echo's debug mode take c.JSON itself.
func writeCall(c echo.Context, status int, call *calls.Call) error {
	if c.Request().URL.RawQuery != "" || c.Echo().Debug {
		return c.JSON(status, call)
	}
	buf := getBuf()
	defer putBuf(buf)
	b, err := appendCall(*buf, call)
	*buf = b
	if err != nil {
		return c.JSON(status, call) // encoding/json says what went wrong
	}
	*buf = append(b, '\n') // as json.Encoder ends a value
	resp := c.Response()
	if h := resp.Header(); h.Get(echo.HeaderContentType) == "" {
		h[echo.HeaderContentType] = jsonContentType
	}
	resp.Status = status
	_, err = resp.Write(*buf)
	return err
}

// pathParam is a URL-escaped path parameter, unescaped.
func pathParam(c echo.Context, name string) (string, error) {
	v, err := url.PathUnescape(c.Param(name))
	if err != nil {
		return "", calls.Errorf(calls.CodeInvalidRequest, "malformed %s in the path", name)
	}
	return v, nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// TrunkStatus is one SIP trunk's state, as GET /readyz lists it to the
// admin key: name and state (registered, registering, failed,
// unregistered, or static for a trunk that does not register), and
// with failed the last REGISTER's error.
type TrunkStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// readyBody is /readyz's answer to the admin key when ready; trunks only
// with SIP (Config.Trunks), then always a list.
type readyBody struct {
	Status string        `json:"status"`
	Trunks []TrunkStatus `json:"trunks,omitzero"`
}

// readyz says whether the store is reachable and the node not draining
// (see Config.Ready): only ok or not ready, unless the request carries the
// admin key, which gets the store's own words (they name its database,
// host and spool) or draining, and, when ready, the SIP trunks' states.
func (s *Server) readyz(c echo.Context) error {
	err := s.cfg.Ready(c.Request().Context())
	if key := bearer(c.Request()); key == "" || !s.cfg.Tokens.IsAdmin(key) {
		if err != nil {
			return c.String(http.StatusServiceUnavailable, "not ready\n")
		}
		return c.String(http.StatusOK, "ok\n")
	}
	if calls.ErrorCode(err) == calls.CodeDraining {
		return c.JSON(http.StatusServiceUnavailable, errorBody{Error: errorDetail{Code: calls.CodeDraining, Message: calls.ErrorMessage(err)}})
	}
	if err != nil {
		return c.JSON(http.StatusServiceUnavailable, errorBody{Error: errorDetail{
			Code: calls.CodeUnavailable, Message: "the store is not ready: " + err.Error(),
		}})
	}
	body := readyBody{Status: "ready"}
	if s.cfg.Trunks != nil {
		body.Trunks = s.cfg.Trunks()
		if body.Trunks == nil {
			body.Trunks = []TrunkStatus{}
		}
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) version(c echo.Context) error {
	return c.JSON(http.StatusOK, s.cfg.Build)
}

// admin checks the request carries the admin key; wrong keys count
// against the client's failure limit.
func (s *Server) admin(c echo.Context) error {
	key := bearer(c.Request())
	errNoKey := calls.Errorf(calls.CodeUnauthorized, "minting and revoking tokens needs the admin key")
	if key == "" {
		return errNoKey
	}
	return s.limitFailures(c, "admin key", func() error {
		if !s.cfg.Tokens.IsAdmin(key) {
			return errNoKey
		}
		return nil
	})
}

func (s *Server) mintToken(c echo.Context) error {
	if err := s.admin(c); err != nil {
		return err
	}
	var req TokenRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	minted, err := s.cfg.Tokens.Mint(req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, minted)
}

func (s *Server) revokeToken(c echo.Context) error {
	if err := s.admin(c); err != nil {
		return err
	}
	id := c.Param("id")
	err := s.cfg.Tokens.Revoke(c.Request().Context(), id)
	if err != nil && calls.ErrorCode(err) == calls.CodeInvalidRequest {
		return err
	}
	s.cfg.Hub.closeToken(id) // revoked in this process even when saving failed
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// refreshToken answers a new token for the bearer token's identity, display
// name and role, as long-lived as the old one was given.
func (s *Server) refreshToken(c echo.Context) error {
	token := bearer(c.Request())
	if token == "" {
		return calls.Errorf(calls.CodeUnauthorized, "refreshing a token needs that token as the bearer token")
	}
	var minted Minted
	err := s.limitFailures(c, "token", func() error {
		var err error
		minted, err = s.cfg.Tokens.Refresh(token)
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, minted)
}

func (s *Server) me(c echo.Context) error {
	sess := sessionOf(c)
	return c.JSON(http.StatusOK, map[string]any{
		"identity": sess.Identifier, "rawId": sess.Identifier.RawID(), "displayName": sess.DisplayName,
		"role": sess.Role, "expiresAt": sess.ExpiresAt,
	})
}

func (s *Server) startCall(c echo.Context) error {
	body, err := peekBody(c)
	if err != nil {
		return err
	}
	if hasQueue(body) {
		return s.queueCall(c, body)
	}
	var req calls.StartCallRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	call, err := s.cfg.Switchboard.StartCall(c.Request().Context(), sessionOf(c).Principal, req)
	if err != nil {
		return err
	}
	return writeCall(c, http.StatusCreated, &call)
}

func (s *Server) joinCall(c echo.Context) error {
	var req calls.JoinRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	call, err := s.cfg.Switchboard.JoinCall(c.Request().Context(), sessionOf(c).Principal, req)
	if err != nil {
		return err
	}
	return writeCall(c, http.StatusCreated, &call)
}

func (s *Server) listCalls(c echo.Context) error {
	q, err := queryParams(c)
	if err != nil {
		return err
	}
	p := sessionOf(c).Principal
	list, err := s.cfg.Switchboard.ListCalls(c.Request().Context(), p, q.Get("agent"))
	if err != nil {
		return err
	}
	if q.Get("agent") == "" && p.Role == calls.RoleSupervisor && s.cfg.Peers != nil {
		list = s.withPeersCalls(c.Request().Context(), list)
	}
	return c.JSON(http.StatusOK, list)
}

// withPeersCalls adds the other nodes' live calls to a supervisor's list of
// every call, as a supervisor's snapshot has them (Peers.Snapshots), each
// call once.
func (s *Server) withPeersCalls(ctx context.Context, list []calls.Call) []calls.Call {
	snaps, release := s.cfg.Peers.Snapshots(ctx)
	release()
	seen := make(map[string]bool, len(list))
	for _, call := range list {
		seen[call.ID] = true
	}
	for _, snap := range snaps {
		for _, call := range snap.Calls {
			if !seen[call.ID] {
				seen[call.ID] = true
				list = append(list, call)
			}
		}
	}
	return list
}

func (s *Server) getCall(c echo.Context) error {
	return s.callAction(s.cfg.Switchboard.GetCall)(c)
}

func (s *Server) listIncoming(c echo.Context) error {
	list, err := s.cfg.Switchboard.ListIncoming(c.Request().Context(), sessionOf(c).Principal)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

type callFunc func(ctx context.Context, p calls.Principal, id string) (calls.Call, error)

// callAction is a route that names a call and answers it after the change.
func (s *Server) callAction(do callFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		call, err := do(c.Request().Context(), sessionOf(c).Principal, id)
		if err != nil {
			return err
		}
		return writeCall(c, http.StatusOK, &call)
	}
}

type muteFunc func(ctx context.Context, p calls.Principal, id string, muted bool) (calls.Call, error)

func (s *Server) muteAction(do muteFunc, muted bool) echo.HandlerFunc {
	return s.callAction(func(ctx context.Context, p calls.Principal, id string) (calls.Call, error) {
		return do(ctx, p, id, muted)
	})
}

// DTMFRequest is the body of POST /api/calls/{id}/dtmf.
type DTMFRequest struct {
	Tones string `json:"tones"`
}

// sendDTMF sends DTMF tones on the agent's active call.
func (s *Server) sendDTMF(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var req DTMFRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	call, err := s.cfg.Switchboard.SendDTMF(c.Request().Context(), sessionOf(c).Principal, id, req.Tones)
	if err != nil {
		return err
	}
	return writeCall(c, http.StatusOK, &call)
}

func (s *Server) addParticipant(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var req calls.AddParticipantRequest
	if err := decode(c, &req, false); err != nil {
		return err
	}
	p, err := s.cfg.Switchboard.AddParticipant(c.Request().Context(), sessionOf(c).Principal, id, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, p)
}

// participantAction is a route that names a call and one of its
// participants.
func (s *Server) participantAction(c echo.Context, do func(ctx context.Context, p calls.Principal, id, raw string) (calls.Participant, error)) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	raw, err := pathParam(c, "rawId")
	if err != nil {
		return err
	}
	p, err := do(c.Request().Context(), sessionOf(c).Principal, id, raw)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) removeParticipant(c echo.Context) error {
	return s.participantAction(c, s.cfg.Switchboard.RemoveParticipant)
}

func (s *Server) muteParticipant(c echo.Context) error {
	return s.participantAction(c, s.cfg.Switchboard.MuteParticipant)
}

func (s *Server) hangUp(c echo.Context) error {
	var req struct {
		ForEveryone bool `json:"forEveryone"`
	}
	if err := decode(c, &req, true); err != nil {
		return err
	}
	return s.callAction(func(ctx context.Context, p calls.Principal, id string) (calls.Call, error) {
		return s.cfg.Switchboard.HangUp(ctx, p, id, req.ForEveryone)
	})(c)
}

func (s *Server) history(c echo.Context) error {
	f, err := parseFilter(c)
	if err != nil {
		return err
	}
	page, err := s.cfg.Switchboard.History(c.Request().Context(), sessionOf(c).Principal, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// identifierParams are the query parameters that hold a rawId.
var identifierParams = map[string]bool{"agent": true, "participant": true}

// queryParams parses the query string strictly: a malformed escape is a
// 400 naming its parameter (invalid_identifier for one that holds a rawId),
// where url.ParseQuery, and so echo, would drop the parameter and answer as
// if it had not been given.
func queryParams(c echo.Context) (url.Values, error) {
	q := url.Values{}
	for rest := c.Request().URL.RawQuery; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, calls.Errorf(calls.CodeInvalidRequest, "malformed query parameter %q", rawKey)
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			code := calls.CodeInvalidRequest
			if identifierParams[key] {
				code = calls.CodeInvalidIdentifier
			}
			return nil, calls.Errorf(code, "%s: malformed escape in %q", key, rawValue)
		}
		q.Add(key, value)
	}
	return q, nil
}

// parseFilter reads the history query parameters.
func parseFilter(c echo.Context) (calls.CallFilter, error) {
	q, err := queryParams(c)
	if err != nil {
		return calls.CallFilter{}, err
	}
	f := calls.CallFilter{
		AgentID: q.Get("agent"), Direction: calls.Direction(q.Get("direction")),
		Participant: q.Get("participant"), Cursor: q.Get("cursor"), WrapUpCode: q.Get("wrapUpCode"),
		Queue: q.Get("queue"),
	}
	if _, ok := q["queue"]; ok {
		if err := queue.ValidateName(f.Queue); err != nil {
			return f, err
		}
	}
	for _, tf := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(tf.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, calls.Errorf(calls.CodeInvalidRequest, "%s must be an RFC 3339 time", tf.name)
			}
			*tf.dst = t
		}
	}
	if v := q.Get("endCode"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil {
			return f, calls.Errorf(calls.CodeInvalidRequest, "endCode must be a number")
		}
		f.EndCode = &code
	}
	if v := q.Get("endSubCode"); v != "" {
		sub, err := strconv.Atoi(v)
		if err != nil {
			return f, calls.Errorf(calls.CodeInvalidRequest, "endSubCode must be a number")
		}
		f.EndSubCode = &sub
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, calls.Errorf(calls.CodeInvalidRequest, "limit must be a positive number")
		}
		f.Limit = n
	}
	return f, nil
}

func (s *Server) historyCall(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	h, err := s.cfg.Switchboard.HistoryCall(c.Request().Context(), sessionOf(c).Principal, id)
	if err != nil {
		return err
	}
	withRecs, err := s.withRecordings(c.Request().Context(), h)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withRecs)
}
