package calls_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
	"github.com/switchboard/switchboard/internal/routing"
	"github.com/switchboard/switchboard/internal/store"
)

// statusEvents is the statuses agentStatusChanged told of agent, in order.
func statusEvents(f *callstest.Fixture, agent string) []calls.AgentStatusData {
	var out []calls.AgentStatusData
	for _, ev := range f.Publisher.Events(agent) {
		if ev.Type == calls.EventAgentStatusChanged {
			if !ev.Supervised {
				panic("agentStatusChanged not supervised")
			}
			out = append(out, ev.Data.(calls.AgentStatusData))
		}
	}
	return out
}

func shown(ds []calls.AgentStatusData) []routing.Status {
	out := []routing.Status{}
	for _, d := range ds {
		out = append(out, d.Status)
	}
	return out
}

func wantStatuses(t *testing.T, f *callstest.Fixture, agent string, want ...routing.Status) []calls.AgentStatusData {
	t.Helper()
	got := statusEvents(f, agent)
	if g := shown(got); len(g) != len(want) || !equalStatuses(g, want) {
		t.Fatalf("agentStatusChanged of %s told %v, want %v", agent, g, want)
	}
	return got
}

func equalStatuses(a, b []routing.Status) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAgentStatusLifecycle(t *testing.T) {
	mem := store.NewMemory()
	f := callstest.New(t, calls.Config{Store: mem})
	const a = "8:acs:alice"
	sup := callstest.Supervisor("sue")

	// Connecting makes her Available (Offline before).
	f.Connect(t, alice)
	wantStatuses(t, f, a, routing.Available)
	if st := callstest.Must[calls.AgentStatusData](t)(f.AgentStatusOf(ctx, alice, "")); st.Status != routing.Available {
		t.Errorf("GET status = %s, want Available", st.Status)
	}

	// She goes Away; a supervisor puts her back.
	callstest.Must[calls.AgentStatusData](t)(f.SetStatus(ctx, alice, "", calls.SetStatusRequest{Status: routing.Away}))
	callstest.Must[calls.AgentStatusData](t)(f.SetStatus(ctx, sup, a, calls.SetStatusRequest{Status: routing.Available}))
	evs := wantStatuses(t, f, a, routing.Available, routing.Away, routing.Available)
	if by := evs[1].ChangedBy; by.Kind != calls.ActorAgent || by.RawID != a {
		t.Errorf("Away changed by %+v, want the agent", by)
	}
	if by := evs[2].ChangedBy; by.Kind != calls.ActorSupervisor || by.RawID != "8:acs:sue" || by.DisplayName != "sue" {
		t.Errorf("Available changed by %+v, want the supervisor", by)
	}

	// A call makes her Busy; its end, Available again.
	f.Connect(t, bob)
	ac, _ := connect(t, f, alice, bob)
	wantStatuses(t, f, a, routing.Available, routing.Away, routing.Available, routing.Busy)
	if snap := f.SupervisedSnapshot(); len(snap.Agents) == 0 || statusIn(snap, a) != routing.Busy {
		t.Errorf("supervised snapshot shows %s, want Busy", statusIn(snap, a))
	}
	// WrapUp chosen during the call shows after it.
	callstest.Must[calls.AgentStatusData](t)(f.SetStatus(ctx, alice, "", calls.SetStatusRequest{Status: routing.WrapUp, WrapUpSeconds: 30, CallID: ac.ID}))
	mustCall(t)(f.HangUp(ctx, alice, ac.ID, false))
	evs = wantStatuses(t, f, a, routing.Available, routing.Away, routing.Available, routing.Busy, routing.Busy, routing.WrapUp)
	if evs[4].ChosenStatus != routing.WrapUp || evs[5].WrapUpUntil == nil {
		t.Errorf("wrap-up during the call: %+v then %+v", evs[4], evs[5])
	}
	// She gives the call a wrap-up code.
	w, err := f.RecordWrapUpCode(ctx, alice, ac.ID, "sale")
	if err != nil || w.AgentID != a || w.Code != "sale" {
		t.Fatalf("RecordWrapUpCode = %+v, %v", w, err)
	}
	// The timer ends the wrap-up.
	f.Clock.Advance(29 * time.Second)
	wantStatuses(t, f, a, routing.Available, routing.Away, routing.Available, routing.Busy, routing.Busy, routing.WrapUp)
	f.Clock.Advance(time.Second)
	evs = wantStatuses(t, f, a, routing.Available, routing.Away, routing.Available, routing.Busy, routing.Busy, routing.WrapUp, routing.Available)
	if evs[6].ChangedBy.Kind != calls.ActorSystem {
		t.Errorf("wrap-up end changed by %+v, want the system", evs[6].ChangedBy)
	}

	// The changes are kept, newest first.
	if err := f.FlushStatuses(ctx); err != nil {
		t.Fatal(err)
	}
	kept, err := f.StatusHistory(ctx, sup, calls.StatusFilter{AgentID: a})
	if err != nil {
		t.Fatal(err)
	}
	var keptStatuses []routing.Status
	for i := len(kept) - 1; i >= 0; i-- {
		keptStatuses = append(keptStatuses, kept[i].Status)
	}
	if want := shown(evs); !equalStatuses(keptStatuses, want) || len(keptStatuses) != len(want) {
		t.Errorf("status history %v, want %v", keptStatuses, want)
	}
	if _, err := f.StatusHistory(ctx, alice, calls.StatusFilter{AgentID: "8:acs:bob"}); calls.ErrorCode(err) != calls.CodeForbidden {
		t.Errorf("an agent reading another's status history: %v, want forbidden", err)
	}
}

