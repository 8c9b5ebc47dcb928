// Package rtp carries the audio of SIP calls: plain RTP and RTCP (RFC
// 3550) with PCMU in 20 ms packets, RFC 4733 telephone-events for DTMF,
// and SDP offer/answer (RFC 3264) for one audio stream. A Leg is an
// audio.Endpoint beside the WebRTC one (package rtc): the mixer's clock
// calls it, and what it receives goes through the same jitter buffer.
//
// An Engine hands out legs on a UDP port range, an even port for RTP and
// the odd one after it for RTCP (or RTP and RTCP on the one port when the
// peer takes rtcp-mux). A leg latches to the source of the peer's media
// (symmetric RTP, for peers behind NAT), sends RTCP reports, reports the
// digits the peer sends and sends its own, follows the media direction
// of every offer and answer (hold), and ends by itself when the peer has
// sent nothing for a while (ErrSilence).
//
// It owns no SIP: the SIP layer hands it the bodies of INVITEs, re-INVITEs
// and their answers, maps its errors to SIP statuses (ErrBadSDP 400,
// ErrNoCommonCodec 488, ErrSilence 410) and its directions to call states.
// It does not transcode: PCMU is the only codec.
package rtp
