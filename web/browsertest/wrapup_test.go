package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// After a queue call (she hangs up from its card) the agent is in wrap-up with its timer, and the
// wrap-up form has already chosen the call she finished, also after a
// reload (when the page never saw the call end); the code she saves is
// the call's in history, which finds it by its queue.
func TestAgentWrapsUpAQueueCall(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	cust := srv.mint(calls.PhoneNumber("+14255550177"), "Casey Customer", calls.RoleCaller)
	srv.do(http.MethodPost, "/api/queues", adminKey, map[string]any{
		"name": "support", "members": []map[string]any{{"agent": "8:acs:alice"}},
		"ringTimeoutSeconds": 600, "wrapUpSeconds": 600,
	}, http.StatusCreated, nil)

	page := newTab(t, srv)
	page.open("/?token=" + alice)
	page.waitLive()
	page.waitJS("her status Available", `document.getElementById('my-status').dataset.status === 'Available'`)
	srv.do(http.MethodPost, "/api/calls", cust, map[string]string{"queue": "support"}, http.StatusCreated, nil)
	id := srv.incoming(alice, "4:+14255550177")
	page.click(`button[data-action="accept"][data-call="` + id + `"]`)
	page.waitJS("the queue call active", `document.querySelector('`+card(id)+`.is-active') !== null`)
	page.click(card(id) + ` button[data-action="hangup"]`)
	page.waitJS("her call gone", `document.querySelectorAll('li.call-card').length === 0`)

	chosen := `(() => {
		const s = document.getElementById('wrap-call');
		return document.getElementById('my-status').dataset.status === 'WrapUp'
			&& document.getElementById('my-status').textContent.includes('WrapUp until')
			&& s.value === ` + jsString(id) + ` && s.selectedOptions[0].textContent.includes('(wrap-up)');
	})()`
	page.waitJS("wrap-up with its end, the finished call chosen", chosen)
	page.open("/?token=" + alice)
	page.waitLive()
	page.waitJS("after a reload, the finished call still chosen", chosen)

	saveWrapUpCode(page, alice, id, "callback")

	// History finds her call by the queue it came through, and by no other.
	page.open("/?token=" + alice + "#/history")
	page.waitLive()
	page.setValue("#f-queue", "support")
	page.click(`#history-filter button[type="submit"]`)
	page.waitJS("her queue call alone in history by queue", `(() => {
		const rows = document.querySelectorAll('#history-results tr[data-call-id]');
		return rows.length === 1 && rows[0].dataset.callId === `+jsString(id)+` && rows[0].textContent.includes('queue: support');
	})()`)
	page.setValue("#f-queue", "sales")
	page.click(`#history-filter button[type="submit"]`)
	page.waitJS("no call in history by another queue", `document.querySelectorAll('#history-results tr[data-call-id]').length === 0 && document.getElementById('f-queue').value === 'sales'`)
	if n := evalJS[int](page, `document.querySelectorAll('#errors li').length`); n != 0 {
		t.Errorf("%d errors shown", n)
	}
}
