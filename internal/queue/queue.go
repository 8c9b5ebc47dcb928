package queue

import (
	"maps"
	"slices"
	"time"
	"unicode"

	"github.com/switchboard/switchboard/internal/calls"
)

// Strategy is how a queue picks among the agents that may take a call.
type Strategy string

// The strategies.
const (
	// LongestIdle offers the call to the agent idle the longest.
	LongestIdle Strategy = "longest-idle"
	// RoundRobin offers calls to the members in turn, after the one
	// offered last.
	RoundRobin Strategy = "round-robin"
)

// Limits of a definition.
const (
	MaxNameLen          = 128
	MaxMembers          = 1000
	DefaultRingTimeout  = 20
	DefaultServiceLevel = 20
	DefaultMaxMisses    = 2
	// DefaultVoicemailMax and MaxVoicemailMax bound a voicemail's
	// recording (voicemailMaxSeconds).
	DefaultVoicemailMax = 120
	MaxVoicemailMax     = 600
)

// Member is an agent of a queue with its skills (name to level).
type Member struct {
	Agent  string         `json:"agent"`
	Skills map[string]int `json:"skills,omitempty"`
}

// Definition is a queue as created by POST /api/queues.
type Definition struct {
	Name     string   `json:"name"`
	Members  []Member `json:"members"`
	Strategy Strategy `json:"strategy"`
	// RingTimeoutSeconds: an offer nobody accepts in this time goes to the
	// next agent (default 20).
	RingTimeoutSeconds int `json:"ringTimeoutSeconds"`
	// MaxWaitSeconds: a call waiting longer overflows to OverflowQueue,
	// goes to voicemail (Voicemail) or ends (0: no limit).
	MaxWaitSeconds int `json:"maxWaitSeconds"`
	// WrapUpSeconds an agent gets after a queue call before the next offer.
	WrapUpSeconds int `json:"wrapUpSeconds"`
	// OverflowQueue, when set, takes the calls that waited MaxWaitSeconds.
	OverflowQueue string `json:"overflowQueue,omitempty"`
	// ServiceLevelSeconds: a call answered within it counts toward the
	// service level (default 20).
	ServiceLevelSeconds int `json:"serviceLevelSeconds"`
	// MaxConcurrentCalls an agent may hold and still be offered a queue
	// call (default 1: only an agent without calls).
	MaxConcurrentCalls int `json:"maxConcurrentCalls"`
	// MaxMisses: this many offers in a row an agent lets ring out are
	// reported (Decision.Missed), so that status can mark her Away
	// (default 2).
	MaxMisses int `json:"maxMisses"`
	// Record: a call is recorded from when an agent answers it (the
	// engine's Record hook, recording.Service.StartFor as the system).
	Record bool `json:"record,omitempty"`
	// Voicemail: a call that waited MaxWaitSeconds, with no OverflowQueue,
	// leaves the queue for voicemail: the caller hears a greeting, then
	// her audio is recorded for up to VoicemailMaxSeconds (default 120,
	// at most 600), and her call ends (the engine's Voicemail hook).
	Voicemail           bool `json:"voicemail,omitempty"`
	VoicemailMaxSeconds int  `json:"voicemailMaxSeconds,omitempty"`
}

