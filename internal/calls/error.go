package calls

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error code, as the API contract names them.
// Package api maps each code to an HTTP status in one table.
type Code string

// The error codes.
const (
	CodeInvalidRequest                   Code = "invalid_request"
	CodeInvalidIdentifier                Code = "invalid_identifier"
	CodeInvalidPhoneNumber               Code = "invalid_phone_number"
	CodeInvalidGroupID                   Code = "invalid_group_id"
	CodeAlternateCallerIDRequired        Code = "alternate_caller_id_required"
	CodeUnauthorized                     Code = "unauthorized"
	CodeForbidden                        Code = "forbidden"
	CodeOperationNotSupportedForIdentity Code = "operation_not_supported_for_identity"
	CodeCallNotFound                     Code = "call_not_found"
	CodeParticipantNotFound              Code = "participant_not_found"
	CodeNotFound                         Code = "not_found"
	CodeInvalidState                     Code = "invalid_state"
	CodeNotSupportedInOneToOne           Code = "not_supported_in_one_to_one"
	CodeNotSupportedInRooms              Code = "not_supported_in_rooms"
	CodeUnavailable                      Code = "unavailable"
	CodeDraining                         Code = "draining"
	CodeNotImplemented                   Code = "not_implemented"
	CodeInternal                         Code = "internal"
)

// Error is the domain's one error type: a code for machines, a message for
// people, the operation that failed and the error underneath, if any.
type Error struct {
	Code    Code
	Message string
	Op      string
	Err     error
}

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	msg := string(e.Code) + ": " + e.Message
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal when there is none.
func ErrorCode(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message that reveals nothing of an internal error.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// withOp names the operation on a domain error, keeping its code.
func withOp(op string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Op == "" {
		c := *e
		c.Op = op
		return &c
	}
	return fmt.Errorf("%s: %w", op, err)
}

func errCallNotFound(id string) *Error {
	return Errorf(CodeCallNotFound, "no call %q", id)
}
