// Package cluster joins a switchboard node to the others (issue 14): one
// NATS connection, the identity leases on it (package lease), and the
// forwarding of HTTP requests to the node that owns their identity over
// NATS request/reply.
//
// A Node answers Owner(identity): "" when this node handles the identity's
// requests (it holds the lease, or just acquired it because no node did),
// else the owning node's id (remembered for a third of the lease's life;
// Forget drops it when a forward shows it stale). Forward sends a Request to a node's subject,
// SubjectPrefix.node.<id>.http, and waits for its Response; Serve answers
// the requests sent to this node's subject with a Handler (the HTTP API).
//
// Trust. A forwarded request carries the principal the entry node verified
// from the client's token, never the token: the owner trusts the principal
// because the message came through the cluster's NATS. Whoever may publish
// on the cluster's subjects can act as any identity, so NATS must be
// reachable only by the nodes (its own authorization, a private network).
// With Config.Secret set (serve derives it from the admin key, which every
// node shares), each request also carries an HMAC-SHA256 of its subject and
// data, and a node answers a request whose signature is missing or wrong
// with a refusal, never running it. There is no replay protection beyond
// NATS itself.
//
// Attachments. An event stream opened on a node that does not own its
// identity is attached on the owner: Attach sends an AttachRequest on
// SubjectPrefix.node.<owner>.attach (signed as a forwarded request is, and
// refused alike when it is not), the owner's AttachHandler (the API)
// counts the connection there and answers the snapshot, and the attaching
// node sends a keepalive every AttachKeepalive (1 s). The owner detaches
// an attachment on a detach, when no keepalive came for AttachExpiry
// (3 s: the attaching node died), and when it stops serving. The attaching
// node is told (Attach's lost callback) when the owner no longer holds it,
// stopped listening, got no keepalive for AttachExpiry, or the identity's
// lease is on another node.
//
// Failover. Each node also holds a node lease on its own id, in a second
// bucket (LeaseBucket + "_nodes", so that watching the nodes does not mean
// watching every identity), and every node watches that bucket. When
// another node's node lease expires (it was killed, or lost NATS for a
// whole TTL), each surviving node calls Config.Recover (the store's
// RecoverNode, idempotent: several survivors racing end each call once),
// retrying while the store is out of reach, until the node's lease
// reappears (it restarted, and its start ended its calls, or it was
// fenced and still runs them); a released node lease (a graceful stop,
// whose calls were ended by their node) is left alone.
// The dead node's identity leases lapse within the same TTL, and its
// agents' next requests, on any node, acquire them there. A node that
// died before any running node saw its lease is not recovered here: its
// own next start ends its calls (RecoverCrashed).
//
// Fencing. A node whose own node lease is lost while it runs (a partition
// from NATS or a stall longer than the TTL) may have been taken for dead:
// its calls may already be ended in the history. Unless its own heartbeat
// is fresh (then no node ends its calls), it logs an error, calls
// Config.OnFenced (serve drains: no new calls, /readyz 503) and takes its
// node lease again so that it is not recovered twice. Once it holds the
// lease, it calls Config.OnUnfenced, and serve takes new calls again when
// that is safe (cmd/switchboard, Main.unfence). A NATS outage longer than
// the TTL, with the store out of reach too, fences every node alike.
//
// It must not: know HTTP routes or the domain's rules (the Handler does),
// decide which identity a request belongs to (the API does), or decide
// how a dead node's calls end (Recover does).
package cluster
