package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/calls"
)

const issuer = "switchboard"

// Token lifetimes.
const (
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 30 * 24 * time.Hour // ttlSeconds 2,592,000
)

// Tokens mints and verifies the bearer tokens: JWTs signed with HS256 by a
// key derived from the admin key, so rotating the admin key revokes every
// token. Revocations are checked from memory; with a store (Persist) they
// are also written there, and loaded from it at start, so they outlive a
// restart. Each is kept until the token would have expired.
type Tokens struct {
	adminKey []byte
	signing  []byte
	now      func() time.Time
	store    calls.TokenRevocations // nil: revocations live in memory only

	mu      sync.Mutex
	revoked map[string]time.Time // jti → expiry
	// verified caches tokens whose signature and claims were checked, so a
	// console's every request does not pay for HMAC and JSON again. Expiry
	// and revocation are still checked on every use.
	verified map[string]Session
}

// maxVerified bounds the cache of verified tokens; it is emptied when full.
const maxVerified = 1 << 16

// NewTokens returns Tokens for the admin key; now is the clock (nil: time.Now).
func NewTokens(adminKey string, now func() time.Time) *Tokens {
	if now == nil {
		now = time.Now
	}
	mac := hmac.New(sha256.New, []byte(adminKey))
	mac.Write([]byte("switchboard token signing key v1"))
	return &Tokens{
		adminKey: []byte(adminKey), signing: mac.Sum(nil), now: now,
		revoked: map[string]time.Time{}, verified: map[string]Session{},
	}
}

// Persist loads the unexpired revocations st keeps, and has Revoke write
// every later one there. Call it before serving requests; calling it again
// (a cluster wraps the store once it joined) replaces the store.
func (t *Tokens) Persist(ctx context.Context, st calls.TokenRevocations) error {
	t.mu.Lock()
	t.store = st
	t.mu.Unlock()
	return t.Reload(ctx)
}

// Reload loads again the unexpired revocations the store keeps: in a
// cluster, those other nodes made while this one did not hear of them.
// Without a store it does nothing.
func (t *Tokens) Reload(ctx context.Context) error {
	t.mu.Lock()
	st := t.store
	t.mu.Unlock()
	if st == nil {
		return nil
	}
	revoked, err := st.FindRevokedTokens(ctx, t.now())
	if err != nil {
		return fmt.Errorf("load token revocations: %w", err)
	}
	for _, r := range revoked {
		t.Learn(r.ID, r.ExpiresAt)
	}
	return nil
}

// Learn records a revocation made elsewhere (another node of a cluster,
// which wrote it to the shared store): the token is refused from now on.
func (t *Tokens) Learn(id string, expiresAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if expiresAt.After(t.revoked[id]) {
		t.revoked[id] = expiresAt
	}
}

// IsAdmin reports whether key is the admin key, in constant time.
func (t *Tokens) IsAdmin(key string) bool {
	return subtle.ConstantTimeCompare([]byte(key), t.adminKey) == 1
}

// claims are a token's contents.
type claims struct {
	jwt.RegisteredClaims
	Identity    json.RawMessage `json:"identity"`
	DisplayName string          `json:"name,omitempty"`
	Role        calls.Role      `json:"role"`
}

// TokenRequest is POST /api/tokens.
type TokenRequest struct {
	Identity    calls.Identifier `json:"identity"`
	DisplayName string           `json:"displayName"`
	Role        calls.Role       `json:"role"`
	TTLSeconds  int              `json:"ttlSeconds"` // 1 to 2,592,000; 0 (absent): an hour
}

// Minted is a new token.
type Minted struct {
	Token     string           `json:"token"`
	ExpiresAt time.Time        `json:"expiresAt"`
	ID        string           `json:"id"`
	Identity  calls.Identifier `json:"identity"`
	Role      calls.Role       `json:"role"`
}

// Validate checks a token request: who may hold which role.
func (r TokenRequest) Validate() error {
	if err := r.Identity.Validate(); err != nil {
		return err
	}
	if !r.Role.Valid() {
		return calls.Errorf(calls.CodeInvalidRequest, "role must be agent, supervisor or caller")
	}
	k := r.Identity.Kind
	if r.Role != calls.RoleCaller && k != calls.KindCommunicationUser && k != calls.KindTeamsUser {
		return calls.Errorf(calls.CodeInvalidIdentifier, "an agent's or supervisor's identity is a communicationUserId or a microsoftTeamsUserId")
	}
	if r.Identity == calls.EchoBot {
		return calls.Errorf(calls.CodeInvalidIdentifier, "8:echo123 is the built-in echo bot")
	}
	// Compared in seconds: a huge ttlSeconds times time.Second overflows.
	if r.TTLSeconds < 0 || r.TTLSeconds > int(MaxTokenTTL/time.Second) {
		return calls.Errorf(calls.CodeInvalidRequest, "ttlSeconds must be 1 to %d", int(MaxTokenTTL/time.Second))
	}
	if len(r.DisplayName) > 256 {
		return calls.Errorf(calls.CodeInvalidRequest, "displayName is longer than 256 bytes")
	}
	return nil
}

