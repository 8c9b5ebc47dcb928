package api

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// SignIn is a sign-in with a company account (OIDC, in package oidcauth):
// the API routes its two steps and mints the token for who signed in.
type SignIn interface {
	// Login starts a sign-in: it redirects the browser to the provider. It
	// writes nothing when it returns an error.
	Login(w http.ResponseWriter, r *http.Request) error
	// Callback finishes it and answers who signed in (role agent or
	// supervisor); it may set headers (cookies) but writes no answer.
	// Errors are *calls.Error: invalid_request, unauthorized, forbidden,
	// unavailable.
	Callback(w http.ResponseWriter, r *http.Request) (calls.Principal, error)
}

// Sign-in routes.
const (
	signInLoginPath    = "/auth/login"
	signInCallbackPath = "/auth/callback"
)

// authConfig tells the console how users may sign in (GET /api/auth/config).
func (s *Server) authConfig(c echo.Context) error {
	body := map[string]any{"oidc": s.cfg.SignIn != nil}
	if s.cfg.SignIn != nil {
		body["loginUrl"] = signInLoginPath
	}
	return c.JSON(http.StatusOK, body)
}

var errNoSignIn = signInError{calls.Errorf(calls.CodeNotFound, "the sign-in with a company account is not configured on this switchboard")}

func (s *Server) signInLogin(c echo.Context) error {
	if s.cfg.SignIn == nil {
		return errNoSignIn
	}
	if err := s.cfg.SignIn.Login(c.Response(), c.Request()); err != nil {
		return signInError{err}
	}
	return nil
}

// signInCallback mints a token (the default life, refreshable) for who
// signed in and hands it to the console in the URL's fragment, which
// stays out of logs and Referer headers. A refused sign-in counts against
// the client address's failure limit.
func (s *Server) signInCallback(c echo.Context) error {
	if s.cfg.SignIn == nil {
		return errNoSignIn
	}
	var p calls.Principal
	err := s.limitFailures(c, "sign-in", func() error {
		var err error
		p, err = s.cfg.SignIn.Callback(c.Response(), c.Request())
		if err != nil {
			s.log.Info("sign-in refused", "client", clientAddress(c.Request(), s.cfg.TrustedProxies), "err", err)
		}
		return err
	})
	if err != nil {
		return signInError{err}
	}
	if p.Role != calls.RoleAgent && p.Role != calls.RoleSupervisor {
		return signInError{calls.Errorf(calls.CodeForbidden, "a company account signs in as an agent or a supervisor only")}
	}
	minted, err := s.cfg.Tokens.Mint(TokenRequest{Identity: p.Identifier, DisplayName: p.DisplayName, Role: p.Role})
	if err != nil {
		return signInError{err}
	}
	noteIdentity(c, Session{Principal: p})
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Referrer-Policy", "no-referrer")
	return c.Redirect(http.StatusSeeOther, "/#"+url.Values{"token": {minted.Token}}.Encode())
}

// signInError is a sign-in's error: a browser that asked for a page gets
// one that says it (with the same status), anything else the contract's
// JSON.
type signInError struct{ err error }

func (e signInError) Error() string { return e.err.Error() }
func (e signInError) Unwrap() error { return e.err }

// wantsPage reports whether the request prefers HTML (a browser's
// navigation) to JSON.
func wantsPage(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, "application/json")
}

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in refused · Switchboard</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}code{font-size:.9em}</style>
</head><body><main>
<h1>Sign-in refused</h1>
<p id="signin-refused" role="alert">{{.Message}}</p>
<p>Error code: <code>{{.Code}}</code></p>
<p><a href="/">Back to the sign-in page</a></p>
</main></body></html>
`))

// answerSignInPage answers a refused sign-in as a page; it reports false
// when the request wants JSON instead.
func answerSignInPage(c echo.Context, status int, code calls.Code, msg string) bool {
	if !wantsPage(c.Request()) || c.Request().Method == http.MethodHead {
		return false
	}
	h := c.Response().Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(status)
	_ = signInPage.Execute(c.Response(), struct {
		Code    calls.Code
		Message string
	}{code, msg})
	return true
}
