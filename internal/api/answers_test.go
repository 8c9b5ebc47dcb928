package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// console is a console's files, so that the routes are as serve has them:
// the console answers GET for every path no route takes.
var console = fstest.MapFS{"index.html": {Data: []byte("<!doctype html><title>console</title>")}}

// TestAnswers: requests that once had wrong answers answer the contract's
// error, in its format.
func TestAnswers(t *testing.T) {
	s := newServer(t, serverOptions{console: console})
	alice, sup := s.token("alice", calls.RoleAgent), s.token("sue", calls.RoleSupervisor)
	tokenFor := func(ttl any) map[string]any {
		return map[string]any{"identity": identityJSON("x"), "role": "agent", "ttlSeconds": ttl}
	}

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         calls.Code
	}{
		{"ttlSeconds 2^63-1", "POST", "/api/tokens", adminKey, `{"identity":{"communicationUserId":"x"},"role":"agent","ttlSeconds":9223372036854775807}`, 400, calls.CodeInvalidRequest},
		{"ttlSeconds past 30 days", "POST", "/api/tokens", adminKey, tokenFor(2_592_001), 400, calls.CodeInvalidRequest},
		{"ttlSeconds negative", "POST", "/api/tokens", adminKey, tokenFor(-1), 400, calls.CodeInvalidRequest},
		{"ttlSeconds past int64", "POST", "/api/tokens", adminKey, `{"identity":{"communicationUserId":"x"},"role":"agent","ttlSeconds":1e30}`, 400, calls.CodeInvalidRequest},

		{"unknown API route", "GET", "/api/nope", alice, nil, 404, calls.CodeNotFound},
		{"unknown API route, no token", "GET", "/api/nope", "", nil, 404, calls.CodeNotFound},
		{"unknown API route, POST", "POST", "/api/nope", alice, nil, 404, calls.CodeNotFound},
		{"unknown API route, DELETE", "DELETE", "/api/calls/x/nope", alice, nil, 404, calls.CodeNotFound},
		{"the API's root", "GET", "/api", alice, nil, 404, calls.CodeNotFound},
		{"the API's root, with a slash", "GET", "/api/", alice, nil, 404, calls.CodeNotFound},
		{"known route, wrong method", "PUT", "/api/calls", alice, nil, 405, "method_not_allowed"},
		{"known route, GET for POST", "GET", "/api/calls/x/hold", alice, nil, 405, "method_not_allowed"},
		{"known route, DELETE for POST", "DELETE", "/api/tokens", adminKey, nil, 405, "method_not_allowed"},

		{"empty groupId", "POST", "/api/calls/join", alice, `{"groupId": ""}`, 400, calls.CodeInvalidGroupID},
		{"empty roomId", "POST", "/api/calls/join", alice, `{"roomId": ""}`, 400, calls.CodeInvalidIdentifier},
		{"groupId and roomId", "POST", "/api/calls/join", alice, `{"groupId": "", "roomId": "r"}`, 400, calls.CodeInvalidRequest},
		{"neither groupId nor roomId", "POST", "/api/calls/join", alice, `{}`, 400, calls.CodeInvalidRequest},

		{"agent with a malformed escape", "GET", "/api/calls?agent=%ZZ", alice, nil, 400, calls.CodeInvalidIdentifier},
		{"agent with a malformed escape, supervisor", "GET", "/api/calls?agent=%ZZ", sup, nil, 400, calls.CodeInvalidIdentifier},
		{"agent with a malformed rawId", "GET", "/api/calls?agent=8%3Aacs%3A", sup, nil, 400, calls.CodeInvalidIdentifier},
		{"history agent with a malformed escape", "GET", "/api/history/calls?agent=%ZZ", alice, nil, 400, calls.CodeInvalidIdentifier},
		{"history agent with a malformed rawId", "GET", "/api/history/calls?agent=8%3Aacs%3A", sup, nil, 400, calls.CodeInvalidIdentifier},
		{"history participant with a malformed escape", "GET", "/api/history/calls?participant=%G1", sup, nil, 400, calls.CodeInvalidIdentifier},
		{"history time with a malformed escape", "GET", "/api/history/calls?from=%ZZ", sup, nil, 400, calls.CodeInvalidRequest},
		{"a malformed parameter name", "GET", "/api/history/calls?%ZZ=1", sup, nil, 400, calls.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			s.wantError(tt.method, tt.path, tt.token, tt.body, tt.status, tt.code)
		})
	}
	s.t = t

	// The bounds themselves are fine, and a token lives as long as asked.
	for _, ttl := range []int{1, 2_592_000} {
		var m struct{ ExpiresAt time.Time }
		s.do("POST", "/api/tokens", adminKey, tokenFor(ttl), http.StatusCreated, &m)
		if want := time.Now().Add(time.Duration(ttl) * time.Second); m.ExpiresAt.Before(want.Add(-5*time.Second)) || m.ExpiresAt.After(want.Add(time.Second)) {
			t.Errorf("ttlSeconds %d: expires at %v, want about %v", ttl, m.ExpiresAt, want)
		}
	}
	// The console still has every other path, and well-formed queries work.
	if body := s.do("GET", "/", "", nil, http.StatusOK, nil); !strings.Contains(string(body), "console") {
		t.Errorf("GET / answered %q, want the console", body)
	}
	s.do("GET", "/api/calls?agent=8%3Aacs%3Aalice", sup, nil, http.StatusOK, nil)
	s.do("GET", "/api/history/calls?agent=8%3Aacs%3Aalice&participant=8%3Aecho123", alice, nil, http.StatusOK, nil)
}

