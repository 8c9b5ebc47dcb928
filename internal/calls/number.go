package calls

import (
	"context"
	"unicode"
)

// NumberRoute says where calls from the phone network to one phone number
// go: to an identity (Target) or into a queue (Queue), exactly one of them.
// PUT /api/numbers/{e164} sets it; an INVITE to a number without one is
// answered 404.
type NumberRoute struct {
	// Number is the routed phone number, E.164.
	Number string      `json:"number"`
	Target *Identifier `json:"target,omitempty"`
	Queue  string      `json:"queue,omitempty"`
}

// maxQueueNameLen bounds a queue's name.
const maxQueueNameLen = 128

// ValidatePhoneNumber checks that number is E.164 (+ then 2 to 15 digits,
// the first not 0); it answers an *Error with CodeInvalidPhoneNumber.
func ValidatePhoneNumber(number string) error {
	return PhoneNumber(number).Validate()
}

// Validate checks the route: an E.164 number (invalid_phone_number), and
// exactly one of a valid target identifier (invalid_identifier,
// invalid_phone_number) and a queue name of printable text without spaces
// (invalid_request).
func (r NumberRoute) Validate() error {
	if err := ValidatePhoneNumber(r.Number); err != nil {
		return err
	}
	switch {
	case (r.Target == nil) == (r.Queue == ""):
		return Errorf(CodeInvalidRequest, "a number route needs exactly one of target and queue")
	case r.Target != nil:
		if err := r.Target.Validate(); err != nil {
			return err
		}
		if r.Target.RawID() == PhoneNumber(r.Number).RawID() {
			return Errorf(CodeInvalidRequest, "a number cannot be routed to itself")
		}
		return nil
	}
	if len(r.Queue) > maxQueueNameLen {
		return Errorf(CodeInvalidRequest, "the queue name is longer than %d bytes", maxQueueNameLen)
	}
	for _, c := range r.Queue {
		if unicode.IsSpace(c) || !unicode.IsPrint(c) || c == '/' {
			return Errorf(CodeInvalidRequest, "the queue name %q has a space, a / or an unprintable character", r.Queue)
		}
	}
	return nil
}

// NumberRoutes keeps the routes of phone numbers. Every store implements
// it (memory, SQLite, Postgres) and passes the shared suite; a route is
// written when the method returns and survives a restart on the stores
// that keep history for good. Errors: a closed or unreachable store
// CodeUnavailable; an ended ctx wraps its error.
type NumberRoutes interface {
	// PutNumberRoute sets the route of r.Number, replacing the one it had.
	// The caller validates r.
	PutNumberRoute(ctx context.Context, r NumberRoute) error
	// FindNumberRoute answers the route of one number, or an *Error with
	// CodeNotFound.
	FindNumberRoute(ctx context.Context, number string) (NumberRoute, error)
	// FindNumberRoutes answers every route, by number; never nil on
	// success.
	FindNumberRoutes(ctx context.Context) ([]NumberRoute, error)
	// DeleteNumberRoute removes the route of one number, or answers an
	// *Error with CodeNotFound when it has none.
	DeleteNumberRoute(ctx context.Context, number string) error
}

// ErrNumberNotRouted is the error of a number without a route.
func ErrNumberNotRouted(number string) *Error {
	return Errorf(CodeNotFound, "the number %s is not routed", number)
}
