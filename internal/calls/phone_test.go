package calls_test

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// line records what the switchboard tells a phone line.
type line struct {
	mu      sync.Mutex
	updates []calls.Call
}

func (l *line) Update(c calls.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.updates = append(l.updates, c)
}

// states is the sequence of distinct states the line was told.
func (l *line) states() []calls.CallState {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []calls.CallState
	for _, c := range l.updates {
		if len(out) == 0 || out[len(out)-1] != c.State {
			out = append(out, c.State)
		}
	}
	return out
}

func (l *line) last() calls.Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.updates[len(l.updates)-1]
}

var phone = calls.CallerInfo{Identifier: calls.PhoneNumber("+14255550123"), DisplayName: "Customer"}

// TestPhoneCall: a call from the phone network rings the agent as an
// incomingCall from a phoneNumber participant, and its line hears every
// state until the end reason each way of ending gives.
func TestPhoneCall(t *testing.T) {
	tests := []struct {
		name       string
		connected  bool // the agent has an event connection
		act        func(t *testing.T, f *callstest.Fixture, in calls.IncomingCall, phoneCall calls.Call)
		wantStates []calls.CallState
		wantPhone  calls.EndReason // the phone's call's end
		wantAgent  *calls.EndReason
	}{
		{
			name: "accepted, then the agent hangs up", connected: true,
			act: func(t *testing.T, f *callstest.Fixture, in calls.IncomingCall, _ calls.Call) {
				c := mustCall(t)(f.Accept(ctx, alice, in.ID))
				if c.State != calls.StateConnected || len(c.RemoteParticipants) != 1 ||
					c.RemoteParticipants[0].Identifier != phone.Identifier || c.RemoteParticipants[0].State != calls.ParticipantConnected {
					t.Fatalf("accepted call = %+v, want Connected with the phone Connected", c)
				}
				mustCall(t)(f.HangUp(ctx, alice, in.ID, false))
			},
			wantStates: []calls.CallState{calls.StateRinging, calls.StateConnected, calls.StateDisconnected},
			wantPhone:  calls.ReasonRemoteHungUp, wantAgent: &calls.ReasonHungUp,
		},
		{
			name: "accepted, then the phone hangs up", connected: true,
			act: func(t *testing.T, f *callstest.Fixture, in calls.IncomingCall, pc calls.Call) {
				mustCall(t)(f.Accept(ctx, alice, in.ID))
				if err := f.EndPhoneCall(ctx, pc.ID, calls.ReasonHungUp); err != nil {
					t.Fatal(err)
				}
			},
			wantStates: []calls.CallState{calls.StateRinging, calls.StateConnected, calls.StateDisconnected},
			wantPhone:  calls.ReasonHungUp, wantAgent: &calls.ReasonRemoteHungUp,
		},
		{
			name: "rejected", connected: true,
			act: func(t *testing.T, f *callstest.Fixture, in calls.IncomingCall, _ calls.Call) {
				mustCall(t)(f.Reject(ctx, alice, in.ID))
			},
			wantStates: []calls.CallState{calls.StateRinging, calls.StateDisconnected},
			wantPhone:  calls.ReasonDeclined, wantAgent: &calls.ReasonDeclined,
		},
		{
			name: "canceled", connected: true,
			act: func(t *testing.T, f *callstest.Fixture, in calls.IncomingCall, pc calls.Call) {
				if err := f.EndPhoneCall(ctx, pc.ID, calls.ReasonCanceled); err != nil {
					t.Fatal(err)
				}
			},
			wantStates: []calls.CallState{calls.StateRinging, calls.StateDisconnected},
			wantPhone:  calls.ReasonCanceled, wantAgent: &calls.ReasonCanceled,
		},
		{
			name: "nobody answers", connected: true,
			act: func(t *testing.T, f *callstest.Fixture, in calls.IncomingCall, _ calls.Call) {
				f.Clock.Advance(calls.DefaultRingTimeout)
			},
			wantStates: []calls.CallState{calls.StateRinging, calls.StateDisconnected},
			wantPhone:  calls.ReasonNoAnswer, wantAgent: &calls.ReasonNoAnswer,
		},
		{
			name:       "the agent is not connected",
			wantStates: []calls.CallState{calls.StateDisconnected},
			wantPhone:  calls.ReasonNotConnected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := callstest.New(t, calls.Config{})
			if tt.connected {
				f.Connect(t, alice)
			}
			ln := &line{}
			pc, err := f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: ln})
			if err != nil {
				t.Fatal(err)
			}
			var in calls.IncomingCall
			if tt.connected {
				in = incoming(t, f, alice)
				if in.CallerInfo != phone {
					t.Errorf("incoming call's caller = %+v, want %+v", in.CallerInfo, phone)
				}
			}
			if tt.act != nil {
				tt.act(t, f, in, pc)
			}
			if got := ln.states(); !slices.Equal(got, tt.wantStates) {
				t.Errorf("line heard states %v, want %v", got, tt.wantStates)
			}
			if got := ln.last().CallEndReason; got == nil || got.Code != tt.wantPhone.Code || got.SubCode != tt.wantPhone.SubCode {
				t.Errorf("phone's call ended %+v, want %+v", got, tt.wantPhone)
			}
			wantEnded(t, f, pc.ID, tt.wantPhone)
			if tt.wantAgent != nil {
				wantEnded(t, f, in.ID, *tt.wantAgent)
			}
		})
	}
}

