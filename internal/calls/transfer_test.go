package calls_test

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// transferSteps is the steps of the transferUpdated events of p's call id,
// with who did them.
func transferSteps(f *callstest.Fixture, p calls.Principal, id string) []string {
	var out []string
	for _, ev := range f.Publisher.Events(p.Identifier.RawID()) {
		if ev.Type == calls.EventTransferUpdated && ev.CallID == id {
			d := ev.Data.(calls.TransferData)
			out = append(out, string(d.Step)+" by "+string(ev.Actor.Kind)+" "+ev.Actor.RawID)
		}
	}
	return out
}

func rawIDs(c calls.Call) []string {
	var out []string
	for _, p := range c.RemoteParticipants {
		out = append(out, p.RawID)
	}
	slices.Sort(out)
	return out
}

func target(p calls.Principal) *calls.Identifier { id := p.Identifier; return &id }

// TestBlindTransfer: the agent hands the customer's call to bob and leaves
// it (0/7015); the customer's call goes on (same id) ringing bob, and once
// he answers they are Connected; both are told who did it.
func TestBlindTransfer(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, bob} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	f.Publisher.Reset()
	got := mustCall(t)(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: target(bob), Mode: calls.TransferBlind}))
	if got.State != calls.StateDisconnected || got.CallEndReason == nil || *got.CallEndReason != calls.ReasonTransferred {
		t.Fatalf("the agent's call after a blind transfer: %s %+v, want Disconnected 0/7015", got.State, got.CallEndReason)
	}
	wantEnded(t, f, aliceCall.ID, calls.ReasonTransferred)
	in := incoming(t, f, bob)
	if in.ServerCallID != custCall.ServerCallID || in.CallerInfo.Identifier.RawID() != customer.Identifier.RawID() {
		t.Errorf("bob's incoming call %+v: want the customer's conversation, from the customer", in)
	}
	if c := get(t, f, customer, custCall.ID); !slices.Equal(rawIDs(c), []string{bob.Identifier.RawID()}) {
		t.Errorf("the customer's call has %v, want bob ringing", rawIDs(c))
	}
	mustCall(t)(f.Accept(ctx, bob, in.ID))
	wantState(t, f, customer, custCall.ID, calls.StateConnected)
	wantState(t, f, bob, in.ID, calls.StateConnected)
	for _, m := range []calls.MediaMember{routeOf(t, f, custCall.ID), routeOf(t, f, in.ID)} {
		if !m.Send || !m.Receive {
			t.Errorf("after the transfer %s does not send and receive: %+v", m.RawID, m)
		}
	}
	want := []string{"blind by remote " + alice.Identifier.RawID()}
	if s := transferSteps(f, customer, custCall.ID); !slices.Equal(s, want) {
		t.Errorf("the customer was told %v, want %v", s, want)
	}
	if s := transferSteps(f, alice, aliceCall.ID); !slices.Equal(s, []string{"blind by agent " + alice.Identifier.RawID()}) {
		t.Errorf("the agent's timeline: %v", s)
	}
}

