package browsertest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/calls"
)

// The agent's console as the walk-through used it, on a laptop (1280x800)
// and on a phone (390x844): the call just accepted takes the focus; the
// active call comes first and is fully in view; a call keeps its number
// while it lives (a reload too), and calls past the ninth are reached from
// the keyboard;
// talk time leaves out time on hold; errors speak plainly and stay in
// view; "End for everyone" asks first; every button's accessible name
// holds its visible words; on the phone the top bar is one row and every
// control at least 44 px square.
func TestAgentConsoleWalkThrough(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	callers := make([]string, 12)
	for i := range callers {
		callers[i] = srv.mint(calls.PhoneNumber(phone(i)), fmt.Sprintf("Caller %d", i+1), calls.RoleCaller)
	}

	page := newTab(t, srv)
	page.do("laptop size", chromedp.EmulateViewport(1280, 800))
	page.open("/?token=" + alice)
	page.waitLive()

	// Accepted with a click: the focus moves to the call.
	srv.call(callers[0], "8:acs:alice")
	ids := []string{srv.incoming(alice, "4:"+phone(0))}
	page.waitJS("the first call ringing", `document.querySelector('button[data-action="accept"][data-call="`+ids[0]+`"]') !== null`)
	page.click(`button[data-action="accept"][data-call="` + ids[0] + `"]`)
	page.waitJS("the focus on the call just accepted", `(() => {
		const c = document.activeElement && document.activeElement.closest('li.call-card');
		return c && c.dataset.callId === '`+ids[0]+`' && c.classList.contains('is-active');
	})()`)

	// Ten calls: each accepted holds the one before.
	for i := 1; i < 10; i++ {
		srv.call(callers[i], "8:acs:alice")
		ids = append(ids, srv.accept(alice, "4:"+phone(i)))
	}
	page.waitJS("ten calls, the last one active", `document.querySelectorAll('li.call-card').length === 10 && document.querySelector('`+card(ids[9])+`.is-active') !== null`)
	wantPinned(t, page, ids[9])
	wantNumbers(t, page, map[string]int{ids[0]: 1, ids[1]: 2, ids[3]: 4, ids[9]: 10})

	// Call 2 ends: call 4 stays call 4, and 4 makes it active.
	srv.do(http.MethodPost, "/api/calls/"+callerCall(t, srv, callers[1])+"/hangup", callers[1], nil, http.StatusOK, nil)
	page.waitJS("call 2 gone", `document.querySelector('`+card(ids[1])+`') === null`)
	wantNumbers(t, page, map[string]int{ids[3]: 4, ids[9]: 10})
	page.key("4")
	page.waitJS("call 4 active", `document.querySelector('`+card(ids[3])+`.is-active') !== null`)
	wantPinned(t, page, ids[3])

	// Call 10 from the keyboard: g, the number, Enter.
	page.key("g")
	page.waitJS("the go-to field focused", `document.activeElement && document.activeElement.id === 'goto-n'`)
	page.key("10\r")
	page.waitJS("call 10 active", `document.querySelector('`+card(ids[9])+`.is-active') !== null`)

	// A new call takes the number call 2 left.
	srv.call(callers[10], "8:acs:alice")
	ids = append(ids, srv.accept(alice, "4:"+phone(10)))
	page.waitJS("the new call", `document.querySelector('`+card(ids[10])+`.is-active') !== null`)
	wantNumbers(t, page, map[string]int{ids[10]: 2, ids[3]: 4, ids[9]: 10})
	page.do("reload", chromedp.Reload())
	page.waitLive()
	wantNumbers(t, page, map[string]int{ids[10]: 2, ids[3]: 4, ids[9]: 10})

	// Talk time leaves out time on hold: call 4 was held, then active,
	// then held again; its talk time stands still and is short of its
	// total by the time on hold.
	page.waitJS("talk time short of total time by the holds", `(() => {
		const secs = (s) => s.split(':').reduce((a, b) => a * 60 + Number(b), 0);
		const c = document.querySelector('`+card(ids[0])+`');
		const talk = c && c.querySelector('.talk-time');
		const total = c && c.querySelector('.total-time');
		return talk && total && talk.localName === 'span' && secs(total.textContent) - secs(talk.textContent) >= 2;
	})()`)

	// Every button's accessible name holds the words it shows.
	wantNamesHoldText(t, page)

	// An error in plain words, still in view when the page is scrolled.
	page.setValue("#new-call-to", "+14255550999")
	page.click(`form[data-action="start-call"] button[type="submit"]`)
	page.waitJS("the error in plain words", `(() => {
		const e = document.querySelector('#errors li');
		return e && e.textContent.includes('needs a caller id') && !/alternateCallerId|alternate_caller_id|HTTP/.test(e.textContent);
	})()`)
	scroll(page, `0, document.body.scrollHeight`)
	page.waitJS("the error in view after scrolling", `(() => {
		const r = document.querySelector('#errors li').getBoundingClientRect();
		return window.scrollY > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
	})()`)
	page.click(`#errors li button`)

	// End for everyone asks first: Cancel keeps the call.
	active := card(ids[10])
	scroll(page, `0, 0`)
	page.click(active + ` button[data-action="confirm-end-all"]`)
	page.waitJS("the confirmation", `document.getElementById('confirm').open && document.activeElement.id === 'confirm-cancel'`)
	page.click(`#confirm-cancel`)
	page.waitJS("the dialog closed", `!document.getElementById('confirm').open`)
	if c := srv.getCall(alice, ids[10]); c.State == calls.StateDisconnected {
		t.Fatalf("the call ended although the agent canceled")
	}
	page.click(active + ` button[data-action="confirm-end-all"]`)
	page.waitJS("the confirmation again", `document.getElementById('confirm').open`)
	page.click(`#confirm-ok`)
	page.waitJS("the call ended for everyone", `document.querySelector('`+active+`') === null`)
	page.waitJS("the focus on a call again, not lost", `document.activeElement && document.activeElement.closest('li.call-card') === document.querySelector('li.call-card')`)
	page.key("3")
	page.waitJS("call 3 active", `document.querySelector('`+card(ids[2])+`.is-active') !== null`)

	// On a phone, with a call ringing too.
	srv.call(callers[11], "8:acs:alice")
	srv.incoming(alice, "4:"+phone(11))
	page.do("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	page.waitJS("the ringing call", `document.querySelector('.incoming-card') !== null`)
	scroll(page, `0, 0`)
	page.waitJS("a one-row top bar and nothing wider than the screen", `(() => {
		const bar = document.querySelector('.topbar');
		const tops = [...bar.children].filter((e) => e.getClientRects().length && getComputedStyle(e).position !== 'absolute')
			.map((e) => e.getBoundingClientRect());
		return innerWidth === 390 && bar.getBoundingClientRect().height <= 64 && tops.every((r) => r.top < tops[0].bottom && r.right <= innerWidth)
			&& document.documentElement.scrollWidth <= innerWidth;
	})()`)
	wantPinned(t, page, ids[2])
	wantTouchTargets(t, page)
	wantNamesHoldText(t, page)
	page.waitJS("the timers ticking", `(document.querySelector('`+card(ids[0])+` .total-time') || {}).textContent > '0:00'`)
	page.screenshot("agent-phone")
}

func phone(i int) string { return fmt.Sprintf("+1425555%04d", 3000+i) }

// callerCall is the one call of a caller.
func callerCall(t *testing.T, srv *server, token string) string {
	t.Helper()
	var list []calls.Call
	srv.do(http.MethodGet, "/api/calls", token, nil, http.StatusOK, &list)
	if len(list) != 1 {
		t.Fatalf("the caller has %d calls, want 1", len(list))
	}
	return list[0].ID
}

// wantPinned checks the active call is the first card and wholly inside
// the window with the page scrolled to the top.
func wantPinned(t *testing.T, page *tab, id string) {
	t.Helper()
	scroll(page, `0, 0`)
	page.waitJS("call "+id+" first and fully in view", `(() => {
		const first = document.querySelector('li.call-card');
		if (!first || first.dataset.callId !== '`+id+`' || !first.classList.contains('is-active')) return false;
		const r = first.getBoundingClientRect();
		return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
	})()`)
}

// wantNumbers checks the calls' numbers, as shown on their cards.
func wantNumbers(t *testing.T, page *tab, want map[string]int) {
	t.Helper()
	for id, n := range want {
		page.waitJS(fmt.Sprintf("call %s numbered %d", id, n), `(() => {
			const c = document.querySelector('`+card(id)+`');
			return c && c.dataset.n === '`+fmt.Sprint(n)+`' && c.querySelector('.card-n').textContent === '`+fmt.Sprint(n)+`';
		})()`)
	}
}

// wantTouchTargets checks, on a phone, that nothing is wider than the
// screen and every control a finger presses is at least 44x44 px.
func wantTouchTargets(t *testing.T, page *tab) {
	t.Helper()
	page.waitJS("nothing wider than the 390 px screen", `innerWidth === 390 && document.documentElement.scrollWidth <= innerWidth`)
	small := evalJS[[]string](page, `[...document.querySelectorAll('.topbar a, .topbar button, main button, main a[href], main summary, main select, main input:not([type="checkbox"]):not([type="radio"])')]
		.filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
		.map((e) => [e, e.getBoundingClientRect()])
		.filter(([, r]) => r.width < 44 || r.height < 44)
		.map(([e, r]) => e.localName + ' "' + (e.textContent || e.id).trim().slice(0, 30) + '" ' + Math.round(r.width) + 'x' + Math.round(r.height))`)
	if len(small) > 0 {
		t.Errorf("touch targets smaller than 44x44 px on a phone: %q", small)
	}
}

// wantNamesHoldText checks every visible button's accessible name contains
// the words it shows (WCAG 2.5.3), shortcut hints aside.
func wantNamesHoldText(t *testing.T, page *tab) {
	t.Helper()
	bad := evalJS[[]string](page, `[...document.querySelectorAll('button')].filter((b) => b.getClientRects().length).map((b) => {
		const c = b.cloneNode(true);
		c.querySelectorAll('[aria-hidden="true"]').forEach((k) => k.remove());
		const norm = (s) => s.replace(/\s+/g, ' ').trim().toLowerCase();
		const text = norm(c.textContent);
		const name = norm(b.getAttribute('aria-label') || (b.getAttribute('aria-labelledby') ? '' : b.textContent));
		return text && !name.includes(text) ? text + ' / ' + name : null;
	}).filter(Boolean)`)
	if len(bad) > 0 {
		t.Errorf("buttons whose accessible name lacks their visible text (text / name): %q", bad)
	}
}

// scroll scrolls the page to x, y (JavaScript expressions).
func scroll(page *tab, xy string) {
	page.t.Helper()
	evalJS[bool](page, `(window.scrollTo(`+xy+`), true)`)
}

// What a supervisor does reaches the agent in words with the supervisor's
// name: a participant removed from a group call, the other side of a 1:1
// call removed (not "the other side hung up"), a call ended for everyone.
// The dashboard puts the most urgent agent first (a call ringing, then the
// longest hold) and an agent's calls can be hidden.
func TestSupervisorActionsInWords(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	dana := srv.token("dana", "Dana Whitfield", calls.RoleAgent)
	erin := srv.token("erin", "Erin Agent", calls.RoleAgent)
	carol := srv.token("carol", "Carol Agent", calls.RoleAgent)
	sam := srv.token("sam", "Sam Reyes", calls.RoleSupervisor)
	bob := srv.mint(calls.PhoneNumber("+14255550100"), "Bob Customer", calls.RoleCaller)
	for _, tok := range []string{dana, erin, carol} {
		srv.connect(tok)
	}

	agent := newTab(t, srv)
	agent.open("/?token=" + alice)
	agent.waitLive()

	// A group call; Sam removes Dana from it.
	var group calls.Call
	srv.do(http.MethodPost, "/api/calls", alice, map[string]any{"participants": []calls.Identifier{
		calls.CommunicationUser("dana"), calls.CommunicationUser("erin"),
	}}, http.StatusCreated, &group)
	srv.accept(dana, "8:acs:alice")
	srv.accept(erin, "8:acs:alice")
	agent.waitJS("the group call with both", `(() => {
		const c = document.querySelector('`+card(group.ID)+`');
		return c && c.querySelectorAll('li.participant').length === 2;
	})()`)
	srv.do(http.MethodDelete, "/api/calls/"+group.ID+"/participants/"+url.PathEscape("8:acs:dana"), sam, nil, http.StatusOK, nil)
	agent.waitJS("the removal in words on the card", `(document.querySelector('`+card(group.ID)+` .notice') || {}).textContent === 'Sam Reyes removed Dana Whitfield'`)

	// A 1:1 call; Sam removes the customer: the agent reads a removal.
	srv.call(bob, "8:acs:alice")
	one := srv.accept(alice, "4:+14255550100")
	agent.waitJS("the 1:1 call", `document.querySelector('`+card(one)+`') !== null`)
	srv.do(http.MethodDelete, "/api/calls/"+one+"/participants/"+url.PathEscape("4:+14255550100"), sam, nil, http.StatusOK, nil)
	agent.waitJS("the 1:1 removal in words", `(() => {
		const e = document.querySelector('.ended-call[data-call-id="`+one+`"]');
		return e && e.textContent.includes('Sam Reyes removed Bob Customer') && !/hung up/i.test(e.textContent);
	})()`)

	// Erin gets two calls (one held), Carol one ringing.
	gina := srv.mint(calls.PhoneNumber("+14255550124"), "Gina Caller", calls.RoleCaller)
	hank := srv.mint(calls.PhoneNumber("+14255550125"), "Hank Caller", calls.RoleCaller)
	frank := srv.mint(calls.PhoneNumber("+14255550123"), "Frank Caller", calls.RoleCaller)

	sup := newTab(t, srv)
	sup.do("laptop size", chromedp.EmulateViewport(1280, 800))
	sup.open("/?token=" + sam)
	sup.waitLive()

	// Sam ends the group call for everyone, once he confirms.
	sup.waitJS("the group call on the dashboard", `document.querySelector('`+card(group.ID)+`') !== null`)
	sup.click(card(group.ID) + ` button[data-action="confirm-end-all"]`)
	sup.waitJS("the confirmation", `document.getElementById('confirm').open`)
	sup.click(`#confirm-ok`)
	agent.waitJS("the end in words with Sam's name", `(() => {
		const e = document.querySelector('.ended-call[data-call-id="`+group.ID+`"]');
		return e && e.textContent.includes('Sam Reyes ended the call for everyone');
	})()`)

	// Sam removes Alice herself from a call, from the dashboard.
	srv.call(bob, "8:acs:alice")
	mine := srv.accept(alice, "4:+14255550100")
	sup.waitJS("alice's new call on the dashboard", `document.querySelector('`+card(mine)+` button[data-action="hangup"]') !== null`)
	sup.click(card(mine) + ` button[data-action="hangup"]`)
	agent.waitJS("the agent told Sam removed her", `(() => {
		const e = document.querySelector('.ended-call[data-call-id="`+mine+`"]');
		return e && e.textContent.includes('Sam Reyes removed you from the call');
	})()`)

	srv.call(gina, "8:acs:erin")
	srv.accept(erin, "4:+14255550124")
	srv.call(hank, "8:acs:erin")
	srv.accept(erin, "4:+14255550125")
	srv.call(frank, "8:acs:carol")
	srv.incoming(carol, "4:+14255550123")
	sup.waitJS("ringing first, then the longest hold; an agent's active call first", `(() => {
		const order = [...document.querySelectorAll('li.agent')].map((a) => a.dataset.agent);
		const first = document.querySelector('li.agent[data-agent="8:acs:erin"] li.call-card');
		return order[0] === '8:acs:carol' && order[1] === '8:acs:erin' && first && first.classList.contains('is-active');
	})()`)
	sup.screenshot("supervisor-urgent")

	// Erin's calls hidden and shown again.
	erinHide := `li.agent[data-agent="8:acs:erin"] button[data-action="toggle-agent"]`
	sup.click(erinHide)
	sup.waitJS("erin's calls hidden", `(() => {
		const a = document.querySelector('li.agent[data-agent="8:acs:erin"]');
		const b = a.querySelector('button[data-action="toggle-agent"]');
		return !a.querySelector('li.call-card') && b.getAttribute('aria-expanded') === 'false' && b.textContent === 'Show calls'
			&& a.textContent.includes('1 on hold');
	})()`)
	sup.click(erinHide)
	sup.waitJS("erin's calls shown", `document.querySelectorAll('li.agent[data-agent="8:acs:erin"] li.call-card').length === 2`)
	wantNamesHoldText(t, sup)
	wantNamesHoldText(t, agent)

	// The dashboard on a phone.
	sup.do("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	wantTouchTargets(t, sup)
}

// History, for a supervisor: a call between two agents is one row naming
// both by display name; "removed" and "ended for everyone" are filters; a
// live call's row changes when the call ends, from the event stream.
func TestHistoryConversationsOnceAndLive(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	carol := srv.token("carol", "Carol Agent", calls.RoleAgent)
	sue := srv.token("sue", "Sue Supervisor", calls.RoleSupervisor)
	bob := srv.mint(calls.PhoneNumber("+14255550100"), "Bob Customer", calls.RoleCaller)
	srv.connect(alice)
	srv.connect(carol)

	// Three calls from Alice to Carol: Alice hangs up; Sue removes Carol;
	// Sue ends one for everyone.
	conv := func() (calls.Call, string) {
		c := srv.call(alice, "8:acs:carol")
		return c, srv.accept(carol, "8:acs:alice")
	}
	hungUp, _ := conv()
	srv.do(http.MethodPost, "/api/calls/"+hungUp.ID+"/hangup", alice, nil, http.StatusOK, nil)
	_, carolsRemoved := conv()
	srv.do(http.MethodPost, "/api/calls/"+carolsRemoved+"/hangup", sue, nil, http.StatusOK, nil) // ends Alice's side too
	endedAll, _ := conv()
	srv.do(http.MethodPost, "/api/calls/"+endedAll.ID+"/hangup", sue, map[string]any{"forEveryone": true}, http.StatusOK, nil)
	// A live call from a customer.
	srv.call(bob, "8:acs:alice")
	live := srv.accept(alice, "4:+14255550100")

	page := newTab(t, srv)
	page.open("/?token=" + sue + "#/history")
	page.waitLive()
	page.waitJS("every conversation once, agents by name", `(() => {
		const rows = [...document.querySelectorAll('.history-table tbody tr[data-call-id]')];
		const ids = rows.map((r) => r.dataset.serverCallId);
		const row = rows.find((r) => r.dataset.serverCallId === '`+hungUp.ServerCallID+`');
		return rows.length === 4 && new Set(ids).size === 4 && row && row.dataset.callId === '`+hungUp.ID+`'
			&& row.querySelector('.agents').textContent === 'Alice Agent → Carol Agent' && !/8:acs:/.test(document.querySelector('.history-table tbody').textContent);
	})()`)
	page.waitJS("the live call's row", `document.querySelector('tr[data-call-id="`+live+`"][data-live="true"]') !== null`)

	// The customer hangs up: the row shows it without a new search.
	srv.do(http.MethodPost, "/api/calls/"+callerCall(t, srv, bob)+"/hangup", bob, nil, http.StatusOK, nil)
	page.waitJS("the live row ended", `(() => {
		const r = document.querySelector('tr[data-call-id="`+live+`"]');
		return r && !r.dataset.live && r.querySelector('.outcome').textContent.includes('The other side hung up') && /^\d+:\d\d$/.test(r.querySelector('.length').textContent);
	})()`)

	// The agent filter takes a display name.
	page.setValue("#f-agent", "carol agent")
	page.click(`#history-filter button[type="submit"]`)
	page.waitJS("carol's calls", `(() => {
		const rows = [...document.querySelectorAll('.history-table tbody tr[data-call-id]')];
		return !document.querySelector('#history-results .muted-text') && rows.length === 3 && rows.every((r) => r.querySelector('.agents').textContent === 'Carol Agent');
	})()`)
	page.setValue("#f-agent", "")

	for _, tc := range []struct {
		outcome string
		want    string
	}{
		{"0/5300", carolsRemoved},
		{"0/4097", endedAll.ID},
	} {
		page.setValue("#f-code", tc.outcome)
		page.click(`#history-filter button[type="submit"]`)
		page.waitJS("the calls with outcome "+tc.outcome, `(() => {
			const ids = [...document.querySelectorAll('.history-table tbody tr[data-call-id]')].map((r) => r.dataset.callId);
			return !document.querySelector('#history-results .muted-text') && ids.length === 1 && ids[0] === '`+tc.want+`';
		})()`)
	}

	// On a phone the table scrolls inside itself, not the page.
	page.do("phone size", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	page.do("reload on the phone", chromedp.Reload())
	page.waitJS("the history table", `document.querySelector('.history-table tbody tr[data-call-id]') !== null`)
	page.waitJS("nothing wider than the screen", `innerWidth === 390 && document.documentElement.scrollWidth <= innerWidth`)
}
