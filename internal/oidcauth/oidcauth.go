package oidcauth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/switchboard/switchboard/internal/calls"
)

// Config is the OIDC client's configuration.
type Config struct {
	// Issuer is the provider's issuer URL, where its discovery document is
	// (Issuer + "/.well-known/openid-configuration").
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback's absolute URL as registered at the
	// provider (https://host/auth/callback). Empty: made from each
	// request's Host, https when the request came over TLS.
	RedirectURL string
	// Scopes are asked for besides openid (default: profile and email).
	Scopes []string
	// RoleClaim names the claim that gives the role (default
	// DefaultRoleClaim); a dotted name reaches into nested objects.
	RoleClaim string
	// Roles maps the role claim's values to roles; empty: the value is the
	// role's name.
	Roles RoleMap
	// IdentityClaim names the claim whose string is the communicationUserId
	// (default DefaultIdentityClaim; "sub" is always unique).
	IdentityClaim string
	// HTTPClient talks to the provider (default: a client with a 10 s
	// timeout).
	HTTPClient *http.Client
	// StateTTL is how long a sign-in may take at the provider (default 10
	// minutes).
	StateTTL time.Duration
	// StateKey seals the sign-in state cookies: 32 bytes, the same on every
	// node of a cluster, so that a sign-in begun on one node finishes on
	// another. Empty: a random key made at start (one node).
	StateKey []byte
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Handler serves the sign-in's two steps.
type Handler struct {
	cfg     Config
	mapping claimMapping
	client  *http.Client
	sealer  *sealer
	spent   spent
	log     *slog.Logger

	mu       sync.Mutex
	provider *oidc.Provider // nil until discovered
	verifier *oidc.IDTokenVerifier
}

// New checks the configuration and returns the handler. The provider is
// discovered on the first sign-in (and again until that succeeds), so
// that the switchboard starts while the provider is unreachable.
func New(cfg Config) (*Handler, error) {
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("the OIDC issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("the OIDC client id is required with an issuer")
	}
	if cfg.RedirectURL != "" {
		if u, err := url.Parse(cfg.RedirectURL); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("the OIDC redirect URL %q is not an absolute URL", cfg.RedirectURL)
		}
	}
	if cfg.Scopes == nil {
		cfg.Scopes = []string{"profile", "email"}
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = DefaultRoleClaim
	}
	if cfg.IdentityClaim == "" {
		cfg.IdentityClaim = DefaultIdentityClaim
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	s, err := newSealer(cfg.StateKey)
	if err != nil {
		return nil, err
	}
	return &Handler{
		cfg: cfg, client: client, sealer: s, log: cfg.Logger,
		mapping: claimMapping{roleClaim: cfg.RoleClaim, roles: cfg.Roles, identityClaim: cfg.IdentityClaim},
	}, nil
}

// discover fetches the provider's discovery document once.
func (h *Handler) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return h.provider, h.verifier, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, h.client), h.cfg.Issuer)
	if err != nil {
		return nil, nil, &calls.Error{Code: calls.CodeUnavailable, Op: "discover the OIDC provider", Err: err,
			Message: "the company sign-in provider cannot be reached: try again in a moment"}
	}
	h.provider = p
	h.verifier = p.Verifier(&oidc.Config{ClientID: h.cfg.ClientID, Now: h.cfg.Now})
	return h.provider, h.verifier, nil
}

// oauth is the OAuth 2 client for a request.
func (h *Handler) oauth(p *oidc.Provider, r *http.Request) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     h.cfg.ClientID,
		ClientSecret: h.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  h.redirectURL(r),
		Scopes:       append([]string{oidc.ScopeOpenID}, slices.DeleteFunc(slices.Clone(h.cfg.Scopes), func(s string) bool { return s == oidc.ScopeOpenID })...),
	}
}

// CallbackPath is where the provider sends the browser back.
const CallbackPath = "/auth/callback"

func (h *Handler) redirectURL(r *http.Request) string {
	if h.cfg.RedirectURL != "" {
		return h.cfg.RedirectURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: r.Host, Path: CallbackPath}).String()
}

// secure reports whether the state cookie is for HTTPS only.
func (h *Handler) secure(r *http.Request) bool {
	u, err := url.Parse(h.redirectURL(r))
	return err == nil && u.Scheme == "https"
}

