// Package sip connects the switchboard to the phone network: a SIP user
// agent (github.com/emiago/sipgo) on UDP and TCP that carriers and PBXs
// call through trunks.
//
// It owns the signalling: trunks (--sip-trunk), who may call in (a trunk's
// address, or a digest challenge answered with a trunk's credentials; the
// rest 403), the numbers calls are for (routes from the store, 404 when a
// number has none), and each call's INVITE dialog: 100 and 180 while the
// agent's phone rings, 200 with the SDP answer once it is answered, the
// end reason's SIP status when it ends unanswered (603 declined, 480
// nobody answered, 487 canceled), and BYE either way once it is live
// (the phone's BYE also before its ACK of the 200). Trunks with ;register
// are kept registered; Server.Trunks reports every trunk's state.
//
// A number routed to a queue answers its INVITE with 200 at once (the
// caller hears the queue's music over the call) and the call waits in
// the queue: calls.Switchboard.StartPhoneQueueCall, which enters it
// through the switchboard's calls.Queues (this package knows no queue).
//
// Calls themselves belong to package calls: an inbound INVITE becomes
// calls.Switchboard.StartPhoneCall with a calls.PhoneLine that hears every
// change of the phone's call, and CANCEL or BYE from the network becomes
// EndPhoneCall. The audio belongs to a Media (plain RTP legs, package
// audio/rtp, wired in by cmd/switchboard); this package only carries
// their SDP. It must not import the API or the WebRTC media plane.
package sip
