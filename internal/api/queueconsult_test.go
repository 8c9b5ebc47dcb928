package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestQueueConsultTransfer: ann, on a call with a customer, consults the
// queue "support": the answer is her consult call, Connected, and the
// customer's call is held in the same step. Completing before the queue's
// agent answered is invalid_state. The queue offers the consult call to
// bob (from ann); ann cancels: bob's offer is withdrawn (487/0) and the
// customer is back with ann. Ann consults again, bob accepts, ann
// completes: her calls end 0/7015 and the customer and bob are
// Connected.
func TestQueueConsultTransfer(t *testing.T) {
	s := newQueueServer(t)
	ann, bob := s.token("ann", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	cust := s.token("carl", calls.RoleCaller)
	sb, sa, sc := s.connect(bob), s.connect(ann), s.connect(cust)
	for _, st := range []*stream{sa, sb, sc} {
		st.waitFor(calls.EventSnapshot, "")
	}
	s.do(http.MethodPost, "/api/queues", adminKey, map[string]any{"name": "support",
		"members": []map[string]any{{"agent": "8:acs:bob"}}}, http.StatusCreated, nil)
	var custCall, annCall calls.Call
	s.do(http.MethodPost, "/api/calls", cust, map[string]any{"participants": []any{identityJSON("ann")}}, http.StatusCreated, &custCall)
	in := sa.waitFor(calls.EventIncomingCall, "")
	s.do(http.MethodPost, "/api/incoming-calls/"+in.CallID+"/accept", ann, nil, http.StatusOK, &annCall)
	s.advance(time.Minute)

	path := "/api/calls/" + annCall.ID + "/transfer"
	consult := map[string]any{"queue": "support", "mode": "consult"}
	custSees := func(want string) {
		t.Helper()
		var got calls.Call
		s.do(http.MethodGet, "/api/calls/"+custCall.ID, cust, nil, http.StatusOK, &got)
		desc := string(got.State)
		for _, p := range got.RemoteParticipants {
			desc += " " + p.RawID + ":" + string(p.State)
		}
		if desc != want {
			t.Fatalf("the customer's call is %q, want %q", desc, want)
		}
	}
	offered := func() calls.IncomingCall {
		t.Helper()
		s.step()
		offer := decodeData[calls.IncomingCallData](t, sb.waitFor(calls.EventIncomingCall, "")).IncomingCall
		if offer.CallerInfo.Identifier.RawID() != "8:acs:ann" {
			t.Fatalf("bob's offer is from %+v, want ann, who consults", offer.CallerInfo)
		}
		return offer
	}

	var cons calls.Call
	s.do(http.MethodPost, path, ann, consult, http.StatusCreated, &cons)
	if cons.ID == annCall.ID || cons.ConsultCallID != annCall.ID || cons.State != calls.StateConnected || cons.Kind != calls.Group {
		t.Fatalf("consult to a queue answered %+v, want a Connected group call naming %s", cons, annCall.ID)
	}
	custSees("RemoteHold 8:acs:ann:Hold")
	s.wantError(http.MethodPost, path+"/complete", ann, nil, http.StatusConflict, calls.CodeInvalidState)
	offer := offered()
	var back calls.Call
	s.do(http.MethodPost, path+"/cancel", ann, nil, http.StatusOK, &back)
	if ev := sb.waitFor(calls.EventCallEnded, offer.ID); ev.CallID != offer.ID {
		t.Fatalf("bob's offer: %+v", ev)
	}
	custSees("Connected 8:acs:ann:Connected")
	s.step()

	s.do(http.MethodPost, path, ann, consult, http.StatusCreated, &cons)
	custSees("RemoteHold 8:acs:ann:Hold")
	offer = offered()
	s.do(http.MethodPost, "/api/incoming-calls/"+offer.ID+"/accept", bob, nil, http.StatusOK, nil)
	s.step()
	var done calls.Call
	s.do(http.MethodPost, "/api/calls/"+cons.ID+"/transfer/complete", ann, nil, http.StatusOK, &done)
	if done.ID != annCall.ID || done.CallEndReason == nil || *done.CallEndReason != calls.ReasonTransferred {
		t.Fatalf("complete answered %+v, want ann's call ended 0/7015", done)
	}
	custSees("Connected 8:acs:bob:Connected")
	var bobCall calls.Call
	s.do(http.MethodGet, "/api/calls/"+offer.ID, bob, nil, http.StatusOK, &bobCall)
	if bobCall.State != calls.StateConnected || bobCall.ServerCallID != custCall.ServerCallID {
		t.Errorf("bob's call after the completion: %s in %s, want Connected in the customer's %s", bobCall.State, bobCall.ServerCallID, custCall.ServerCallID)
	}
}
