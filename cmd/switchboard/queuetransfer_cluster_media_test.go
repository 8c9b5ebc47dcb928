package main

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// TestClusterQueueTransferMedia is the per-frame proof of a blind transfer
// to a queue across nodes, with pion WebRTC softphones on media nodes of
// one cluster (Goertzel per 20 ms frame): the customer (400 Hz) is served
// by node b, the agent amy (800 Hz) by node a. Amy transfers her to the
// queue "support": amy's call ends 0/7015, the customer's goes on, and b
// queues it; the queue's agent (600 Hz) is offered it and accepts; then
// the customer and the agent hear each other, and amy hears neither and
// is heard by neither.
//
//   - amy calls the customer; ann, the queue's agent, is on a, amy's node
//     (b's call to her reuses the conversation id a's call had);
//   - the customer calls amy; bea, the queue's agent, is on a third node.
//
// And a consult transfer to the queue, the customer calling amy, bea on
// the third node: amy's consult call waits in a's queue, bea is offered
// it and accepts; amy and bea hear each other while the customer hears
// the hold tone, never bea, nor amy once her hold is heard; amy completes:
// the customer and bea hear each other through a's conversation, amy
// hears neither.
func TestClusterQueueTransferMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media across nodes end to end: about 20 s")
	}
	tests := []struct {
		name      string
		amyCalls  bool
		consult   bool
		agent     string
		agentNode string
	}{
		{name: "amy calls; the queue's agent on a", amyCalls: true, agent: "ann", agentNode: "a"},
		{name: "the customer calls; the queue's agent on c", agent: "bea", agentNode: "c"},
		{name: "consult: the customer calls; the queue's agent on c", consult: true, agent: "bea", agentNode: "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t) // its cleanup deletes the queue buckets
			node := func(id, ports string) *Main {
				return c.startWith(id, func(cfg *Config) {
					cfg.Media = MediaConfig{Grace: time.Minute}
					cfg.Cluster.MediaIP, cfg.Cluster.RTPPorts = "127.0.0.1", ports
				})
			}
			nodes := map[string]*Main{"a": node("a", "45700-45799"), "b": node("b", "45800-45899")}
			if tt.agentNode == "c" {
				nodes["c"] = node("c", "45900-45999")
			}
			a, b, an := nodes["a"], nodes["b"], nodes[tt.agentNode]
			aBase, bBase, agentBase := "http://"+a.Addr, "http://"+b.Addr, "http://"+an.Addr
			custTok := mint(t, "cust", calls.RoleCaller)
			amyTok := mint(t, "amy", calls.RoleAgent)
			agentTok := mint(t, tt.agent, calls.RoleAgent)
			amyNext, _ := openEvents(t, a.Addr, amyTok)
			custNext, _ := openEvents(t, b.Addr, custTok)
			agentNext, _ := openEvents(t, an.Addr, agentTok)
			firstSnapshots(t, amyNext, custNext, agentNext)
			post(t, aBase+"/api/queues", testAdminKey,
				`{"name":"support","members":[{"agent":"8:acs:`+tt.agent+`"}],"ringTimeoutSeconds":120}`)

			phonesCtx, connectA := softphones(t, aBase)
			_, connectB := softphones(t, bBase)
			connectAgent := connectA
			if tt.agentNode == "c" {
				_, connectAgent = softphones(t, agentBase)
			}
			cust, amy := connectB(custTok, xferCustomerHz), connectA(amyTok, xferAgentHz)
			agent := connectAgent(agentTok, xferTargetHz)

			var amyCall, custCall string
			if tt.amyCalls {
				var err error
				if amyCall, err = amy.Call(phonesCtx, "8:acs:cust"); err != nil {
					t.Fatal(err)
				}
				custCall = waitIncoming(t, custNext)
				post(t, bBase+"/api/incoming-calls/"+custCall+"/accept", custTok, "")
			} else {
				var err error
				if custCall, err = cust.Call(phonesCtx, "8:acs:amy"); err != nil {
					t.Fatal(err)
				}
				amyCall = waitIncoming(t, amyNext)
				post(t, aBase+"/api/incoming-calls/"+amyCall+"/accept", amyTok, "")
			}
			start := time.Now()
			if !phoneHears(cust, start, xferAgentHz, true) || !phoneHears(amy, start, xferCustomerHz, true) {
				t.Fatal("the customer and amy do not hear each other")
			}

			if tt.consult {
				res := post(t, aBase+"/api/calls/"+amyCall+"/transfer", amyTok, `{"queue":"support","mode":"consult"}`)
				consultAt := time.Now()
				if res["id"] == amyCall || res["kind"] != "group" || res["state"] != "Connected" {
					t.Fatalf("consult to a queue across nodes answered %v", res)
				}
				post(t, agentBase+"/api/incoming-calls/"+waitIncoming(t, agentNext)+"/accept", agentTok, "")
				x := &xferPhones{t: t, cust: cust, amy: amy, bob: agent}
				x.consulting(consultAt)
				post(t, aBase+"/api/calls/"+amyCall+"/transfer/complete", amyTok, "")
				completeAt := time.Now()
				x.held("consult to a queue across nodes", consultAt, completeAt)
				x.completed(completeAt)
				x.logFigures()
				return
			}
			res := post(t, aBase+"/api/calls/"+amyCall+"/transfer", amyTok, `{"queue":"support","mode":"blind"}`)
			transferAt := time.Now()
			if reason, _ := res["callEndReason"].(map[string]any); res["state"] != "Disconnected" || reason["subCode"] != float64(7015) {
				t.Fatalf("the blind transfer to a queue across nodes answered %v", res)
			}
			offer := waitIncoming(t, agentNext)
			if !phoneHears(cust, transferAt, xferAgentHz, false) {
				t.Error("the waiting customer still hears amy")
			}
			post(t, agentBase+"/api/incoming-calls/"+offer+"/accept", agentTok, "")
			acceptAt := time.Now()
			custHears, agentHears := phoneHears(cust, acceptAt, xferTargetHz, true), phoneHears(agent, acceptAt, xferCustomerHz, true)
			if !custHears || !agentHears {
				t.Fatalf("after the queue's agent accepted: the customer hears her %v (%d of %d frames), she hears the customer %v (%d of %d frames)",
					custHears, countTone(framesSince(cust, acceptAt), xferTargetHz), len(framesSince(cust, acceptAt)),
					agentHears, countTone(framesSince(agent, acceptAt), xferCustomerHz), len(framesSince(agent, acceptAt)))
			}
			if !phoneHears(amy, acceptAt, xferCustomerHz, false) || !phoneHears(amy, acceptAt, xferTargetHz, false) ||
				!phoneHears(cust, acceptAt, xferAgentHz, false) || !phoneHears(agent, acceptAt, xferAgentHz, false) {
				t.Fatal("after the transfer amy still hears or is heard")
			}
			// Each sees the other where she lives.
			waitCall(t, b, custTok, custCall, "Connected muted=false [8:acs:"+tt.agent+" Connected muted=false]")
			waitCall(t, an, agentTok, offer, "Connected muted=false [8:acs:cust Connected muted=false]")
			t.Logf("the customer heard the queue's agent %d frames after she accepted",
				monFramesUntil(cust, acceptAt, xferTargetHz, true))
			waitStats(t, b, func(st queue.Stats) bool { return st.Answered == 1 && st.Waiting == 0 })
		})
	}
}
