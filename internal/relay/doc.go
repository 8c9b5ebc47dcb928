// Package relay carries each cluster node's events to the other nodes, so
// that a supervisor connected to any node sees every node's agents (issue
// 14).
//
// Publishing. Every event a node's hub publishes is appended, off the
// publisher's path, to the cluster's event log (internal/eventlog: one
// JetStream stream, a subject per identity) with the node's id in the
// Sb-Node header. A bounded queue per worker takes the events; workers
// are chosen by identity, so one identity's events keep their order. When
// a queue is full, or an append fails for AppendTimeout, the event is
// lost for the other nodes (counted and logged); this node's own
// connections have it already. Each event carries its worker's count of
// the events it was given (Sb-Relay-Count, dropped ones included), so a
// follower finds the gap and tells its Sink (LostRemote: the hub closes
// its supervisors' connections, which start over from a snapshot).
//
// Following. Each node follows the whole log (eventlog.Follow(All), an
// ordered consumer) and hands every other node's event to its Sink (the
// hub's DeliverRemote). The log, not a plain subject, carries the live
// events too: one publish per event serves both following and replay,
// and the ordered consumer resumes where it stopped after NATS comes
// back.
//
// Replay. Each event also carries its seq in its identity's stream on
// the node that published it (Sb-Hub-Seq, the seq that node's consoles
// see), so that another node numbers the identity's events the same way
// (Sink.DeliverRemote) and EventsSince reads them back by that seq from
// the log: a console that reconnects to any node with the last seq it saw
// gets exactly the events it missed, or ErrGone when the log does not hold
// them all without a gap.
//
// Supervisors (Config.Feed). Each supervised event is also published,
// after its append, on one feed every node follows (eventlog.Feed): its
// stream sequence is the seq every node's supervisors see, so a
// supervisor reconnecting to any node (a restarted one too) is replayed
// from it (SupervisedSince). The node's own supervised events reach its
// supervisors through the feed too. A supervised event lost on its way is
// followed by a loss marker on the feed (LostHeader): every node's
// supervisors start over, and no replay crosses it.
//
// New owners. A node that stops writes an end marker after each
// identity's last event it gave (EndRuns: EndHeader, only when that event
// is the log's last of hers); her next owner reads it (RunEnd) and
// continues her numbering, so EventsSince reads across the two.
//
// Snapshots. Every node answers requests on <prefix>.snapshot with its
// supervised snapshot. Snapshots publishes one request and gathers
// answers until none has come for Stall after the last one (or Timeout):
// the nodes are not counted, so a node slower than Stall is missing from
// that snapshot (its later events still arrive).
//
// It must not: decide what an event means (the hub does), or hold
// events itself.
package relay