// TestConsultTransferComplete: the consult call holds the customer's call
// in the same step (never two Connected calls), the customer is routed
// the hold (alice does not send to her), and completing joins the
// customer and bob in the customer's conversation while both of alice's
// calls end 0/7015.
func TestConsultTransferComplete(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, bob} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	f.Publisher.Reset()
	cons := mustCall(t)(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: target(bob), Mode: calls.TransferConsult}))
	if cons.ID == aliceCall.ID || cons.Direction != calls.Outgoing || cons.State != calls.StateRinging {
		t.Fatalf("consult call %+v: want a new outgoing call, ringing", cons)
	}
	wantState(t, f, alice, aliceCall.ID, calls.StateLocalHold)
	wantState(t, f, customer, custCall.ID, calls.StateRemoteHold)
	if cons.ConsultCallID != aliceCall.ID || get(t, f, alice, aliceCall.ID).ConsultCallID != cons.ID {
		t.Errorf("the consult call and the customer's call do not name each other (consultCallId)")
	}
	if get(t, f, customer, custCall.ID).ConsultCallID != "" {
		t.Errorf("the customer's own call names the agent's consult call")
	}
	for _, ev := range f.Publisher.Events(alice.Identifier.RawID()) {
		if ev.Type == calls.EventStateChanged && ev.Data.(calls.StateChangedData).State == calls.StateConnected {
			t.Errorf("alice's call %s became Connected during the consult's start", ev.CallID)
		}
	}
	wantCode(t, second(f.CompleteTransfer(ctx, alice, aliceCall.ID)), calls.CodeInvalidState) // bob has not answered
	in := incoming(t, f, bob)
	mustCall(t)(f.Accept(ctx, bob, in.ID))
	wantState(t, f, alice, cons.ID, calls.StateConnected)
	wantState(t, f, alice, aliceCall.ID, calls.StateLocalHold)
	if n := activeCalls(t, f, alice); n != 1 {
		t.Fatalf("alice has %d active calls during the consult", n)
	}
	if m := routeOf(t, f, aliceCall.ID); m.Send || !m.Held {
		t.Errorf("during the consult alice's customer leg %+v: want held, not sending", m)
	}
	if m := routeOf(t, f, in.ID); m.Send && slices.ContainsFunc(f.Media.Routes(), func(r calls.Route) bool {
		return r.ServerCallID == custCall.ServerCallID && slices.ContainsFunc(r.Members, func(x calls.MediaMember) bool { return x.CallID == in.ID })
	}) {
		t.Errorf("bob is in the customer's conversation during the consult")
	}

	f.Publisher.Reset()
	done := mustCall(t)(f.CompleteTransfer(ctx, alice, cons.ID)) // either of alice's calls names it
	if done.ID != aliceCall.ID || done.CallEndReason == nil || *done.CallEndReason != calls.ReasonTransferred {
		t.Fatalf("complete answered %+v", done)
	}
	wantEnded(t, f, aliceCall.ID, calls.ReasonTransferred)
	wantEnded(t, f, cons.ID, calls.ReasonTransferred)
	cust, bobCall := get(t, f, customer, custCall.ID), get(t, f, bob, in.ID)
	if cust.State != calls.StateConnected || bobCall.State != calls.StateConnected {
		t.Fatalf("after completion: customer %s, bob %s; want both Connected", cust.State, bobCall.State)
	}
	if !slices.Equal(rawIDs(cust), []string{bob.Identifier.RawID()}) || !slices.Equal(rawIDs(bobCall), []string{customer.Identifier.RawID()}) {
		t.Errorf("after completion the customer has %v and bob %v", rawIDs(cust), rawIDs(bobCall))
	}
	if bobCall.ServerCallID != cust.ServerCallID {
		t.Errorf("bob's call is in conversation %s, the customer's in %s", bobCall.ServerCallID, cust.ServerCallID)
	}
	for _, ev := range f.Publisher.Events(bob.Identifier.RawID()) {
		if d, ok := ev.Data.(calls.TransferData); ok && d.ServerCallID != cust.ServerCallID {
			t.Errorf("bob was told his call moved to %q, want %s", d.ServerCallID, cust.ServerCallID)
		}
	}
	for _, id := range []string{custCall.ID, in.ID} {
		if m := routeOf(t, f, id); !m.Send || !m.Receive || m.Held {
			t.Errorf("after completion %s: %+v, want sending and receiving", m.RawID, m)
		}
	}
	a := alice.Identifier.RawID()
	for _, c := range []struct {
		p    calls.Principal
		id   string
		want string
	}{
		{customer, custCall.ID, "completed by remote " + a},
		{bob, in.ID, "completed by remote " + a},
		{alice, aliceCall.ID, "completed by agent " + a},
		{alice, cons.ID, "completed by agent " + a},
	} {
		if s := transferSteps(f, c.p, c.id); !slices.Equal(s, []string{c.want}) {
			t.Errorf("%s's call %s was told %v, want %s", c.p.Identifier.RawID(), c.id, s, c.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestConsultTransferCancel: cancel ends the consult call (bob: 0/5000)
// and brings alice back to the customer, Connected, in one step.
func TestConsultTransferCancel(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, bob} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	cons := mustCall(t)(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: target(bob), Mode: calls.TransferConsult}))
	in := incoming(t, f, bob)
	mustCall(t)(f.Accept(ctx, bob, in.ID))
	back := mustCall(t)(f.CancelTransfer(ctx, alice, aliceCall.ID))
	if back.ID != aliceCall.ID || back.State != calls.StateConnected {
		t.Fatalf("cancel answered %s %s, want the customer's call Connected", back.ID, back.State)
	}
	wantEnded(t, f, cons.ID, calls.ReasonHungUp)
	wantEnded(t, f, in.ID, calls.ReasonRemoteHungUp)
	wantState(t, f, customer, custCall.ID, calls.StateConnected)
	if n := activeCalls(t, f, alice); n != 1 {
		t.Errorf("alice has %d active calls after the cancel", n)
	}
	if m := routeOf(t, f, aliceCall.ID); !m.Send || m.Held {
		t.Errorf("after the cancel alice's leg %+v: want sending", m)
	}
	wantCode(t, second(f.CancelTransfer(ctx, alice, aliceCall.ID)), calls.CodeInvalidState)
	if s := transferSteps(f, alice, aliceCall.ID); !slices.Equal(s, []string{"consult by agent " + alice.Identifier.RawID(), "canceled by agent " + alice.Identifier.RawID()}) {
		t.Errorf("alice's timeline %v", s)
	}
}

