package browsertest_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/calls"
)

// notificationProbe runs before the page's scripts: it replaces
// window.Notification with a recorder that shows nothing and grants
// permission when asked, so that the test sees every notification the page
// makes, and whether it asked for permission.
const notificationProbe = `(() => {
	const rec = window.__notes = { created: [], requested: 0, permission: 'default' };
	window.Notification = class {
		constructor(title, opts) {
			this.title = title;
			this.tag = (opts && opts.tag) || '';
			this.closed = false;
			this.onclick = null;
			rec.created.push(this);
		}
		close() { this.closed = true; }
		static get permission() { return rec.permission; }
		static requestPermission() {
			rec.requested++;
			rec.permission = 'granted';
			return Promise.resolve('granted');
		}
	};
})()`

// installProbe makes a script run in every page the tab opens, before the
// page's own.
func (tb *tab) installProbe(js string) {
	tb.t.Helper()
	tb.do("install a probe", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	}))
}

// An agent's console rings for an incoming call: a ringtone plays, the
// tab's title names the caller and a notification appears (once the agent
// turned them on in the settings: never asked on load). Clicking the
// notification focuses the call's Accept button. All of it stops when the
// call is answered, declined, or when the caller hangs up.
func TestConsoleRingsOutsideTheTab(t *testing.T) {
	srv := newServer(t, 0)
	const danaRaw = "8:acs:dana"
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	dana := srv.token("dana", "Dana Whitfield", calls.RoleAgent)

	page := newTab(t, srv)
	page.installProbe(notificationProbe)
	page.open("/?token=" + alice)
	page.waitLive()
	if n := evalJS[int](page, `window.__notes.requested`); n != 0 {
		t.Fatalf("the console asked for notification permission %d times on load, want 0", n)
	}
	page.click("#notify-btn") // a click: it also lets the page make sound
	page.waitJS("notifications on", `window.__notes.requested === 1 && document.getElementById('notify-btn').textContent === 'Stop notifying me'`)

	const title = "(1) Ringing: Dana Whitfield — Switchboard"
	ringing := `document.title === ` + jsString(title) + ` && document.body.dataset.ringtone === 'playing'
		&& window.__notes.created.filter((n) => !n.closed).length === 1
		&& window.__notes.created.at(-1).title.includes('Dana Whitfield')`
	quiet := `document.title === 'Calls · Switchboard' && document.body.dataset.ringtone === undefined
		&& window.__notes.created.every((n) => n.closed)`

	cases := []struct {
		name string
		end  func(callerCall calls.Call, incomingID string)
	}{
		{"answered with A", func(calls.Call, string) { page.key("a") }},
		{"declined with D", func(calls.Call, string) { page.key("d") }},
		{"the caller hung up", func(c calls.Call, _ string) {
			srv.do(http.MethodPost, "/api/calls/"+c.ID+"/hangup", dana, map[string]any{"forEveryone": false}, http.StatusOK, nil)
		}},
	}
	for i, tc := range cases {
		c := srv.call(dana, calls.CommunicationUser("alice").RawID())
		id := srv.incoming(alice, danaRaw)
		page.waitJS("ringing: "+tc.name, ringing)
		if n := evalJS[int](page, `window.__notes.created.length`); n != i+1 {
			t.Fatalf("%s: %d notifications in all, want %d (one per ringing call)", tc.name, n, i+1)
		}
		if i < 2 {
			// The notification, clicked, brings the call into focus: from
			// the calls view, and from another view (history).
			if i == 1 {
				page.do("open the history", chromedp.Evaluate[chromedp.Void](`location.hash = '#/history'`))
				page.waitJS("the history shown", `!!document.querySelector('#nav a[href="#/history"][aria-current="page"]')`)
			}
			page.do("focus elsewhere", chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
			page.do("click the notification", chromedp.Evaluate[chromedp.Void](`window.__notes.created.at(-1).onclick()`))
			page.waitJS("the Accept button focused", `document.activeElement && document.activeElement.dataset.action === 'accept' && document.activeElement.dataset.call === `+jsString(id))
		}
		tc.end(c, id)
		page.waitJS("quiet after: "+tc.name, quiet)
	}
	evalJS[bool](page, `(localStorage.clear(), true)`) // nothing remembered for a later test on the same port
	// The first call was answered, so the agent is in it (on hold from
	// dana's side, who called again); the others ended.
	var list []calls.Call
	srv.do(http.MethodGet, "/api/calls", alice, nil, http.StatusOK, &list)
	if len(list) != 1 {
		t.Errorf("alice has %d calls, want the one she answered: %+v", len(list), list)
	}
}
