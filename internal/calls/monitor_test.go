package calls_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

var customer = calls.Principal{Identifier: calls.CommunicationUser("cust"), DisplayName: "cust", Role: calls.RoleCaller}

// mentions reports whether any of the events names rawID (as a
// participant, in their data, in any way).
func mentions(evs []calls.Event, rawID string) bool {
	for _, ev := range evs {
		switch d := ev.Data.(type) {
		case calls.ParticipantsUpdatedData:
			for _, p := range slices.Concat(d.Added, d.Removed) {
				if p.RawID == rawID {
					return true
				}
			}
		case calls.MonitorChangedData:
			return true
		case calls.CallsUpdatedData:
			for _, c := range slices.Concat(d.Added, d.Removed) {
				for _, p := range c.RemoteParticipants {
					if p.RawID == rawID {
						return true
					}
				}
			}
		case calls.SpeakingData:
			if d.Participant == rawID {
				return true
			}
		case calls.ParticipantStateData:
			if d.Participant == rawID {
				return true
			}
		}
	}
	return false
}

func participantIDs(c calls.Call) []string {
	var out []string
	for _, p := range c.RemoteParticipants {
		out = append(out, p.RawID+":"+string(p.MonitorMode))
	}
	slices.Sort(out)
	return out
}

// routeOf is the media member of call id in the last routes.
func routeOf(t *testing.T, f *callstest.Fixture, id string) calls.MediaMember {
	t.Helper()
	for _, r := range f.Media.Routes() {
		for _, m := range r.Members {
			if m.CallID == id {
				return m
			}
		}
	}
	t.Fatalf("no media member for call %s", id)
	return calls.MediaMember{}
}

// TestMonitor walks a supervisor through listen, whisper, barge, whisper
// and leave on a customer's call to an agent: who is told, how the audio
// is routed, her single-active rule, and the agent's call's timeline.
func TestMonitor(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, sup, bob} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	supOwn, _ := connect(t, f, sup, bob) // her active call, held by the monitor
	f.Publisher.Reset()
	suerRaw, custRaw := sup.Identifier.RawID(), customer.Identifier.RawID()

	mon := mustCall(t)(f.Monitor(ctx, sup, aliceCall.ID, calls.MonitorRequest{Mode: calls.MonitorListen}))
	if mon.State != calls.StateConnected || mon.MonitorMode != calls.MonitorListen || mon.MonitoredCallID != aliceCall.ID {
		t.Fatalf("monitor leg %+v, want Connected, listen, of %s", mon, aliceCall.ID)
	}
	wantState(t, f, sup, supOwn.ID, calls.StateLocalHold)
	if got, want := participantIDs(mon), []string{alice.Identifier.RawID() + ":", custRaw + ":"}; !slices.Equal(got, want) {
		t.Errorf("the supervisor sees %v, want %v", got, want)
	}

	steps := []struct {
		mode          calls.MonitorMode
		custSees      bool
		send          bool
		audience      []string
		custToldAgain bool // the customer is told of a change
	}{
		{calls.MonitorListen, false, false, nil, false},
		{calls.MonitorWhisper, false, true, []string{aliceCall.ID}, false},
		{calls.MonitorBarge, true, true, nil, true},
		{calls.MonitorWhisper, false, true, []string{aliceCall.ID}, true},
		{calls.MonitorListen, false, false, nil, false},
	}
	for i, st := range steps {
		f.Publisher.Reset()
		if i > 0 {
			mon = mustCall(t)(f.Monitor(ctx, sup, aliceCall.ID, calls.MonitorRequest{Mode: st.mode}))
		}
		if got := get(t, f, sup, mon.ID); got.MonitorMode != st.mode || got.State != calls.StateConnected {
			t.Fatalf("step %d: her leg %s %s, want %s Connected", i, got.MonitorMode, got.State, st.mode)
		}
		cust := participantIDs(get(t, f, customer, custCall.ID))
		want := []string{alice.Identifier.RawID() + ":"}
		if st.custSees {
			want = append(want, suerRaw+":"+string(st.mode))
			slices.Sort(want)
		}
		if !slices.Equal(cust, want) {
			t.Errorf("step %d (%s): the customer sees %v, want %v", i, st.mode, cust, want)
		}
		if got := mentions(f.Publisher.Events(custRaw), suerRaw); got != st.custToldAgain {
			t.Errorf("step %d (%s): the customer was told of the supervisor: %v, want %v", i, st.mode, got, st.custToldAgain)
		}
		if got, want := participantIDs(get(t, f, alice, aliceCall.ID)), []string{custRaw + ":", suerRaw + ":" + string(st.mode)}; !slices.Equal(got, want) {
			t.Errorf("step %d (%s): the agent sees %v, want %v", i, st.mode, got, want)
		}
		m := routeOf(t, f, mon.ID)
		if m.Send != st.send || !slices.Equal(m.Audience, st.audience) || !m.Receive {
			t.Errorf("step %d (%s): her media %+v, want send %v, audience %v, receive", i, st.mode, m, st.send, st.audience)
		}
		if a := routeOf(t, f, aliceCall.ID); !a.Send || !a.Receive || a.Audience != nil {
			t.Errorf("step %d: the agent's media %+v, want unchanged", i, a)
		}
	}

	// A customer cannot name her.
	if _, err := f.RemoveParticipant(ctx, customer, custCall.ID, suerRaw); codeOf(err) != calls.CodeParticipantNotFound {
		t.Errorf("the customer removes the listening supervisor: %v, want participant_not_found", err)
	}
	// She leaves; the 1:1 call goes on; her held call comes back per her policy.
	left := mustCall(t)(f.StopMonitor(ctx, sup, aliceCall.ID))
	if left.State != calls.StateDisconnected {
		t.Errorf("after leaving, her monitor leg is %s", left.State)
	}
	wantState(t, f, alice, aliceCall.ID, calls.StateConnected)
	wantState(t, f, customer, custCall.ID, calls.StateConnected)

	// The agent's call's timeline has every action, with who did it.
	var modes []string
	for _, r := range f.Store.Records(aliceCall.ID) {
		for _, ev := range r.Events {
			if ev.Type != calls.EventMonitorChanged {
				continue
			}
			d := ev.Data.(calls.MonitorChangedData)
			if ev.Actor == nil || ev.Actor.Kind != calls.ActorSupervisor || ev.Actor.RawID != suerRaw || d.Supervisor != suerRaw {
				t.Errorf("monitorChanged %+v by %+v, want by supervisor %s", d, ev.Actor, suerRaw)
			}
			modes = append(modes, string(d.OldMode)+">"+string(d.Mode))
		}
	}
	if want := []string{">listen", "listen>whisper", "whisper>barge", "barge>whisper", "whisper>listen", "listen>"}; !slices.Equal(modes, want) {
		t.Errorf("the agent's timeline has monitor changes %v, want %v", modes, want)
	}
	// The customer's history shows her: she barged.
	for _, r := range f.Store.Records(custCall.ID) {
		for _, ev := range r.Events {
			if ev.Type == calls.EventMonitorChanged {
				t.Errorf("the customer's timeline has %+v", ev)
			}
		}
	}
}

