// Package store keeps call history: the stores that implement calls.Store.
//
// It owns three implementations of one contract:
//
//   - SQLite, the embedded default: history lives in one SQLite file (pure
//     Go, modernc.org/sqlite) under the data directory and survives
//     restarts. Record only queues; one writer goroutine commits what is
//     queued, a batch per transaction (WAL, synchronous=NORMAL: a commit
//     survives the process being killed). RecoverCrashed ends, with 503,
//     the calls a crashed run left live. It needs nothing to run, so it is
//     what `serve` uses without DATABASE_URL.
//   - Memory: history lives in the process's memory and is lost when it
//     exits; for tests and benchmarks.
//   - Postgres, which keeps history for good. Record only queues; one
//     writer goroutine writes batches (staged with COPY, merged so that an
//     older view never overwrites a newer one, events keyed by the change
//     that made them so a retry or replay never doubles a row). While
//     Postgres is out of reach, changes wait in memory and then in an
//     fsynced, checksummed spool file of binary frames (spool_frame.go;
//     spools of the earlier JSON format are still read) that survives a
//     restart; Ready says how far behind the store is. RecoverCrashed
//     ends, with 503, the calls a crashed run left live. Several
//     switchboards may share a database as the nodes of a cluster, each
//     with its own node id (PostgresOptions.Node; "" for a single one):
//     each call records its node, each node keeps its own heartbeat row,
//     RecoverCrashed ends only the node's own calls, and RecoverNode lets
//     a surviving node end a dead node's, once however many survivors
//     try. Migrations (package migrations, goose) take an advisory lock.
//
// All keep token revocations (calls.TokenRevocations), so that a revoked
// token stays revoked across a restart: Memory in memory, SQLite and
// Postgres in a revoked_tokens table, written at once rather than queued, since
// DELETE /api/tokens/{id} answers only once the revocation is kept.
//
// History is eventually consistent with the calls: a change queued but not
// yet written (normally some milliseconds, longer during an outage) is not
// in FindCalls or FindCallByID yet.
//
// All must pass the one test suite in package storetest, which is the
// executable form of the calls.Store contract: latest view of a call wins
// (but an ended call stays ended),
// its timeline accumulates in the order it was recorded, history is newest
// first (start time, then id, descending) and pages through an opaque keyset
// cursor without duplicates or gaps.
//
// What the store must not do: decide what is allowed, change what it is
// given, publish events or call back into the domain. The rules live in
// package calls; a store only keeps what the switchboard hands it and answers
// queries. Record is called on the hot path of every call operation while
// the switchboard holds its locks, so it never blocks on I/O: a store that
// writes somewhere slow queues the change and writes it from its own
// goroutine, which Close waits for.
//
// Errors are *calls.Error values with the contract's codes
// (calls.CodeInvalidRequest for a malformed cursor, calls.CodeCallNotFound
// for an unknown call, calls.CodeUnavailable for a closed store); a
// cancelled context comes back wrapped, so errors.Is(err, context.Canceled)
// holds.
package store
