package calls

import (
	"time"

	"github.com/switchboard/switchboard/internal/routing"
)

// CallState is a call's state, as the Calling SDK names it.
type CallState string

// The call states.
const (
	StateNone          CallState = "None"
	StateConnecting    CallState = "Connecting"
	StateRinging       CallState = "Ringing"
	StateEarlyMedia    CallState = "EarlyMedia"
	StateConnected     CallState = "Connected"
	StateLocalHold     CallState = "LocalHold"
	StateRemoteHold    CallState = "RemoteHold"
	StateInLobby       CallState = "InLobby"
	StateDisconnecting CallState = "Disconnecting"
	StateDisconnected  CallState = "Disconnected"
)

// ParticipantState is a remote participant's state.
type ParticipantState string

// The participant states.
const (
	ParticipantIdle         ParticipantState = "Idle"
	ParticipantConnecting   ParticipantState = "Connecting"
	ParticipantRinging      ParticipantState = "Ringing"
	ParticipantConnected    ParticipantState = "Connected"
	ParticipantHold         ParticipantState = "Hold"
	ParticipantEarlyMedia   ParticipantState = "EarlyMedia"
	ParticipantInLobby      ParticipantState = "InLobby"
	ParticipantDisconnected ParticipantState = "Disconnected"
)

// Direction says who placed the call, from the agent's side.
type Direction string

// The directions.
const (
	Incoming Direction = "Incoming"
	Outgoing Direction = "Outgoing"
)

// Kind is the kind of call.
type Kind string

// The kinds of call.
const (
	OneToOne Kind = "oneToOne"
	Group    Kind = "group"
	Room     Kind = "room"
)

// Role is what a token lets its holder do.
type Role string

// The roles.
const (
	// RoleAgent operates its own calls.
	RoleAgent Role = "agent"
	// RoleSupervisor sees every agent's calls, mutes and removes
	// participants anywhere, ends calls for everyone, queries all history.
	RoleSupervisor Role = "supervisor"
	// RoleCaller is an outside party: its own calls only, no history, not
	// on dashboards.
	RoleCaller Role = "caller"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	return r == RoleAgent || r == RoleSupervisor || r == RoleCaller
}

// Principal is who is asking: the identity and role a token carries.
type Principal struct {
	Identifier  Identifier
	DisplayName string
	Role        Role
}

// ConnectionState is a call agent's connection state.
type ConnectionState string

// The connection states.
const (
	Connected    ConnectionState = "Connected"
	Disconnected ConnectionState = "Disconnected"
)

// CallerInfo names who placed a call.
type CallerInfo struct {
	Identifier  Identifier `json:"identifier"`
	DisplayName string     `json:"displayName,omitempty"`
}

// EndpointDetail is one device of a participant.
type EndpointDetail struct {
	ParticipantID string `json:"participantId"`
}

// Participant is a remote participant of a call, as one agent sees it.
type Participant struct {
	Identifier  Identifier       `json:"identifier"`
	RawID       string           `json:"rawId"`
	DisplayName string           `json:"displayName,omitempty"`
	State       ParticipantState `json:"state"`
	IsMuted     bool             `json:"isMuted"`
	IsSpeaking  bool             `json:"isSpeaking"`
	// MonitorMode is a monitoring supervisor's mode (listen, whisper,
	// barge); empty for everyone else.
	MonitorMode     MonitorMode      `json:"monitorMode,omitempty"`
	CallEndReason   *EndReason       `json:"callEndReason,omitempty"`
	EndpointDetails []EndpointDetail `json:"endpointDetails"`
}

// Call is one identity's view of a call: what the API answers and the
// events describe.
type Call struct {
	ID string `json:"id"`
	// ServerCallID is shared by every identity's view of one conversation.
	ServerCallID         string        `json:"serverCallId"`
	AgentID              string        `json:"agentId"`
	Direction            Direction     `json:"direction"`
	Kind                 Kind          `json:"kind"`
	GroupID              string        `json:"groupId,omitempty"`
	RoomID               string        `json:"roomId,omitempty"`
	State                CallState     `json:"state"`
	IsActive             bool          `json:"isActive"`
	IsMuted              bool          `json:"isMuted"`
	IsIncomingAudioMuted bool          `json:"isIncomingAudioMuted"`
	CallerInfo           CallerInfo    `json:"callerInfo"`
	RemoteParticipants   []Participant `json:"remoteParticipants"`
	CallEndReason        *EndReason    `json:"callEndReason,omitempty"`
	StartTime            time.Time     `json:"startTime"`
	ConnectedTime        *time.Time    `json:"connectedTime,omitempty"`
	// HeldTime is when the agent last put the call on hold (while it is
	// held by the agent).
	HeldTime *time.Time `json:"heldTime,omitempty"`
	EndTime  *time.Time `json:"endTime,omitempty"`
	// MonitorMode and MonitoredCallID: the call is a supervisor's monitor
	// leg of the agent's call MonitoredCallID, in this mode (monitor.go).
	MonitorMode     MonitorMode `json:"monitorMode,omitempty"`
	MonitoredCallID string      `json:"monitoredCallId,omitempty"`
	// Lobby: the call is in a room with a lobby (lobby.go); IsOrganizer:
	// its owner is the room's organizer, who admits from the lobby.
	Lobby       bool `json:"lobby,omitempty"`
	IsOrganizer bool `json:"isOrganizer,omitempty"`
	// ConsultCallID: a consult transfer is in progress (transfer.go). On
	// the customer's call it is the agent's consult call; on the consult
	// call, the customer's call.
	ConsultCallID string `json:"consultCallId,omitempty"`
	// WrapUpCode is the code the agent gave the call once it ended
	// (history only).
	WrapUpCode string `json:"wrapUpCode,omitempty"`
	// Queues are the queues the call went through, by name (history
	// only; CallQueueLog).
	Queues []string `json:"queues,omitempty"`
}

// IncomingCall is a call ringing for an identity, before it is accepted.
type IncomingCall struct {
	ID           string     `json:"id"`
	ServerCallID string     `json:"serverCallId"`
	AgentID      string     `json:"agentId"`
	Kind         Kind       `json:"kind"`
	CallerInfo   CallerInfo `json:"callerInfo"`
	StartTime    time.Time  `json:"startTime"`
}

// AgentStatus is one identity as a supervisor's dashboard shows it.
type AgentStatus struct {
	Identifier      Identifier      `json:"identifier"`
	RawID           string          `json:"rawId"`
	DisplayName     string          `json:"displayName,omitempty"`
	Role            Role            `json:"role"`
	ConnectionState ConnectionState `json:"connectionState"`
	ActiveCallID    string          `json:"activeCallId,omitempty"`
	// Status is the agent status dashboards show (Available, Away,
	// WrapUp, Busy, Offline) and ChosenStatus the one chosen last;
	// StatusSince is when the chosen one was set.
	Status       routing.Status `json:"status,omitempty"`
	ChosenStatus routing.Status `json:"chosenStatus,omitempty"`
	StatusSince  *time.Time     `json:"statusSince,omitempty"`
}

// Snapshot is everything a connection may see when it opens: the first
// message on the event stream.
type Snapshot struct {
	ConnectionState ConnectionState `json:"connectionState"`
	Calls           []Call          `json:"calls"`
	IncomingCalls   []IncomingCall  `json:"incomingCalls"`
	// Agents is every agent and supervisor the switchboard knows (for
	// supervisors only).
	Agents []AgentStatus `json:"agents,omitempty"`
}