// TestMonitorEnds: her monitor leg ends with the call it monitors, and
// never ends the call when she leaves.
func TestMonitorEnds(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, sup} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	mon := mustCall(t)(f.Monitor(ctx, sup, aliceCall.ID, calls.MonitorRequest{Mode: calls.MonitorBarge}))
	mustCall(t)(f.HangUp(ctx, sup, mon.ID, false)) // hanging up her leg is leaving
	wantState(t, f, customer, custCall.ID, calls.StateConnected)
	mon = mustCall(t)(f.Monitor(ctx, sup, aliceCall.ID, calls.MonitorRequest{Mode: calls.MonitorWhisper}))
	mustCall(t)(f.HangUp(ctx, customer, custCall.ID, false))
	if got := f.Publisher.Types(sup.Identifier.RawID(), mon.ID); !slices.Contains(got, calls.EventCallEnded) {
		t.Errorf("her monitor leg had %v after the customer hung up, want callEnded", got)
	}
}

func codeOf(err error) calls.Code {
	var e *calls.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestMonitorErrors(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, sup, bob} {
		f.Connect(t, p)
	}
	_, aliceCall := connect(t, f, customer, alice)
	ringing := mustCall(t)(f.StartCall(ctx, bob, to(alice)))
	offline := callstest.Supervisor("olga")
	tests := []struct {
		name string
		p    calls.Principal
		id   string
		mode calls.MonitorMode
		want calls.Code
	}{
		{"an agent", bob, aliceCall.ID, calls.MonitorListen, calls.CodeForbidden},
		{"a customer", customer, aliceCall.ID, calls.MonitorListen, calls.CodeForbidden},
		{"unknown call", sup, "nope", calls.MonitorListen, calls.CodeCallNotFound},
		{"bad mode", sup, aliceCall.ID, "shout", calls.CodeInvalidRequest},
		{"no mode", sup, aliceCall.ID, "", calls.CodeInvalidRequest},
		{"not live", sup, ringing.ID, calls.MonitorListen, calls.CodeInvalidState},
		{"no event connection", offline, aliceCall.ID, calls.MonitorListen, calls.CodeInvalidState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Monitor(ctx, tt.p, tt.id, calls.MonitorRequest{Mode: tt.mode})
			if got := codeOf(err); got != tt.want {
				t.Errorf("Monitor: %v, want %s", err, tt.want)
			}
		})
	}
	if _, err := f.StopMonitor(ctx, sup, aliceCall.ID); codeOf(err) != calls.CodeInvalidState {
		t.Errorf("StopMonitor without monitoring: %v, want invalid_state", err)
	}
}

