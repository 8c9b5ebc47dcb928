package calls

import "time"

// EventType names an event on the event stream.
type EventType string

// The event types.
const (
	EventSnapshot                  EventType = "snapshot"
	EventConnectionStateChanged    EventType = "connectionStateChanged"
	EventIncomingCall              EventType = "incomingCall"
	EventCallsUpdated              EventType = "callsUpdated"
	EventStateChanged              EventType = "stateChanged"
	EventRemoteParticipantsUpdated EventType = "remoteParticipantsUpdated"
	EventParticipantStateChanged   EventType = "participantStateChanged"
	EventIsMutedChanged            EventType = "isMutedChanged"
	EventIsIncomingAudioMuted      EventType = "isIncomingAudioMutedChanged"
	EventMutedByOthers             EventType = "mutedByOthers"
	EventIsSpeakingChanged         EventType = "isSpeakingChanged"
	EventKindChanged               EventType = "kindChanged"
	EventCallEnded                 EventType = "callEnded"
)

// ActorKind says what caused an event.
type ActorKind string

// The kinds of actor.
const (
	ActorAgent      ActorKind = "agent"      // the identity whose call it is
	ActorRemote     ActorKind = "remote"     // another party of the call
	ActorSupervisor ActorKind = "supervisor" // a supervisor, from outside the call
	ActorSystem     ActorKind = "system"     // the switchboard: timeouts, shutdown, media
)

// Actor is who caused an event, so that a timeline is an audit trail.
type Actor struct {
	Kind  ActorKind `json:"kind"`
	RawID string    `json:"rawId,omitempty"`
	// DisplayName is the name the actor's token carries, for a supervisor
	// or another party, so that a console can say who did it. Stores may
	// drop it: a timeline's actor is its rawId.
	DisplayName string `json:"displayName,omitempty"`
}

// Event is one change, addressed to the identity whose view it changes
// (AgentID). Data is one of the *Data types below, or a Snapshot.
type Event struct {
	Type    EventType `json:"type"`
	At      time.Time `json:"at"`
	AgentID string    `json:"agentId"`
	CallID  string    `json:"callId,omitempty"`
	Actor   *Actor    `json:"actor,omitempty"`
	Data    any       `json:"data"`
	// Supervised is true when supervisors see the event too: it concerns
	// an agent's or a supervisor's calls, not an outside caller's.
	Supervised bool `json:"-"`
}

// ConnectionStateData is the data of connectionStateChanged.
type ConnectionStateData struct {
	OldState ConnectionState `json:"oldState"`
	NewState ConnectionState `json:"newState"`
	Reason   string          `json:"reason,omitempty"`
}

// IncomingCallData is the data of incomingCall.
type IncomingCallData struct {
	IncomingCall IncomingCall `json:"incomingCall"`
}

// CallsUpdatedData is the data of callsUpdated.
type CallsUpdatedData struct {
	Added   []Call `json:"added"`
	Removed []Call `json:"removed"`
}

// StateChangedData is the data of stateChanged.
type StateChangedData struct {
	OldState CallState `json:"oldState"`
	State    CallState `json:"state"`
	IsActive bool      `json:"isActive"`
}

// ParticipantsUpdatedData is the data of remoteParticipantsUpdated.
type ParticipantsUpdatedData struct {
	Added   []Participant `json:"added"`
	Removed []Participant `json:"removed"`
}

// ParticipantStateData is the data of participantStateChanged.
type ParticipantStateData struct {
	Participant string           `json:"participant"`
	OldState    ParticipantState `json:"oldState"`
	State       ParticipantState `json:"state"`
}

// MutedData is the data of isMutedChanged (Participant empty: the agent's
// own microphone) and isIncomingAudioMutedChanged.
type MutedData struct {
	Participant string `json:"participant,omitempty"`
	IsMuted     bool   `json:"isMuted"`
}

// MutedByOthersData is the data of mutedByOthers.
type MutedByOthersData struct {
	By string `json:"by"`
}

// SpeakingData is the data of isSpeakingChanged.
type SpeakingData struct {
	Participant string `json:"participant"`
	IsSpeaking  bool   `json:"isSpeaking"`
}

// KindChangedData is the data of kindChanged (a 1:1 call became a group
// call when a participant was added).
type KindChangedData struct {
	Kind Kind `json:"kind"`
}

// CallEndedData is the data of callEnded.
type CallEndedData struct {
	CallEndReason EndReason `json:"callEndReason"`
	Call          Call      `json:"call"`
}
