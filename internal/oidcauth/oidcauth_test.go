package oidcauth

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/oidcauth/oidcauthtest"
)

// rig is a real OIDC provider (mockoidc, in process) and the handler
// under test behind a real HTTP server whose callback answers the
// principal as JSON (200) or the error's code (400).
type rig struct {
	t   *testing.T
	op  *mockoidc.MockOIDC
	h   *Handler
	srv *httptest.Server

	mu  sync.Mutex
	now time.Time // the handler's clock; zero: the real time
}

func newRig(t *testing.T, tweak func(*Config)) *rig {
	t.Helper()
	op := oidcauthtest.Provider(t)
	r := &rig{t: t, op: op}
	cfg := Config{
		Issuer: op.Issuer(), ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.now.IsZero() {
				return time.Now()
			}
			return r.now
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	var err error
	r.h, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/login", func(w http.ResponseWriter, req *http.Request) {
		if err := r.h.Login(w, req); err != nil {
			writeErr(w, err)
		}
	})
	mux.HandleFunc("GET /auth/callback", func(w http.ResponseWriter, req *http.Request) {
		p, err := r.h.Callback(w, req)
		if err != nil {
			writeErr(w, err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"rawId": p.Identifier.RawID(), "name": p.DisplayName, "role": string(p.Role)})
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func writeErr(w http.ResponseWriter, err error) {
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": string(calls.ErrorCode(err)), "message": calls.ErrorMessage(err), "err": err.Error()})
}

// browser is a client with a cookie jar that follows redirects up to the
// provider's redirect back to the callback, and stops there.
func (r *rig) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == CallbackPath {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// start signs in as u at the provider and answers the URL the provider
// sends the browser back to.
func (r *rig) start(b *http.Client, u mockoidc.User) *url.URL {
	r.t.Helper()
	r.op.QueueUser(u)
	resp, err := b.Get(r.srv.URL + "/auth/login")
	if err != nil {
		r.t.Fatalf("sign in: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		r.t.Fatalf("sign in: %d at %s, want the provider's 302 to the callback", resp.StatusCode, resp.Request.URL)
	}
	back, err := resp.Location()
	if err != nil || back.Path != CallbackPath {
		r.t.Fatalf("the provider sends the browser to %v (%v), want %s", back, err, CallbackPath)
	}
	return back
}

// finish follows the callback URL and answers the principal's fields, or
// the error's code, message and detail.
func (r *rig) finish(b *http.Client, back *url.URL) (map[string]string, int) {
	r.t.Helper()
	resp, err := b.Get(back.String())
	if err != nil {
		r.t.Fatalf("callback: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		r.t.Fatalf("callback answer: %v", err)
	}
	return out, resp.StatusCode
}

func (r *rig) signIn(u mockoidc.User) (map[string]string, int) {
	r.t.Helper()
	b := r.browser()
	return r.finish(b, r.start(b, u))
}

// TestSignIn signs users in through the real provider and the real code
// flow (PKCE, nonce, ID token verification) and checks the principal each
// claim set maps to, or the refusal.
func TestSignIn(t *testing.T) {
	groups := func(c *Config) {
		c.RoleClaim = "groups"
		c.Roles = RoleMap{calls.RoleSupervisor: {"sb-supervisors"}, calls.RoleAgent: {"sb-agents", "sb-night"}}
	}
	tests := []struct {
		name     string
		cfg      func(*Config)
		claims   map[string]any
		alter    func(*mockoidc.IDTokenClaims)
		wantRole calls.Role
		wantID   string
		wantName string
		wantCode calls.Code
		wantWhy  string // in the refusal's error
	}{
		{name: "the claim's value is the role", claims: map[string]any{"preferred_username": "alice", "name": "Alice Liddell", "switchboard_role": "supervisor"},
			wantRole: calls.RoleSupervisor, wantID: "8:acs:alice", wantName: "Alice Liddell"},
		{name: "no name: the identity", claims: map[string]any{"preferred_username": "bob@example.com", "switchboard_role": "agent"},
			wantRole: calls.RoleAgent, wantID: "8:acs:bob@example.com", wantName: "bob@example.com"},
		{name: "a group maps to agent", cfg: groups, claims: map[string]any{"preferred_username": "carol", "name": "Carol", "groups": []string{"staff", "sb-night"}},
			wantRole: calls.RoleAgent, wantID: "8:acs:carol", wantName: "Carol"},
		{name: "supervisor wins over agent", cfg: groups, claims: map[string]any{"preferred_username": "dan", "groups": []string{"sb-agents", "sb-supervisors"}},
			wantRole: calls.RoleSupervisor, wantID: "8:acs:dan", wantName: "dan"},
		{name: "nested claim", cfg: func(c *Config) { c.RoleClaim = "realm_access.roles"; c.IdentityClaim = "sub" },
			claims:   map[string]any{"realm_access": map[string]any{"roles": []string{"offline_access", "agent"}}},
			wantRole: calls.RoleAgent, wantID: "8:acs:sub-nested", wantName: "sub-nested"},
		{name: "a verified email names the user", cfg: func(c *Config) { c.IdentityClaim = "email" },
			claims:   map[string]any{"email": "fay@example.com", "email_verified": true, "switchboard_role": "agent"},
			wantRole: calls.RoleAgent, wantID: "8:acs:fay@example.com", wantName: "fay@example.com"},
		{name: "an unverified email does not", cfg: func(c *Config) { c.IdentityClaim = "email" },
			claims:   map[string]any{"email": "fay@example.com", "email_verified": false, "switchboard_role": "agent"},
			wantCode: calls.CodeForbidden, wantWhy: "not verified"},
		{name: "no group maps", cfg: groups, claims: map[string]any{"preferred_username": "eve", "groups": []string{"engineering"}}, wantCode: calls.CodeForbidden, wantWhy: "no switchboard role"},
		{name: "a role value that is no role", claims: map[string]any{"preferred_username": "eve", "switchboard_role": "admin"}, wantCode: calls.CodeForbidden},
		{name: "caller is no role for a company account", claims: map[string]any{"preferred_username": "eve", "switchboard_role": "caller"}, wantCode: calls.CodeForbidden},
		{name: "no role claim", claims: map[string]any{"preferred_username": "eve"}, wantCode: calls.CodeForbidden},
		{name: "no identity claim", claims: map[string]any{"switchboard_role": "agent"}, wantCode: calls.CodeForbidden},
		{name: "an identity with a space", claims: map[string]any{"preferred_username": "eve smith", "switchboard_role": "agent"}, wantCode: calls.CodeForbidden, wantWhy: "has a space"},
		{name: "another audience", claims: map[string]any{"preferred_username": "mallory", "switchboard_role": "supervisor"},
			alter:    func(c *mockoidc.IDTokenClaims) { c.Audience = jwt.ClaimStrings{"another-client"} },
			wantCode: calls.CodeUnauthorized, wantWhy: "expected audience"},
		{name: "another issuer", claims: map[string]any{"preferred_username": "mallory", "switchboard_role": "supervisor"},
			alter:    func(c *mockoidc.IDTokenClaims) { c.Issuer = "https://evil.example.com" },
			wantCode: calls.CodeUnauthorized, wantWhy: "different provider"},
		{name: "expired", claims: map[string]any{"preferred_username": "mallory", "switchboard_role": "supervisor"},
			alter: func(c *mockoidc.IDTokenClaims) {
				c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Hour))
				c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			}, wantCode: calls.CodeUnauthorized, wantWhy: "expired"},
		{name: "another sign-in's nonce", claims: map[string]any{"preferred_username": "mallory", "switchboard_role": "supervisor"},
			alter:    func(c *mockoidc.IDTokenClaims) { c.Nonce = "someone-elses-nonce" },
			wantCode: calls.CodeUnauthorized, wantWhy: "nonce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.cfg)
			got, status := r.signIn(&oidcauthtest.User{Sub: "sub-nested", Extra: tt.claims, Alter: tt.alter})
			if tt.wantCode != "" {
				if status != http.StatusBadRequest || got["code"] != string(tt.wantCode) || !strings.Contains(got["err"], tt.wantWhy) {
					t.Fatalf("got %d %v, want refused with %s because %q", status, got, tt.wantCode, tt.wantWhy)
				}
				return
			}
			if status != http.StatusOK {
				t.Fatalf("got %d %v, want signed in", status, got)
			}
			if got["role"] != string(tt.wantRole) || got["rawId"] != tt.wantID || got["name"] != tt.wantName {
				t.Fatalf("signed in as %v, want %s %s %q", got, tt.wantRole, tt.wantID, tt.wantName)
			}
		})
	}
}

var agent = &oidcauthtest.User{Sub: "s1", Extra: map[string]any{"preferred_username": "alice", "switchboard_role": "agent"}}

// TestCallbackState: the callback is refused unless the browser brings the
// cookie of the sign-in it started, with its state, once, in time.
func TestCallbackState(t *testing.T) {
	r := newRig(t, nil)
	base, _ := url.Parse(r.srv.URL + "/auth/")

	tests := []struct {
		name string
		// mess changes the browser or the callback URL before the callback.
		mess func(b *http.Client, back *url.URL)
		want string // in the message
	}{
		{name: "tampered state", mess: func(_ *http.Client, back *url.URL) {
			q := back.Query()
			q.Set("state", q.Get("state")+"x")
			back.RawQuery = q.Encode()
		}, want: "does not match"},
		{name: "no cookie", mess: func(b *http.Client, _ *url.URL) {
			b.Jar, _ = cookiejar.New(nil)
		}, want: "cookie is missing"},
		{name: "forged cookie", mess: func(b *http.Client, _ *url.URL) {
			c := b.Jar.Cookies(base)[0]
			raw := []byte(c.Value)
			raw[len(raw)/2] ^= 1
			b.Jar.SetCookies(base, []*http.Cookie{{Name: c.Name, Value: string(raw), Path: "/auth/"}})
		}, want: "not one this switchboard made"},
		{name: "too late", mess: func(*http.Client, *url.URL) {
			r.mu.Lock()
			r.now = time.Now().Add(11 * time.Minute)
			r.mu.Unlock()
		}, want: "took too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { r.mu.Lock(); r.now = time.Time{}; r.mu.Unlock() })
			b := r.browser()
			back := r.start(b, agent)
			tt.mess(b, back)
			got, status := r.finish(b, back)
			if status != http.StatusBadRequest || got["code"] != string(calls.CodeInvalidRequest) || !strings.Contains(got["message"], tt.want) {
				t.Fatalf("got %d %v, want invalid_request saying %q", status, got, tt.want)
			}
		})
	}
}

// TestCallbackReplay: a callback replayed with the cookie it came with is
// refused by the switchboard itself, before the provider is asked.
func TestCallbackReplay(t *testing.T) {
	r := newRig(t, nil)
	base, _ := url.Parse(r.srv.URL + "/auth/")
	b := r.browser()
	back := r.start(b, agent)
	cookies := b.Jar.Cookies(base)
	if got, status := r.finish(b, back); status != http.StatusOK || got["role"] != "agent" {
		t.Fatalf("first callback: %d %v", status, got)
	}
	if left := b.Jar.Cookies(base); len(left) != 0 {
		t.Fatalf("the callback left the state cookie: %v", left)
	}
	// Another browser replays the callback with the cookie: the state was
	// used (the message is the switchboard's, not the provider's).
	thief := r.browser()
	thief.Jar.SetCookies(base, cookies)
	got, status := r.finish(thief, back)
	if status != http.StatusBadRequest || got["code"] != string(calls.CodeInvalidRequest) || !strings.Contains(got["message"], "used already") {
		t.Fatalf("replayed callback: %d %v, want invalid_request: used already", status, got)
	}
}

// TestLoginRedirect: the login sends the browser to the provider with a
// state, a nonce and an S256 PKCE challenge, and keeps them in an
// HttpOnly, SameSite=Lax cookie for the callback's path only.
func TestLoginRedirect(t *testing.T) {
	r := newRig(t, nil)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(r.srv.URL + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	if got, want := to.Scheme+"://"+to.Host+to.Path, r.op.AuthorizationEndpoint(); got != want {
		t.Errorf("login redirects to %s, want %s", got, want)
	}
	q := to.Query()
	for k, want := range map[string]string{
		"client_id": r.op.ClientID, "response_type": "code", "code_challenge_method": "S256",
		"redirect_uri": r.srv.URL + CallbackPath, "scope": "openid profile email",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 20 {
			t.Errorf("%s = %q, want a long random value", k, q.Get(k))
		}
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set cookies %v, want one", cookies)
	}
	ck := cookies[0]
	if ck.Name != cookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/auth/" || ck.MaxAge <= 0 || ck.MaxAge > 600 {
		t.Errorf("state cookie %+v", ck)
	}
	if strings.Contains(ck.Value, q.Get("state")) || strings.Contains(ck.Value, q.Get("nonce")) {
		t.Error("the cookie shows the state or nonce in clear")
	}
}

// TestProviderRefusal: the provider's error answer is unauthorized.
func TestProviderRefusal(t *testing.T) {
	r := newRig(t, nil)
	b := r.browser()
	back := r.start(b, agent)
	q := back.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	back.RawQuery = q.Encode()
	got, status := r.finish(b, back)
	if status != http.StatusBadRequest || got["code"] != string(calls.CodeUnauthorized) || !strings.Contains(got["message"], "access_denied") {
		t.Fatalf("got %d %v, want unauthorized naming access_denied", status, got)
	}
}

// TestProviderUnreachable: without the provider, sign-in is unavailable,
// and works once the provider is there.
func TestProviderUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	h, err := New(Config{Issuer: "http://" + addr + "/oidc", ClientID: "switchboard",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	err = h.Login(w, httptest.NewRequest(http.MethodGet, "/auth/login", nil))
	if calls.ErrorCode(err) != calls.CodeUnavailable {
		t.Fatalf("login without the provider: %v, want unavailable", err)
	}
	if w.Code != http.StatusOK || len(w.Header()) != 0 {
		t.Fatalf("a failed login wrote %d %v", w.Code, w.Header())
	}
}

func TestParseRoleMap(t *testing.T) {
	tests := []struct {
		text    string
		want    RoleMap
		wantErr bool
	}{
		{text: "", want: RoleMap{}},
		{text: "supervisor=sb-supervisors, agent=sb-agents,agent=sb-night", want: RoleMap{
			calls.RoleSupervisor: {"sb-supervisors"}, calls.RoleAgent: {"sb-agents", "sb-night"}}},
		{text: "caller=everyone", wantErr: true},
		{text: "agent", wantErr: true},
		{text: "agent=", wantErr: true},
		{text: "admin=sb-admins", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRoleMap(tt.text)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseRoleMap(%q): %v, want error %v", tt.text, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseRoleMap(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Issuer: "", ClientID: "x"},
		{Issuer: "not a url", ClientID: "x"},
		{Issuer: "https://idp.example.com"},
		{Issuer: "https://idp.example.com", ClientID: "x", RedirectURL: "/auth/callback"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted it", cfg)
		}
	}
}
