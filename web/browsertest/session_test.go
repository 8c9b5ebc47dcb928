package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/calls"
)

// Sign-in with the form (a bad token's error in words), the token kept for
// the tab across a reload, a reconnect to a fresh snapshot when the server
// drops a connection that fell behind, and the clear screen when the token
// is revoked.
func TestSessionSignInReconnectAndExpiry(t *testing.T) {
	srv := newServer(t, 16) // a small queue, so a burst drops the page
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	bob := srv.token("bob", "Bob", calls.RoleAgent)

	page := newTab(t, srv)
	page.open("/")
	page.waitJS("the sign-in form", `document.getElementById('token') !== null`)
	page.setValue("#token", "not-a-token")
	page.click(`#signin-form button[type="submit"]`)
	page.waitJS("the server's error in plain words", `document.getElementById('signin-error').textContent.includes('The token is not valid')`)
	page.setValue("#token", alice)
	page.click(`#signin-form button[type="submit"]`)
	page.waitLive()
	page.do("reload", chromedp.Reload())
	page.waitLive()

	srv.call(bob, "8:acs:alice")
	id := srv.accept(alice, "8:acs:bob")
	page.waitJS("the call", `document.querySelector('`+card(id)+`.is-active') !== null`)

	// A burst of speaking changes overflows the page's queue on the server,
	// which closes the connection (1013); the page reconnects and its fresh
	// snapshot has the last state.
	leg := legOf(t, srv.getCall(alice, id), "8:acs:bob")
	for i := range 2001 {
		srv.sb.ReportSpeaking(leg, i%2 == 0)
	}
	page.waitJS("a reconnect", `Number(document.body.dataset.reconnects) >= 1 && document.body.dataset.conn === 'open'`)
	page.waitJS("the last state after the reconnect", `document.querySelector('`+card(id)+` .speaking.on') !== null`)

	// Revoking the token ends the session with a clear screen.
	sess, err := srv.tokens.Verify(alice)
	if err != nil {
		t.Fatal(err)
	}
	srv.do(http.MethodDelete, "/api/tokens/"+sess.TokenID, adminKey, nil, http.StatusNoContent, nil)
	page.waitJS("the session-ended screen", `document.body.dataset.conn === 'expired' && document.getElementById('expired-msg') !== null
		&& document.getElementById('expired-msg').textContent.includes('invalidToken') && sessionStorage.getItem('switchboard.token') === null`)
}
