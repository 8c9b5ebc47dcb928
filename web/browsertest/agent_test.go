package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// An agent signs in with the link `switchboard token --url` prints,
// accepts two calls (one with a click, one with the A shortcut), swaps
// between them, and always sees exactly one active call, the other on hold
// with how long it has been held.
func TestAgentAcceptsTwoCallsAndSwaps(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	bob := srv.mint(calls.PhoneNumber("+14255550101"), "Bob Customer", calls.RoleCaller)
	carol := srv.token("carol", "Carol Colleague", calls.RoleAgent)

	page := newTab(t, srv)
	page.open("/?token=" + alice)
	page.waitLive()
	if got := evalJS[string](page, `location.search`); got != "" {
		t.Errorf("the address bar keeps %q after sign-in, want the token gone", got)
	}
	if got := evalJS[string](page, `sessionStorage.getItem('switchboard.token')`); got != alice {
		t.Errorf("sessionStorage holds %q, want the token", got)
	}

	// A call rings: the caller's name and number, accept and decline.
	srv.call(bob, "8:acs:alice")
	first := srv.incoming(alice, "4:+14255550101")
	page.waitJS("the ringing call with the caller's name and number", `(() => {
		const c = document.querySelector('.incoming-card');
		return c && c.textContent.includes('Bob Customer') && c.textContent.includes('+14255550101')
			&& c.querySelector('button[data-action="decline"], button[data-action="reject"]');
	})()`)
	page.click(`button[data-action="accept"][data-call="` + first + `"]`)
	page.waitJS("the first call active", `document.querySelector('`+card(first)+`.is-active') !== null`)

	// The second call, accepted with the keyboard, holds the first.
	srv.call(carol, "8:acs:alice")
	second := srv.incoming(alice, "8:acs:carol")
	page.waitJS("the second call ringing", `document.querySelector('.incoming-card') !== null && document.querySelector('.incoming-card').textContent.includes('Carol Colleague')`)
	page.key("a")
	wantActive(t, page, second, first)
	wantServer(t, srv, alice, second, first)

	// Swap with a click on the held call's Resume, then back with S.
	page.click(card(first) + ` button[data-action="resume"]`)
	wantActive(t, page, first, second)
	wantServer(t, srv, alice, first, second)
	page.key("s")
	wantActive(t, page, second, first)
	wantServer(t, srv, alice, second, first)
	page.waitJS("how long the first call has been held", `document.querySelector('`+card(first)+` .held-for time').textContent.match(/^\d+:\d\d$/)`)
	page.waitJS("the active call named at the top", `document.getElementById('active-summary').textContent.includes('Carol Colleague')`)

	// Number keys pick a call: 1 is the first call.
	page.key("1")
	wantActive(t, page, first, second)

	// For the screenshot: the other side speaking, a declined call, and a
	// third call ringing.
	c := srv.getCall(alice, first)
	srv.sb.ReportSpeaking(legOf(t, c, "4:+14255550101"), true)
	page.waitJS("the speaking indicator", `document.querySelector('`+card(first)+` .speaking.on') !== null`)
	erin := srv.token("erin", "Erin", calls.RoleAgent)
	srv.call(erin, "8:acs:alice")
	srv.incoming(alice, "8:acs:erin")
	page.waitJS("Erin's call ringing", `document.querySelector('.incoming-card') !== null && document.querySelector('.incoming-card').textContent.includes('Erin')`)
	page.key("d")
	page.waitJS("the declined call with its end reason", `document.querySelector('.ended-list') && document.querySelector('.ended-list').textContent.includes('Declined (603/0)')`)
	dave := srv.mint(calls.PhoneNumber("+14255550199"), "Dave Prospect", calls.RoleCaller)
	srv.call(dave, "8:acs:alice")
	page.waitJS("Dave's call ringing", `document.querySelector('.incoming-card') !== null && document.querySelector('.incoming-card').textContent.includes('Dave Prospect')`)
	page.screenshot("agent")
}

// wantActive waits until the page shows active as the one active call and
// held on hold.
func wantActive(t *testing.T, page *tab, active, held string) {
	t.Helper()
	page.waitJS("call "+active+" active and "+held+" on hold", `(() => {
		const a = document.querySelector('`+card(active)+`');
		const h = document.querySelector('`+card(held)+`');
		return a && h && a.classList.contains('is-active') && a.getAttribute('aria-current') === 'true'
			&& h.dataset.state === 'LocalHold' && h.textContent.includes('On hold for')
			&& document.querySelectorAll('li.call-card.is-active').length === 1;
	})()`)
}

// wantServer checks the switchboard agrees with the page.
func wantServer(t *testing.T, srv *server, token, active, held string) {
	t.Helper()
	var list []calls.Call
	srv.do(http.MethodGet, "/api/calls", token, nil, http.StatusOK, &list)
	for _, c := range list {
		switch c.ID {
		case active:
			if c.State != calls.StateConnected || !c.IsActive {
				t.Errorf("call %s is %s (active %v), want Connected and active", c.ID, c.State, c.IsActive)
			}
		case held:
			if c.State != calls.StateLocalHold {
				t.Errorf("call %s is %s, want LocalHold", c.ID, c.State)
			}
		}
	}
}
