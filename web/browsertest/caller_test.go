package browsertest_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// A customer calls an agent from the "call us" page; the agent sees the
// caller's name and number, accepts, and sees the end reason when the
// customer hangs up. (The page calls without audio here;
// TestBrowserCallerAudio calls with it.)
func TestCallerPageCallsAnAgent(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	customer := srv.mint(calls.PhoneNumber("+14255550142"), "Casey Customer", calls.RoleCaller)

	agent := newTab(t, srv)
	agent.open("/?token=" + alice)
	agent.waitLive()

	caller := newTab(t, srv)
	caller.open("/call.html?to=8:acs:alice&name=Support&token=" + customer)
	caller.waitJS("the call page", `document.body.dataset.conn === 'open' && document.getElementById('callee-name').textContent === 'Support'`)
	caller.click("#use-audio")
	caller.click("#call-btn")

	agent.waitJS("the customer's call ringing", `(() => {
		const c = document.querySelector('.incoming-card');
		return c && c.textContent.includes('Casey Customer') && c.textContent.includes('+14255550142');
	})()`)
	caller.waitJS("the caller told it rings", `document.getElementById('call-status').textContent.startsWith('Ringing')`)
	id := srv.incoming(alice, "4:+14255550142")
	agent.click(`button[data-action="accept"][data-call="` + id + `"]`)
	caller.waitJS("the caller connected", `document.body.dataset.callState === 'Connected' && document.getElementById('call-status').textContent.includes('Connected with Support')`)

	caller.click("#hangup-btn")
	caller.waitJS("the caller's end reason", `document.getElementById('call-status').textContent.includes('Hung up (0/0)')`)
	agent.waitJS("the agent's end reason", `document.querySelector('.ended-list') && document.querySelector('.ended-list').textContent.includes('The other side hung up (0/5000)')`)
}
