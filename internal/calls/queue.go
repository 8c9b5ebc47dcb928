package calls

import (
	"context"
	"slices"
	"time"

	"github.com/switchboard/switchboard/internal/routing"
)

// LiveCalls answers how many calls the identity rawID holds live
// (answered or joined, on hold or not) on this switchboard; ringing ones
// are not counted. Queue routing asks it for "not over
// maxConcurrentCalls".
func (s *Switchboard) LiveCalls(rawID string) int {
	s.live.Lock()
	defer s.live.Unlock()
	pt := s.parties[rawID]
	if pt == nil {
		return 0
	}
	return pt.liveCalls()
}

func (p *party) liveCalls() int {
	n := 0
	for _, l := range p.legs {
		if l.phase == phaseLive {
			n++
		}
	}
	return n
}

// Offerable reports whether a queue may offer the agent (a rawId) a call
// now: she has an event connection here, her chosen status is Available
// (not Away, not WrapUp) and she holds fewer than maxConcurrent live
// calls (at least 1). It implements queue.Availability over agent status;
// now is unused, the status' own clock times wrap-ups.
func (s *Switchboard) Offerable(agent string, maxConcurrent int, _ time.Time) bool {
	s.live.Lock()
	defer s.live.Unlock()
	return s.offerable(agent, maxConcurrent)
}

// offerable is Offerable under s.live.
func (s *Switchboard) offerable(agent string, maxConcurrent int) bool {
	pt := s.parties[agent]
	if s.closed || pt == nil || pt.bot || pt.conns == 0 || !pt.statusLoaded {
		return false
	}
	return pt.presence.Chosen() == routing.Available && pt.liveCalls() < max(maxConcurrent, 1)
}

// IdleSince answers when the agent (a rawId) last became idle: she became
// Available (a wrap-up ended, she chose it, she connected) or a call of
// hers ended, whichever came last; the zero time when this switchboard
// does not know her. It implements queue.Availability.
func (s *Switchboard) IdleSince(agent string) time.Time {
	s.live.Lock()
	defer s.live.Unlock()
	return s.idleSince(agent)
}

// idleSince is IdleSince under s.live.
func (s *Switchboard) idleSince(agent string) time.Time {
	pt := s.parties[agent]
	if pt == nil || !pt.statusLoaded {
		return time.Time{}
	}
	t := pt.callEndedAt
	if pt.presence.Chosen() == routing.Available && pt.presence.Since.After(t) {
		t = pt.presence.Since
	}
	return t
}

// LookAll answers Offerable and IdleSince for every agent at once, under
// one hold of the switchboard's live state: offerable[i] and idleSince[i]
// for agents[i] (both as long as agents). A queue's step asks it for all
// its members (queue.Looker): one lock rather than two per member, which
// under load waited behind every call operation in turn.
func (s *Switchboard) LookAll(agents []string, maxConcurrent int, _ time.Time, offerable []bool, idleSince []time.Time) {
	s.live.Lock()
	defer s.live.Unlock()
	for i, a := range agents {
		offerable[i] = s.offerable(a, maxConcurrent)
		idleSince[i] = s.idleSince(a)
	}
}

// SetStatusBySystem sets the chosen status of agent (a rawId) as the
// system: a queue marks an agent Away who let offers ring out. It is told
// (agentStatusChanged, changedBy system) and kept as SetStatus's is.
// Errors: as SetStatus's, invalid_identifier.
func (s *Switchboard) SetStatusBySystem(ctx context.Context, agent string, req SetStatusRequest) (AgentStatusData, error) {
	id, err := ParseRawID(agent)
	if err != nil {
		return AgentStatusData{}, withOp("set status", err)
	}
	return s.applyStatus(ctx, nil, id, req)
}

// AnsweredIn reports whether the identity rawID answered (was ever
// connected in) the conversation of call id, even if she left since, and
// even once the call ended, until ForgetQueueCall: a queue step that
// comes after an agent accepted and hung up tells a served call from a
// declined offer by it.
func (s *Switchboard) AnsweredIn(id, rawID string) bool {
	s.live.Lock()
	defer s.live.Unlock()
	l := s.legs[id]
	if l == nil {
		return slices.Contains(s.queueAnswers[id], rawID)
	}
	for _, m := range l.conv.all {
		if m.party.id == rawID && !m.connectedAt.IsZero() {
			return true
		}
	}
	return false
}