// TestMerge: alice's held customer call and her active call with bob
// become one group call (the customer's conversation, alice Connected in
// it), and the call with bob ends 0/7016; bob keeps his call, now with
// both.
func TestMerge(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, bob} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	toBob, bobCall := connect(t, f, alice, bob)
	wantState(t, f, alice, aliceCall.ID, calls.StateLocalHold)
	merged := mustCall(t)(f.Merge(ctx, alice, aliceCall.ID, calls.MergeRequest{CallID: toBob.ID}))
	if merged.Kind != calls.Group || merged.State != calls.StateConnected {
		t.Fatalf("merged call %s %s, want a Connected group call", merged.Kind, merged.State)
	}
	if got, want := rawIDs(merged), []string{bob.Identifier.RawID(), customer.Identifier.RawID()}; !slices.Equal(got, want) {
		t.Errorf("merged call has %v, want %v", got, want)
	}
	wantEnded(t, f, toBob.ID, calls.ReasonMerged)
	if n := activeCalls(t, f, alice); n != 1 {
		t.Errorf("alice has %d active calls after the merge", n)
	}
	for _, c := range []struct {
		p  calls.Principal
		id string
	}{{customer, custCall.ID}, {bob, bobCall.ID}} {
		got := get(t, f, c.p, c.id)
		if got.State != calls.StateConnected || len(got.RemoteParticipants) != 2 || got.ServerCallID != merged.ServerCallID {
			t.Errorf("%s after the merge: %s with %v in %s", c.p.Identifier.RawID(), got.State, rawIDs(got), got.ServerCallID)
		}
		if s := transferSteps(f, c.p, c.id); !slices.Equal(s, []string{"merged by remote " + alice.Identifier.RawID()}) {
			t.Errorf("%s was told %v", c.p.Identifier.RawID(), s)
		}
	}
}

