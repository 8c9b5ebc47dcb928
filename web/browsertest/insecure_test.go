package browsertest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// An agent opens the console over http:// by a name that is not
// localhost, as from another machine: the page is not a secure context and
// the browser gives it no microphone. The Audio panel says so in words,
// with the fix (https://, or localhost on the switchboard's machine),
// instead of a TypeError; the status pill says audio is unavailable; and
// the rest of the console works: a call rings and is answered.
func TestConsoleSaysWhenThePageIsNotSecure(t *testing.T) {
	srv := newServer(t, 0)
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	dana := srv.token("dana", "Dana Whitfield", calls.RoleAgent)

	page := newTab(t, srv)
	page.srv = &server{t: t, url: "http://" + insecureHost + ":" + u.Port()}
	page.open("/?token=" + alice)
	page.waitJS("the console to be up", `document.body.dataset.conn === 'open' && document.body.dataset.synced === 'true'`)
	if evalJS[bool](page, `window.isSecureContext`) {
		t.Fatalf("the page at %s is a secure context: the test proves nothing", page.srv.url)
	}
	msg := evalJS[string](page, `(() => { const el = document.getElementById('audio-insecure'); return el && !el.hidden ? el.textContent : ''; })()`)
	for _, want := range []string{"not a secure", "https://", "http://localhost:" + u.Port() + "/", "Remote agents"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the Audio panel says %q, want it to contain %q", msg, want)
		}
	}
	if !evalJS[bool](page, `document.getElementById('audio-connect').disabled && document.getElementById('audio-test').disabled`) {
		t.Error("Connect browser audio and Test my audio are enabled on a page that cannot have a microphone")
	}
	pill := evalJS[[]string](page, `[document.getElementById('conn').textContent, document.getElementById('conn').getAttribute('aria-label')]`)
	if pill[0] != "Audio unavailable — page not secure" || pill[1] != pill[0] {
		t.Errorf("the status pill says %q (accessible name %q), want \"Audio unavailable — page not secure\" for both", pill[0], pill[1])
	}
	if n := evalJS[int](page, `document.querySelectorAll('#errors li').length`); n != 0 {
		t.Errorf("the console shows %d errors on load: %s", n, page.dump())
	}

	// The rest works: a call rings and the agent answers it.
	srv.call(dana, calls.CommunicationUser("alice").RawID())
	page.waitJS("the call ringing", `document.title.startsWith('(1) Ringing: Dana Whitfield')`)
	page.key("a")
	page.waitJS("the call answered", `!document.title.includes('Ringing') && document.querySelectorAll('li.call-card.is-active').length === 1`)
}