// TestPhoneCallsFromOneNumber: two calls from one number are two phones;
// neither holds the other, while the agent's single-active-call rule
// holds the first when it accepts the second.
func TestPhoneCallsFromOneNumber(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, bob)
	l1, l2 := &line{}, &line{}
	p1 := mustCall(t)(f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: l1}))
	in1 := incoming(t, f, alice)
	mustCall(t)(f.Accept(ctx, alice, in1.ID))
	p2 := mustCall(t)(f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: l2}))
	in, err := f.ListIncoming(ctx, alice)
	if err != nil || len(in) != 1 {
		t.Fatalf("ListIncoming = %v, %v; want the second call", in, err)
	}
	mustCall(t)(f.Accept(ctx, alice, in[0].ID))
	wantState(t, f, alice, in1.ID, calls.StateLocalHold)
	wantState(t, f, alice, in[0].ID, calls.StateConnected)
	if got := l1.last().State; got != calls.StateRemoteHold {
		t.Errorf("first phone's call: %s, want RemoteHold (the agent held it)", got)
	}
	if got := l2.last().State; got != calls.StateConnected {
		t.Errorf("second phone's call: %s, want Connected", got)
	}
	if err := f.EndPhoneCall(ctx, p2.ID, calls.ReasonHungUp); err != nil {
		t.Fatal(err)
	}
	if got := l1.last().State; got == calls.StateDisconnected {
		t.Errorf("first phone's call ended with the second")
	}
	if err := f.EndPhoneCall(ctx, p1.ID, calls.ReasonHungUp); err != nil {
		t.Fatal(err)
	}
	if err := f.EndPhoneCall(ctx, p1.ID, calls.ReasonHungUp); err != nil {
		t.Errorf("ending an ended phone call: %v, want nil", err)
	}
	if _, err := f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: calls.CallerInfo{Identifier: bob.Identifier}, Callee: alice.Identifier, Line: &line{}}); calls.ErrorCode(err) != calls.CodeInvalidPhoneNumber {
		t.Errorf("a phone call from a Communication Services user: %v, want invalid_phone_number", err)
	}
}

// network is a calls.PhoneNetwork that keeps the lines it dialed.
type network struct {
	mu    sync.Mutex
	calls []calls.Call
	lines []*line
}

func (n *network) Dial(c calls.Call) calls.PhoneLine {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := &line{}
	n.calls = append(n.calls, c)
	n.lines = append(n.lines, l)
	return l
}

func (n *network) dialed(t *testing.T) (calls.Call, *line) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.calls) != 1 {
		t.Fatalf("dialed %d calls, want 1", len(n.calls))
	}
	return n.calls[0], n.lines[0]
}