func statusIn(snap calls.Snapshot, raw string) routing.Status {
	for _, a := range snap.Agents {
		if a.RawID == raw {
			return a.Status
		}
	}
	return ""
}

func TestAgentStatusRefusals(t *testing.T) {
	f := callstest.New(t, calls.Config{Store: store.NewMemory()})
	f.Connect(t, alice)
	tests := []struct {
		name  string
		p     calls.Principal
		agent string
		req   calls.SetStatusRequest
		want  calls.Code
	}{
		{"unknown status", alice, "", calls.SetStatusRequest{Status: "Lunch"}, calls.CodeInvalidRequest},
		{"lower case", alice, "", calls.SetStatusRequest{Status: "away"}, calls.CodeInvalidRequest},
		{"busy is derived", alice, "", calls.SetStatusRequest{Status: routing.Busy}, calls.CodeInvalidRequest},
		{"offline is derived", alice, "", calls.SetStatusRequest{Status: routing.Offline}, calls.CodeInvalidRequest},
		{"wrap-up too long", alice, "", calls.SetStatusRequest{Status: routing.WrapUp, WrapUpSeconds: 7200}, calls.CodeInvalidRequest},
		{"seconds without wrap-up", alice, "", calls.SetStatusRequest{Status: routing.Away, WrapUpSeconds: 5}, calls.CodeInvalidRequest},
		{"another agent's", alice, "8:acs:bob", calls.SetStatusRequest{Status: routing.Away}, calls.CodeForbidden},
		{"malformed agent", callstest.Supervisor("sue"), "4:not-a-number", calls.SetStatusRequest{Status: routing.Away}, calls.CodeInvalidPhoneNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.SetStatus(ctx, tt.p, tt.agent, tt.req)
			if got := calls.ErrorCode(err); got != tt.want {
				t.Errorf("SetStatus: %v, want %s", err, tt.want)
			}
		})
	}
	if st, _ := f.AgentStatusOf(ctx, alice, ""); st.Status != routing.Available {
		t.Errorf("after refusals: %s, want Available", st.Status)
	}
	for _, code := range []string{"", "a\x00b", string(make([]byte, calls.MaxWrapUpCodeLen+1))} {
		if _, err := f.RecordWrapUpCode(ctx, alice, "c1", code); calls.ErrorCode(err) != calls.CodeInvalidRequest {
			t.Errorf("RecordWrapUpCode(%q): %v, want invalid_request", code, err)
		}
	}
	if _, err := f.RecordWrapUpCode(ctx, alice, "no-such-call", "sale"); calls.ErrorCode(err) != calls.CodeCallNotFound {
		t.Errorf("RecordWrapUpCode of an unknown call: %v, want call_not_found", err)
	}
}

func TestAgentStatusRestore(t *testing.T) {
	mem := store.NewMemory()
	const a = "8:acs:alice"
	f := callstest.New(t, calls.Config{Store: mem})
	f.Connect(t, alice)
	callstest.Must[calls.AgentStatusData](t)(f.SetStatus(ctx, alice, "", calls.SetStatusRequest{Status: routing.Away}))
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A new switchboard on the same store: Offline until she connects,
	// then Away as she chose.
	g := callstest.New(t, calls.Config{Store: mem})
	if st := callstest.Must[calls.AgentStatusData](t)(g.AgentStatusOf(ctx, callstest.Supervisor("sue"), a)); st.Status != routing.Offline || st.ChosenStatus != routing.Away {
		t.Errorf("before she connects: %s (chosen %s), want Offline (Away)", st.Status, st.ChosenStatus)
	}
	g.Connect(t, alice)
	if st := callstest.Must[calls.AgentStatusData](t)(g.AgentStatusOf(ctx, alice, "")); st.Status != routing.Away {
		t.Errorf("after she connects: %s, want Away", st.Status)
	}
}

