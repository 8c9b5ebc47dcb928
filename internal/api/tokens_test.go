package api_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
)

// tokenServer is an API on st with its own Tokens, persisted to st, on
// clock now (nil: the real one), logging into log (nil: nowhere).
type tokenServer struct {
	*server
	log *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTokenServer(t *testing.T, st *store.Memory, now func() time.Time, burst int) *tokenServer {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := api.NewHub(log, 0)
	sb, err := calls.New(calls.Config{Store: st, Publisher: hub, NewID: uuid.NewString})
	if err != nil {
		t.Fatal(err)
	}
	tokens := api.NewTokens(adminKey, now)
	if err := tokens.Persist(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	srv := api.New(api.Config{Switchboard: sb, Hub: hub, Tokens: tokens, Logger: log, FailureBurst: burst, FailureEvery: time.Minute})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = sb.Close(context.Background())
		srv.Close()
		ts.Close()
	})
	return &tokenServer{server: &server{t: t, url: ts.URL, sb: sb, hub: hub, tokens: tokens, store: st}, log: logs}
}

// A revoked token stays revoked for a new API (a restart) on the same
// store, and a token not revoked still works there.
func TestRevocationSurvivesRestart(t *testing.T) {
	st := store.NewMemory()
	first := newTokenServer(t, st, nil, 0)
	var revoked, kept struct{ Token, ID string }
	first.do("POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("alice"), "role": "agent"}, http.StatusCreated, &revoked)
	first.do("POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("bob"), "role": "agent"}, http.StatusCreated, &kept)
	first.do("DELETE", "/api/tokens/"+revoked.ID, adminKey, nil, http.StatusNoContent, nil)
	first.wantError("GET", "/api/me", revoked.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)

	second := newTokenServer(t, st, nil, 0)
	second.wantError("GET", "/api/me", revoked.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	second.do("GET", "/api/me", kept.Token, nil, http.StatusOK, nil)
}

// Two APIs on one store stand for two nodes of a cluster: a revocation
// made on one is refused by the other once it reloads the store (a node
// that missed the revocation's message), and not before.
func TestRevocationReload(t *testing.T) {
	st := store.NewMemory()
	one, two := newTokenServer(t, st, nil, 0), newTokenServer(t, st, nil, 0)
	var tok struct{ Token, ID string }
	one.do("POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("alice"), "role": "agent"}, http.StatusCreated, &tok)
	one.do("DELETE", "/api/tokens/"+tok.ID, adminKey, nil, http.StatusNoContent, nil)
	two.do("GET", "/api/me", tok.Token, nil, http.StatusOK, nil)
	if err := two.tokens.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	two.wantError("GET", "/api/me", tok.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
}

// ttlSeconds is 1 to 30 days; 0 or none is the default hour.
func TestTokenTTLBounds(t *testing.T) {
	s := newServer(t, serverOptions{})
	tests := []struct {
		ttl  int64
		want int
	}{
		{1, http.StatusCreated},
		{2_592_000, http.StatusCreated},
		{0, http.StatusCreated},
		{2_592_001, http.StatusBadRequest},
		{-1, http.StatusBadRequest},
		{1<<63 - 1, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatInt(tt.ttl, 10), func(t *testing.T) {
			var out struct{ ExpiresAt time.Time }
			start := time.Now()
			s.do("POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("x"), "role": "agent", "ttlSeconds": tt.ttl}, tt.want, &out)
			if tt.want != http.StatusCreated {
				return
			}
			ttl := time.Duration(tt.ttl) * time.Second
			if tt.ttl == 0 {
				ttl = api.DefaultTokenTTL
			}
			if d := out.ExpiresAt.Sub(start); d < ttl-2*time.Second || d > ttl+time.Second {
				t.Errorf("expiresAt is %v from now, want %v", d, ttl)
			}
		})
	}
}

// Refresh answers a new token for the same identity, name and role, with
// the old one's lifetime; revoked, expired and forged tokens get 401.
func TestRefresh(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := newTokenServer(t, store.NewMemory(), clock, 0)

	var old struct {
		Token, ID string
		ExpiresAt time.Time
	}
	s.do("POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("sue"), "displayName": "Sue", "role": "supervisor", "ttlSeconds": 600}, http.StatusCreated, &old)
	advance(500 * time.Second)
	var fresh struct {
		Token, ID string
		ExpiresAt time.Time
		Role      calls.Role
	}
	s.do("POST", "/api/tokens/refresh", old.Token, nil, http.StatusCreated, &fresh)
	if fresh.Token == "" || fresh.Token == old.Token || fresh.ID == old.ID {
		t.Fatalf("refresh answered %+v, want a new token", fresh)
	}
	if want := clock().Add(600 * time.Second); !fresh.ExpiresAt.Equal(want) {
		t.Errorf("refreshed token expires at %v, want %v (the old one's 600 s from now)", fresh.ExpiresAt, want)
	}
	advance(200 * time.Second) // the old token has expired
	s.wantError("GET", "/api/me", old.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	s.wantError("POST", "/api/tokens/refresh", old.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	var me struct {
		RawID, DisplayName string
		Role               calls.Role
	}
	s.do("GET", "/api/me", fresh.Token, nil, http.StatusOK, &me)
	if me.RawID != "8:acs:sue" || me.DisplayName != "Sue" || me.Role != calls.RoleSupervisor {
		t.Errorf("the refreshed token is %+v, want 8:acs:sue, Sue, supervisor", me)
	}

	// A refreshed token refreshes too; once revoked, it does not.
	var again struct{ Token string }
	s.do("POST", "/api/tokens/refresh", fresh.Token, nil, http.StatusCreated, &again)
	s.do("DELETE", "/api/tokens/"+fresh.ID, adminKey, nil, http.StatusNoContent, nil)
	s.wantError("POST", "/api/tokens/refresh", fresh.Token, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	s.do("GET", "/api/me", again.Token, nil, http.StatusOK, nil)

	s.wantError("POST", "/api/tokens/refresh", "", nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	s.wantError("POST", "/api/tokens/refresh", "not.a.jwt", nil, http.StatusUnauthorized, calls.CodeUnauthorized)
	s.wantError("POST", "/api/tokens/refresh", adminKey, nil, http.StatusUnauthorized, calls.CodeUnauthorized)
}

// rawRequest sends a request and answers its status, Retry-After and body.
func rawRequest(t *testing.T, method, url, bearer string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{"identity":{"communicationUserId":"x"},"role":"agent"}`))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), body.String()
}

// Past the burst of failures, one address gets 429 rate_limited with
// Retry-After for any credentials; each failure is logged without the
// credentials; requests without credentials and successes do not count.
func TestFailureLimit(t *testing.T) {
	const burst = 4
	tests := []struct {
		name  string
		fail  func(s *tokenServer) (int, string, string)
		what  string
		wrong string
	}{
		{"wrong admin keys", func(s *tokenServer) (int, string, string) {
			return rawRequest(t, "POST", s.url+"/api/tokens", "wrong-admin-key-guess-0123456789abcdef")
		}, `what="admin key"`, "wrong-admin-key-guess"},
		{"forged tokens", func(s *tokenServer) (int, string, string) {
			return rawRequest(t, "GET", s.url+"/api/calls", "forged.token.guess")
		}, "what=token", "forged.token.guess"},
		{"forged tokens on refresh", func(s *tokenServer) (int, string, string) {
			return rawRequest(t, "POST", s.url+"/api/tokens/refresh", "forged.token.guess")
		}, "what=token", "forged.token.guess"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTokenServer(t, store.NewMemory(), nil, burst)
			good := s.token("alice", calls.RoleAgent)
			for range 3 * burst { // neither successes nor requests without credentials count
				s.do("GET", "/api/me", good, nil, http.StatusOK, nil)
				s.wantError("GET", "/api/me", "", nil, http.StatusUnauthorized, calls.CodeUnauthorized)
			}
			for i := range burst {
				if status, _, body := tt.fail(s); status != http.StatusUnauthorized {
					t.Fatalf("failure %d: %d %s, want 401", i+1, status, body)
				}
			}
			status, retry, body := tt.fail(s)
			if status != http.StatusTooManyRequests || !strings.Contains(body, `"rate_limited"`) {
				t.Fatalf("past the limit: %d %s, want 429 rate_limited", status, body)
			}
			if secs, err := strconv.Atoi(retry); err != nil || secs < 1 || secs > 60 {
				t.Errorf("Retry-After %q, want 1 to 60 seconds", retry)
			}
			// Right credentials from the same address wait too.
			if status, _, _ := rawRequest(t, "GET", s.url+"/api/me", good); status != http.StatusTooManyRequests {
				t.Errorf("a good token past the limit: %d, want 429", status)
			}
			if status, _, _ := rawRequest(t, "POST", s.url+"/api/tokens", adminKey); status != http.StatusTooManyRequests {
				t.Errorf("the admin key past the limit: %d, want 429", status)
			}
			logs := s.log.String()
			if n := strings.Count(logs, "authentication failed"); n != burst {
				t.Errorf("%d failures logged, want %d:\n%s", n, burst, logs)
			}
			if !strings.Contains(logs, "client=127.0.0.1") || !strings.Contains(logs, tt.what) {
				t.Errorf("the failure log lacks client=127.0.0.1 or %s:\n%s", tt.what, logs)
			}
			if strings.Contains(logs, tt.wrong) || strings.Contains(logs, adminKey) || strings.Contains(logs, good) {
				t.Errorf("the log shows credentials:\n%s", logs)
			}
		})
	}
}

// failingRevocations loads nothing and cannot write.
type failingRevocations struct{}

func (failingRevocations) RevokeToken(context.Context, string, time.Time) error {
	return calls.Errorf(calls.CodeUnavailable, "the database does not answer")
}

func (failingRevocations) FindRevokedTokens(context.Context, time.Time) ([]calls.RevokedToken, error) {
	return []calls.RevokedToken{}, nil
}

// When the store cannot keep a revocation, the token is revoked anyway in
// the running process, and the error says the revocation was not saved.
func TestRevokeWhenTheStoreFails(t *testing.T) {
	tokens := api.NewTokens(adminKey, nil)
	if err := tokens.Persist(context.Background(), failingRevocations{}); err != nil {
		t.Fatal(err)
	}
	m, err := tokens.Mint(apiTokenRequest("alice", calls.RoleAgent, 60))
	if err != nil {
		t.Fatal(err)
	}
	err = tokens.Revoke(context.Background(), m.ID)
	if calls.ErrorCode(err) != calls.CodeUnavailable || !strings.Contains(calls.ErrorMessage(err), "revoke it again") {
		t.Errorf("Revoke = %v, want unavailable, saying to revoke again", err)
	}
	if _, err := tokens.Verify(m.Token); err == nil {
		t.Error("the token still verifies")
	}
}