// TestTransferErrors: each wrong request answers its code and changes
// nothing.
func TestTransferErrors(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, bob, sup} {
		f.Connect(t, p)
	}
	_, aliceCall := connect(t, f, customer, alice)
	blind := func(p calls.Principal) calls.TransferRequest {
		return calls.TransferRequest{Target: target(p), Mode: calls.TransferBlind}
	}
	cases := []struct {
		name string
		do   func() error
		want calls.Code
	}{
		{"another agent's call", func() error { return second(f.Transfer(ctx, bob, aliceCall.ID, blind(carol))) }, calls.CodeCallNotFound},
		{"a supervisor on an agent's call", func() error { return second(f.Transfer(ctx, sup, aliceCall.ID, blind(bob))) }, calls.CodeForbidden},
		{"unknown call", func() error { return second(f.Transfer(ctx, alice, "nope", blind(bob))) }, calls.CodeCallNotFound},
		{"no mode", func() error {
			return second(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: target(bob)}))
		}, calls.CodeInvalidRequest},
		{"target and queue", func() error {
			return second(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: target(bob), Queue: "q", Mode: calls.TransferBlind}))
		}, calls.CodeInvalidRequest},
		{"no such queue", func() error {
			return second(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Queue: "support", Mode: calls.TransferBlind}))
		}, calls.CodeNotFound},
		{"to herself", func() error { return second(f.Transfer(ctx, alice, aliceCall.ID, blind(alice))) }, calls.CodeInvalidIdentifier},
		{"to the customer", func() error { return second(f.Transfer(ctx, alice, aliceCall.ID, blind(customer))) }, calls.CodeInvalidState},
		{"target not connected", func() error { return second(f.Transfer(ctx, alice, aliceCall.ID, blind(dave))) }, calls.CodeInvalidState},
		{"complete without consult", func() error { return second(f.CompleteTransfer(ctx, alice, aliceCall.ID)) }, calls.CodeInvalidState},
		{"cancel without consult", func() error { return second(f.CancelTransfer(ctx, alice, aliceCall.ID)) }, calls.CodeInvalidState},
		{"complete another agent's", func() error { return second(f.CompleteTransfer(ctx, bob, aliceCall.ID)) }, calls.CodeCallNotFound},
		{"merge with itself", func() error {
			return second(f.Merge(ctx, alice, aliceCall.ID, calls.MergeRequest{CallID: aliceCall.ID}))
		}, calls.CodeInvalidRequest},
		{"merge without callId", func() error { return second(f.Merge(ctx, alice, aliceCall.ID, calls.MergeRequest{})) }, calls.CodeInvalidRequest},
		{"merge an unknown call", func() error {
			return second(f.Merge(ctx, alice, aliceCall.ID, calls.MergeRequest{CallID: "nope"}))
		}, calls.CodeCallNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.do(), c.want) })
	}
	wantState(t, f, alice, aliceCall.ID, calls.StateConnected)

	// Held: not Connected. During a consult: no second transfer, and the
	// consult call is not transferred on its own.
	mustCall(t)(f.Hold(ctx, alice, aliceCall.ID))
	wantCode(t, second(f.Transfer(ctx, alice, aliceCall.ID, blind(bob))), calls.CodeInvalidState)
	mustCall(t)(f.Resume(ctx, alice, aliceCall.ID))
	cons := mustCall(t)(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: target(bob), Mode: calls.TransferConsult}))
	mustCall(t)(f.Accept(ctx, bob, incoming(t, f, bob).ID))
	wantCode(t, second(f.Transfer(ctx, alice, cons.ID, blind(sup))), calls.CodeInvalidState)
	wantCode(t, second(f.Transfer(ctx, alice, aliceCall.ID, blind(sup))), calls.CodeInvalidState)
	// The customer hangs up during the consult: there is nothing to
	// complete.
	custCalls, err := f.ListCalls(ctx, customer, "")
	if err != nil || len(custCalls) != 1 {
		t.Fatalf("customer's calls %v, %v", custCalls, err)
	}
	mustCall(t)(f.HangUp(ctx, customer, custCalls[0].ID, false))
	wantCode(t, second(f.CompleteTransfer(ctx, alice, cons.ID)), calls.CodeInvalidState)
}