// keepAnswers keeps who answered in the conversation of l, a queue
// caller's call that ends, for AnsweredIn (s.live held).
func (s *Switchboard) keepAnswers(l *leg) {
	var answered []string
	for _, m := range l.conv.all {
		if m != l && !m.connectedAt.IsZero() && !slices.Contains(answered, m.party.id) {
			answered = append(answered, m.party.id)
		}
	}
	if len(answered) > 0 {
		s.queueAnswers[l.id] = answered
	}
}

// ForgetQueueCall drops what the switchboard keeps of the queue call id
// once the queue is done with it: who answered it (AnsweredIn), and, while
// it is live (it left the queue for voicemail, or a transfer could not
// queue it), its mark as a queue's caller (EndWithCaller).
func (s *Switchboard) ForgetQueueCall(id string) {
	s.live.Lock()
	defer s.live.Unlock()
	delete(s.queueAnswers, id)
	if l := s.legs[id]; l != nil && l.conv.endsWith == l {
		l.conv.endsWith = nil
	}
}

// queueAnswersKept is how many ended queue calls the switchboard keeps
// answers of (export_test.go: nothing is kept once the queue forgot
// them).
func (s *Switchboard) queueAnswersKept() int {
	s.live.Lock()
	defer s.live.Unlock()
	return len(s.queueAnswers)
}

// OfferState is an agent's state as queue routing weighs it, for the
// other nodes of a cluster to see (queue.Board publishes it).
type OfferState struct {
	// Connected: she has an event connection here (this node serves her
	// status); the rest is meaningful only then.
	Connected bool
	// Chosen is her chosen status (Available, Away or WrapUp).
	Chosen routing.Status
	// LiveCalls is what LiveCalls answers.
	LiveCalls int
	// IdleSince is what IdleSince answers.
	IdleSince time.Time
}

// OfferState answers the agent's (a rawId) OfferState now.
func (s *Switchboard) OfferState(agent string) OfferState {
	s.live.Lock()
	defer s.live.Unlock()
	pt := s.parties[agent]
	if s.closed || pt == nil || pt.bot || pt.conns == 0 || !pt.statusLoaded {
		return OfferState{}
	}
	t := pt.callEndedAt
	if pt.presence.Chosen() == routing.Available && pt.presence.Since.After(t) {
		t = pt.presence.Since
	}
	return OfferState{Connected: true, Chosen: pt.presence.Chosen(), LiveCalls: pt.liveCalls(), IdleSince: t}
}

// OfferAgents answers the identities (rawIds) whose OfferState is
// Connected now, in no order.
func (s *Switchboard) OfferAgents() []string {
	s.live.Lock()
	defer s.live.Unlock()
	if s.closed {
		return nil
	}
	var out []string
	for id, pt := range s.parties {
		if !pt.bot && pt.conns > 0 && pt.statusLoaded {
			out = append(out, id)
		}
	}
	return out
}

// EndWithCaller marks callID, a call entering a queue, as the caller of
// its conversation, both ways, as in a 1:1 call, instead of anyone
// staying in an empty group call: when she leaves after an agent
// answered, whoever is left with the call alone (the agent, and
// supervisors monitoring it) is ended too (remote hung up); when the
// agent who answered leaves her alone (supervisors monitoring are no
// company), her call ends. A call this switchboard does not hold is left
// as it is.
func (s *Switchboard) EndWithCaller(callID string) {
	s.live.Lock()
	defer s.live.Unlock()
	if l := s.legs[callID]; l != nil && l.phase != phaseEnded {
		l.conv.endsWith = l
	}
}

// MarkVoicemail marks the call id, a queue caller's that goes to
// voicemail (its greeting, then her message recorded): from now on a
// normal end of it (she hangs up, a phone's BYE: any 0 code) ends it
// 0/7017 (ReasonVoicemail), as the end of its recording at
// voicemailMaxSeconds does, so that history shows every call the queue
// counted a voicemail alike; a failure (media lost, a shutdown) keeps
// its own reason. Errors: call_not_found (no live call id here: she hung
// up before).
func (s *Switchboard) MarkVoicemail(id string) error {
	s.live.Lock()
	defer s.live.Unlock()
	l := s.legs[id]
	if l == nil || l.phase != phaseLive || l.standIn {
		return withOp("mark voicemail", errCallNotFound(id))
	}
	l.voicemail = true
	return nil
}

// EndWith ends the call id as the switchboard, with reason (its others:
// remote hung up): a queue caller's voicemail ends (ReasonVoicemail).
// Ending an ended call does nothing.
func (s *Switchboard) EndWith(ctx context.Context, id string, reason EndReason) {
	tx := s.begin(nil)
	defer tx.done()
	if l := s.legs[id]; l != nil && !s.closed {
		tx.endLeg(l, reason, ReasonRemoteHungUp)
	}
}
