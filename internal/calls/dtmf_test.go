package calls_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// dtmfOf is what was recorded of call id's dtmf events, each as
// "actorKind:actorRawId participant count", in order.
func dtmfOf(t *testing.T, f *callstest.Fixture, id string) []string {
	t.Helper()
	var out []string
	for _, r := range f.Store.Records(id) {
		for _, ev := range r.Events {
			if ev.Type != calls.EventDTMF {
				continue
			}
			d, ok := ev.Data.(calls.DTMFData)
			if !ok || ev.Actor == nil {
				t.Fatalf("dtmf event of %s: data %T, actor %v", id, ev.Data, ev.Actor)
			}
			out = append(out, string(ev.Actor.Kind)+":"+ev.Actor.RawID+" "+d.Participant+" "+strings.Repeat("#", d.Count))
		}
	}
	return out
}

// TestDTMFTimeline: tones an agent sends (SendDTMF, SendTones) and tones
// a phone keys (PhoneTones) are in the keyer's call's timeline and in
// those of the others who hear them, with the keyer as the actor and the
// count of tones; no event or record carries the digits; a monitoring
// supervisor's call has them too; tones of a phone not yet answered are
// not recorded.
func TestDTMFTimeline(t *testing.T) {
	const card = "4111111111111111#" // what a timeline must never keep
	aliceRaw, sueRaw, phoneRaw := alice.Identifier.RawID(), sup.Identifier.RawID(), phone.Identifier.RawID()
	count := strings.Repeat("#", len(card))

	t.Run("agent to agent", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		for _, p := range []calls.Principal{alice, bob, sup} {
			f.Connect(t, p)
		}
		ac, bc := connect(t, f, alice, bob)
		mon := mustCall(t)(f.Monitor(ctx, sup, ac.ID, calls.MonitorRequest{Mode: calls.MonitorListen}))
		mustCall(t)(f.SendDTMF(ctx, alice, ac.ID, card))
		mustCall(t)(f.SendTones(ctx, alice, ac.ID, "12")) // no phone to hear: recorded all the same

		if got, want := f.Media.Tones(), []string{ac.ServerCallID + " " + aliceRaw + " " + card}; !slices.Equal(got, want) {
			t.Errorf("the media plane played %q, want %q", got, want)
		}
		for _, tt := range []struct {
			who  string
			call string
			want []string
		}{
			{"alice (who sent them)", ac.ID, []string{"agent:" + aliceRaw + " " + aliceRaw + " " + count, "agent:" + aliceRaw + " " + aliceRaw + " ##"}},
			{"bob", bc.ID, []string{"remote:" + aliceRaw + " " + aliceRaw + " " + count, "remote:" + aliceRaw + " " + aliceRaw + " ##"}},
			{"sue (listening)", mon.ID, []string{"remote:" + aliceRaw + " " + aliceRaw + " " + count, "remote:" + aliceRaw + " " + aliceRaw + " ##"}},
		} {
			if got := dtmfOf(t, f, tt.call); !slices.Equal(got, tt.want) {
				t.Errorf("%s's timeline has dtmf %q, want %q", tt.who, got, tt.want)
			}
		}
		if got := f.Publisher.Types(sueRaw, mon.ID); !slices.Contains(got, calls.EventDTMF) {
			t.Errorf("sue was told %v of her monitor call, want dtmf among them", got)
		}
		noDigits(t, f, card)
	})

	t.Run("a phone keys", func(t *testing.T) {
		f := callstest.New(t, calls.Config{})
		f.Connect(t, alice)
		pc := mustCall(t)(f.StartPhoneCall(ctx, calls.PhoneCallRequest{Caller: phone, Callee: alice.Identifier, Line: &line{}}))
		in := incoming(t, f, alice)
		if err := f.PhoneTones(ctx, pc.ID, "99"); err != nil { // ringing: not recorded
			t.Fatal(err)
		}
		mustCall(t)(f.Accept(ctx, alice, in.ID))
		if err := f.PhoneTones(ctx, pc.ID, card); err != nil {
			t.Fatal(err)
		}
		if err := f.PhoneTones(ctx, pc.ID, "x"); err != nil { // no tone: nothing
			t.Fatal(err)
		}
		if got, want := dtmfOf(t, f, in.ID), []string{"remote:" + phoneRaw + " " + phoneRaw + " " + count}; !slices.Equal(got, want) {
			t.Errorf("alice's timeline has dtmf %q, want %q", got, want)
		}
		if got, want := dtmfOf(t, f, pc.ID), []string{"agent:" + phoneRaw + " " + phoneRaw + " " + count}; !slices.Equal(got, want) {
			t.Errorf("the phone's call has dtmf %q, want %q", got, want)
		}
		noDigits(t, f, card)
	})
}

// noDigits fails when an event published or recorded carries digits.
func noDigits(t *testing.T, f *callstest.Fixture, digits string) {
	t.Helper()
	for _, ev := range f.Publisher.Events("") {
		if b, _ := json.Marshal(ev); strings.Contains(string(b), digits[:8]) {
			t.Errorf("event %s carries the digits: %s", ev.Type, b)
		}
	}
	for _, r := range f.Store.Records("") {
		if b, _ := json.Marshal(r); strings.Contains(string(b), digits[:8]) {
			t.Errorf("a record of %s carries the digits: %s", r.Call.ID, b)
		}
	}
}
