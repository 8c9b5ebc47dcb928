package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// Codes only the HTTP layer gives.
const (
	codeMethodNotAllowed calls.Code = "method_not_allowed"
	codePayloadTooLarge  calls.Code = "payload_too_large"
)

// statusOf is the one place error codes become HTTP statuses.
var statusOf = map[calls.Code]int{
	calls.CodeInvalidRequest:                   http.StatusBadRequest,
	calls.CodeInvalidIdentifier:                http.StatusBadRequest,
	calls.CodeInvalidPhoneNumber:               http.StatusBadRequest,
	calls.CodeInvalidGroupID:                   http.StatusBadRequest,
	calls.CodeAlternateCallerIDRequired:        http.StatusBadRequest,
	calls.CodeUnauthorized:                     http.StatusUnauthorized,
	calls.CodeForbidden:                        http.StatusForbidden,
	calls.CodeOperationNotSupportedForIdentity: http.StatusForbidden,
	calls.CodeCallNotFound:                     http.StatusNotFound,
	calls.CodeParticipantNotFound:              http.StatusNotFound,
	calls.CodeNotFound:                         http.StatusNotFound,
	codeMethodNotAllowed:                       http.StatusMethodNotAllowed,
	codeRateLimited:                            http.StatusTooManyRequests,
	calls.CodeInvalidState:                     http.StatusConflict,
	calls.CodeNotSupportedInOneToOne:           http.StatusConflict,
	calls.CodeNotSupportedInRooms:              http.StatusConflict,
	codePayloadTooLarge:                        http.StatusRequestEntityTooLarge,
	codeTooManyConnections:                     http.StatusTooManyRequests,
	calls.CodeInternal:                         http.StatusInternalServerError,
	calls.CodeNotImplemented:                   http.StatusNotImplemented,
	calls.CodeUnavailable:                      http.StatusServiceUnavailable,
	calls.CodeDraining:                         http.StatusServiceUnavailable,
	codeWrongNode:                              http.StatusServiceUnavailable,
}

// errorBody is the contract's error format.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    calls.Code `json:"code"`
	Message string     `json:"message"`
}

// errorHandler answers every error in the contract's format, and is the
// one place internal errors are logged.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		if he, ok := errors.AsType[*echo.HTTPError](err); ok && he.Code == http.StatusMethodNotAllowed &&
			c.Path() == consoleRoute && isAPIPath(c.Request().URL.Path) {
			err = errNoRoute // not a method the console lacks: no route at all
		}
		code, msg := classify(err)
		status, ok := statusOf[code]
		if !ok {
			status = http.StatusInternalServerError
		}
		if code == calls.CodeInternal && !errors.Is(err, context.Canceled) {
			log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		if _, ok := errors.AsType[signInError](err); ok && answerSignInPage(c, status, code, msg) {
			return
		}
		_ = c.JSON(status, errorBody{Error: errorDetail{Code: code, Message: msg}})
	}
}

// classify finds the code and message for an error from the domain or
// from echo's router.
func classify(err error) (calls.Code, string) {
	if e, ok := errors.AsType[*calls.Error](err); ok {
		return e.Code, e.Message
	}
	if he, ok := errors.AsType[*echo.HTTPError](err); ok {
		switch he.Code {
		case http.StatusNotFound:
			return calls.CodeNotFound, "no such route"
		case http.StatusMethodNotAllowed:
			return codeMethodNotAllowed, "method not allowed on this route"
		case http.StatusRequestEntityTooLarge:
			return codePayloadTooLarge, "the request body is too large"
		case http.StatusUnauthorized:
			return calls.CodeUnauthorized, "missing or invalid token"
		case http.StatusBadRequest:
			return calls.CodeInvalidRequest, "malformed request"
		}
	}
	return calls.CodeInternal, "internal error"
}