// Mint signs a token for the request.
func (t *Tokens) Mint(r TokenRequest) (Minted, error) {
	if err := r.Validate(); err != nil {
		return Minted{}, err
	}
	ttl := DefaultTokenTTL
	if r.TTLSeconds > 0 {
		ttl = time.Duration(r.TTLSeconds) * time.Second
	}
	return t.mint(r, ttl)
}

func (t *Tokens) mint(r TokenRequest, ttl time.Duration) (Minted, error) {
	now := t.now()
	exp := now.Add(ttl).Truncate(time.Second)
	ident, err := json.Marshal(r.Identity)
	if err != nil {
		return Minted{}, fmt.Errorf("mint token: %w", err)
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   r.Identity.RawID(),
			ID:        uuid.NewString(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Identity:    ident,
		DisplayName: r.DisplayName,
		Role:        r.Role,
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.signing)
	if err != nil {
		return Minted{}, fmt.Errorf("mint token: %w", err)
	}
	return Minted{Token: signed, ExpiresAt: exp, ID: c.ID, Identity: r.Identity, Role: r.Role}, nil
}

// Refresh mints a new token for a valid (unexpired, unrevoked) token's
// identity, display name and role, which lives as long as the old one was
// given (its expiry less its issue time, at most MaxTokenTTL). The old
// token stays valid until it expires or is revoked.
func (t *Tokens) Refresh(token string) (Minted, error) {
	sess, err := t.Verify(token)
	if err != nil {
		return Minted{}, err
	}
	ttl := sess.ExpiresAt.Sub(sess.IssuedAt).Round(time.Second)
	switch {
	case ttl <= 0: // no issue time
		ttl = DefaultTokenTTL
	case ttl > MaxTokenTTL:
		ttl = MaxTokenTTL
	}
	return t.mint(TokenRequest{Identity: sess.Identifier, DisplayName: sess.DisplayName, Role: sess.Role}, ttl)
}

// Session is a verified token.
type Session struct {
	calls.Principal
	TokenID   string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

var errBadToken = calls.Errorf(calls.CodeUnauthorized, "missing, forged, expired or revoked token")

// Verify checks a token's signature, issuer, expiry and revocation.
func (t *Tokens) Verify(token string) (Session, error) {
	t.mu.Lock()
	sess, ok := t.verified[token]
	if ok {
		_, revoked := t.revoked[sess.TokenID]
		live := t.now().Before(sess.ExpiresAt)
		t.mu.Unlock()
		if revoked || !live {
			return Session{}, errBadToken
		}
		return sess, nil
	}
	t.mu.Unlock()
	sess, err := t.verify(token)
	if err != nil {
		return Session{}, err
	}
	t.mu.Lock()
	if len(t.verified) >= maxVerified {
		clear(t.verified)
	}
	t.verified[token] = sess
	t.mu.Unlock()
	return sess, nil
}

func (t *Tokens) verify(token string) (Session, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.signing, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return Session{}, errBadToken
	}
	var id calls.Identifier
	if err := json.Unmarshal(c.Identity, &id); err != nil || id.RawID() != c.Subject || !c.Role.Valid() {
		return Session{}, errBadToken
	}
	if t.IsRevoked(c.ID) {
		return Session{}, errBadToken
	}
	sess := Session{
		Principal: calls.Principal{Identifier: id, DisplayName: c.DisplayName, Role: c.Role},
		TokenID:   c.ID,
		ExpiresAt: c.ExpiresAt.Time,
	}
	if c.IssuedAt != nil {
		sess.IssuedAt = c.IssuedAt.Time
	}
	return sess, nil
}

// Revoke makes the token with this id invalid for as long as any token
// can live (MaxTokenTTL, the one bound on every token's life, from now: the id alone does not tell the token's
// expiry). It takes effect at once; with a store, the revocation is
// written there before Revoke returns. When that write fails the token is
// still revoked until the process stops, and the error (CodeUnavailable)
// says so: revoking again is safe.
func (t *Tokens) Revoke(ctx context.Context, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return calls.Errorf(calls.CodeInvalidRequest, "token id %q is not a token id", id)
	}
	t.mu.Lock()
	now := t.now()
	for jti, exp := range t.revoked {
		if exp.Before(now) {
			delete(t.revoked, jti)
		}
	}
	exp := now.Add(MaxTokenTTL).Truncate(time.Second)
	if exp.After(t.revoked[id]) {
		t.revoked[id] = exp
	}
	st := t.store
	t.mu.Unlock()
	if st == nil {
		return nil
	}
	if err := st.RevokeToken(ctx, id, exp); err != nil {
		return &calls.Error{
			Code: calls.CodeUnavailable, Op: "revoke token", Err: err,
			Message: "the token is revoked, but saving the revocation failed, so a restart would forget it: revoke it again",
		}
	}
	return nil
}

// IsRevoked reports whether the token id was revoked.
func (t *Tokens) IsRevoked(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.revoked[id]
	return ok
}
