package browsertest_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// The agent transfers and merges from the console: a customer's call is
// on her active card; she opens Transfer, names bob, consults (the
// customer's card says the transfer is in progress, both cards offer
// Complete and Cancel), bob answers; Cancel brings her back to the
// customer; a second consult's Complete hands the customer to bob,
// leaving her no call. Then with the echo bot held and bob active,
// "Merge with the active call" on the held card makes one group call.
func TestAgentTransfersInConsole(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	bob := srv.token("bob", "Bob Agent", calls.RoleAgent)
	cust := srv.token("cust", "Customer", calls.RoleCaller)
	srv.connect(bob)
	srv.connect(cust)
	aliceRaw, custRaw := calls.CommunicationUser("alice").RawID(), calls.CommunicationUser("cust").RawID()

	page := newTab(t, srv)
	page.open("/?token=" + alice)
	page.waitLive()
	custCall := srv.call(cust, aliceRaw)
	aliceCall := srv.accept(alice, custRaw)
	page.waitJS("the customer's call active", `document.querySelector('`+card(aliceCall)+`.is-active') !== null`)

	consult := func() {
		t.Helper()
		if !evalJS[bool](page, `document.querySelector('`+card(aliceCall)+` details.transfer').open`) {
			page.click(card(aliceCall) + ` details.transfer summary`)
		}
		page.setValue(card(aliceCall)+` input[name="who"]`, "bob")
		page.setValue(card(aliceCall)+` select[name="mode"]`, "consult")
		page.click(card(aliceCall) + ` form[data-action="transfer"] button[type="submit"]`)
		page.waitJS("both cards offering complete and cancel", `document.querySelectorAll('.transfer-actions button[data-action="transfer-complete"]').length === 2`)
		if got := srv.getCall(cust, custCall.ID); got.State != calls.StateRemoteHold {
			t.Errorf("during the consult the customer's call is %s, want RemoteHold", got.State)
		}
		srv.accept(bob, aliceRaw)
		page.waitJS("the consult call active", `[...document.querySelectorAll('li.call-card.is-active')].some((li) => li.dataset.callId !== `+jsString(aliceCall)+`)`)
	}
	// Consult, cancel: back to the customer, the consult gone.
	consult()
	page.click(card(aliceCall) + ` button[data-action="transfer-cancel"]`)
	page.waitJS("the customer's call active again, no transfer buttons", `document.querySelector('`+card(aliceCall)+`.is-active') !== null && document.querySelectorAll('li.call-card').length === 1 && document.querySelector('.transfer-actions') === null`)
	// Consult again, complete.
	consult()
	page.click(card(aliceCall) + ` button[data-action="transfer-complete"]`)
	page.waitJS("no call left", `document.querySelectorAll('li.call-card').length === 0`)
	got := srv.getCall(cust, custCall.ID)
	if got.State != calls.StateConnected || len(got.RemoteParticipants) != 1 || got.RemoteParticipants[0].RawID != calls.CommunicationUser("bob").RawID() {
		t.Fatalf("after the completion the customer's call is %s with %+v, want Connected with bob", got.State, got.RemoteParticipants)
	}

	// Her history of the customer's call says what she did.
	evalJS[string](page, `location.hash = '#/history/`+aliceCall+`'`)
	page.waitJS("the timeline's transfer steps", `document.querySelector('#main').textContent.includes('consult with 8:acs:bob canceled') && document.querySelector('#main').textContent.includes('transfer to 8:acs:bob completed')`)
	evalJS[string](page, `location.hash = '#/calls'`)

	// Merge: the echo bot held, bob active.
	echo := srv.call(alice, "8:echo123")
	withBob := srv.call(alice, calls.CommunicationUser("bob").RawID())
	srv.accept(bob, aliceRaw)
	page.waitJS("the echo call held with a merge button", `document.querySelector('`+card(echo.ID)+` button[data-action="merge-into-active"]') !== null && document.querySelector('`+card(withBob.ID)+`.is-active') !== null`)
	page.click(card(echo.ID) + ` button[data-action="merge-into-active"]`)
	page.waitJS("one group call", `document.querySelectorAll('li.call-card').length === 1`)
	var merged calls.Call
	srv.do(http.MethodGet, "/api/calls/"+withBob.ID, alice, nil, http.StatusOK, &merged)
	var raws []string
	for _, p := range merged.RemoteParticipants {
		raws = append(raws, p.RawID)
	}
	slices.Sort(raws)
	if merged.Kind != calls.Group || !slices.Equal(raws, []string{"8:acs:bob", "8:echo123"}) {
		t.Errorf("merged call %s with %v, want a group call with bob and the echo bot", merged.Kind, raws)
	}
}

// The agent hands a customer to a queue from the Transfer form: her call
// ends, the queue's agent is offered the customer and answers, and the
// timeline of her call says where it went.
func TestAgentTransfersToAQueue(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	bob := srv.token("bob", "Bob Billing", calls.RoleAgent)
	cust := srv.token("cust", "Customer", calls.RoleCaller)
	srv.connect(bob)
	srv.connect(cust)
	srv.do(http.MethodPost, "/api/queues", adminKey, map[string]any{
		"name": "billing", "members": []map[string]any{{"agent": "8:acs:bob"}}, "ringTimeoutSeconds": 600,
	}, http.StatusCreated, nil)
	custRaw := calls.CommunicationUser("cust").RawID()

	page := newTab(t, srv)
	page.open("/?token=" + alice)
	page.waitLive()
	custCall := srv.call(cust, calls.CommunicationUser("alice").RawID())
	aliceCall := srv.accept(alice, custRaw)
	page.waitJS("the customer's call active", `document.querySelector('`+card(aliceCall)+`.is-active') !== null`)
	page.click(card(aliceCall) + ` details.transfer summary`)
	page.setValue(card(aliceCall)+` input[name="who"]`, "billing")
	page.setValue(card(aliceCall)+` select[name="mode"]`, "queue")
	page.click(card(aliceCall) + ` form[data-action="transfer"] button[type="submit"]`)
	page.waitJS("her call gone", `document.querySelectorAll('li.call-card').length === 0`)

	srv.accept(bob, custRaw)
	got := srv.getCall(cust, custCall.ID)
	var raws []string
	for _, p := range got.RemoteParticipants {
		raws = append(raws, p.RawID)
	}
	if got.State != calls.StateConnected || !slices.Equal(raws, []string{"8:acs:bob"}) {
		t.Fatalf("after the queue's agent answered the customer's call is %s with %v, want Connected with bob", got.State, raws)
	}
	evalJS[string](page, `location.hash = '#/history/`+aliceCall+`'`)
	page.waitJS("the timeline's transfer to the queue", `document.querySelector('#main').textContent.includes('transferred to queue billing')`)
	if n := evalJS[int](page, `document.querySelectorAll('#errors li').length`); n != 0 {
		t.Errorf("%d errors shown", n)
	}
}
