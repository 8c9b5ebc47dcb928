package callstest

import (
	"context"
	"sync"

	"github.com/switchboard/switchboard/internal/calls"
)

// Queues is a fake calls.Queues with the one queue "support": Check
// refuses any other name (not_found), Enter records each call it takes.
type Queues struct {
	Err      error // Enter's, when set
	CheckErr error // Check's for "support", when set

	mu      sync.Mutex
	entered []Entered
}

// Entered is one call Queues took, with its customer.
type Entered struct {
	Customer calls.Principal
	CallID   string
}

// Check implements calls.Queues.
func (q *Queues) Check(_ context.Context, name string) error {
	if name != "support" {
		return calls.Errorf(calls.CodeNotFound, "no such queue %q", name)
	}
	return q.CheckErr
}

// Enter implements calls.Queues.
func (q *Queues) Enter(_ context.Context, _ string, customer calls.Principal, callID string) error {
	if q.Err != nil {
		return q.Err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.entered = append(q.entered, Entered{Customer: customer, CallID: callID})
	return nil
}

// Last is the call entered last; zero when none was.
func (q *Queues) Last() Entered {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.entered) == 0 {
		return Entered{}
	}
	return q.entered[len(q.entered)-1]
}

// CallIDs are the calls entered, in order.
func (q *Queues) CallIDs() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, len(q.entered))
	for i, e := range q.entered {
		out[i] = e.CallID
	}
	return out
}
