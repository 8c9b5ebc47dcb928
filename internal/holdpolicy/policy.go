// Package holdpolicy is the single-active-call rule: given one agent's calls
// and an action, it plans which of those calls the agent puts on hold or
// takes off hold, so that at most one call of the agent is ever Connected.
//
// It is pure: no I/O, no goroutines, no clock, no knowledge of HTTP, media or
// storage. The domain (package calls) asks it for a plan under the agent's
// lock and applies the plan in the same step.
//
// The rule, as the Calling SDK sets it:
//
//   - Starting, joining, accepting or resuming a call holds the agent's
//     Connected call first, in the same step.
//   - A call becomes Connected only when nobody holds it any more: the agent
//     (LocalHold) and, in a 1:1 call, the other side (RemoteHold).
//   - When a call becomes Connected without the agent acting (the callee
//     answered, the other side resumed) while another call of the agent is
//     Connected, the agent holds it (LocalHold): the agent's own choice of
//     active call is never overridden from outside.
//   - When the active call ends nothing resumes by itself, unless the agent's
//     Options say ResumeLastHeld.
package holdpolicy

import (
	"errors"
	"fmt"
)

// State is a call's state as far as the rule is concerned.
type State int

// The states the rule distinguishes.
const (
	Pending    State = iota // not yet answered or joined: connecting or ringing
	Connected               // live and held by nobody: the active call
	LocalHold               // live and held by the agent
	RemoteHold              // live, not held by the agent, held by the other side
	Ended
)

func (s State) String() string {
	switch s {
	case Pending:
		return "Pending"
	case Connected:
		return "Connected"
	case LocalHold:
		return "LocalHold"
	case RemoteHold:
		return "RemoteHold"
	case Ended:
		return "Ended"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Call is what the rule knows of one of an agent's calls.
type Call struct {
	ID string
	// Live is true once the call was answered or joined.
	Live bool
	// Ended is true once the agent's side of the call is over.
	Ended bool
	// HeldByAgent is true while the agent holds the call.
	HeldByAgent bool
	// HeldByRemote is true while someone else's hold keeps the call from
	// being Connected (the other side of a 1:1 call).
	HeldByRemote bool
	// HeldSeq orders the agent's holds: a larger value was held later.
	HeldSeq uint64
}

// State derives the call's state from its flags.
func (c Call) State() State {
	switch {
	case c.Ended:
		return Ended
	case !c.Live:
		return Pending
	case c.HeldByAgent:
		return LocalHold
	case c.HeldByRemote:
		return RemoteHold
	}
	return Connected
}

// Action is something that happens to one of the agent's calls.
type Action int

// The actions the rule plans for.
const (
	// Start: the agent placed the call (it is Pending).
	Start Action = iota
	// Join: the agent joins a group call or a room (it is Pending until joined).
	Join
	// Accept: the agent accepts a ringing incoming call (Pending).
	Accept
	// Resume: the agent takes its hold off the call.
	Resume
	// Hold: the agent holds the call.
	Hold
	// RemoteLive: the call became Connected without the agent acting (the
	// callee answered, the other side resumed). Planned after the change.
	RemoteLive
	// End: the agent's side of the call ended. Planned before the change.
	End
)

func (a Action) String() string {
	switch a {
	case Start:
		return "start"
	case Join:
		return "join"
	case Accept:
		return "accept"
	case Resume:
		return "resume"
	case Hold:
		return "hold"
	case RemoteLive:
		return "remote-live"
	case End:
		return "end"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Options are an agent's preferences for the rule.
type Options struct {
	// ResumeLastHeld resumes the most recently held call when the active
	// call ends. Off by default: nothing resumes by itself.
	ResumeLastHeld bool
}

// Transition is one change the plan asks for: the agent puts CallID on hold
// (Hold true) or takes its hold off (Hold false).
type Transition struct {
	CallID string
	Hold   bool
}

// Errors returned by Plan.
var (
	// ErrUnknownCall: the call is not among the agent's calls.
	ErrUnknownCall = errors.New("holdpolicy: unknown call")
	// ErrInvalidState: the call's state forbids the action.
	ErrInvalidState = errors.New("holdpolicy: invalid state")
)

// Plan returns the transitions that apply action to call id among the
// agent's calls, in the order they must be applied. The target's own change
// of phase (Pending to live, live to ended) is the caller's to make; Plan
// only decides holds. It never returns a plan that leaves the agent with two
// Connected calls, provided the agent had at most one before.
func Plan(calls []Call, action Action, id string, opt Options) ([]Transition, error) {
	target, ok := find(calls, id)
	if !ok {
		return nil, fmt.Errorf("%s %q: %w", action, id, ErrUnknownCall)
	}
	state := target.State()
	invalid := func() ([]Transition, error) {
		return nil, fmt.Errorf("%s %q in state %s: %w", action, id, state, ErrInvalidState)
	}

	switch action {
	case Start, Join, Accept:
		if state != Pending {
			return invalid()
		}
		return holdOthers(calls, id, nil), nil

	case Resume:
		if state != LocalHold {
			return invalid()
		}
		return holdOthers(calls, id, []Transition{{CallID: id, Hold: false}}), nil

	case Hold:
		if state != Connected && state != RemoteHold {
			return invalid()
		}
		return []Transition{{CallID: id, Hold: true}}, nil

	case RemoteLive:
		if state != Connected {
			return invalid()
		}
		for _, c := range calls {
			if c.ID != id && c.State() == Connected {
				return []Transition{{CallID: id, Hold: true}}, nil
			}
		}
		return nil, nil

	case End:
		if state == Ended {
			return invalid()
		}
		if state != Connected || !opt.ResumeLastHeld {
			return nil, nil
		}
		last, ok := lastHeld(calls, id)
		if !ok {
			return nil, nil
		}
		return []Transition{{CallID: last.ID, Hold: false}}, nil
	}
	return nil, fmt.Errorf("holdpolicy: unknown action %d", int(action))
}

// holdOthers appends a hold for every Connected call other than id, placed
// before the target's own transitions so no observer sees two Connected.
func holdOthers(calls []Call, id string, then []Transition) []Transition {
	var plan []Transition
	for _, c := range calls {
		if c.ID != id && c.State() == Connected {
			plan = append(plan, Transition{CallID: c.ID, Hold: true})
		}
	}
	return append(plan, then...)
}

func find(calls []Call, id string) (Call, bool) {
	for _, c := range calls {
		if c.ID == id {
			return c, true
		}
	}
	return Call{}, false
}

// lastHeld is the call, other than except, that the agent held most recently.
func lastHeld(calls []Call, except string) (Call, bool) {
	var best Call
	found := false
	for _, c := range calls {
		if c.ID == except || c.State() != LocalHold {
			continue
		}
		if !found || c.HeldSeq > best.HeldSeq {
			best, found = c, true
		}
	}
	return best, found
}