// TestMonitorHolds: her monitor leg takes part in her single-active rule
// and in nobody else's: another call of hers holds it (she hears and sends
// nothing there), and the agent and the customer stay Connected; the
// agent holding the call does not make her leg RemoteHold.
func TestMonitorHolds(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, sup, bob} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	mon := mustCall(t)(f.Monitor(ctx, sup, aliceCall.ID, calls.MonitorRequest{Mode: calls.MonitorBarge}))

	supOwn, _ := connect(t, f, sup, bob)
	wantState(t, f, sup, mon.ID, calls.StateLocalHold)
	wantState(t, f, sup, supOwn.ID, calls.StateConnected)
	wantState(t, f, alice, aliceCall.ID, calls.StateConnected)
	wantState(t, f, customer, custCall.ID, calls.StateConnected)
	if m := routeOf(t, f, mon.ID); m.Send || m.Receive || m.Held {
		t.Errorf("her held monitor leg's media %+v, want neither send nor receive nor hold tone", m)
	}

	mustCall(t)(f.Resume(ctx, sup, mon.ID))
	wantState(t, f, sup, supOwn.ID, calls.StateLocalHold)
	wantState(t, f, sup, mon.ID, calls.StateConnected)
	mustCall(t)(f.Hold(ctx, alice, aliceCall.ID))
	wantState(t, f, customer, custCall.ID, calls.StateRemoteHold)
	wantState(t, f, sup, mon.ID, calls.StateConnected)
	if m := routeOf(t, f, aliceCall.ID); m.Send {
		t.Errorf("the agent holds and still sends: %+v", m)
	}
}

// TestMonitorOnlySupervisorsActOnHer: the agent sees her but may not mute
// or remove her, nor does the agent's mute-all; a customer cannot even
// name her in whisper, and may not act on her in barge; another
// supervisor may.
func TestMonitorOnlySupervisorsActOnHer(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, sup, carol} {
		f.Connect(t, p)
	}
	custCall, aliceCall := mustCall(t)(f.StartCall(ctx, customer, calls.StartCallRequest{Participants: []calls.Identifier{alice.Identifier, carol.Identifier}})), calls.Call{}
	for _, p := range []calls.Principal{alice, carol} {
		c := mustCall(t)(f.Accept(ctx, p, incoming(t, f, p).ID))
		if p == alice {
			aliceCall = c
		}
	}
	mon := mustCall(t)(f.Monitor(ctx, sup, aliceCall.ID, calls.MonitorRequest{Mode: calls.MonitorWhisper}))
	raw := sup.Identifier.RawID()
	if _, err := f.MuteParticipant(ctx, alice, aliceCall.ID, raw); codeOf(err) != calls.CodeForbidden {
		t.Errorf("the agent mutes her: %v, want forbidden", err)
	}
	if _, err := f.RemoveParticipant(ctx, alice, aliceCall.ID, raw); codeOf(err) != calls.CodeForbidden {
		t.Errorf("the agent removes her: %v, want forbidden", err)
	}
	if _, err := f.MuteParticipant(ctx, customer, custCall.ID, raw); codeOf(err) != calls.CodeParticipantNotFound {
		t.Errorf("the customer mutes her in whisper: %v, want participant_not_found", err)
	}
	mustCall(t)(f.MuteAll(ctx, alice, aliceCall.ID))
	mustCall(t)(f.MuteAll(ctx, customer, custCall.ID))
	if got := get(t, f, sup, mon.ID); got.IsMuted {
		t.Error("a mute-all by the agent or the customer muted the supervisor")
	}
	mustCall(t)(f.Monitor(ctx, sup, aliceCall.ID, calls.MonitorRequest{Mode: calls.MonitorBarge}))
	if _, err := f.RemoveParticipant(ctx, customer, custCall.ID, raw); codeOf(err) != calls.CodeForbidden {
		t.Errorf("the customer removes her in barge: %v, want forbidden", err)
	}
	other := callstest.Supervisor("sam")
	f.Connect(t, other)
	if _, err := f.MuteParticipant(ctx, other, aliceCall.ID, raw); err != nil {
		t.Errorf("another supervisor mutes her: %v", err)
	}
}
