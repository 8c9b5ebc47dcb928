// Package audio is the media plane: 20 ms frames of 8 kHz mono PCM16, the
// identities' audio endpoints, and the mixer that, on one clock, routes
// each conversation's audio as the call model says: only an agent's active
// call reaches its device, and only its microphone reaches that call.
// Within a conversation everyone hears every sender, unless a sender has
// an audience (audience.go): a whispering supervisor is heard by the agent
// alone.
//
// Endpoints are pluggable: a WebRTC leg (package rtc), a host sound card
// (package portaudio, built with the portaudio tag), or a file or tone for
// tests and bots (this package).
package audio