// TestBlindTransferToPhone: a blind transfer to a phone number leaves
// through the phone network (the trunk's outbound path) with the
// alternateCallerId shown; the phone's answer connects it to the customer.
func TestBlindTransferToPhone(t *testing.T) {
	net := &network{}
	f := callstest.New(t, calls.Config{Phones: net})
	for _, p := range []calls.Principal{customer, alice} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	req := calls.TransferRequest{Target: &phone.Identifier, Mode: calls.TransferBlind}
	wantCode(t, second(f.Transfer(ctx, alice, aliceCall.ID, req)), calls.CodeAlternateCallerIDRequired)
	alt := calls.PhoneNumber("+14255550100")
	req.AlternateCallerID = &alt
	mustCall(t)(f.Transfer(ctx, alice, aliceCall.ID, req))
	wantEnded(t, f, aliceCall.ID, calls.ReasonTransferred)
	pc, _ := net.dialed(t)
	if pc.CallerInfo.Identifier != alt || pc.ServerCallID != custCall.ServerCallID {
		t.Errorf("dialed %+v in %s, want from %s in the customer's conversation", pc.CallerInfo, pc.ServerCallID, alt.RawID())
	}
	if err := f.PhoneAnswered(ctx, pc.ID); err != nil {
		t.Fatal(err)
	}
	c := get(t, f, customer, custCall.ID)
	if c.State != calls.StateConnected || !slices.Equal(rawIDs(c), []string{phone.Identifier.RawID()}) {
		t.Errorf("the customer's call %s with %v, want Connected with the phone", c.State, rawIDs(c))
	}
}

// TestConsultTransferToSeveral: when the agent added carol to her consult
// call with bob, completing hands the customer to both: the customer's
// call becomes a group call with bob and carol.
func TestConsultTransferToSeveral(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	for _, p := range []calls.Principal{customer, alice, bob, carol} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	cons := mustCall(t)(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: target(bob), Mode: calls.TransferConsult}))
	mustCall(t)(f.Accept(ctx, bob, incoming(t, f, bob).ID))
	if _, err := f.AddParticipant(ctx, alice, cons.ID, calls.AddParticipantRequest{Identifier: carol.Identifier}); err != nil {
		t.Fatal(err)
	}
	mustCall(t)(f.Accept(ctx, carol, incoming(t, f, carol).ID))
	mustCall(t)(f.CompleteTransfer(ctx, alice, aliceCall.ID))
	c := get(t, f, customer, custCall.ID)
	if c.Kind != calls.Group || c.State != calls.StateConnected || !slices.Equal(rawIDs(c), []string{bob.Identifier.RawID(), carol.Identifier.RawID()}) {
		t.Errorf("the customer's call: %s %s with %v, want a Connected group call with bob and carol", c.Kind, c.State, rawIDs(c))
	}
}

// TestConsultTransferToPhone: a consult to a phone number dials out; once
// the phone answers, completing moves the phone's leg into the customer's
// conversation: the line is told its call's new serverCallId with the
// customer as its participant, and the audio route has the phone's own
// endpoint (OwnEndpoint) sending and receiving beside the customer.
func TestConsultTransferToPhone(t *testing.T) {
	net := &network{}
	f := callstest.New(t, calls.Config{Phones: net})
	for _, p := range []calls.Principal{customer, alice} {
		f.Connect(t, p)
	}
	custCall, aliceCall := connect(t, f, customer, alice)
	alt := calls.PhoneNumber("+14255550100")
	mustCall(t)(f.Transfer(ctx, alice, aliceCall.ID, calls.TransferRequest{Target: &phone.Identifier, AlternateCallerID: &alt, Mode: calls.TransferConsult}))
	pc, ln := net.dialed(t)
	if err := f.PhoneAnswered(ctx, pc.ID); err != nil {
		t.Fatal(err)
	}
	mustCall(t)(f.CompleteTransfer(ctx, alice, aliceCall.ID))
	last := ln.last()
	if last.State != calls.StateConnected || last.ServerCallID != custCall.ServerCallID || !slices.Equal(rawIDs(last), []string{customer.Identifier.RawID()}) {
		t.Errorf("the line last heard %s in %s with %v, want Connected in the customer's conversation with the customer", last.State, last.ServerCallID, rawIDs(last))
	}
	if m := routeOf(t, f, pc.ID); !m.OwnEndpoint || !m.Send || !m.Receive {
		t.Errorf("the phone's media member %+v, want its own endpoint, sending and receiving", m)
	}
	if c := get(t, f, customer, custCall.ID); c.State != calls.StateConnected || !slices.Equal(rawIDs(c), []string{phone.Identifier.RawID()}) {
		t.Errorf("the customer's call %s with %v, want Connected with the phone", c.State, rawIDs(c))
	}
}
