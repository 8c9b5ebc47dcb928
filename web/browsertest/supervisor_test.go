package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// A supervisor sees the agents' calls live, mutes a participant of an
// agent's 1:1 call (which the agent itself may not: no such control on the
// agent's card), and the agent's page shows it; controls the contract
// forbids are disabled with the reason in words; ending a call for
// everyone, once confirmed, reaches the agent with the supervisor's name.
func TestSupervisorMutesAParticipant(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	sue := srv.token("sue", "Sue Supervisor", calls.RoleSupervisor)
	bob := srv.mint(calls.PhoneNumber("+14255550100"), "Bob Customer", calls.RoleCaller)

	agent := newTab(t, srv)
	agent.open("/?token=" + alice)
	agent.waitLive()
	srv.call(bob, "8:acs:alice")
	id := srv.accept(alice, "4:+14255550100")
	agent.waitJS("the call active", `document.querySelector('`+card(id)+`.is-active') !== null`)

	// The agent may not mute the other side of a 1:1 call: the card has no
	// such control, and no contract words or raw ids but the number.
	agent.waitJS("the agent's 1:1 card without a mute control or jargon", `(() => {
		const c = document.querySelector('`+card(id)+`');
		const t = c && c.textContent;
		return c && !c.querySelector('button[data-action="mute-participant"]') && t.includes('+14255550100')
			&& !/oneToOne|not_supported|contract|8:acs:|4:\+/.test(t);
	})()`)

	// A room cannot be ended for everyone.
	var room calls.Call
	srv.do(http.MethodPost, "/api/calls/join", alice, map[string]string{"roomId": "standup"}, http.StatusCreated, &room)
	agent.waitJS("end for everyone disabled in the room", `(() => {
		const b = document.querySelector('`+card(room.ID)+` button[data-action="confirm-end-all"]');
		const t = b && document.querySelector('`+card(room.ID)+`').textContent;
		return b && b.disabled && t.includes('A room cannot be ended for everyone') && !t.includes('not_supported');
	})()`)
	srv.do(http.MethodPost, "/api/calls/"+id+"/resume", alice, nil, http.StatusOK, nil)

	// Another agent with two calls, one held, someone speaking: the
	// dashboard shows every agent live.
	carol := srv.token("carol", "Carol Agent", calls.RoleAgent)
	srv.connect(carol)
	frank := srv.mint(calls.PhoneNumber("+14255550123"), "Frank Caller", calls.RoleCaller)
	gina := srv.mint(calls.PhoneNumber("+14255550124"), "Gina Caller", calls.RoleCaller)
	srv.call(frank, "8:acs:carol")
	srv.accept(carol, "4:+14255550123")
	srv.call(gina, "8:acs:carol")
	ginaCall := srv.accept(carol, "4:+14255550124")
	srv.sb.ReportSpeaking(legOf(t, srv.getCall(carol, ginaCall), "4:+14255550124"), true)

	sup := newTab(t, srv)
	sup.open("/?token=" + sue)
	sup.waitLive()
	sup.waitJS("alice's call on the dashboard", `(() => {
		const a = document.querySelector('li.agent[data-agent="8:acs:alice"]');
		return a && a.querySelector('`+card(id)+`.is-active') && a.textContent.includes('Active: Bob Customer');
	})()`)
	sup.waitJS("carol's calls: one active with someone speaking, one held", `(() => {
		const a = document.querySelector('li.agent[data-agent="8:acs:carol"]');
		return a && a.querySelector('`+card(ginaCall)+`.is-active .speaking.on') && a.querySelector('li.call-card.is-held .held-for');
	})()`)
	sup.screenshot("supervisor")

	// The supervisor mutes Bob in Alice's 1:1 call; Alice's page shows it.
	sup.click(card(id) + ` button[data-action="mute-participant"][data-raw="4:+14255550100"]`)
	agent.waitJS("Bob shown muted on the agent's page", `(() => {
		const p = document.querySelector('`+card(id)+` li.participant');
		return p && p.textContent.includes('muted');
	})()`)
	sup.waitJS("Bob shown muted on the dashboard", `document.querySelector('`+card(id)+` li.participant').textContent.includes('muted')`)
	for _, p := range srv.getCall(alice, id).RemoteParticipants {
		if p.RawID == "4:+14255550100" && !p.IsMuted {
			t.Errorf("the switchboard has Bob unmuted after the supervisor muted him")
		}
	}

	// The supervisor mutes the agent herself; the agent sees who did it.
	sup.click(card(id) + ` button[data-action="mute-participant"][data-raw="8:acs:alice"]`)
	agent.waitJS("the agent told she was muted by the supervisor", `document.querySelector('`+card(id)+`').textContent.includes('Sue Supervisor muted your microphone')`)
	// The dashboard's button now says so too; wait for it before the next
	// click, which its new width would otherwise shift under the pointer.
	sup.waitJS("the agent shown muted on the dashboard", `(() => {
		const b = document.querySelector('`+card(id)+` button[data-action="mute-participant"][data-raw="8:acs:alice"]');
		return b && b.textContent.includes('Agent muted');
	})()`)

	// The supervisor ends the call for everyone, after saying so in the
	// confirmation; the agent sees who did it.
	sup.click(card(id) + ` button[data-action="confirm-end-all"]`)
	sup.waitJS("the confirmation", `document.getElementById('confirm').open && document.getElementById('confirm-text').textContent.includes('Bob Customer')`)
	sup.click(`#confirm-ok`)
	agent.waitJS("the end reason on the agent's page", `(() => {
		const e = document.querySelector('.ended-list');
		return e && e.textContent.includes('Sue Supervisor ended the call for everyone') && !document.querySelector('`+card(id)+`');
	})()`)
	sup.waitJS("the call gone from the dashboard", `!document.querySelector('`+card(id)+`')`)
}
