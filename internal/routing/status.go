package routing

import (
	"errors"
	"fmt"
	"time"
)

// Status is an agent's status as the contact center sees it.
type Status string

// The statuses. Available, Away and WrapUp are chosen (by the agent, a
// supervisor, or the system after a call); Busy and Offline are derived:
// Busy while the agent has a call in progress, Offline while she has no
// event connection.
const (
	Available Status = "Available"
	Away      Status = "Away"
	WrapUp    Status = "WrapUp"
	Busy      Status = "Busy"
	Offline   Status = "Offline"
)

// Wrap-up durations: DefaultWrapUp when a person enters WrapUp without
// saying for how long, at most MaxWrapUp.
const (
	DefaultWrapUp = 60 * time.Second
	MaxWrapUp     = time.Hour
)

// Errors of the rules; the domain maps them to its invalid_request.
var (
	ErrUnknownStatus = errors.New("unknown status")
	ErrDerived       = errors.New("status is derived, not chosen")
	ErrWrapUpTime    = errors.New("wrap-up time out of range")
)

// Parse reads a status as the API spells it (exactly).
func Parse(s string) (Status, error) {
	switch st := Status(s); st {
	case Available, Away, WrapUp, Busy, Offline:
		return st, nil
	}
	return "", fmt.Errorf("%w %q: one of Available, Away, WrapUp (Busy and Offline are derived)", ErrUnknownStatus, s)
}

// Chosen reports whether a person may set the status (Available, Away,
// WrapUp).
func (s Status) Chosen() bool { return s == Available || s == Away || s == WrapUp }

// State is one agent's chosen status: what she, a supervisor or the
// system set last. The zero State is Available since the zero time.
type State struct {
	Status Status    // Available, Away or WrapUp; "" is Available
	Since  time.Time // when it was set
	// By is the rawId of who set it; "" for the system (a wrap-up that
	// ended, a queue).
	By string
	// WrapUpUntil is when a WrapUp ends (becomes Available); zero
	// otherwise.
	WrapUpUntil time.Time
	// WrapUpCallID is the call the wrap-up follows, when known.
	WrapUpCallID string
}

// Chosen is the state's status, Available for the zero State.
func (st State) Chosen() Status {
	if st.Status == "" {
		return Available
	}
	return st.Status
}

// Set is the state after a person (by) chose to at now. WrapUp lasts
// wrapUp (0: DefaultWrapUp; at most MaxWrapUp); callID, for WrapUp only,
// names the call it follows. Errors: ErrUnknownStatus, ErrDerived (Busy,
// Offline), ErrWrapUpTime.
func Set(st State, to Status, by string, now time.Time, wrapUp time.Duration, callID string) (State, error) {
	if _, err := Parse(string(to)); err != nil {
		return st, err
	}
	if !to.Chosen() {
		return st, fmt.Errorf("%w: %s is derived (Busy while a call is in progress, Offline without an event connection)", ErrDerived, to)
	}
	if to != WrapUp {
		return State{Status: to, Since: now, By: by}, nil
	}
	if wrapUp == 0 {
		wrapUp = DefaultWrapUp
	}
	if wrapUp < time.Second || wrapUp > MaxWrapUp {
		return st, fmt.Errorf("%w: %v; give 1 to %d seconds", ErrWrapUpTime, wrapUp, int(MaxWrapUp/time.Second))
	}
	return State{Status: WrapUp, Since: now, By: by, WrapUpUntil: now.Add(wrapUp), WrapUpCallID: callID}, nil
}

// EnterWrapUp is the state after a queue call callID ended at now, the
// queue asking for seconds of wrap-up (its wrapUpSeconds): WrapUp until
// then, set by the system. seconds 0 leaves the state as it is (the
// agent is Available again at once unless she chose otherwise); an Away
// agent stays Away. Errors: ErrWrapUpTime (seconds below 0 or above
// MaxWrapUp).
func EnterWrapUp(st State, callID string, seconds int, now time.Time) (State, error) {
	d := time.Duration(seconds) * time.Second
	if seconds < 0 || d > MaxWrapUp {
		return st, fmt.Errorf("%w: %d seconds; give 0 to %d", ErrWrapUpTime, seconds, int(MaxWrapUp/time.Second))
	}
	if seconds == 0 || st.Chosen() == Away {
		return st, nil
	}
	return State{Status: WrapUp, Since: now, WrapUpUntil: now.Add(d), WrapUpCallID: callID}, nil
}

// Expire is the state at now: a WrapUp whose time is up is Available
// again, set by the system at the wrap-up's end. It reports whether it
// changed the state.
func Expire(st State, now time.Time) (State, bool) {
	if st.Chosen() != WrapUp || now.Before(st.WrapUpUntil) {
		return st, false
	}
	return State{Status: Available, Since: st.WrapUpUntil}, true
}

// Effective is what dashboards show: Offline without an event
// connection, Busy with a call in progress, else the chosen status.
func Effective(st State, connected, inCall bool) Status {
	switch {
	case !connected:
		return Offline
	case inCall:
		return Busy
	}
	return st.Chosen()
}

// Restore is the state an agent starts with after a restart, from the
// last status she chose before it (last, set at since by by): Away stays
// Away; anything else, a WrapUp whose timer was lost with the process
// included, is Available, set by the system at now.
func Restore(last Status, since time.Time, by string, now time.Time) State {
	if last == Away {
		return State{Status: Away, Since: since, By: by}
	}
	return State{Status: Available, Since: now}
}
