package queue

import (
	"slices"
	"time"
)

// Candidate is a member as the decision sees her at one moment.
type Candidate struct {
	Agent     string
	Skills    map[string]int
	Offerable bool      // Availability.Offerable
	IdleSince time.Time // Availability.IdleSince
}

// Qualified reports whether skills meet every level need asks for.
func Qualified(skills, need map[string]int) bool {
	for k, lvl := range need {
		if skills[k] < lvl {
			return false
		}
	}
	return true
}

// Pick answers the agent a call needing skills need is offered to next,
// or "" when nobody may take it now. Skills filter first; then, among the
// offerable members not in tried (this call's earlier offers),
// LongestIdle takes the one idle the longest (ties: member order) and
// RoundRobin the first after last (the agent this queue offered a call to
// last), in member order. Pick is pure.
func Pick(strategy Strategy, cands []Candidate, need map[string]int, tried []string, last string) string {
	ok := func(c Candidate) bool {
		return c.Offerable && Qualified(c.Skills, need) && !slices.Contains(tried, c.Agent)
	}
	switch strategy {
	case RoundRobin:
		start := slices.IndexFunc(cands, func(c Candidate) bool { return c.Agent == last }) + 1
		for i := range cands {
			if c := cands[(start+i)%len(cands)]; ok(c) {
				return c.Agent
			}
		}
		return ""
	default:
		best := -1
		for i, c := range cands {
			if ok(c) && (best < 0 || c.IdleSince.Before(cands[best].IdleSince)) {
				best = i
			}
		}
		if best < 0 {
			return ""
		}
		return cands[best].Agent
	}
}

// Offer is a waiting call's current offer: to whom, since when.
type Offer struct {
	Agent string    `json:"agent"`
	At    time.Time `json:"at"`
}

// Waiting is a call waiting in a queue.
type Waiting struct {
	// CallID is the caller's call (its leg), the key of the waiting call.
	CallID    string         `json:"callId"`
	Queue     string         `json:"queue"`
	Caller    string         `json:"caller"` // raw id
	Skills    map[string]int `json:"skills,omitempty"`
	EnteredAt time.Time      `json:"enteredAt"` // into this queue
	// FirstEnteredAt is when it entered the first queue (before overflow).
	FirstEnteredAt time.Time `json:"firstEnteredAt"`
	Offer          *Offer    `json:"offer,omitempty"`
	// Node is the node whose engine offers it (its caller's leg is
	// there): when that node dies, another one takes it out (Engine.Reap).
	Node  string   `json:"node,omitempty"`
	Tried []string `json:"tried,omitempty"`
}

// Action is what the decision asks for a waiting call.
type Action int

// The actions.
const (
	// Hold: keep waiting (nobody to offer to, or the offer still rings).
	Hold Action = iota
	// Ring: offer the call to Decision.Agent.
	Ring
	// Withdraw: the offer to Decision.Agent rang out; withdraw it (a miss)
	// and decide again.
	Withdraw
	// Overflow: the call waited MaxWaitSeconds; move it to Decision.Queue.
	Overflow
	// GiveUp: the call waited MaxWaitSeconds and there is no overflow
	// queue; end it with Decision.Reason.
	GiveUp
	// Voicemail: the call waited MaxWaitSeconds, there is no overflow
	// queue and the queue takes voicemail; it leaves the queue for
	// voicemail (Decision.Reason).
	Voicemail
)

// ReasonMaxWait is the reason a call ends with when it waited too long;
// ReasonVoicemail the reason it leaves its queue for voicemail.
const (
	ReasonMaxWait   = "maxWait"
	ReasonVoicemail = "voicemail"
)

// Decision is the next step for one waiting call.
type Decision struct {
	Action Action
	Agent  string
	Queue  string
	Reason string
}

// Next decides the next step for w in queue d at now, over the members as
// cands shows them (in d's member order) and last (the agent d offered a
// call to last). A ringing offer is withdrawn at the ring timeout; max
// wait comes before everything: an overflow queue first, else voicemail
// when the queue takes it, else the call gives up (any offer is withdrawn
// by whoever carries out Overflow, Voicemail or GiveUp). Once every qualified member was tried, tried
// starts over. Next is pure.
func Next(d *Definition, w *Waiting, cands []Candidate, last string, now time.Time) Decision {
	if d.MaxWaitSeconds > 0 && now.Sub(w.EnteredAt) >= time.Duration(d.MaxWaitSeconds)*time.Second {
		if d.OverflowQueue != "" {
			return Decision{Action: Overflow, Queue: d.OverflowQueue, Agent: offered(w)}
		}
		if d.Voicemail {
			return Decision{Action: Voicemail, Reason: ReasonVoicemail, Agent: offered(w)}
		}
		return Decision{Action: GiveUp, Reason: ReasonMaxWait, Agent: offered(w)}
	}
	if w.Offer != nil {
		if now.Sub(w.Offer.At) >= time.Duration(d.RingTimeoutSeconds)*time.Second {
			return Decision{Action: Withdraw, Agent: w.Offer.Agent}
		}
		return Decision{Action: Hold}
	}
	if a := Pick(d.Strategy, cands, w.Skills, w.Tried, last); a != "" {
		return Decision{Action: Ring, Agent: a}
	}
	if len(w.Tried) > 0 {
		// Everyone qualified had a turn: start over, skipping only the
		// agent who missed it last, unless she is the only one.
		recent := w.Tried[len(w.Tried)-1:]
		if a := Pick(d.Strategy, cands, w.Skills, recent, last); a != "" {
			return Decision{Action: Ring, Agent: a}
		}
		if a := Pick(d.Strategy, cands, w.Skills, nil, last); a != "" {
			return Decision{Action: Ring, Agent: a}
		}
	}
	return Decision{Action: Hold}
}

func offered(w *Waiting) string {
	if w.Offer == nil {
		return ""
	}
	return w.Offer.Agent
}

// Candidates answers d's members as a snapshot of av at now, in one
// look when av is a Looker.
func Candidates(d *Definition, av Availability, now time.Time) []Candidate {
	var p pool
	p.look(d, av, now)
	return p.cs
}
