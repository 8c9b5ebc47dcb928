package browsertest_test

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// The console refreshes a short-lived token before it expires and moves
// its event stream to the new one: well past the first token's expiry it
// is still signed in, a call still rings on it and a click accepts it.
func TestSessionRefreshesItsToken(t *testing.T) {
	srv := newServer(t, 0)
	page := newTab(t, srv) // Chromium may take seconds to start: before the clock runs
	const ttl = 6          // seconds
	first, err := srv.tokens.Mint(api.TokenRequest{
		Identity: calls.CommunicationUser("alice"), DisplayName: "Alice Agent", Role: calls.RoleAgent, TTLSeconds: ttl,
	})
	if err != nil {
		t.Fatal(err)
	}
	bob := srv.token("bob", "Bob", calls.RoleAgent)

	page.open("/?token=" + url.QueryEscape(first.Token))
	page.waitLive()
	expired := strconv.FormatInt(first.ExpiresAt.UnixMilli()+1000, 10)
	page.waitJS("a second past the first token's expiry",
		`Date.now() > `+expired+` && Number(document.body.dataset.refreshes) >= 1`)
	page.waitLive()
	alice := evalJS[string](page, `sessionStorage.getItem('switchboard.token')`)
	if alice == first.Token || alice == "" {
		t.Fatalf("the tab keeps token %q, want a refreshed one", alice)
	}
	if _, err := srv.tokens.Verify(first.Token); err == nil {
		t.Fatal("the first token is still valid: the test would prove nothing")
	}

	srv.call(bob, "8:acs:alice")
	id := srv.incoming(alice, "8:acs:bob")
	page.waitJS("the call ringing on the console", `document.querySelector('button[data-action="accept"][data-call="`+id+`"]') !== null`)
	page.click(`button[data-action="accept"][data-call="` + id + `"]`)
	page.waitJS("the call accepted from the console", `document.querySelector('`+card(id)+`.is-active') !== null`)
	if got := evalJS[string](page, `document.body.dataset.conn`); got != "open" {
		t.Errorf("the connection is %q, want open", got)
	}
}
