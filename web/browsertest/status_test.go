package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// agentBadge is the status badge of agent raw on the supervisor's
// dashboard, as a JS expression.
func agentBadge(raw string) string {
	return `document.querySelector('li.agent[data-agent="` + raw + `"] .agent-status')`
}

// saveWrapUpCode saves code for the call the wrap-up form has chosen and
// checks that history, as token sees it, finds call id alone by it.
func saveWrapUpCode(page *tab, token, id, code string) {
	page.t.Helper()
	page.setValue("#wrap-code", code)
	page.click(`form[data-action="wrap-up-code"] button[type="submit"]`)
	page.waitJS("the code field cleared once saved", `document.getElementById('wrap-code').value === ''`)
	var hist calls.CallPage
	page.srv.do(http.MethodGet, "/api/history/calls?wrapUpCode="+code, token, nil, http.StatusOK, &hist)
	if len(hist.Items) != 1 || hist.Items[0].ID != id || hist.Items[0].WrapUpCode != code {
		page.t.Errorf("history by wrapUpCode=%s = %+v, want the call %s", code, hist.Items, id)
	}
}

// The agent picks her status in the console and the supervisor's
// dashboard shows it live; a call shows Busy, its end her chosen status
// again; she gives the ended call a wrap-up code from the wrap-up form,
// which history then filters by.
func TestAgentStatusPicker(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	sue := srv.token("sue", "Sue Supervisor", calls.RoleSupervisor)
	bob := srv.mint(calls.PhoneNumber("+14255550100"), "Bob Customer", calls.RoleCaller)

	agent := newTab(t, srv)
	agent.open("/?token=" + alice)
	agent.waitLive()
	agent.waitJS("her status Available", `document.getElementById('my-status').dataset.status === 'Available'`)

	sup := newTab(t, srv)
	sup.open("/?token=" + sue)
	sup.waitLive()
	sup.waitJS("alice Available on the dashboard", agentBadge("8:acs:alice")+`?.dataset.status === 'Available'`)

	// She goes Away with the picker.
	agent.setValue("#status-pick", "Away")
	agent.click(`form[data-action="set-status"] button[type="submit"]`)
	agent.waitJS("her status Away", `document.getElementById('my-status').dataset.status === 'Away'`)
	sup.waitJS("alice Away on the dashboard", agentBadge("8:acs:alice")+`?.dataset.status === 'Away'`)

	// A call: Busy, then Away again.
	srv.call(bob, "8:acs:alice")
	id := srv.accept(alice, "4:+14255550100")
	sup.waitJS("alice Busy on the dashboard", agentBadge("8:acs:alice")+`?.dataset.status === 'Busy'`)
	agent.waitJS("her status Busy (then Away)", `document.getElementById('my-status').textContent.includes('Busy (then Away)')`)
	srv.do(http.MethodPost, "/api/calls/"+id+"/hangup", alice, nil, http.StatusOK, nil)
	sup.waitJS("alice Away again on the dashboard", agentBadge("8:acs:alice")+`?.dataset.status === 'Away'`)

	// The wrap-up form offers the call she finished; she codes it.
	agent.waitJS("the ended call in the wrap-up form", `[...document.querySelectorAll('#wrap-call option')].some((o) => o.value === `+jsString(id)+`)`)
	agent.setValue("#wrap-call", id)
	saveWrapUpCode(agent, sue, id, "sale")

	// History filters by the code and shows it.
	agent.open("/?token=" + alice + "#/history")
	agent.waitLive()
	agent.setValue("#f-wrapup", "sale")
	agent.click(`#history-filter button[type="submit"]`)
	agent.waitJS("the coded call alone in history", `(() => {
		const rows = document.querySelectorAll('#history-results tr[data-call-id]');
		return rows.length === 1 && rows[0].dataset.callId === `+jsString(id)+` && rows[0].textContent.includes('wrap-up: sale');
	})()`)
	agent.open("/?token=" + alice + "#/calls")
	agent.waitLive()

	// Wrap-up from the picker, for 60 s.
	agent.setValue("#status-pick", "WrapUp")
	agent.setValue("#wrap-secs", "60")
	agent.click(`form[data-action="set-status"] button[type="submit"]`)
	sup.waitJS("alice WrapUp on the dashboard", agentBadge("8:acs:alice")+`?.dataset.status === 'WrapUp'`)
	agent.waitJS("her wrap-up with its end", `document.getElementById('my-status').textContent.includes('WrapUp until')`)

	// The supervisor makes her Available from the dashboard.
	sup.click(`li.agent[data-agent="8:acs:alice"] button[data-action="set-agent-status"][data-status="Available"]`)
	agent.waitJS("her status Available, set by the supervisor", `document.getElementById('my-status').dataset.status === 'Available'`)
	sup.waitJS("alice Available on the dashboard", agentBadge("8:acs:alice")+`?.dataset.status === 'Available'`)
}
