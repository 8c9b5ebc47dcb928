// Package lease gives one node at a time the ownership of an identity,
// through leases in a NATS JetStream key-value bucket. It is a building
// block of the cluster (issue 14): it decides nothing about calls, keeps no
// state of its own beyond the leases this node holds, and has no consensus
// code: the bucket's revision checks are the only arbiter.
//
// A lease is one key, the identity encoded with base64url without padding
// (identities contain ':' and other characters that KV keys forbid), whose
// value is the owning node's name, a newline and a random token drawn by
// each New (one per run of the node; a value with no newline is a bare
// node name), and with AcquireWith another newline and the caller's data
// (Lookup answers it: a room's conversation id). Acquire creates the key only when it is
// absent (KV Create, which expects revision 0); a renewer goroutine rewrites
// every held key each TTL/3 (up to 64 at once) with KV Update at the last
// revision it wrote, so a renewal fails the moment another node has
// written the key. Release deletes the key at that revision.
//
// Expiry. NATS 2.9 has no per-key TTL, so the bucket's MaxAge is the TTL:
// the server drops a lease that has not been renewed for TTL, and another
// node's Create then succeeds. On 2.9 that removal writes no delete marker
// and so produces no watch event; Watch reports it from a timer on the last
// revision it saw of each key (local receive time + TTL), as a Change with
// Expired set. The server's own removal may lag that timer a little, so an
// Acquire right after an expiry event can still answer ErrHeld: retry.
// The bucket's watch can go quiet across a NATS restart; Watch notices
// (see its doc) and restarts it.
//
// A renewal refused for its revision is not yet a loss: the key is read,
// and when it still holds this run's exact value (name and token), the
// write past the lease's revision was this run's own, a renewal the bucket
// stored whose answer was lost as NATS went away. The lease adopts the
// key's revision and renews from it. Another run of the same node name has
// another token, so its lease is never mistaken for this run's.
//
// A node that cannot reach NATS keeps trying to renew; it reports a lease
// lost (Lost) when the bucket refuses the renewal and the key holds
// another lease or none (another node wrote the key, or it expired) or when no renewal has succeeded for a whole TTL, since
// by then the server may have dropped it. A NATS restart shorter than that
// keeps every lease: the bucket is on disk and revisions survive.
//
// It must not: decide who should own what (callers choose), or hold a lease
// it cannot renew without saying so on Lost.
package lease
