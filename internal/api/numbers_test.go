package api_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// TestNumberRoutes: PUT, GET and DELETE /api/numbers take the admin key,
// validate the number and the route, and answer in the contract's format.
func TestNumberRoutes(t *testing.T) {
	s := newServer(t, serverOptions{})
	agent := s.token("alice", calls.RoleAgent)
	type route = map[string]any
	tests := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		status int
		code   calls.Code // for errors
		want   route      // for 200
	}{
		{name: "route to an identity", method: http.MethodPut, path: "/api/numbers/+14255550123", key: adminKey,
			body:   route{"target": route{"communicationUserId": "alice"}},
			status: http.StatusOK, want: route{"number": "+14255550123", "target": route{"communicationUserId": "alice", "rawId": "8:acs:alice"}}},
		{name: "route to a queue, + escaped", method: http.MethodPut, path: "/api/numbers/%2B442071838750", key: adminKey,
			body:   route{"queue": "sales"},
			status: http.StatusOK, want: route{"number": "+442071838750", "queue": "sales"}},
		{name: "replace a route", method: http.MethodPut, path: "/api/numbers/+14255550123", key: adminKey,
			body:   route{"target": route{"communicationUserId": "8:echo123"}},
			status: http.StatusOK, want: route{"number": "+14255550123", "target": route{"id": "8:echo123", "rawId": "8:echo123"}}},
		{name: "not E.164", method: http.MethodPut, path: "/api/numbers/14255550123", key: adminKey,
			body: route{"queue": "sales"}, status: http.StatusBadRequest, code: calls.CodeInvalidPhoneNumber},
		{name: "leading zero", method: http.MethodPut, path: "/api/numbers/+0425", key: adminKey,
			body: route{"queue": "sales"}, status: http.StatusBadRequest, code: calls.CodeInvalidPhoneNumber},
		{name: "delete not E.164", method: http.MethodDelete, path: "/api/numbers/abc", key: adminKey,
			status: http.StatusBadRequest, code: calls.CodeInvalidPhoneNumber},
		{name: "both target and queue", method: http.MethodPut, path: "/api/numbers/+14255550199", key: adminKey,
			body:   route{"target": route{"communicationUserId": "alice"}, "queue": "sales"},
			status: http.StatusBadRequest, code: calls.CodeInvalidRequest},
		{name: "neither", method: http.MethodPut, path: "/api/numbers/+14255550199", key: adminKey,
			body: route{}, status: http.StatusBadRequest, code: calls.CodeInvalidRequest},
		{name: "unknown field", method: http.MethodPut, path: "/api/numbers/+14255550199", key: adminKey,
			body: route{"targets": route{"communicationUserId": "alice"}}, status: http.StatusBadRequest, code: calls.CodeInvalidRequest},
		{name: "malformed target", method: http.MethodPut, path: "/api/numbers/+14255550199", key: adminKey,
			body: route{"target": route{"phoneNumber": "555"}}, status: http.StatusBadRequest, code: calls.CodeInvalidPhoneNumber},
		{name: "an agent's token", method: http.MethodPut, path: "/api/numbers/+14255550199", key: agent,
			body: route{"queue": "sales"}, status: http.StatusUnauthorized, code: calls.CodeUnauthorized},
		{name: "no key", method: http.MethodGet, path: "/api/numbers",
			status: http.StatusUnauthorized, code: calls.CodeUnauthorized},
		{name: "delete unrouted", method: http.MethodDelete, path: "/api/numbers/+14255550100", key: adminKey,
			status: http.StatusNotFound, code: calls.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code != "" {
				s.wantError(tt.method, tt.path, tt.key, tt.body, tt.status, tt.code)
				return
			}
			var got route
			s.do(tt.method, tt.path, tt.key, tt.body, tt.status, &got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s %s = %v, want %v", tt.method, tt.path, got, tt.want)
			}
		})
	}

	var list []route
	s.do(http.MethodGet, "/api/numbers", adminKey, nil, http.StatusOK, &list)
	want := []route{
		{"number": "+14255550123", "target": route{"id": "8:echo123", "rawId": "8:echo123"}},
		{"number": "+442071838750", "queue": "sales"},
	}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("GET /api/numbers = %v, want %v", list, want)
	}
	s.do(http.MethodDelete, "/api/numbers/+442071838750", adminKey, nil, http.StatusNoContent, nil)
	s.do(http.MethodGet, "/api/numbers", adminKey, nil, http.StatusOK, &list)
	if len(list) != 1 || list[0]["number"] != "+14255550123" {
		t.Fatalf("GET /api/numbers after DELETE = %v, want +14255550123 alone", list)
	}
}

// TestSendTones: POST /api/calls/{id}/dtmf answers the call when it is the
// agent's active call, and the contract's errors otherwise.
func TestSendTones(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, bob := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	var c calls.Call
	s.do(http.MethodPost, "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"id": "8:echo123"}}}, http.StatusCreated, &c)
	tests := []struct {
		name   string
		token  string
		body   any
		status int
		code   calls.Code
	}{
		{name: "tones", token: alice, body: map[string]any{"tones": "123#*"}, status: http.StatusOK},
		{name: "no tones", token: alice, body: map[string]any{"tones": ""}, status: http.StatusBadRequest, code: calls.CodeInvalidRequest},
		{name: "not a tone", token: alice, body: map[string]any{"tones": "12x"}, status: http.StatusBadRequest, code: calls.CodeInvalidRequest},
		{name: "another agent's call", token: bob, body: map[string]any{"tones": "1"}, status: http.StatusNotFound, code: calls.CodeCallNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.code != "" {
				s.wantError(http.MethodPost, "/api/calls/"+c.ID+"/dtmf", tt.token, tt.body, tt.status, tt.code)
				return
			}
			var got calls.Call
			s.do(http.MethodPost, "/api/calls/"+c.ID+"/dtmf", tt.token, tt.body, tt.status, &got)
			if got.ID != c.ID || got.State != calls.StateConnected {
				t.Errorf("answer %+v, want the Connected call", got)
			}
		})
	}
	s.do(http.MethodPost, "/api/calls/"+c.ID+"/hold", alice, nil, http.StatusOK, nil)
	s.wantError(http.MethodPost, "/api/calls/"+c.ID+"/dtmf", alice, map[string]any{"tones": "1"}, http.StatusConflict, calls.CodeInvalidState)
}
