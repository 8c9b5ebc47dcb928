package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// A supervisor listens to an agent's call from the dashboard, switches to
// whisper and barge with the same buttons, and stops: the agent's page
// shows her as a participant with her mode each time (without controls: she
// answers to supervisors only), the pressed button
// is her mode, the agent's call on the server has her in that mode, and
// the customer's view never shows her until she barges.
func TestSupervisorListensWhispersBarges(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	sue := srv.token("sue", "Sue Supervisor", calls.RoleSupervisor)
	bob := srv.mint(calls.PhoneNumber("+14255550100"), "Bob Customer", calls.RoleCaller)

	agent := newTab(t, srv)
	agent.open("/?token=" + alice)
	agent.waitLive()
	bobCall := srv.call(bob, "8:acs:alice")
	id := srv.accept(alice, "4:+14255550100")
	agent.waitJS("the call active", `document.querySelector('`+card(id)+`.is-active') !== null`)

	sup := newTab(t, srv)
	sup.open("/?token=" + sue)
	sup.waitLive()
	sup.waitJS("alice's call with its monitor buttons", `(() => {
		const c = document.querySelector('li.agent[data-agent="8:acs:alice"] `+card(id)+`');
		return c && ['listen', 'whisper', 'barge'].every((m) => {
			const b = c.querySelector('button[data-action="monitor"][data-mode="' + m + '"]');
			return b && !b.disabled;
		}) && !c.querySelector('button[data-action="monitor-stop"]');
	})()`)

	customerSees := func() bool {
		t.Helper()
		for _, p := range srv.getCall(bob, bobCall.ID).RemoteParticipants {
			if p.RawID == "8:acs:sue" {
				return true
			}
		}
		return false
	}
	for _, mode := range []string{"listen", "whisper", "barge"} {
		sup.click(card(id) + ` button[data-action="monitor"][data-mode="` + mode + `"]`)
		sup.waitJS("her mode pressed: "+mode, `(() => {
			const b = document.querySelector('`+card(id)+` button[data-action="monitor"][data-mode="`+mode+`"]');
			return b && b.classList.contains('is-on') && document.querySelector('`+card(id)+` button[data-action="monitor-stop"]');
		})()`)
		agent.waitJS("the agent shown the supervisor "+mode+"ing", `(() => {
			const rows = [...document.querySelectorAll('`+card(id)+` li.participant')];
			return rows.some((r) => r.textContent.includes('Sue Supervisor') && r.textContent.includes('supervisor · `+mode+`')
				&& !r.querySelector('button'));
		})()`)
		sup.waitJS("her own leg says what she does: "+mode, `[...document.querySelectorAll('li.agent[data-agent="8:acs:sue"] li.call-card')]
			.some((c) => c.textContent.includes(`+jsString(map[string]string{"listen": "nobody hears you", "whisper": "only the agent hears you", "barge": "everyone hears you"}[mode])+`))`)
		if got, want := customerSees(), mode == "barge"; got != want {
			t.Errorf("in %s the customer's call shows the supervisor: %v, want %v", mode, got, want)
		}
		var stored calls.MonitorMode
		for _, p := range srv.getCall(alice, id).RemoteParticipants {
			if p.RawID == "8:acs:sue" {
				stored = p.MonitorMode
			}
		}
		if stored != calls.MonitorMode(mode) {
			t.Errorf("after the %s button the agent's call has the supervisor in mode %q", mode, stored)
		}
	}
	sup.screenshot("supervisor-monitor")

	sup.click(card(id) + ` button[data-action="monitor-stop"]`)
	agent.waitJS("the supervisor gone from the agent's call", `(() => {
		const c = document.querySelector('`+card(id)+`');
		return c && !c.textContent.includes('Sue Supervisor');
	})()`)
	sup.waitJS("no mode pressed", `(() => {
		const c = document.querySelector('`+card(id)+`');
		return c && !c.querySelector('button[data-action="monitor"].is-on') && !c.querySelector('button[data-action="monitor-stop"]');
	})()`)
	var still calls.Call
	srv.do(http.MethodGet, "/api/calls/"+id, alice, nil, http.StatusOK, &still)
	if still.State != calls.StateConnected {
		t.Errorf("alice's call is %s after the supervisor stopped, want Connected", still.State)
	}
}
