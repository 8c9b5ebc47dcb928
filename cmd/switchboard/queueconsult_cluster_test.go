package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestClusterQueueConsult: the customer and amy are served by node a, the
// queue's agent ann by b. Amy consults the queue: her consult call waits
// in it and ann is offered it on b; ann accepts, amy completes through b:
// the customer, on a, and ann, on b, are Connected, each seeing the other
// (ann's stand-in on a re-paired, amy's on b too).
func TestClusterQueueConsult(t *testing.T) {
	c := newTestCluster(t) // its cleanup deletes the queue buckets
	a, b := c.start("a"), c.start("b")
	amy, amyNext := online(t, a, "amy", calls.RoleAgent)
	cust, _ := online(t, a, "cust", calls.RoleCaller)
	ann, annNext := online(t, b, "ann", calls.RoleAgent)
	if status, body, _ := send(t, a, "POST", "/api/queues", testAdminKey,
		`{"name":"support","members":[{"agent":"8:acs:ann"}],"ringTimeoutSeconds":60}`); status != http.StatusCreated {
		t.Fatalf("define the queue: %d %s", status, body)
	}
	decode := func(what string, status, want int, body string) calls.Call {
		t.Helper()
		var c calls.Call
		if status != want || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("%s: %d %s, want %d", what, status, body, want)
		}
		return c
	}
	status, body, _ := send(t, a, "POST", "/api/calls", cust, `{"participants":[{"communicationUserId":"amy"}]}`)
	custCall := decode("the customer calls amy", status, http.StatusCreated, body)
	amyCall := ringing(t, amyNext)
	status, body, _ = send(t, a, "POST", "/api/incoming-calls/"+amyCall+"/accept", amy, "")
	decode("amy accepts", status, http.StatusOK, body)

	status, body, _ = send(t, a, "POST", "/api/calls/"+amyCall+"/transfer", amy, `{"queue":"support","mode":"consult"}`)
	cons := decode("amy consults the queue", status, http.StatusCreated, body)
	waitCall(t, a, cust, custCall.ID, "RemoteHold muted=false [8:acs:amy Hold muted=false]")
	annIn := ringing(t, annNext)
	status, body, _ = send(t, b, "POST", "/api/incoming-calls/"+annIn+"/accept", ann, "")
	decode("ann accepts on b", status, http.StatusOK, body)
	waitCall(t, a, amy, cons.ID, "Connected muted=false [8:acs:ann Connected muted=false]")
	status, body, _ = send(t, b, "POST", "/api/calls/"+cons.ID+"/transfer/complete", amy, "")
	done := decode("amy completes via b", status, http.StatusOK, body)
	if done.CallEndReason == nil || *done.CallEndReason != calls.ReasonTransferred {
		t.Errorf("amy's call after the completion: %+v, want 0/7015", done.CallEndReason)
	}
	waitCall(t, a, cust, custCall.ID, "Connected muted=false [8:acs:ann Connected muted=false]")
	waitCall(t, b, ann, annIn, "Connected muted=false [8:acs:cust Connected muted=false]")
}
