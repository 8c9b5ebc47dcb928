package calls

import (
	"context"
	"time"
)

// Publisher delivers events to whoever watches them (the websocket hub).
type Publisher interface {
	// Publish hands over one event. The switchboard calls it while it holds
	// the live state, so events arrive in the order their changes
	// happened. It must not block (it delays every operation): a watcher that cannot keep up is dropped, never waited for.
	Publish(ev Event)
}

// Record is what the store keeps of one change to one call: the call as it
// stands after the change and the events that led there.
type Record struct {
	Call   Call
	Events []Event
}

// CallFilter selects calls from history. Zero fields do not filter.
type CallFilter struct {
	AgentID     string    // the call's agent (rawId)
	From, To    time.Time // startTime in [From, To)
	Direction   Direction // Incoming or Outgoing
	EndCode     *int      // callEndReason.code
	EndSubCode  *int      // callEndReason.subCode (0/4097 ended for everyone, 0/5300 removed)
	Participant string    // a remote participant's rawId
	WrapUpCode  string    // the wrap-up code the agent gave the call
	Queue       string    // a queue the call went through (CallQueueLog)
	Limit       int       // 1 to MaxHistoryLimit; 0 means DefaultHistoryLimit
	Cursor      string    // opaque, from CallPage.NextCursor
}

// History page sizes.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 500
)

// CallPage is one page of history, newest first.
type CallPage struct {
	Items      []Call `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// TimelineEntry is one event of a call's history.
type TimelineEntry struct {
	Type  EventType `json:"type"`
	At    time.Time `json:"at"`
	Actor *Actor    `json:"actor,omitempty"`
	Data  any       `json:"data"`
}

// CallHistory is one call with its participants and its event timeline.
type CallHistory struct {
	Call     Call            `json:"call"`
	Timeline []TimelineEntry `json:"timeline"`
}

// RevokedToken is a revoked token's id and the time it would have expired,
// after which its revocation need not be kept.
type RevokedToken struct {
	ID        string
	ExpiresAt time.Time
}

// TokenRevocations keeps the revoked tokens, so that a revoked token stays
// revoked across a restart.
type TokenRevocations interface {
	// RevokeToken keeps the revocation of the token with this id until
	// expiresAt. It has been written when it returns (a store that keeps
	// history for good keeps it for good); revoking an id again keeps the
	// later expiry. A store that cannot write now answers an error (an
	// *Error with CodeUnavailable, or one that wraps the context's error
	// when ctx ended), and the caller may retry.
	RevokeToken(ctx context.Context, id string, expiresAt time.Time) error
	// FindRevokedTokens answers every revocation whose expiresAt is after
	// now, in no particular order; never nil on success. Revocations that
	// have expired may be forgotten at any time. Errors as RevokeToken's.
	FindRevokedTokens(ctx context.Context, now time.Time) ([]RevokedToken, error)
}

// Store keeps history and token revocations. The memory store keeps them
// in memory; the SQLite store (the default) and the Postgres store keep
// them for good. All pass one test suite.
type Store interface {
	TokenRevocations

	// Record queues changes for writing. The switchboard calls it while it
	// holds the live state, so records arrive in the order of the changes.
	// It must not block on I/O. The store may keep the
	// records it is given until they are written; the switchboard does not
	// change them afterwards. History is eventually consistent: a record
	// queued but not yet written may be missing from the queries below.
	Record(recs ...Record)
	// Durable returns once every change recorded before it would survive
	// the process being killed at once (in the store's journal or file on
	// disk), or with an error when ctx ends first or the store cannot
	// keep them. The API acknowledges a change only after it.
	Durable(ctx context.Context) error
	// FindCalls answers a page of history, newest first. A malformed
	// cursor is an *Error with CodeInvalidRequest.
	FindCalls(ctx context.Context, f CallFilter) (CallPage, error)
	// FindCallByID answers one call with its timeline, or an *Error with
	// CodeCallNotFound.
	FindCallByID(ctx context.Context, id string) (CallHistory, error)
	// Ready answers nil when the store can take and serve history now.
	Ready(ctx context.Context) error
	// Close writes what is queued and releases the store.
	Close(ctx context.Context) error
}

// MediaMember is one identity's part in a conversation's audio.
type MediaMember struct {
	RawID  string // the identity, whose audio endpoint the media plane knows
	CallID string // its call (its view of the conversation)
	// Send: its microphone reaches the others (live, the identity's
	// active call, not muted).
	Send bool
	// Receive: it hears the others (its active call, incoming audio not
	// muted).
	Receive bool
	// Held: it put the call on hold; in a 1:1 call the other side hears
	// the hold tone.
	Held bool
	// OwnEndpoint: the call has an audio endpoint of its own, attached
	// under CallID rather than RawID. A call with the phone network is
	// one: two calls from one number are two phones, not one identity's
	// two calls.
	OwnEndpoint bool
	// Audience, when not nil, is the calls (CallID) of the members who
	// hear this one when it sends: a supervisor who whispers is heard by
	// the agent's call alone. Nil: every member hears it. (Send still
	// decides whether it is heard at all.)
	Audience []string
}

// Route is how audio flows in one conversation after a change.
type Route struct {
	ServerCallID string
	Kind         Kind
	Members      []MediaMember // empty: the conversation is over
}

// Media is the media plane: it carries audio as the routes say.
type Media interface {
	// SetRoute hands over a conversation's new routing. Called while the
	// switchboard holds the live state, in order; it must not block.
	SetRoute(r Route)
}

// Timer is a pending call of a Clock's AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not run; it reports whether it did.
	Stop() bool
}

// Clock tells the time and runs functions later; tests inject a fake.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
