package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// The history page finds ended calls by agent, end code and participant,
// pages through nextCursor, and shows one call's timeline.
func TestHistoryFindsEndedCalls(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	bob := srv.token("bob", "Bob", calls.RoleAgent)
	carol := srv.token("carol", "Carol", calls.RoleAgent)
	dave := srv.token("dave", "Dave", calls.RoleAgent)
	sue := srv.token("sue", "Sue Supervisor", calls.RoleSupervisor)
	srv.connect(alice)

	// Alice hangs up on Bob (0/0); declines Carol (603); Dave gives up
	// while it rings (487); Bob calls again and hangs up (0/5000).
	srv.call(bob, "8:acs:alice")
	hungUp := srv.accept(alice, "8:acs:bob")
	srv.do(http.MethodPost, "/api/calls/"+hungUp+"/hangup", alice, nil, http.StatusOK, nil)
	srv.call(carol, "8:acs:alice")
	declined := srv.incoming(alice, "8:acs:carol")
	srv.do(http.MethodPost, "/api/incoming-calls/"+declined+"/reject", alice, nil, http.StatusOK, nil)
	daves := srv.call(dave, "8:acs:alice")
	canceled := srv.incoming(alice, "8:acs:dave")
	srv.do(http.MethodPost, "/api/calls/"+daves.ID+"/hangup", dave, nil, http.StatusOK, nil)
	bobs := srv.call(bob, "8:acs:alice")
	again := srv.accept(alice, "8:acs:bob")
	srv.do(http.MethodPost, "/api/calls/"+bobs.ID+"/hangup", bob, nil, http.StatusOK, nil)

	page := newTab(t, srv)
	page.open("/?token=" + sue + "#/history")
	page.waitLive()
	page.waitJS("the history table", `document.querySelector('.history-table tbody tr[data-call-id]') !== null`)
	rows := func(what string, want ...string) {
		t.Helper()
		js := `(() => {
			const ids = [...document.querySelectorAll('.history-table tbody tr[data-call-id]')].map((r) => r.dataset.callId);
			const want = ` + jsArray(want) + `;
			return !document.querySelector('#history-results .muted-text') && ids.length === want.length && want.every((w) => ids.includes(w));
		})()`
		page.waitJS(what, js)
	}

	// Alice's declined calls.
	page.setValue("#f-agent", "alice")
	page.setValue("#f-code", "603")
	page.click(`#history-filter button[type="submit"]`)
	rows("alice's declined call", declined)
	page.waitJS("the end reason in words", `document.querySelector('.history-table tbody').textContent.includes('Declined (603/0)')`)

	// Alice's calls with Bob, whatever their end.
	page.setValue("#f-code", "")
	page.setValue("#f-participant", "bob")
	page.click(`#history-filter button[type="submit"]`)
	rows("alice's calls with bob", hungUp, again)

	// Direction and the canceled call.
	page.setValue("#f-participant", "")
	page.setValue("#f-code", "487")
	page.setValue("#f-direction", "Incoming")
	page.click(`#history-filter button[type="submit"]`)
	rows("the call dave canceled", canceled)

	// One call a page: older, older, newer.
	page.setValue("#f-code", "")
	page.setValue("#f-direction", "")
	page.setValue("#f-limit", "1")
	page.click(`#history-filter button[type="submit"]`)
	rows("the newest of alice's calls", again)
	page.click(`button[data-action="history-older"]`)
	page.waitJS("page 2", `!document.querySelector('#history-results .muted-text') && document.querySelector('.history-table caption').textContent.includes('page 2')`)
	second := evalJS[string](page, `document.querySelector('.history-table tbody tr[data-call-id]').dataset.callId`)
	if second == again {
		t.Errorf("page 2 shows the call of page 1")
	}
	page.click(`button[data-action="history-newer"]`)
	rows("page 1 again", again)

	// The declined call's timeline.
	page.setValue("#f-limit", "25")
	page.setValue("#f-code", "603")
	page.click(`#history-filter button[type="submit"]`)
	rows("the declined call", declined)
	page.click(`tr[data-call-id="` + declined + `"] a`)
	page.waitJS("the timeline", `(() => {
		const t = document.querySelector('.timeline');
		return t && t.textContent.includes('incomingCall') && t.textContent.includes('callEnded') && t.textContent.includes('Declined (603/0)');
	})()`)
	page.screenshot("history")
}
