// Package calls is Switchboard's domain: identities and their calls,
// remote participants, states, hold and mute, end reasons, events, and the
// rules the Calling SDK sets for them. Switchboard is the service; its
// methods are the use cases the API exposes.
//
// Each identity's view of a conversation is a call of its own (a leg), with
// its own id, as each client of the Calling SDK has its own Call; the legs
// of one conversation share a serverCallId.
//
// An operation runs: plan (package holdpolicy decides the holds) → apply
// to the in-memory state under the locks of everyone concerned → hand the
// change to the store's queue, the event publisher and the media plane →
// release the locks. Events are not written by hand: each operation records
// how the calls it touches looked before, and the difference becomes the
// events, so the event stream and the state cannot disagree.
//
// The package owns the rules and nothing else: it does no I/O of its own
// and imports only the standard library and holdpolicy. Store, Publisher,
// Media and Clock are the ports its adapters implement (packages store,
// api and audio).
package calls