// TestPhoneCallOut: an agent's call to a phone number leaves through the
// phone network with the alternateCallerId as caller id; the network's
// progress, answer and failures become the agent's states and end
// reasons, and the agent's hang-up or the ring timeout reach the line.
func TestPhoneCallOut(t *testing.T) {
	busy := calls.EndReason{Code: 486, Message: "busy"}
	tests := []struct {
		name       string
		act        func(t *testing.T, f *callstest.Fixture, agentCall, phoneCall string)
		wantAgent  []calls.CallState
		agentEnd   *calls.EndReason
		phoneEnd   *calls.EndReason
		phoneHeard calls.CallState // the last state the line heard
	}{
		{
			name: "early media, answered, the phone hangs up",
			act: func(t *testing.T, f *callstest.Fixture, ac, pc string) {
				if err := f.PhoneProgress(ctx, pc, true); err != nil {
					t.Fatal(err)
				}
				wantState(t, f, alice, ac, calls.StateEarlyMedia)
				if err := f.PhoneAnswered(ctx, pc); err != nil {
					t.Fatal(err)
				}
				c := get(t, f, alice, ac)
				if c.State != calls.StateConnected || c.RemoteParticipants[0].State != calls.ParticipantConnected {
					t.Fatalf("answered call %+v, want Connected with the phone Connected", c)
				}
				if err := f.PhoneAnswered(ctx, pc); calls.ErrorCode(err) != calls.CodeInvalidState {
					t.Errorf("answering twice: %v, want invalid_state", err)
				}
				if err := f.EndPhoneCall(ctx, pc, calls.ReasonHungUp); err != nil {
					t.Fatal(err)
				}
			},
			agentEnd: &calls.ReasonRemoteHungUp, phoneEnd: &calls.ReasonHungUp, phoneHeard: calls.StateDisconnected,
		},
		{
			name: "busy",
			act: func(t *testing.T, f *callstest.Fixture, ac, pc string) {
				if err := f.PhoneProgress(ctx, pc, false); err != nil {
					t.Fatal(err)
				}
				if err := f.EndPhoneCall(ctx, pc, busy); err != nil {
					t.Fatal(err)
				}
			},
			agentEnd: &busy, phoneEnd: &busy, phoneHeard: calls.StateDisconnected,
		},
		{
			name: "the agent hangs up before the answer",
			act: func(t *testing.T, f *callstest.Fixture, ac, pc string) {
				mustCall(t)(f.HangUp(ctx, alice, ac, false))
			},
			agentEnd: &calls.ReasonHungUp, phoneEnd: &calls.ReasonCanceled, phoneHeard: calls.StateDisconnected,
		},
		{
			name: "nobody answers",
			act: func(t *testing.T, f *callstest.Fixture, ac, pc string) {
				f.Clock.Advance(calls.DefaultRingTimeout)
			},
			agentEnd: &calls.ReasonNoAnswer, phoneEnd: &calls.ReasonNoAnswer, phoneHeard: calls.StateDisconnected,
		},
		{
			name: "answered, the agent hangs up",
			act: func(t *testing.T, f *callstest.Fixture, ac, pc string) {
				if err := f.PhoneAnswered(ctx, pc); err != nil {
					t.Fatal(err)
				}
				mustCall(t)(f.HangUp(ctx, alice, ac, false))
			},
			agentEnd: &calls.ReasonHungUp, phoneEnd: &calls.ReasonRemoteHungUp, phoneHeard: calls.StateDisconnected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			net := &network{}
			f := callstest.New(t, calls.Config{Phones: net})
			f.Connect(t, alice)
			alt := calls.PhoneNumber("+14255550100")
			ac := mustCall(t)(f.StartCall(ctx, alice, calls.StartCallRequest{
				Participants: []calls.Identifier{phone.Identifier}, AlternateCallerID: &alt}))
			if ac.State != calls.StateRinging {
				t.Errorf("the agent's call is %s, want Ringing", ac.State)
			}
			pc, ln := net.dialed(t)
			if pc.AgentID != phone.Identifier.RawID() || pc.CallerInfo.Identifier != alt {
				t.Errorf("dialed %s from %+v, want %s from %s", pc.AgentID, pc.CallerInfo, phone.Identifier.RawID(), alt.RawID())
			}
			tt.act(t, f, ac.ID, pc.ID)
			wantEnded(t, f, ac.ID, *tt.agentEnd)
			wantEnded(t, f, pc.ID, *tt.phoneEnd)
			if got := ln.last().State; got != tt.phoneHeard {
				t.Errorf("the line last heard %s, want %s", got, tt.phoneHeard)
			}
		})
	}
}

