package main

import (
	"context"
	"os/exec"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestSIPBlindTransferOut: an agent's blind transfer to a phone number
// leaves through the trunk's outbound path (sipp as the carrier checks
// the INVITE is to +14255550123 from the alternateCallerId +14255550100,
// answers, then hangs up). The agent's call ends 0/7015; the customer's
// call, now with the phone, ends 0/5000 when the carrier hangs up, and
// its history names the phone as a participant.
func TestSIPBlindTransferOut(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	port := sippPort(t)
	m, history := startSIPSwitchboard(t, "carrier=sip:127.0.0.1:"+port, "")
	carrier := sippWith(t, "answers_then_hangs_up.xml", "-p", port)
	cust, custNext := online(t, m, "cust", calls.RoleCaller)
	alice, aliceNext := online(t, m, "alice", calls.RoleAgent)
	custCall := post(t, "http://"+m.Addr+"/api/calls", cust, `{"participants": [{"communicationUserId": "alice"}]}`)["id"].(string)
	aliceCall := ringing(t, aliceNext)
	post(t, "http://"+m.Addr+"/api/incoming-calls/"+aliceCall+"/accept", alice, "")

	res := post(t, "http://"+m.Addr+"/api/calls/"+aliceCall+"/transfer", alice,
		`{"target": {"phoneNumber": "+14255550123"}, "alternateCallerId": {"phoneNumber": "+14255550100"}, "mode": "blind"}`)
	if r, _ := res["callEndReason"].(map[string]any); r == nil || r["subCode"] != float64(7015) {
		t.Fatalf("the agent's call after the transfer: %v, want ended 0/7015", res)
	}
	wantReason(t, waitCallEnded(t, custNext, custCall), 0, 5000)
	carrier()
	h, err := history.FindCallByID(context.Background(), custCall)
	if err != nil {
		t.Fatal(err)
	}
	var raws []string
	for _, p := range h.Call.RemoteParticipants {
		raws = append(raws, p.RawID)
	}
	if !slices.Contains(raws, "4:+14255550123") {
		t.Errorf("the customer's call's participants %v do not include the phone", raws)
	}
}