// Login starts a sign-in (GET /auth/login): it keeps a fresh state, nonce
// and PKCE verifier in the state cookie and redirects to the provider. It
// writes nothing when it returns an error (unavailable: the provider
// cannot be reached).
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) error {
	p, _, err := h.discover(r.Context())
	if err != nil {
		return err
	}
	st := loginState{
		State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(),
		Expires: h.cfg.Now().Add(h.cfg.StateTTL),
	}
	sealed, err := h.sealer.seal(st)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: sealed, Path: "/auth/", MaxAge: int(h.cfg.StateTTL / time.Second),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, h.oauth(p, r).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
	return nil
}

// Callback finishes a sign-in (GET /auth/callback) and answers who signed
// in. It clears the state cookie and writes nothing else: the caller
// answers, with a token or the error. Errors are *calls.Error.
func (h *Handler) Callback(w http.ResponseWriter, r *http.Request) (calls.Principal, error) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Path: "/auth/", MaxAge: -1, HttpOnly: true,
		Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	p, err := h.callback(r)
	if err != nil {
		return calls.Principal{}, err
	}
	h.log.Info("signed in with the company account", "identity", p.Identifier.RawID(), "role", p.Role)
	return p, nil
}

func (h *Handler) callback(r *http.Request) (calls.Principal, error) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return calls.Principal{}, calls.Errorf(calls.CodeUnauthorized, "the company sign-in provider refused the sign-in (%.64s)", e)
	}
	st, err := h.state(r)
	if err != nil {
		return calls.Principal{}, err
	}
	code := q.Get("code")
	if code == "" {
		return calls.Principal{}, calls.Errorf(calls.CodeInvalidRequest, "the provider sent no authorization code: sign in again")
	}
	p, verifier, err := h.discover(r.Context())
	if err != nil {
		return calls.Principal{}, err
	}
	ctx := oidc.ClientContext(r.Context(), h.client)
	tok, err := h.oauth(p, r).Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		if _, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
			return calls.Principal{}, &calls.Error{Code: calls.CodeUnauthorized, Op: "exchange the authorization code", Err: err,
				Message: "the company sign-in provider did not accept the sign-in: sign in again"}
		}
		return calls.Principal{}, &calls.Error{Code: calls.CodeUnavailable, Op: "exchange the authorization code", Err: err,
			Message: "the company sign-in provider cannot be reached: try again in a moment"}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return calls.Principal{}, calls.Errorf(calls.CodeUnauthorized, "the company sign-in provider sent no ID token")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return calls.Principal{}, &calls.Error{Code: calls.CodeUnauthorized, Op: "verify the ID token", Err: err,
			Message: "the company sign-in provider's ID token does not verify (issuer, audience, expiry or signature)"}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return calls.Principal{}, calls.Errorf(calls.CodeUnauthorized, "the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return calls.Principal{}, &calls.Error{Code: calls.CodeUnauthorized, Op: "read the ID token's claims", Err: err,
			Message: "the company sign-in provider's ID token has unreadable claims"}
	}
	return h.mapping.principal(claims)
}

// state opens the state cookie, checks it against the state parameter and
// uses it up.
func (h *Handler) state(r *http.Request) (loginState, error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return loginState{}, calls.Errorf(calls.CodeInvalidRequest,
			"no sign-in is in progress in this browser (its cookie is missing): sign in again")
	}
	st, err := h.sealer.open(c.Value)
	if err != nil {
		return loginState{}, &calls.Error{Code: calls.CodeInvalidRequest, Op: "open the sign-in state", Err: err,
			Message: "the sign-in state is not one this switchboard made: sign in again"}
	}
	now := h.cfg.Now()
	if !now.Before(st.Expires) {
		return loginState{}, calls.Errorf(calls.CodeInvalidRequest, "the sign-in took too long: sign in again")
	}
	if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("state")), []byte(st.State)) != 1 {
		return loginState{}, calls.Errorf(calls.CodeInvalidRequest, "the sign-in's state does not match this browser's: sign in again")
	}
	fresh, full := h.spent.use(st.State, st.Expires, now)
	switch {
	case full:
		return loginState{}, calls.Errorf(calls.CodeUnavailable, "too many sign-ins at once: try again in a moment")
	case !fresh:
		return loginState{}, calls.Errorf(calls.CodeInvalidRequest, "this sign-in was used already: sign in again")
	}
	return st, nil
}

// RoleClaim is the claim that gives the role.
func (h *Handler) RoleClaim() string { return h.cfg.RoleClaim }

// IdentityClaim is the claim that names the user.
func (h *Handler) IdentityClaim() string { return h.cfg.IdentityClaim }
