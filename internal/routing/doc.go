// Package routing holds the rules of an agent's status in the contact
// center: the statuses (Available, Away, WrapUp, Busy, Offline), which of
// them a person may choose, how wrap-up starts and ends, and what a
// dashboard shows once the agent's connection and calls are taken into
// account.
//
// It is pure: functions of a State and the time, with no I/O, no clock,
// no goroutines and no locks. The owner of an agent's live state
// (calls.Switchboard, on the node that holds the agent's lease) keeps one
// State per agent, applies these functions under its lock, and sets the
// timer that Expire needs. Queues, when they come, enter wrap-up after a
// queue call through the owner with EnterWrapUp's rules.
//
// It must not import the domain (package calls) or any adapter.
package routing