// TestPhoneHold: a phone holding its call puts the agent's side in
// RemoteHold; resuming while the agent talks on another call puts it in
// LocalHold, as the single-active-call rule says.
func TestPhoneHold(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	f.Connect(t, bob)
	ln := &line{}
	pc := mustCall(t)(f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: ln}))
	in := incoming(t, f, alice)
	mustCall(t)(f.Accept(ctx, alice, in.ID))
	if err := f.PhoneHold(ctx, pc.ID, true); err != nil {
		t.Fatal(err)
	}
	wantState(t, f, alice, in.ID, calls.StateRemoteHold)
	if got := get(t, f, alice, in.ID).RemoteParticipants[0].State; got != calls.ParticipantHold {
		t.Errorf("the phone participant is %s, want Hold", got)
	}
	// alice takes another call while the phone holds.
	other, _ := connect(t, f, bob, alice)
	_ = other
	if err := f.PhoneHold(ctx, pc.ID, false); err != nil {
		t.Fatal(err)
	}
	wantState(t, f, alice, in.ID, calls.StateLocalHold)
	if err := f.PhoneHold(ctx, "nope", true); calls.ErrorCode(err) != calls.CodeCallNotFound {
		t.Errorf("PhoneHold of no call: %v, want call_not_found", err)
	}
}

// TestPhoneUnmutes: a phone muted by a supervisor keys *6 and is unmuted,
// with itself as the actor of the change; *6 when not muted, or other
// tones, change nothing.
func TestPhoneUnmutes(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	pc := mustCall(t)(f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: &line{}}))
	in := incoming(t, f, alice)
	mustCall(t)(f.Accept(ctx, alice, in.ID))
	muted := func() bool { return get(t, f, alice, in.ID).RemoteParticipants[0].IsMuted }
	tests := []struct {
		name  string
		mute  bool
		tones []string // handed over one string at a time
		want  bool     // muted afterwards
	}{
		{name: "*6 unmutes", mute: true, tones: []string{"*6"}, want: false},
		{name: "*6 across two reports", mute: true, tones: []string{"12*", "6"}, want: false},
		{name: "other tones do not", mute: true, tones: []string{"6*", "#", "*7"}, want: true},
		{name: "*6 when not muted does nothing", tones: []string{"*6"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mute {
				if _, err := f.MuteParticipant(ctx, sup, in.ID, phone.Identifier.RawID()); err != nil {
					t.Fatal(err)
				}
			}
			f.Publisher.Reset()
			for _, tones := range tt.tones {
				if err := f.PhoneTones(ctx, pc.ID, tones); err != nil {
					t.Fatal(err)
				}
			}
			if got := muted(); got != tt.want {
				t.Fatalf("muted = %v, want %v", got, tt.want)
			}
			if tt.mute && !tt.want {
				var actor *calls.Actor
				for _, ev := range f.Publisher.Events(alice.Identifier.RawID()) {
					if ev.Type == calls.EventIsMutedChanged {
						actor = ev.Actor
					}
				}
				if actor == nil || actor.RawID != phone.Identifier.RawID() {
					t.Errorf("isMutedChanged actor %+v, want the phone", actor)
				}
			}
			if tt.want {
				_ = f.PhoneTones(ctx, pc.ID, "*6") // leave it unmuted for the next case
			}
		})
	}
}

// toneLine is a line that keeps the tones it is asked to send.
type toneLine struct {
	line
	sent []string
}

func (l *toneLine) SendTones(tones string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, tones)
}

// TestSendTones: tones on the agent's active call reach the phone's line;
// malformed tones and a call that is not active are refused.
func TestSendTones(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	f.Connect(t, alice)
	ln := &toneLine{}
	mustCall(t)(f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: ln}))
	in := incoming(t, f, alice)
	if _, err := f.SendTones(ctx, alice, in.ID, "1"); calls.ErrorCode(err) != calls.CodeInvalidState {
		t.Errorf("tones on a ringing call: %v, want invalid_state", err)
	}
	mustCall(t)(f.Accept(ctx, alice, in.ID))
	for _, bad := range []string{"", "12x", strings.Repeat("1", 65)} {
		if _, err := f.SendTones(ctx, alice, in.ID, bad); calls.ErrorCode(err) != calls.CodeInvalidRequest {
			t.Errorf("tones %q: %v, want invalid_request", bad, err)
		}
	}
	mustCall(t)(f.SendTones(ctx, alice, in.ID, "12*#a"))
	mustCall(t)(f.Hold(ctx, alice, in.ID))
	if _, err := f.SendTones(ctx, alice, in.ID, "3"); calls.ErrorCode(err) != calls.CodeInvalidState {
		t.Errorf("tones on a held call: %v, want invalid_state", err)
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if !slices.Equal(ln.sent, []string{"12*#A"}) {
		t.Errorf("the line was sent %q, want [12*#A]", ln.sent)
	}
}
