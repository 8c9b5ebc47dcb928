// Package oidcauthtest runs a real OpenID Connect provider in process
// (oauth2-proxy/mockoidc) for tests, with users whose ID tokens carry any
// claims. It is for tests only.
package oidcauthtest

import (
	"encoding/json"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// Provider starts a provider on a free local port, stopped when the test
// ends. Queue the next user to sign in with QueueUser (mockoidc approves
// every sign-in at once, with no page).
func Provider(tb testing.TB) *mockoidc.MockOIDC {
	tb.Helper()
	op, err := mockoidc.Run()
	if err != nil {
		tb.Fatalf("start the OIDC provider: %v", err)
	}
	tb.Cleanup(func() { _ = op.Shutdown() })
	return op
}

// User is a provider's user: Sub is the subject, Extra claims go into the ID
// token beside the standard ones, and Alter, when set, changes the
// standard ones (audience, issuer, expiry, nonce) before the token is
// signed.
type User struct {
	Sub   string
	Extra map[string]any
	Alter func(*mockoidc.IDTokenClaims)
}

var _ mockoidc.User = (*User)(nil)

// ID is the subject.
func (u *User) ID() string { return u.Sub }

// Userinfo answers the subject only.
func (u *User) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.Sub})
}

// Claims are the ID token's claims.
func (u *User) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	if u.Alter != nil {
		u.Alter(base)
	}
	return idClaims{IDTokenClaims: base, extra: u.Extra}, nil
}

// idClaims are an ID token's standard claims plus any others.
type idClaims struct {
	*mockoidc.IDTokenClaims
	extra map[string]any
}

func (c idClaims) MarshalJSON() ([]byte, error) {
	std, err := json.Marshal(c.IDTokenClaims)
	if err != nil {
		return nil, err
	}
	all := map[string]any{}
	if err := json.Unmarshal(std, &all); err != nil {
		return nil, err
	}
	for k, v := range c.extra {
		all[k] = v
	}
	return json.Marshal(all)
}
