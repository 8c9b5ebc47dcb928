package store

import (
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/calls/callstest"
)

// teeStore is a node's Postgres store that also keeps, in memory, every
// record its switchboard hands it: what the shared history must hold.
type teeStore struct {
	*Postgres
	kept *callstest.Store
}

func (s teeStore) Record(recs ...calls.Record) {
	s.kept.Record(recs...)
	s.Postgres.Record(recs...)
}

// TestPeerQueueTransferSharedPostgres: a blind transfer to a queue of a
// customer served by another node than the agent, on three nodes sharing
// one Postgres. The customer's node keeps her call's id and the
// conversation's id (serverCallId, which the agent's node drew when it
// placed the call, or the customer's when she did), and the queue's agent
// answers in that conversation, on a third node or on the agent's own
// node, which then records a second call with the serverCallId of the
// agent's ended one. Nothing collides: the history is keyed by call id
// (the ids every node draws), serverCallId is no key and no unique column,
// so every call every node recorded is in Postgres, whole (its last
// state, its node, its whole timeline, the transfer's steps included),
// and the calls sharing the conversation's id are as many as were
// recorded with it.
func TestPeerQueueTransferSharedPostgres(t *testing.T) {
	databaseURL := testDatabaseURL(t)
	var (
		alice    = callstest.Agent("alice")
		ann      = callstest.Agent("ann")
		dave     = callstest.Agent("dave")
		customer = calls.Principal{Identifier: calls.CommunicationUser("cust"), DisplayName: "cust", Role: calls.RoleCaller}
	)
	tests := []struct {
		name      string
		custCalls bool // the customer called alice; else alice called her
		agent     calls.Principal
		agentNode string
	}{
		{"alice called; an agent of alice's node answers", false, ann, "a"},
		{"alice called; an agent of a third node answers", false, dave, "c"},
		{"the customer called; an agent of alice's node answers", true, ann, "a"},
		{"the customer called; an agent of a third node answers", true, dave, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peers := callstest.NewPeers(t)
			stores := map[string]teeStore{}
			qb := &callstest.Queues{}
			node := func(name string, q calls.Queues, ids ...calls.Principal) *callstest.Fixture {
				st := teeStore{Postgres: mustOpenPostgres(t, databaseURL, PostgresOptions{Node: name}), kept: &callstest.Store{}}
				stores[name] = st
				f := callstest.New(t, calls.Config{Store: st, Peers: peers.Network(name), Queues: q, NewID: uuid.NewString})
				var raw []string
				for _, p := range ids {
					raw = append(raw, p.Identifier.RawID())
				}
				peers.Join(name, f.Switchboard, raw...)
				for _, p := range ids {
					f.Connect(t, p)
				}
				return f
			}
			a := node("a", &callstest.Queues{}, alice, ann)
			b := node("b", qb, customer)
			c := node("c", nil, dave)
			nodes := map[string]*callstest.Fixture{"a": a, "b": b, "c": c}

			var aliceCall, custCall string
			if tt.custCalls {
				custCall = callstest.Must[calls.Call](t)(b.StartCall(t.Context(), customer, calls.StartCallRequest{Participants: []calls.Identifier{alice.Identifier}})).ID
				peers.Flush()
				aliceCall = ringing(t, a, alice)
				callstest.Must[calls.Call](t)(a.Accept(t.Context(), alice, aliceCall))
			} else {
				aliceCall = callstest.Must[calls.Call](t)(a.StartCall(t.Context(), alice, calls.StartCallRequest{Participants: []calls.Identifier{customer.Identifier}})).ID
				peers.Flush()
				custCall = ringing(t, b, customer)
				callstest.Must[calls.Call](t)(b.Accept(t.Context(), customer, custCall))
			}
			peers.Flush()
			callstest.Must[calls.Call](t)(a.Transfer(t.Context(), alice, aliceCall, calls.TransferRequest{Queue: "support", Mode: calls.TransferBlind}))
			peers.Flush()
			if qb.Last().CallID != custCall {
				t.Fatalf("b's queue got call %q, want the customer's %s", qb.Last().CallID, custCall)
			}
			// The queue offers her to its agent (as the customer), who
			// answers; then she hangs up.
			if _, err := b.AddParticipant(t.Context(), qb.Last().Customer, custCall, calls.AddParticipantRequest{Identifier: tt.agent.Identifier}); err != nil {
				t.Fatal(err)
			}
			peers.Flush()
			agentCall := ringing(t, nodes[tt.agentNode], tt.agent)
			callstest.Must[calls.Call](t)(nodes[tt.agentNode].Accept(t.Context(), tt.agent, agentCall))
			peers.Flush()
			callstest.Must[calls.Call](t)(b.HangUp(t.Context(), customer, custCall, false))
			peers.Flush()

			conv := lastKept(t, stores["b"], custCall).ServerCallID
			if got := lastKept(t, stores["a"], aliceCall).ServerCallID; got != conv {
				t.Fatalf("alice's call is in conversation %s, the customer's in %s: the test needs them shared", got, conv)
			}
			if got := lastKept(t, stores[tt.agentNode], agentCall).ServerCallID; got != conv {
				t.Fatalf("the queue's agent's call is in conversation %s, want the customer's %s (re-used)", got, conv)
			}
			recorded := 0
			for name, st := range stores {
				mustFlush(t, st.Postgres)
				for _, id := range keptIDs(st.kept) {
					checkKept(t, databaseURL, st, name, id)
					if lastKept(t, st, id).ServerCallID == conv {
						recorded++
					}
				}
			}
			if n := queryInt(t, databaseURL, `SELECT count(*) FROM calls WHERE server_call_id = $1`, conv); n != recorded || n < 3 {
				t.Errorf("Postgres has %d calls in conversation %s, want the %d the nodes recorded (at least alice's, the customer's and the agent's)", n, conv, recorded)
			}
			h, err := stores["b"].FindCallByID(t.Context(), custCall)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(h.Timeline, func(e calls.TimelineEntry) bool { return e.Type == calls.EventTransferUpdated }) {
				t.Errorf("the customer's history has no transferUpdated: %+v", h.Timeline)
			}
		})
	}
}

