package main

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestQueueConsultMedia is the per-frame proof of a consult transfer to a
// queue, with three pion WebRTC softphones (Goertzel per 20 ms frame): the
// customer (400 Hz) is on a call with amy (800 Hz), who consults the queue
// "support"; its agent bob (600 Hz) is offered amy's consult call and
// accepts. Amy and bob hear each other; once amy's hold is heard, not one
// frame the customer hears carries amy's tone, none in the whole consult
// carries bob's, and she hears the hold tone. Amy completes: the customer
// and bob hear each other, amy hears neither.
func TestQueueConsultMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 10 s")
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	custTok := mint(t, "cust", calls.RoleCaller)
	amyTok := mint(t, "amy", calls.RoleAgent)
	bobTok := mint(t, "bob", calls.RoleAgent)
	amyNext, _ := openEvents(t, m.Addr, amyTok)
	bobNext, _ := openEvents(t, m.Addr, bobTok)
	firstSnapshots(t, amyNext, bobNext)
	post(t, base+"/api/queues", testAdminKey, `{"name":"support","members":[{"agent":"8:acs:bob"}],"ringTimeoutSeconds":120}`)

	ctx, connect := softphones(t, base)
	cust, amy, bob := connect(custTok, xferCustomerHz), connect(amyTok, xferAgentHz), connect(bobTok, xferTargetHz)
	amyCall := answered(t, ctx, base, cust, amy, xferCustomerHz, xferAgentHz, amyTok, amyNext)

	res := post(t, base+"/api/calls/"+amyCall+"/transfer", amyTok, `{"queue":"support","mode":"consult"}`)
	consultAt := time.Now()
	if res["id"] == amyCall || res["kind"] != "group" || res["state"] != "Connected" {
		t.Fatalf("consult to a queue answered %v", res)
	}
	post(t, base+"/api/incoming-calls/"+waitIncoming(t, bobNext)+"/accept", bobTok, "")
	x := &xferPhones{t: t, cust: cust, amy: amy, bob: bob}
	x.consulting(consultAt)
	post(t, base+"/api/calls/"+amyCall+"/transfer/complete", amyTok, "")
	completeAt := time.Now()
	x.held("consult to a queue", consultAt, completeAt)
	x.completed(completeAt)
	x.logFigures()
}