// Normalize fills the defaults and checks the definition. Errors are
// *calls.Error with CodeInvalidRequest.
func (d *Definition) Normalize() error {
	if err := ValidateName(d.Name); err != nil {
		return err
	}
	switch d.Strategy {
	case LongestIdle, RoundRobin:
	case "":
		d.Strategy = LongestIdle
	default:
		return calls.Errorf(calls.CodeInvalidRequest, "unknown strategy %q: longest-idle or round-robin", d.Strategy)
	}
	if len(d.Members) > MaxMembers {
		return calls.Errorf(calls.CodeInvalidRequest, "a queue has at most %d members", MaxMembers)
	}
	seen := map[string]bool{}
	for i, m := range d.Members {
		id, err := calls.ParseRawID(m.Agent)
		if err != nil || id.Kind != calls.KindCommunicationUser {
			return calls.Errorf(calls.CodeInvalidRequest, "member %d: %q is not an agent's raw id", i, m.Agent)
		}
		if seen[m.Agent] {
			return calls.Errorf(calls.CodeInvalidRequest, "member %s is named twice", m.Agent)
		}
		seen[m.Agent] = true
	}
	for _, v := range []struct {
		name string
		n    *int
		def  int
	}{
		{"ringTimeoutSeconds", &d.RingTimeoutSeconds, DefaultRingTimeout},
		{"maxWaitSeconds", &d.MaxWaitSeconds, 0},
		{"wrapUpSeconds", &d.WrapUpSeconds, 0},
		{"serviceLevelSeconds", &d.ServiceLevelSeconds, DefaultServiceLevel},
		{"maxConcurrentCalls", &d.MaxConcurrentCalls, 1},
		{"maxMisses", &d.MaxMisses, DefaultMaxMisses},
	} {
		if *v.n < 0 || *v.n > 86400 {
			return calls.Errorf(calls.CodeInvalidRequest, "%s must be 0 to 86400", v.name)
		}
		if v.n == &d.RingTimeoutSeconds && *v.n > MaxRingTimeout {
			return calls.Errorf(calls.CodeInvalidRequest, "ringTimeoutSeconds must be 0 to %d", MaxRingTimeout)
		}
		if *v.n == 0 {
			*v.n = v.def
		}
	}
	switch {
	case d.VoicemailMaxSeconds < 0 || d.VoicemailMaxSeconds > MaxVoicemailMax:
		return calls.Errorf(calls.CodeInvalidRequest, "voicemailMaxSeconds must be 0 to %d", MaxVoicemailMax)
	case !d.Voicemail:
		d.VoicemailMaxSeconds = 0
	case d.VoicemailMaxSeconds == 0:
		d.VoicemailMaxSeconds = DefaultVoicemailMax
	}
	if d.OverflowQueue != "" {
		if err := ValidateName(d.OverflowQueue); err != nil {
			return err
		}
		if d.OverflowQueue == d.Name {
			return calls.Errorf(calls.CodeInvalidRequest, "a queue cannot overflow into itself")
		}
	}
	return nil
}

// ValidateName checks a queue's name: 1 to MaxNameLen bytes of letters,
// digits, '-', '_' and '.' (it is a key in a JetStream bucket and a path
// segment).
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return calls.Errorf(calls.CodeInvalidRequest, "a queue's name has 1 to %d bytes", MaxNameLen)
	}
	for _, r := range name {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_') {
			return calls.Errorf(calls.CodeInvalidRequest, "the queue name %q may have only letters, digits, - and _", name)
		}
	}
	return nil
}

// Clone answers a deep copy.
func (d Definition) Clone() Definition {
	d.Members = slices.Clone(d.Members)
	for i := range d.Members {
		d.Members[i].Skills = maps.Clone(d.Members[i].Skills)
	}
	return d
}

// Availability is the seam to agent status: whether an agent may be
// offered a queue call now, and since when she has been idle.
// calls.Switchboard implements it over agent status; Tracker stands in
// for it in this package's tests.
type Availability interface {
	// Offerable reports whether the agent is Available (not Away, WrapUp or
	// Offline) and holds fewer than maxConcurrent calls.
	Offerable(agent string, maxConcurrent int, now time.Time) bool
	// IdleSince answers when the agent last became idle (her last call
	// ended, or she came online); the zero time when never.
	IdleSince(agent string) time.Time
}

// Looker is what an Availability may also do: answer Offerable and
// IdleSince for many agents in one look at its state (offerable[i] and
// idleSince[i] for agents[i]). A step asks it for all of a queue's
// members at once (Candidates).
type Looker interface {
	LookAll(agents []string, maxConcurrent int, now time.Time, offerable []bool, idleSince []time.Time)
}
