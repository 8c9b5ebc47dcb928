package browsertest_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/oidcauth"
	"github.com/switchboard/switchboard/internal/oidcauth/oidcauthtest"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/web"
)

// newSignInServer starts the API and console with the sign-in with a
// company account against a real OIDC provider running in process
// (which approves every sign-in at once); the groups claim maps to roles.
func newSignInServer(t *testing.T) (*server, func(u *oidcauthtest.User)) {
	t.Helper()
	op := oidcauthtest.Provider(t)
	quiet := slog.New(slog.DiscardHandler)
	signIn, err := oidcauth.New(oidcauth.Config{
		Issuer: op.Issuer(), ClientID: op.ClientID, ClientSecret: op.ClientSecret, RoleClaim: "groups",
		Roles:  oidcauth.RoleMap{calls.RoleSupervisor: {"sb-supervisors"}, calls.RoleAgent: {"sb-agents"}},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens := api.NewTokens(adminKey, nil)
	st := store.NewMemory()
	hub := api.NewHub(nil, 0)
	sb, err := calls.New(calls.Config{Store: st, Publisher: hub, NewID: uuid.NewString})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{
		Switchboard: sb, Hub: hub, Tokens: tokens, Ready: st.Ready, Console: web.Console(),
		WriteTimeout: 2 * time.Second, SignIn: signIn, Logger: quiet,
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		_ = sb.Close(t.Context())
		srv.Close()
	})
	return &server{t: t, url: ts.URL, sb: sb, tokens: tokens}, func(u *oidcauthtest.User) { op.QueueUser(u) }
}

// The sign-in screen offers "Sign in with your company account"; clicking
// it signs the user in through the provider with the role their group
// maps to, the token kept for the tab and gone from the address bar. A
// user with no mapped group sees the refusal in words.
func TestSignInWithCompanyAccount(t *testing.T) {
	srv, queue := newSignInServer(t)

	queue(&oidcauthtest.User{Sub: "s-1", Extra: map[string]any{
		"preferred_username": "sue@example.com", "name": "Sue Supervisor", "groups": []string{"staff", "sb-supervisors"},
	}})
	page := newTab(t, srv)
	page.open("/")
	page.waitJS("the company sign-in button", `(() => {
		const a = document.getElementById('company-signin-link');
		return a && !document.getElementById('company-signin').hidden && a.textContent.includes('company account');
	})()`)
	page.screenshot("signin-company")
	page.click("#company-signin-link")
	afterNavigation(page, "the console back from the provider", `location.pathname === '/' && document.body.dataset.conn === 'open'`)
	page.waitLive()
	page.waitJS("who signed in", `document.getElementById('who').textContent.includes('Sue Supervisor (supervisor) · 8:acs:sue@example.com')`)
	page.waitJS("the token kept for the tab, not in the address bar",
		`!location.href.includes('token') && (sessionStorage.getItem('switchboard.token') || '').split('.').length === 3`)

	queue(&oidcauthtest.User{Sub: "s-2", Extra: map[string]any{"preferred_username": "eve", "groups": []string{"engineering"}}})
	other := newTab(t, srv)
	other.open("/")
	other.waitJS("the company sign-in button", `!document.getElementById('company-signin').hidden`)
	other.click("#company-signin-link")
	afterNavigation(other, "the refusal", `(() => {
		const p = document.getElementById('signin-refused');
		return p && p.textContent.includes('no switchboard role') && document.body.innerText.includes('forbidden');
	})()`)
}

// afterNavigation waits until the expression is truthy on the page a
// navigation (a click on a link through redirects) leads to: while the
// tab navigates, the old page's context is gone and evaluating fails, so
// it tries again until the deadline.
func afterNavigation(tb *tab, what, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(waitLimit)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	tb.t.Fatalf("waiting for %s: %v\n%s", what, last, tb.dump())
}