// ringing answers the id of the one call ringing p on f.
func ringing(t *testing.T, f *callstest.Fixture, p calls.Principal) string {
	t.Helper()
	in, err := f.ListIncoming(t.Context(), p)
	if err != nil || len(in) != 1 {
		t.Fatalf("%s's incoming calls: %+v, %v; want one", p.Identifier.RawID(), in, err)
	}
	return in[0].ID
}

// keptIDs is every call id a node recorded, in order of first record.
func keptIDs(s *callstest.Store) []string {
	var ids []string
	for _, r := range s.Records("") {
		if !slices.Contains(ids, r.Call.ID) {
			ids = append(ids, r.Call.ID)
		}
	}
	return ids
}

// lastKept is the call id as its node last recorded it.
func lastKept(t *testing.T, st teeStore, id string) calls.Call {
	t.Helper()
	recs := st.kept.Records(id)
	if len(recs) == 0 {
		t.Fatalf("no record of call %s", id)
	}
	return recs[len(recs)-1].Call
}

// checkKept checks that Postgres holds the call id as node last recorded
// it (state, end, conversation, agent, participants), as that node's,
// with every event it recorded, in order.
func checkKept(t *testing.T, databaseURL string, st teeStore, node, id string) {
	t.Helper()
	want := lastKept(t, st, id)
	h, err := st.FindCallByID(t.Context(), id)
	if err != nil {
		t.Errorf("node %s's call %s: %v", node, id, err)
		return
	}
	got := h.Call
	if got.State != want.State || got.ServerCallID != want.ServerCallID || got.AgentID != want.AgentID ||
		(got.CallEndReason == nil) != (want.CallEndReason == nil) || got.CallEndReason != nil && *got.CallEndReason != *want.CallEndReason ||
		len(got.RemoteParticipants) != len(want.RemoteParticipants) {
		t.Errorf("node %s's call %s in Postgres: %s %s %s %+v %d participants; want %s %s %s %+v %d", node, id,
			got.State, got.ServerCallID, got.AgentID, got.CallEndReason, len(got.RemoteParticipants),
			want.State, want.ServerCallID, want.AgentID, want.CallEndReason, len(want.RemoteParticipants))
	}
	var wantTypes, gotTypes []calls.EventType
	for _, r := range st.kept.Records(id) {
		for _, ev := range r.Events {
			wantTypes = append(wantTypes, ev.Type)
		}
	}
	for _, e := range h.Timeline {
		gotTypes = append(gotTypes, e.Type)
	}
	if !slices.Equal(gotTypes, wantTypes) {
		t.Errorf("node %s's call %s: timeline %v in Postgres, want %v", node, id, gotTypes, wantTypes)
	}
	if n := queryInt(t, databaseURL, `SELECT count(*) FROM calls WHERE id = $1 AND node = $2`, id, node); n != 1 {
		t.Errorf("call %s is not node %s's in Postgres", id, node)
	}
}
