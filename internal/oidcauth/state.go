package oidcauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// loginState is what a sign-in in progress keeps in the browser's cookie
// between /auth/login and /auth/callback.
type loginState struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"` // the PKCE code verifier
	Expires  time.Time `json:"e"`
}

// sealer encrypts and authenticates login states (AES-256-GCM): a cookie
// cannot be read, forged or altered. With a key made at start, a restart
// invalidates every sign-in in progress; with a key given (Config.StateKey,
// shared by a cluster's nodes) any node can finish a sign-in another began.
type sealer struct{ aead cipher.AEAD }

// newSealer seals with key, or with a random key when key is empty.
func newSealer(key []byte) (*sealer, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("make the sign-in state key: %w", err)
		}
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("the sign-in state key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("make the sign-in state cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("make the sign-in state cipher: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// cookieName names the state cookie; cookieAD binds sealed values to it.
const (
	cookieName = "switchboard_signin"
	cookieAD   = "switchboard sign-in state v1"
)

func (s *sealer) seal(st loginState) (string, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("seal the sign-in state: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal the sign-in state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(cookieAD))), nil
}

var errBadState = errors.New("the sign-in state cookie does not open")

func (s *sealer) open(value string) (loginState, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return loginState{}, errBadState
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(cookieAD))
	if err != nil {
		return loginState{}, errBadState
	}
	var st loginState
	if err := json.Unmarshal(plain, &st); err != nil {
		return loginState{}, errBadState
	}
	return st, nil
}

// spent remembers the states already used at the callback, until they
// expire, so that a callback replayed with its cookie is refused even
// while the cookie is fresh.
type spent struct {
	mu    sync.Mutex
	until map[string]time.Time // state → its expiry
}

// maxSpent bounds the states remembered; past it new sign-ins are refused
// until some expire.
const maxSpent = 1 << 16

// use marks the state used; it answers false when it was used already or
// too many are remembered.
func (s *spent) use(state string, expires, now time.Time) (fresh bool, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = map[string]time.Time{}
	}
	if _, ok := s.until[state]; ok {
		return false, false
	}
	if len(s.until) >= maxSpent {
		for k, exp := range s.until {
			if !exp.After(now) {
				delete(s.until, k)
			}
		}
		if len(s.until) >= maxSpent {
			return false, true
		}
	}
	s.until[state] = expires
	return true, false
}
