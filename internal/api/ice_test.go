package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// fakeICE answers a fixed list and records whom and which host it
// answered for.
type fakeICE struct {
	list []api.ICEServer
	err  error

	mu          sync.Mutex
	rawID, host string
}

func (f *fakeICE) ICEServers(_ context.Context, rawID, host string) ([]api.ICEServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rawID, f.host = rawID, host
	return f.list, f.err
}

func TestICEServers(t *testing.T) {
	turn := []api.ICEServer{
		{URLs: []string{"stun:198.51.100.7:3478", "turn:198.51.100.7:3478?transport=udp", "turn:198.51.100.7:3478?transport=tcp"}, Username: "1765000000:8_acs_alice", Credential: "c2VjcmV0"},
		{URLs: []string{"stun:stun.example.com:3478"}},
	}
	tests := []struct {
		name   string
		ice    api.ICEServers
		token  func(s *server) string
		host   string
		status int
		code   calls.Code
		want   string // the body, when status is 200
	}{
		{name: "no token", ice: &fakeICE{list: turn}, token: func(*server) string { return "" }, status: 401, code: calls.CodeUnauthorized},
		{name: "bad token", ice: &fakeICE{list: turn}, token: func(*server) string { return "not-a-token" }, status: 401, code: calls.CodeUnauthorized},
		{name: "admin key is not a token", ice: &fakeICE{list: turn}, token: func(*server) string { return adminKey }, status: 401, code: calls.CodeUnauthorized},
		{name: "nothing configured", ice: nil, token: func(s *server) string { return s.token("alice", calls.RoleAgent) }, status: 200,
			want: `{"iceServers":[]}`},
		{name: "none listed", ice: &fakeICE{}, token: func(s *server) string { return s.token("alice", calls.RoleAgent) }, status: 200,
			want: `{"iceServers":[]}`},
		{name: "agent", ice: &fakeICE{list: turn}, token: func(s *server) string { return s.token("alice", calls.RoleAgent) }, status: 200,
			want: `{"iceServers":[{"urls":["stun:198.51.100.7:3478","turn:198.51.100.7:3478?transport=udp","turn:198.51.100.7:3478?transport=tcp"],"username":"1765000000:8_acs_alice","credential":"c2VjcmV0"},{"urls":["stun:stun.example.com:3478"]}]}`},
		{name: "supervisor", ice: &fakeICE{list: turn[1:]}, token: func(s *server) string { return s.token("sue", calls.RoleSupervisor) }, status: 200,
			want: `{"iceServers":[{"urls":["stun:stun.example.com:3478"]}]}`},
		{name: "failing", ice: &fakeICE{err: errors.New("boom")}, token: func(s *server) string { return s.token("alice", calls.RoleAgent) }, status: 500, code: calls.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, serverOptions{ice: tt.ice})
			if tt.status != 200 {
				s.wantError("GET", "/api/media/ice-servers", tt.token(s), nil, tt.status, tt.code)
				return
			}
			body := s.do("GET", "/api/media/ice-servers", tt.token(s), nil, 200, nil)
			var got, want any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(tt.want), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body %s\nwant %s", body, tt.want)
			}
		})
	}
}

// TestICEServersHost: the provider learns who asks and by which name the
// client reached the server (the Host header, without the port).
func TestICEServersHost(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"switchboard.example.com:8443", "switchboard.example.com"},
		{"switchboard.example.com", "switchboard.example.com"},
		{"192.0.2.10:8080", "192.0.2.10"},
		{"[2001:db8::1]:8080", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
	} {
		t.Run(tt.host, func(t *testing.T) {
			ice := &fakeICE{}
			s := newServer(t, serverOptions{ice: ice})
			req, err := http.NewRequest("GET", s.url+"/api/media/ice-servers", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			req.Header.Set("Authorization", "Bearer "+s.token("alice", calls.RoleAgent))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store (the credentials are fresh each time)", cc)
			}
			ice.mu.Lock()
			defer ice.mu.Unlock()
			if ice.host != tt.want || ice.rawID != "8:acs:alice" {
				t.Errorf("asked for %q at host %q, want 8:acs:alice at %q", ice.rawID, ice.host, tt.want)
			}
		})
	}
}
