package calls

// legView is what the diff compares: the parts of a call whose change is an
// event.
type legView struct {
	exists        bool
	phase         phase
	state         CallState
	listed        bool
	muted         bool
	incomingMuted bool
	kind          Kind
	parts         []partView
}

type partView struct {
	leg      *leg
	state    ParticipantState
	muted    bool
	speaking bool
}

func (l *leg) diffView() *legView {
	v := &legView{
		exists: true, phase: l.phase, state: l.state(), listed: l.listed,
		muted: l.muted, incomingMuted: l.incomingMuted, kind: l.conv.kind,
	}
	if l.phase == phaseEnded {
		return v
	}
	for _, m := range l.conv.members {
		if m != l {
			v.parts = append(v.parts, partView{leg: m, state: m.participantState(), muted: m.muted, speaking: m.speaking})
		}
	}
	return v
}

// diff turns the change of one leg since before (nil: new) into events.
func (tx *txn) diff(l *leg, before *legView) []Event {
	after := l.diffView()
	if before == nil {
		before = &legView{}
	}
	var out []Event
	add := func(typ EventType, data any) { out = append(out, tx.event(l, typ, data)) }

	if !before.exists && l.phase == phaseIncoming {
		add(EventIncomingCall, IncomingCallData{IncomingCall: l.incomingView()})
	}
	if !before.listed && after.listed {
		add(EventCallsUpdated, CallsUpdatedData{Added: []Call{l.view(false)}, Removed: []Call{}})
		before = after // the added call carries everything
	}
	if after.phase == phaseEnded {
		if before.exists || before.listed {
			add(EventCallEnded, CallEndedData{CallEndReason: l.endReason, Call: l.view(false)})
		}
		if before.listed {
			add(EventCallsUpdated, CallsUpdatedData{Added: []Call{}, Removed: []Call{l.view(false)}})
		}
		return out
	}
	if !after.listed {
		return out
	}
	if before.state != after.state {
		add(EventStateChanged, StateChangedData{OldState: before.state, State: after.state, IsActive: after.state == StateConnected})
	}
	if before.kind != after.kind {
		add(EventKindChanged, KindChangedData{Kind: after.kind})
	}
	if before.muted != after.muted {
		add(EventIsMutedChanged, MutedData{IsMuted: after.muted})
	}
	if before.incomingMuted != after.incomingMuted {
		add(EventIsIncomingAudioMuted, MutedData{IsMuted: after.incomingMuted})
	}

	var added, removed []Participant
	for _, b := range before.parts {
		if !containsPart(after.parts, b.leg) {
			removed = append(removed, b.leg.participant())
		}
	}
	for _, a := range after.parts {
		i := indexPart(before.parts, a.leg)
		if i < 0 {
			added = append(added, a.leg.participant())
			continue
		}
		b := before.parts[i]
		raw := a.leg.party.id
		if b.state != a.state {
			add(EventParticipantStateChanged, ParticipantStateData{Participant: raw, OldState: b.state, State: a.state})
		}
		if b.muted != a.muted {
			add(EventIsMutedChanged, MutedData{Participant: raw, IsMuted: a.muted})
		}
		if b.speaking != a.speaking {
			add(EventIsSpeakingChanged, SpeakingData{Participant: raw, IsSpeaking: a.speaking})
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		if added == nil {
			added = []Participant{}
		}
		if removed == nil {
			removed = []Participant{}
		}
		add(EventRemoteParticipantsUpdated, ParticipantsUpdatedData{Added: added, Removed: removed})
	}
	return out
}

func indexPart(parts []partView, l *leg) int {
	for i, p := range parts {
		if p.leg == l {
			return i
		}
	}
	return -1
}

func containsPart(parts []partView, l *leg) bool { return indexPart(parts, l) >= 0 }

// participant is the leg as the other members see it.
func (l *leg) participant() Participant {
	p := Participant{
		Identifier:      l.party.ident,
		RawID:           l.party.id,
		DisplayName:     l.displayName(),
		State:           l.participantState(),
		IsMuted:         l.muted,
		IsSpeaking:      l.speaking,
		EndpointDetails: []EndpointDetail{{ParticipantID: l.id}},
	}
	if l.phase == phaseEnded {
		r := l.endReason
		p.CallEndReason = &r
	}
	return p
}

func (l *leg) displayName() string {
	if l.party.bot {
		return "Echo bot"
	}
	return l.party.displayName
}

// view is the leg as its owner sees it. With history set, the remote
// participants include everyone who ever was in the call, with their end
// reasons; without, only those in it now.
func (l *leg) view(history bool) Call {
	c := l.conv
	v := Call{
		ID:                   l.id,
		ServerCallID:         c.id,
		AgentID:              l.party.id,
		Direction:            l.direction,
		Kind:                 c.kind,
		GroupID:              c.groupID,
		RoomID:               c.roomID,
		State:                l.state(),
		IsMuted:              l.muted,
		IsIncomingAudioMuted: l.incomingMuted,
		CallerInfo:           l.callerInfo,
		RemoteParticipants:   []Participant{},
		StartTime:            l.start,
	}
	v.IsActive = v.State == StateConnected
	members := c.members
	if history {
		members = c.all
	}
	for _, m := range members {
		if m != l && (history || m.phase != phaseEnded) {
			v.RemoteParticipants = append(v.RemoteParticipants, m.participant())
		}
	}
	if !l.connectedAt.IsZero() {
		t := l.connectedAt
		v.ConnectedTime = &t
	}
	if l.holding && !l.heldAt.IsZero() {
		t := l.heldAt
		v.HeldTime = &t
	}
	if l.phase == phaseEnded {
		t, r := l.endAt, l.endReason
		v.EndTime, v.CallEndReason = &t, &r
	}
	return v
}

func (l *leg) incomingView() IncomingCall {
	return IncomingCall{
		ID: l.id, ServerCallID: l.conv.id, AgentID: l.party.id,
		Kind: l.conv.kind, CallerInfo: l.callerInfo, StartTime: l.start,
	}
}