// TestReadyzLeaksNothing: without the admin key /readyz answers only ok or
// not ready; with it, the store's own words, and when ready the SIP
// trunks, a failed one among them.
func TestReadyzLeaksNothing(t *testing.T) {
	secret := errors.New("postgres user=switchboard dbname=calls host=db.internal: spool /var/spool/switchboard is full")
	var ready error
	trunks := []api.TrunkStatus{{Name: "carrier", State: "failed", Error: "sip: REGISTER with carrier: 403 Forbidden"}}
	s := newServer(t, serverOptions{ready: func(context.Context) error { return ready },
		trunks: func() []api.TrunkStatus { return trunks }})
	alice := s.token("alice", calls.RoleAgent)

	get := func(key string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.url+"/readyz", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header.Get("Content-Type")
	}
	tests := []struct {
		name   string
		ready  error
		key    string
		status int
		body   string // exactly, after trimming; "" when the details are checked instead
	}{
		{"ready, no key", nil, "", 200, "ok"},
		{"not ready, no key", secret, "", 503, "not ready"},
		{"not ready, a token", secret, alice, 503, "not ready"},
		{"not ready, a wrong key", secret, adminKey + "x", 503, "not ready"},
		{"ready, the admin key", nil, adminKey, 200, ""},
		{"not ready, the admin key", secret, adminKey, 503, ""},
	}
	for _, tt := range tests {
		ready = tt.ready
		status, body, ctype := get(tt.key)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, status, tt.status)
		}
		if tt.body != "" {
			if strings.TrimSpace(body) != tt.body || !strings.HasPrefix(ctype, "text/plain") {
				t.Errorf("%s: %q (%s), want %q in plain text", tt.name, body, ctype, tt.body)
			}
			continue
		}
		if tt.ready != nil && !strings.Contains(body, "db.internal") {
			t.Errorf("%s: %q, want the store's words", tt.name, body)
		}
		if tt.ready == nil && !strings.Contains(body, `"trunks":[{"name":"carrier","state":"failed","error":"sip: REGISTER with carrier: 403 Forbidden"}]`) {
			t.Errorf("%s: %q, want the failed trunk", tt.name, body)
		}
	}
}
