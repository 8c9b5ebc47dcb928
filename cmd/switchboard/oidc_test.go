package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/api/apitest"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/oidcauth"
	"github.com/switchboard/switchboard/internal/oidcauth/oidcauthtest"
)

// oidcRig is the real program with the sign-in with a company account
// configured against a real OIDC provider running in process, and
// browsers (cookie jars) whose every answer from the switchboard is
// checked against the OpenAPI description.
type oidcRig struct {
	t    *testing.T
	op   *mockoidc.MockOIDC
	m    *Main
	logs *syncBuffer
	spec *apitest.OpenAPI
	base string
}

func startOIDC(t *testing.T) *oidcRig {
	t.Helper()
	op := oidcauthtest.Provider(t)
	m, logs := startOps(t, Config{Ops: OpsConfig{AccessLog: true}, OIDC: OIDCConfig{
		Issuer: op.Issuer(), ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RoleClaim: "groups", Roles: oidcauth.RoleMap{calls.RoleSupervisor: {"sb-supervisors"}, calls.RoleAgent: {"sb-agents"}},
	}})
	spec, err := apitest.NewOpenAPI(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	return &oidcRig{t: t, op: op, m: m, logs: logs, spec: spec, base: "http://" + m.Addr}
}

// on is the rig for a subtest.
func (r *oidcRig) on(t *testing.T) *oidcRig {
	c := *r
	c.t = t
	return &c
}

// browser follows redirects until the provider sends it back to the
// switchboard's callback, and stops there, and stops at the callback's
// redirect too; accept is its Accept header.
func (r *oidcRig) browser(accept string) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	var next http.RoundTripper = http.DefaultTransport
	if accept != "" {
		next = acceptTransport{accept}
	}
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second, Transport: r.spec.Transport(next),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == "/auth/callback" || via[len(via)-1].URL.Path == "/auth/callback" {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

type acceptTransport struct{ accept string }

func (a acceptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Accept", a.accept)
	return http.DefaultTransport.RoundTrip(req)
}

// start clicks "Sign in with your company account" as u and answers where
// the provider sends the browser back.
func (r *oidcRig) start(b *http.Client, u mockoidc.User) *url.URL {
	r.t.Helper()
	r.op.QueueUser(u)
	resp, err := b.Get(r.base + "/auth/login")
	if err != nil {
		r.t.Fatalf("sign in: %v", err)
	}
	resp.Body.Close()
	back, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil || back.Path != "/auth/callback" {
		r.t.Fatalf("sign in: %d to %v (%v), want the provider's redirect to /auth/callback", resp.StatusCode, back, err)
	}
	return back
}

// finish follows the callback: it answers the status, the Location and
// the body.
func (r *oidcRig) finish(b *http.Client, back *url.URL) (int, string, []byte) {
	r.t.Helper()
	resp, err := b.Get(back.String())
	if err != nil {
		r.t.Fatalf("callback: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), body
}

func companyUser(name string, groups ...string) *oidcauthtest.User {
	return &oidcauthtest.User{Sub: "sub-" + name, Extra: map[string]any{
		"preferred_username": name + "@example.com", "name": strings.ToUpper(name[:1]) + name[1:], "groups": groups,
	}}
}

// TestOIDCSignIn: agents and supervisors sign in with their company
// account through the real program and a real OIDC provider, and get a
// switchboard token with the role their group maps to, their identity and
// name from the ID token, the default life, refreshable; logs never show
// the token or the code.
func TestOIDCSignIn(t *testing.T) {
	r := startOIDC(t)
	c := &apiClient{t: t, base: r.base, http: &http.Client{Transport: r.spec.Transport(nil)}}
	var conf map[string]any
	c.do(http.MethodGet, "/api/auth/config", "", nil, http.StatusOK, &conf)
	if conf["oidc"] != true || conf["loginUrl"] != "/auth/login" {
		t.Fatalf("GET /api/auth/config = %v, want oidc on at /auth/login", conf)
	}

	var codes []string
	for _, tt := range []struct {
		user   *oidcauthtest.User
		role   calls.Role
		rawID  string
		name   string
		groups []string
	}{
		{user: companyUser("sue", "staff", "sb-supervisors", "sb-agents"), role: calls.RoleSupervisor, rawID: "8:acs:sue@example.com", name: "Sue"},
		{user: companyUser("alice", "sb-agents"), role: calls.RoleAgent, rawID: "8:acs:alice@example.com", name: "Alice"},
	} {
		start := time.Now()
		b := r.browser("")
		back := r.start(b, tt.user)
		codes = append(codes, back.Query().Get("code"))
		status, loc, body := r.finish(b, back)
		if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/#token=") {
			t.Fatalf("callback: %d to %q %s", status, loc, body)
		}
		token := strings.TrimPrefix(loc, "/#token=")
		var me struct {
			RawID, DisplayName string
			Role               calls.Role
			ExpiresAt          time.Time
		}
		c.do(http.MethodGet, "/api/me", token, nil, http.StatusOK, &me)
		if me.Role != tt.role || me.RawID != tt.rawID || me.DisplayName != tt.name {
			t.Errorf("signed in as %+v, want %s %s %q", me, tt.role, tt.rawID, tt.name)
		}
		if life := me.ExpiresAt.Sub(start); life < api.DefaultTokenTTL-time.Minute || life > api.DefaultTokenTTL+time.Minute {
			t.Errorf("the token lives %s, want the default %s", life, api.DefaultTokenTTL)
		}
		var refreshed struct{ Token string }
		c.do(http.MethodPost, "/api/tokens/refresh", token, nil, http.StatusCreated, &refreshed)
		c.do(http.MethodGet, "/api/me", refreshed.Token, nil, http.StatusOK, &me)
		if me.Role != tt.role || me.RawID != tt.rawID {
			t.Errorf("the refreshed token is %+v, want %s %s", me, tt.role, tt.rawID)
		}
		if logs := r.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, refreshed.Token) {
			t.Error("the logs show a token")
		}
	}
	logs := r.logs.String()
	for _, code := range codes {
		if code == "" || strings.Contains(logs, code) {
			t.Errorf("the logs show the authorization code %q (or it is empty)", code)
		}
	}
	for _, want := range []string{"route=/auth/callback status=303", "identity=8:acs:sue@example.com", "signed in with the company account"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q", want)
		}
	}
}

// TestOIDCSignInRefused: a user whose groups map to no role, a tampered
// state, a replayed callback and an ID token for another audience are
// refused with the contract's error (a page for a browser that asks for
// HTML), and mint no token.
func TestOIDCSignInRefused(t *testing.T) {
	r := startOIDC(t)
	const page = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

	tests := []struct {
		name   string
		accept string
		user   *oidcauthtest.User
		// mess changes the callback (and the browser) before it is followed.
		mess     func(b *http.Client, back *url.URL)
		status   int
		code     calls.Code
		inAnswer string
	}{
		{name: "no role maps", user: companyUser("eve", "engineering"), status: http.StatusForbidden, code: calls.CodeForbidden, inAnswer: "no switchboard role"},
		{name: "no role maps, as a page", accept: page, user: companyUser("eve", "engineering"), status: http.StatusForbidden, code: calls.CodeForbidden, inAnswer: "no switchboard role"},
		{name: "tampered state", user: companyUser("mallory", "sb-supervisors"), mess: func(_ *http.Client, back *url.URL) {
			q := back.Query()
			state := q.Get("state")
			first := "A" // a character the state does not start with (1 in 64 did, and passed unchanged)
			if state[0] == 'A' {
				first = "B"
			}
			q.Set("state", first+state[1:])
			back.RawQuery = q.Encode()
		}, status: http.StatusBadRequest, code: calls.CodeInvalidRequest, inAnswer: "does not match"},
		{name: "another audience", user: &oidcauthtest.User{Sub: "m", Extra: map[string]any{"preferred_username": "mallory", "groups": []string{"sb-supervisors"}},
			Alter: func(c *mockoidc.IDTokenClaims) { c.Audience = jwt.ClaimStrings{"another-app"} }},
			status: http.StatusUnauthorized, code: calls.CodeUnauthorized, inAnswer: "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := r.on(t)
			b := r.browser(tt.accept)
			back := r.start(b, tt.user)
			if tt.mess != nil {
				tt.mess(b, back)
			}
			status, loc, body := r.finish(b, back)
			if status != tt.status || loc != "" {
				t.Fatalf("callback: %d to %q %s, want %d", status, loc, body, tt.status)
			}
			if tt.accept == page {
				if !strings.Contains(string(body), "<h1>Sign-in refused</h1>") || !strings.Contains(string(body), string(tt.code)) || !strings.Contains(string(body), tt.inAnswer) {
					t.Fatalf("refusal page: %s", body)
				}
				return
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != string(tt.code) || !strings.Contains(e.Error.Message, tt.inAnswer) {
				t.Fatalf("refusal %s (%v), want %s saying %q", body, err, tt.code, tt.inAnswer)
			}
		})
	}

	t.Run("replayed callback", func(t *testing.T) {
		r := r.on(t)
		b := r.browser("")
		back := r.start(b, companyUser("alice", "sb-agents"))
		authURL, _ := url.Parse(r.base + "/auth/")
		stolen := b.Jar.Cookies(authURL)
		if status, _, body := r.finish(b, back); status != http.StatusSeeOther {
			t.Fatalf("first callback: %d %s", status, body)
		}
		thief := r.browser("")
		thief.Jar.SetCookies(authURL, stolen)
		status, loc, body := r.finish(thief, back)
		if status != http.StatusBadRequest || loc != "" || !strings.Contains(string(body), "used already") {
			t.Fatalf("replayed callback: %d to %q %s, want 400 used already", status, loc, body)
		}
	})
}

// TestOIDCOff: without --oidc-issuer the console is told there is no
// company sign-in and its routes do not exist.
func TestOIDCOff(t *testing.T) {
	m, _ := startOps(t, Config{})
	status, body := get(t, "http://"+m.Addr+"/api/auth/config", "")
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"oidc":false}` {
		t.Fatalf("GET /api/auth/config: %d %s", status, body)
	}
	for _, path := range []string{"/auth/login", "/auth/callback?code=x&state=y"} {
		if status, body := get(t, "http://"+m.Addr+path, ""); status != http.StatusNotFound || !strings.Contains(string(body), `"not_found"`) {
			t.Fatalf("GET %s without OIDC: %d %s, want 404 not_found", path, status, body)
		}
	}
}

// TestOIDCFlags: the --oidc-* flags and their environment variables.
func TestOIDCFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    OIDCConfig
		wantErr string
	}{
		{name: "off", want: OIDCConfig{RoleClaim: "switchboard_role", IdentityClaim: "preferred_username", Scopes: []string{"profile", "email"}, Roles: oidcauth.RoleMap{}}},
		{name: "flags", args: []string{"--oidc-issuer", "https://idp.example.com/realms/cc", "--oidc-client-id", "switchboard", "--oidc-role-claim", "groups",
			"--oidc-roles", "supervisor=sb-supervisors,agent=sb-agents", "--oidc-scopes", "profile,groups", "--oidc-identity-claim", "sub"},
			env: map[string]string{"SWITCHBOARD_OIDC_CLIENT_SECRET": "s3cret"},
			want: OIDCConfig{Issuer: "https://idp.example.com/realms/cc", ClientID: "switchboard", ClientSecret: "s3cret", RoleClaim: "groups",
				Roles: oidcauth.RoleMap{calls.RoleSupervisor: {"sb-supervisors"}, calls.RoleAgent: {"sb-agents"}}, Scopes: []string{"profile", "groups"}, IdentityClaim: "sub"}},
		{name: "no client id", env: map[string]string{"SWITCHBOARD_OIDC_ISSUER": "https://idp.example.com"}, wantErr: "--oidc-client-id"},
		{name: "no issuer", args: []string{"--oidc-client-id", "x"}, wantErr: "--oidc-issuer"},
		{name: "bad role", args: []string{"--oidc-issuer", "https://idp.example.com", "--oidc-client-id", "x", "--oidc-roles", "caller=all"}, wantErr: "--oidc-roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeFlags(tt.args, io.Discard, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(cfg.OIDC)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Fatalf("OIDC config %s, want %s", got, want)
			}
		})
	}
}

// TestOIDCSignInRateLimited: refused callbacks count against the client
// address's limit on failed credentials: past it, 429 with Retry-After.
func TestOIDCSignInRateLimited(t *testing.T) {
	r := startOIDC(t)
	b := r.browser("")
	for i := range api.DefaultFailureBurst + 1 {
		resp, err := b.Get(r.base + "/auth/callback?code=guess&state=guess")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusBadRequest
		if i == api.DefaultFailureBurst {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("callback %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if !strings.Contains(r.logs.String(), "sign-in refused") {
		t.Error("the refusals are not logged")
	}
}

// TestClusterOIDCSignIn: a sign-in begun on one node of a cluster finishes
// on another (behind one HTTPS entry, the provider's redirect may reach
// any node): the nodes seal the sign-in state with one key, derived from
// the admin key they share.
func TestClusterOIDCSignIn(t *testing.T) {
	op := oidcauthtest.Provider(t)
	c := newTestCluster(t)
	oidc := OIDCConfig{Issuer: op.Issuer(), ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RoleClaim: "groups", Roles: oidcauth.RoleMap{calls.RoleAgent: {"sb-agents"}}}
	withOIDC := func(cfg *Config) { cfg.OIDC = oidc }
	a, b := c.startWith("a", withOIDC), c.startWith("b", withOIDC)
	spec, err := apitest.NewOpenAPI(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	r := &oidcRig{t: t, op: op, m: a, spec: spec, base: "http://" + a.Addr}
	browser := r.browser("")
	back := r.start(browser, companyUser("alice", "sb-agents"))
	back.Host = b.Addr // the provider sends the browser back to the other node
	status, loc, body := r.finish(browser, back)
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/#token=") {
		t.Fatalf("callback on b for a sign-in begun on a: %d to %q %s", status, loc, body)
	}
	if status, body, _ := send(t, a, "GET", "/api/me", strings.TrimPrefix(loc, "/#token="), ""); status != http.StatusOK || !strings.Contains(body, "alice@example.com") {
		t.Fatalf("GET /api/me on a with the token b made: %d %s", status, body)
	}
}
