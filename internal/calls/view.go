package calls

import "time"

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

// diffView is how l looks now, for the diff; its parts live in the
// transaction's arena.
func (tx *txn) diffView(l *leg) legView {
	v := legView{
		exists: true, phase: l.phase, state: l.state(), listed: l.listed,
		muted: l.muted, incomingMuted: l.incomingMuted, kind: l.conv.kind,
	}
	if l.phase == phaseEnded {
		return v
	}
	lo := len(tx.parts)
	for _, m := range l.conv.members {
		if m != l && !m.hidden && sees(l, m) {
			tx.parts = append(tx.parts, partView{leg: m, state: m.participantState(), muted: m.muted, speaking: m.speaking})
		}
	}
	if len(tx.parts) > lo {
		v.parts = tx.parts[lo:len(tx.parts):len(tx.parts)]
	}
	return v
}

// diff appends to out the events that the change of one leg since before
// (nil: new) makes.
func (tx *txn) diff(out []Event, l *leg, before *legView) []Event {
	after := tx.diffView(l)
	if before == nil {
		before = &legView{}
	}
	add := func(typ EventType, data any) { out = append(out, tx.event(l, typ, data)) }

	if !before.exists && l.phase == phaseIncoming {
		add(EventIncomingCall, IncomingCallData{IncomingCall: l.incomingView()})
	}
	if !before.listed && after.listed {
		add(EventCallsUpdated, CallsUpdatedData{Added: []Call{l.view(false)}, Removed: []Call{}})
		before = &after // the added call carries everything
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
		add(EventStateChanged, stateChanged(before.state, after.state))
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
	var p Participant
	l.participantInto(&p, nil)
	return p
}

// participantInto fills p; ep, when given, is where its one endpoint goes.
func (l *leg) participantInto(p *Participant, ep *[1]EndpointDetail) {
	if ep == nil {
		ep = new([1]EndpointDetail)
	}
	ep[0] = EndpointDetail{ParticipantID: l.id}
	*p = Participant{
		Identifier:      l.party.ident,
		RawID:           l.party.id,
		DisplayName:     l.displayName(),
		State:           l.participantState(),
		IsMuted:         l.muted,
		IsSpeaking:      l.speaking,
		MonitorMode:     l.monitor,
		EndpointDetails: ep[:],
	}
	if l.phase == phaseEnded {
		r := l.endReason
		p.CallEndReason = &r
	}
}

func (l *leg) displayName() string {
	if l.party.bot {
		return "Echo bot"
	}
	return l.party.displayName
}

// viewBacking holds what a view points to (its times, its end reason and,
// with one remote participant, that participant and its endpoint), so that
// a view is one allocation rather than one for each part.
type viewBacking struct {
	parts                  [1]Participant
	endpoint               [1]EndpointDetail
	connected, held, ended time.Time
	reason                 EndReason
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
		StartTime:            l.start,
		MonitorMode:          l.monitor,
	}
	if l.monitored != nil {
		v.MonitoredCallID = l.monitored.id
	}
	if c.lobby != nil {
		v.Lobby, v.IsOrganizer = true, c.lobby.organizer == l.party
	}
	if l.phase != phaseEnded {
		if live(l.consult) {
			v.ConsultCallID = l.consult.id
		} else if live(l.consultOf) {
			v.ConsultCallID = l.consultOf.id
		}
	}
	v.IsActive = v.State == StateConnected
	members := c.members
	if history {
		members = c.all
	}
	remote := func(m *leg) bool {
		if m == l || m.hidden {
			return false
		}
		if history {
			return seesInHistory(l, m)
		}
		return m.phase != phaseEnded && sees(l, m)
	}
	n := 0
	for _, m := range members {
		if remote(m) {
			n++
		}
	}
	vb := new(viewBacking)
	if n <= 1 {
		v.RemoteParticipants = vb.parts[:0:1]
	} else {
		v.RemoteParticipants = make([]Participant, 0, n)
	}
	for _, m := range members {
		if !remote(m) {
			continue
		}
		var ep *[1]EndpointDetail
		if n <= 1 {
			ep = &vb.endpoint
		}
		v.RemoteParticipants = append(v.RemoteParticipants, Participant{})
		m.participantInto(&v.RemoteParticipants[len(v.RemoteParticipants)-1], ep)
	}
	if !l.connectedAt.IsZero() {
		vb.connected = l.connectedAt
		v.ConnectedTime = &vb.connected
	}
	if l.holding && !l.heldAt.IsZero() {
		vb.held = l.heldAt
		v.HeldTime = &vb.held
	}
	if l.phase == phaseEnded {
		vb.ended, vb.reason = l.endAt, l.endReason
		v.EndTime, v.CallEndReason = &vb.ended, &vb.reason
	}
	return v
}

func (l *leg) incomingView() IncomingCall {
	return IncomingCall{
		ID: l.id, ServerCallID: l.conv.id, AgentID: l.party.id,
		Kind: l.conv.kind, CallerInfo: l.callerInfo, StartTime: l.start,
	}
}

// callStates are the states whose stateChanged data is boxed once, up front.
var callStates = [...]CallState{
	StateNone, StateConnecting, StateRinging, StateEarlyMedia, StateConnected,
	StateLocalHold, StateRemoteHold, StateInLobby, StateDisconnecting, StateDisconnected,
}

// stateChangedData[i][j] is the data of a change from callStates[i] to
// callStates[j], already in an interface: events never change their data.
var stateChangedData = func() (t [len(callStates)][len(callStates)]any) {
	for i, from := range callStates {
		for j, to := range callStates {
			t[i][j] = StateChangedData{OldState: from, State: to, IsActive: to == StateConnected}
		}
	}
	return t
}()

func stateIndex(s CallState) int {
	for i, c := range callStates {
		if c == s {
			return i
		}
	}
	return -1
}

// stateChanged is the data of a stateChanged event from one state to another.
func stateChanged(from, to CallState) any {
	if i, j := stateIndex(from), stateIndex(to); i >= 0 && j >= 0 {
		return stateChangedData[i][j]
	}
	return StateChangedData{OldState: from, State: to, IsActive: to == StateConnected}
}
