// Package oidcauth signs agents and supervisors in with their company
// account through OpenID Connect (the authorization code flow with PKCE).
//
// It owns one job: GET /auth/login sends the browser to the provider with
// a fresh state, nonce and PKCE verifier, kept in a short-lived encrypted
// cookie; GET /auth/callback checks the state (once only), exchanges the
// code, verifies the ID token (issuer, audience, expiry, signature and
// nonce) with go-oidc's verifier, and maps its claims to a principal: an
// identity (a communicationUserId from a configurable claim), a display
// name and a role (agent or supervisor) from a configurable claim.
//
// It must not mint tokens, choose HTTP statuses or write error answers:
// the API does that with the principal and the *calls.Error this package
// returns (invalid_request for a missing, forged, expired or reused state;
// unauthorized when the provider refused or the ID token does not verify;
// forbidden when no role maps or the identity claim is unusable;
// unavailable when the provider cannot be reached).
package oidcauth
