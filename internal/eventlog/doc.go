// Package eventlog is an append-only log of events per identity on one
// NATS JetStream stream, kept for a retention window (MaxAge, 10 minutes
// by default). It is a building block of the cluster (issue 14): what an
// event means is the caller's business; this package only orders, keeps,
// replays and follows them.
//
// Each identity's events go to the subject <prefix>.<identity encoded with
// base64url without padding> (sb.events.… by default; identities contain
// characters subjects forbid). Each carries its per-identity sequence in
// the Sb-Seq header: n, n+1, n+2, … with no gaps and no repeats (see
// Runs), because every append is published with Nats-Expected-Last-Subject-Sequence set to the
// stream sequence of the identity's previous event. When another writer
// got there first the stream refuses it ("wrong last sequence"); Append
// then rereads the identity's last event and tries again. An append given
// a message id (WithMsgID, sent as Nats-Msg-Id) is deduplicated by the
// stream within its duplicate window, so a retried append (after a lost
// acknowledgement, say) answers the first one's sequence and writes
// nothing new.
//
// Since replays an identity's events after a sequence and answers ErrGone
// when the retention window no longer holds all of them; Follow delivers
// new events (one identity's or all) through an ordered consumer.
//
// Runs. When an identity has no event left in the stream (a new identity,
// or every event aged out), its next event starts a new run: its Sb-Seq is
// the stream's last sequence + 1, not 1, and it carries Sb-Run-Start. Every
// earlier event of the identity had an Sb-Seq no greater than its own
// stream sequence, so sequences only ever grow, and a reader's cursor from
// an expired run can never be mistaken for a place in the new one: Since
// answers ErrGone for it. Within a run the sequence has no gaps.
//
// Feed is the other shape: one subject, one order for every reader,
// numbered by the stream's own sequence (no per-identity sequence), for
// events every node must number the same (the supervisors').
// AppendAfter appends to an identity only while a given event is still
// her last, without retrying.
//
// It must not: interpret payloads, or hold events itself (the stream does).
package eventlog
