// Package storetest is the test suite every calls.Store must pass: the
// embedded in-memory store now, the Postgres store later. Run it from the
// implementation's own tests:
//
//	func TestMemory(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) calls.Store { return store.NewMemory() })
//	}
//
// The suite is the executable form of the calls.Store contract, including
// what its doc comments leave implicit:
//
//   - Recording a call again replaces its view and appends the new events to
//     its timeline, in the order recorded, with their actors; but a call
//     that ended stays ended: a live view recorded after an ended one
//     (a dead node's journal replayed after another node ended its calls)
//     adds its events only.
//   - History is newest first: start time descending, then id descending
//     (bytewise, so a SQL store orders ids with the C collation).
//   - Filters combine with AND; From is inclusive, To exclusive; a call
//     without an end reason never matches an EndCode or EndSubCode filter.
//   - Pages follow a keyset cursor with no duplicates or gaps, even when
//     calls share a start time or newer calls arrive between pages;
//     NextCursor is empty on the last page, and Items is never nil.
//   - A malformed cursor is CodeInvalidRequest, an unknown call
//     CodeCallNotFound, a cancelled context an error that wraps
//     context.Canceled.
//   - Close may be called twice; Ready fails after it.
//   - Token revocations: FindRevokedTokens answers those expiring after
//     now (never nil), the later expiry when an id was revoked twice;
//     after Close both methods answer CodeUnavailable. A store that keeps
//     history for good also runs RunDurable: its revocations and its
//     history (with what was recorded just before Close) survive
//     reopening the store.
//
// The suite compares what it reads back through JSON (times in UTC, nil and
// empty slices alike), so a store that keeps calls and event data as JSON
// passes as well as one that keeps Go values. Its times have microsecond
// precision, as Postgres keeps them.
//
// A store whose Record only queues (a store that writes from its own
// goroutine) implements Flusher, which the suite calls after each Record to
// wait until the records can be read.
//
// The package imports testing and is meant for tests only.
package storetest
