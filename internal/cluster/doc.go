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
// It must not: know HTTP routes or the domain's rules (the Handler does),
// decide which identity a request belongs to (the API does), or recover a
// dead node's calls (a later phase).
package cluster