// failingStatusStore is a Memory store whose status writes fail.
type failingStatusStore struct{ *store.Memory }

func (failingStatusStore) RecordStatusChanges(context.Context, ...calls.StatusChange) error {
	return errors.New("disk full")
}

// TestSetStatusKeptBeforeAnswered: a chosen status is in the store when
// SetStatus answers (a crash right after loses nothing), and a store that
// cannot keep it makes SetStatus answer unavailable, not success.
func TestSetStatusKeptBeforeAnswered(t *testing.T) {
	mem := store.NewMemory()
	f := callstest.New(t, calls.Config{Store: mem})
	f.Connect(t, alice)
	callstest.Must[calls.AgentStatusData](t)(f.SetStatus(ctx, alice, "", calls.SetStatusRequest{Status: routing.Away}))
	kept, err := mem.FindStatusChanges(ctx, calls.StatusFilter{AgentID: "8:acs:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) == 0 || kept[0].Status != routing.Away {
		t.Errorf("kept when SetStatus answered: %+v, want Away newest", kept)
	}

	g := callstest.New(t, calls.Config{Store: failingStatusStore{store.NewMemory()}})
	g.Connect(t, bob)
	if _, err := g.SetStatus(ctx, bob, "", calls.SetStatusRequest{Status: routing.Away}); calls.ErrorCode(err) != calls.CodeUnavailable {
		t.Errorf("SetStatus on a store that cannot keep it: %v, want unavailable", err)
	}
}

func TestEnterWrapUp(t *testing.T) {
	f := callstest.New(t, calls.Config{})
	const a = "8:acs:alice"
	if _, err := f.EnterWrapUp(ctx, a, "c1", 10); calls.ErrorCode(err) != calls.CodeNotFound {
		t.Errorf("EnterWrapUp of an agent never here: %v, want not_found", err)
	}
	f.Connect(t, alice)
	st, err := f.EnterWrapUp(ctx, a, "c1", 10)
	if err != nil || st.Status != routing.WrapUp || st.ChangedBy.Kind != calls.ActorSystem || st.WrapUpCallID != "c1" {
		t.Fatalf("EnterWrapUp = %+v, %v", st, err)
	}
	if _, err := f.EnterWrapUp(ctx, a, "c1", -1); calls.ErrorCode(err) != calls.CodeInvalidRequest {
		t.Errorf("EnterWrapUp(-1 s): %v, want invalid_request", err)
	}
	f.Clock.Advance(10 * time.Second)
	wantStatuses(t, f, a, routing.Available, routing.WrapUp, routing.Available)
}

// TestAgentStatusMovesBetweenNodes: two switchboards on one store (two
// nodes of a cluster): the status alice chose on the second while she was
// there is hers when she comes back to the first, which knew an older one.
func TestAgentStatusMovesBetweenNodes(t *testing.T) {
	mem := store.NewMemory()
	one := callstest.New(t, calls.Config{Store: mem})
	two := callstest.New(t, calls.Config{Store: mem})
	set := func(f *callstest.Fixture, st routing.Status) {
		t.Helper()
		callstest.Must[calls.AgentStatusData](t)(f.SetStatus(ctx, alice, "", calls.SetStatusRequest{Status: st}))
	}
	attach := func(f *callstest.Fixture) func(string) {
		t.Helper()
		detach, err := f.Attach(ctx, alice, func(calls.Snapshot) {})
		if err != nil {
			t.Fatal(err)
		}
		return detach
	}
	d := attach(one)
	set(one, routing.Away)
	d("")
	if err := one.FlushStatuses(ctx); err != nil {
		t.Fatal(err)
	}
	one.Clock.Advance(time.Second)
	two.Clock.Advance(2 * time.Second)

	d = attach(two)
	if st, _ := two.AgentStatusOf(ctx, alice, ""); st.Status != routing.Away {
		t.Fatalf("on the second node: %s, want Away", st.Status)
	}
	set(two, routing.Available)
	d("")
	if err := two.FlushStatuses(ctx); err != nil {
		t.Fatal(err)
	}

	one.Clock.Advance(5 * time.Second)
	attach(one)
	if st, _ := one.AgentStatusOf(ctx, alice, ""); st.Status != routing.Available {
		t.Errorf("back on the first node: %s, want Available (chosen on the second)", st.Status)
	}
}
