// Package peercall carries calls between the nodes of a cluster over NATS:
// it is the calls.PeerNetwork of a cluster node (issue 14, docs/cluster.md
// "Conversations across nodes").
//
// A call from alice (owned by node A) to bob (owned by node B) is a pair
// of stand-ins, one per node (package calls, peer.go). Each stand-in has a
// line (a pair here); every update of the stand-in becomes a
// calls.PeerChange (calls.PeerChangeOf) sent to the far node, which
// applies it to its own stand-in (Switchboard.ApplyPeerChange). The first
// message of a pair, from the anchor, is the dial: the far node rings its
// callee (Switchboard.StartPeerCall) with a stand-in for the caller (in a
// group call, with the roster of its other parties). A
// dial marked join (Network.Join) comes from a joiner's node instead, which
// is then the pair's anchor: the far node, which runs the group call or
// room, adds a stand-in for the joiner to it (Switchboard.PeerJoin), and
// its changes carry the conversation's roster (calls.PeerChange.Roster).
//
// Messages. Each is a NATS request on the far node's subject,
// <prefix>.node.<id>.peercall, answered once handled. A pair's messages
// in each direction are numbered from 1 and sent one at a time, each after
// the previous was answered; a message that is not answered is sent again,
// the same bytes, with backoff, until it is or Config.GiveUp passes. The
// receiver applies a message only when its number is above the last it
// applied for the pair and direction: a retried or late message never
// doubles a change nor reverts a newer one, and a retried dial answers as
// the first did. The receiver remembers a pair for Config.Retain after its
// stand-in ended.
//
// Questions. A change sent with pair.Ask (calls.PeerAsker: today only
// calls.PeerChange.QueueCheck, before a blind transfer to a queue) is a
// message like the others, in order with them, whose asker waits for its
// answer: the far node's error (its code and message), nil, or
// unavailable when the far node did not answer (or was lost) first. As it
// changes nothing, a question sent again is answered afresh, never
// skipped as a repeat.
//
// Audio. With Config.Media, the dial carries the SDP offer of the anchor
// stand-in's audio leg (a plain RTP leg per stand-in, its own endpoint in
// its node's mixer) and its answer the far stand-in's; a leg closes when
// its stand-in ends.
//
// Trust. Each request carries an HMAC-SHA256 of its subject and data
// under Config.Secret (serve derives it from the admin key every node
// shares) and the time it was made: a node refuses, never running it, a
// message that is unsigned, signed with another key, malformed, or older
// than Config.MaxAge (shorter than Retain, so that a replayed dial cannot
// ring again once its pair is forgotten).
//
// Failures. A callee whose node does not answer the dial within GiveUp
// (or DialGiveUp) ends 480, as a callee connected nowhere does; one whose
// node refuses it (draining, stopping) ends 503/1. A change the far node
// does not answer within GiveUp, or one it answers that it does not know
// the pair (it restarted), ends this node's stand-in 503/0: the far node
// is lost. NodeGone (from the cluster's node watch) ends at once every
// stand-in whose far node died (503/0) or stopped without saying so (503/1).
//
// It must not decide anything about a call (package calls does), nor who
// owns an identity (Config.Directory does).
package peercall
