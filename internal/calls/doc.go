// Package calls is Switchboard's domain: identities and their calls,
// remote participants, states, hold and mute, end reasons, events, and the
// rules the Calling SDK sets for them. Switchboard is the service; its
// methods are the use cases the API exposes.
//
// Each identity's view of a conversation is a call of its own (a leg), with
// its own id, as each client of the Calling SDK has its own Call; the legs
// of one conversation share a serverCallId.
//
// The live state (identities, their calls, the conversations they share,
// rooms) has one owner: Switchboard.live, one mutex per Switchboard. Every
// operation is one transaction, in the same shape:
//
//	tx := s.begin(actor)   // take the live state; tx.now is the operation's time
//	defer tx.done()        // commit, release, run the follow-ups
//	pt, err := tx.identify(p)
//	l := s.legs[id]        // look up and check; an error changes nothing
//	tx.plan(l, action)     // package holdpolicy decides the holds; apply them
//	tx.goLive(l), tx.endLeg(l, …), tx.touch(c) then a field …
//	tx.settle(l)           // enforce the rule on calls that became Connected
//
// done hands the change to the store's queue, the event publisher, the
// phone lines and the media plane while the state is still held, so
// everyone sees changes in the order they happened and no observer sees
// two Connected calls of one identity; then it releases the state and runs
// tx.after (follow-ups that are operations of their own, such as resuming
// the call held last). Events are not written by hand: each operation
// records how the calls it touches looked before (touch, see), and the
// difference becomes the events, so the event stream and the state cannot
// disagree.
//
// Nothing waits under the live state: no I/O, no channel a slow reader can
// fill. The store only queues (the API awaits durability afterwards, with
// Store.Durable); the publisher, media plane and phone lines take a change
// and return; none may call back into the Switchboard from inside such a
// call (the mutex is not reentrant: report back from a goroutine, as
// package sip does). Timers and follow-ups begin operations of their own.
// An operation holds the state for microseconds, and holds all
// of it, so it may read and change any identity or conversation without
// planning which ones first. A new feature (queues, transfer, listen and
// whisper) is a new operation of this shape: more state owned by live, and
// rules as pure functions beside holdpolicy. One owner per node is also
// the shape a cluster needs, where every operation about an identity runs
// on the node that owns it.
//
// A party outside this switchboard is a leg with a line: a phone
// (phone.go, package sip) or, in a cluster, a stand-in for an identity
// another node owns (peer.go, package peercall). Its state is what the line
// reports; it takes no part in the single-active-call rule, which each
// identity's own node applies.
//
// Agent status (status.go) is state of the same owner: each agent's
// routing.State (the rules are package routing's), told as
// agentStatusChanged when what dashboards show changes (done looks at the
// parties whose calls changed: Busy), and handed to one writer goroutine
// that keeps the changes through the store's AgentStatusLog, in order and
// in batches, outside the live state; Close drains it.
//
// The package owns the rules and nothing else: it does no I/O of its own
// and imports only the standard library, holdpolicy and routing. Store, Publisher,
// Media and Clock are the ports its adapters implement (packages store,
// api and audio).
package calls
