// Package queue is Switchboard's contact-center queues: their definitions
// (members with skills, a strategy, timeouts), the routing decision (which
// agent a waiting call is offered to next), the offer cycle (one offer at a
// time, a ring timeout moves on, repeated misses are reported, a maximum
// wait overflows or ends the call with a recorded reason) and the stats
// (waiting, longest wait, answered, abandoned, service level).
//
// The decision is pure (Pick, Cycle): it reads a snapshot of the members
// and answers, so it is table-tested without a clock or a network. What
// an agent's availability is belongs to agent status: this package asks
// it through the Availability seam, which calls.Switchboard implements
// (WithStatus wires it, with Away after misses and wrap-up after a queue
// call). Tracker, an in-memory Availability fed by the engine, serves
// this package's own tests and benchmarks.
//
// Definitions and waiting calls are kept behind Store: Memory on one node,
// JetStream (a key-value bucket) on a cluster, so that a queue survives a
// node and every node sees the same queues.
package queue
