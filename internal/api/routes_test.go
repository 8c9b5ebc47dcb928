package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// TestWalkthrough is the README's walkthrough over real HTTP and
// websockets: alice calls bob, bob accepts, carol calls bob, bob accepts and
// then resumes alice's call, and carol's goes on hold.
func TestWalkthrough(t *testing.T) {
	s := newServer(t, serverOptions{})
	ta, tb, tc := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent), s.token("carol", calls.RoleAgent)
	bobEvents := s.connect(tb)
	if ev := bobEvents.next(); ev.Type != calls.EventSnapshot {
		t.Fatalf("first event %s, want snapshot", ev.Type)
	}

	var ac calls.Call
	s.do("POST", "/api/calls", ta, map[string]any{"participants": []any{identityJSON("bob")}}, http.StatusCreated, &ac)
	if ac.State != calls.StateRinging {
		t.Fatalf("alice's call is %s, want Ringing", ac.State)
	}
	in := decodeData[calls.IncomingCallData](t, bobEvents.waitFor(calls.EventIncomingCall, "")).IncomingCall
	var list []calls.IncomingCall
	s.do("GET", "/api/incoming-calls", tb, nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].ID != in.ID {
		t.Fatalf("incoming calls %+v, want %s", list, in.ID)
	}
	var b1 calls.Call
	s.do("POST", "/api/incoming-calls/"+in.ID+"/accept", tb, nil, http.StatusOK, &b1)
	if b1.ID != in.ID || b1.State != calls.StateConnected {
		t.Fatalf("accepted %s %s, want %s Connected", b1.ID, b1.State, in.ID)
	}
	s.do("GET", "/api/calls/"+ac.ID, ta, nil, http.StatusOK, &ac)
	if ac.State != calls.StateConnected {
		t.Fatalf("alice's call %s, want Connected", ac.State)
	}

	var cc calls.Call
	s.do("POST", "/api/calls", tc, map[string]any{"participants": []any{identityJSON("bob")}}, http.StatusCreated, &cc)
	in2 := decodeData[calls.IncomingCallData](t, bobEvents.waitFor(calls.EventIncomingCall, "")).IncomingCall
	s.do("POST", "/api/incoming-calls/"+in2.ID+"/accept", tb, nil, http.StatusOK, nil)
	held := decodeData[calls.StateChangedData](t, bobEvents.waitFor(calls.EventStateChanged, b1.ID))
	if held.State != calls.StateLocalHold {
		t.Fatalf("bob's first call went %s, want LocalHold", held.State)
	}

	var resumed calls.Call
	s.do("POST", "/api/calls/"+b1.ID+"/resume", tb, nil, http.StatusOK, &resumed)
	if !resumed.IsActive {
		t.Fatalf("resumed call is %s", resumed.State)
	}
	onHold := decodeData[calls.StateChangedData](t, bobEvents.waitFor(calls.EventStateChanged, in2.ID))
	if onHold.State != calls.StateLocalHold {
		t.Fatalf("carol's call on bob's side went %s, want LocalHold", onHold.State)
	}
	s.do("GET", "/api/calls/"+cc.ID, tc, nil, http.StatusOK, &cc)
	if cc.State != calls.StateRemoteHold {
		t.Fatalf("carol's call is %s, want RemoteHold", cc.State)
	}
	var bobs []calls.Call
	s.do("GET", "/api/calls", tb, nil, http.StatusOK, &bobs)
	active := 0
	for _, c := range bobs {
		if c.IsActive {
			active++
		}
	}
	if len(bobs) != 2 || active != 1 {
		t.Fatalf("bob has %d calls, %d active; want 2 and 1", len(bobs), active)
	}
}

// TestErrorRows drives every row of the contract's rules table, and the
// bad-input cases, through HTTP.
func TestErrorRows(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, bob := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent)
	teams := s.tokenFor(map[string]any{"microsoftTeamsUserId": "t1"}, calls.RoleAgent, 3600)
	s.connect(bob).next() // the snapshot: bob is online
	echo := map[string]any{"participants": []any{map[string]any{"id": "8:echo123"}}}
	var one calls.Call
	s.do("POST", "/api/calls", alice, echo, http.StatusCreated, &one)
	var room calls.Call
	s.do("POST", "/api/calls/join", alice, map[string]any{"roomId": "room-1"}, http.StatusCreated, &room)
	var bobsCall calls.Call
	s.do("POST", "/api/calls", bob, echo, http.StatusCreated, &bobsCall)

	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		status       int
		code         calls.Code
	}{
		{"teams user calls an ACS user", "POST", "/api/calls", teams, map[string]any{"participants": []any{identityJSON("bob")}}, 403, calls.CodeOperationNotSupportedForIdentity},
		{"teams user joins a room", "POST", "/api/calls/join", teams, map[string]any{"roomId": "r"}, 403, calls.CodeOperationNotSupportedForIdentity},
		{"teams user joins a group", "POST", "/api/calls/join", teams, map[string]any{"groupId": "6f0b0e3c-8d43-4e2a-9a43-7c1c64b1c0de"}, 403, calls.CodeOperationNotSupportedForIdentity},
		{"mute a participant in 1:1", "POST", "/api/calls/" + one.ID + "/participants/8%3Aecho123/mute", alice, nil, 409, calls.CodeNotSupportedInOneToOne},
		{"dtmf without a media plane", "POST", "/api/calls/" + one.ID + "/dtmf", alice, map[string]any{"tones": "1"}, 501, calls.CodeNotImplemented},
		{"dtmf that is not DTMF", "POST", "/api/calls/" + one.ID + "/dtmf", alice, map[string]any{"tones": "x"}, 400, calls.CodeInvalidRequest},
		{"mute all in 1:1", "POST", "/api/calls/" + one.ID + "/mute-all", alice, nil, 409, calls.CodeNotSupportedInOneToOne},
		{"end a room for everyone", "POST", "/api/calls/" + room.ID + "/hangup", alice, map[string]any{"forEveryone": true}, 409, calls.CodeNotSupportedInRooms},
		{"phone number without alternateCallerId", "POST", "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"phoneNumber": "+14255550123"}}}, 400, calls.CodeAlternateCallerIDRequired},
		{"malformed identifier", "POST", "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"communicationUserId": ""}}}, 400, calls.CodeInvalidIdentifier},
		{"identifier of no known shape", "POST", "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"nope": 1}}}, 400, calls.CodeInvalidIdentifier},
		{"malformed phone number", "POST", "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"phoneNumber": "+0425"}}, "alternateCallerId": map[string]any{"phoneNumber": "+14255550100"}}, 400, calls.CodeInvalidPhoneNumber},
		{"malformed alternateCallerId", "POST", "/api/calls", alice, map[string]any{"participants": []any{map[string]any{"phoneNumber": "+14255550123"}}, "alternateCallerId": map[string]any{"phoneNumber": "12"}}, 400, calls.CodeInvalidPhoneNumber},
		{"malformed groupId", "POST", "/api/calls/join", alice, map[string]any{"groupId": "nope"}, 400, calls.CodeInvalidGroupID},
		{"another agent's call", "POST", "/api/calls/" + bobsCall.ID + "/hold", alice, nil, 404, calls.CodeCallNotFound},
		{"another agent's call, read", "GET", "/api/calls/" + bobsCall.ID, alice, nil, 404, calls.CodeCallNotFound},
		{"unknown call", "POST", "/api/calls/nope/hold", alice, nil, 404, calls.CodeCallNotFound},
		{"resume a Connected call", "POST", "/api/calls/" + room.ID + "/resume", alice, nil, 409, calls.CodeInvalidState},
		{"accept a call that is not ringing", "POST", "/api/incoming-calls/" + room.ID + "/accept", alice, nil, 409, calls.CodeInvalidState},
		{"malformed JSON", "POST", "/api/calls", alice, `{"participants": [`, 400, calls.CodeInvalidRequest},
		{"JSON of the wrong type", "POST", "/api/calls", alice, `{"participants": "bob"}`, 400, calls.CodeInvalidRequest},
		{"two JSON values", "POST", "/api/calls/join", alice, `{"roomId": "a"} {}`, 400, calls.CodeInvalidRequest},
		{"empty body", "POST", "/api/calls", alice, "", 400, calls.CodeInvalidRequest},
		{"no participants", "POST", "/api/calls", alice, map[string]any{"participants": []any{}}, 400, calls.CodeInvalidRequest},
		{"oversize body", "POST", "/api/calls", alice, `{"participants": [` + strings.Repeat(`{"id": "8:echo123"},`, 10000) + `]}`, 413, "payload_too_large"},
		{"no token", "GET", "/api/calls", "", nil, 401, calls.CodeUnauthorized},
		{"forged token", "GET", "/api/calls", alice[:len(alice)-4] + "AAAA", nil, 401, calls.CodeUnauthorized},
		{"garbage token", "GET", "/api/calls", "not.a.jwt", nil, 401, calls.CodeUnauthorized},
		{"admin key is not a token", "GET", "/api/calls", adminKey, nil, 401, calls.CodeUnauthorized},
		{"mint without the admin key", "POST", "/api/tokens", alice, map[string]any{"identity": identityJSON("x"), "role": "agent"}, 401, calls.CodeUnauthorized},
		{"mint an unknown role", "POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("x"), "role": "root"}, 400, calls.CodeInvalidRequest},
		{"mint an agent that is a phone number", "POST", "/api/tokens", adminKey, map[string]any{"identity": map[string]any{"phoneNumber": "+14255550123"}, "role": "agent"}, 400, calls.CodeInvalidIdentifier},
		{"mint for too long", "POST", "/api/tokens", adminKey, map[string]any{"identity": identityJSON("x"), "role": "agent", "ttlSeconds": 100000000}, 400, calls.CodeInvalidRequest},
		{"an agent lists another's calls", "GET", "/api/calls?agent=8%3Aacs%3Abob", alice, nil, 403, calls.CodeForbidden},
		{"an agent reads another's history", "GET", "/api/history/calls?agent=8%3Aacs%3Abob", alice, nil, 403, calls.CodeForbidden},
		{"history with a bad time", "GET", "/api/history/calls?from=yesterday", alice, nil, 400, calls.CodeInvalidRequest},
		{"history with a bad cursor", "GET", "/api/history/calls?cursor=bm90LWEtY3Vyc29y", alice, nil, 400, calls.CodeInvalidRequest},
		{"history with a cursor that is not base64", "GET", "/api/history/calls?cursor=%40%40%40", alice, nil, 400, calls.CodeInvalidRequest},
		{"history with a bad limit", "GET", "/api/history/calls?limit=100000", alice, nil, 400, calls.CodeInvalidRequest},
		{"another agent's history call", "GET", "/api/history/calls/" + bobsCall.ID, alice, nil, 404, calls.CodeCallNotFound},
		{"remove a stranger", "DELETE", "/api/calls/" + room.ID + "/participants/8%3Aacs%3Anobody", alice, nil, 404, calls.CodeParticipantNotFound},
		{"remove a malformed rawId", "DELETE", "/api/calls/" + room.ID + "/participants/4%3A12", alice, nil, 400, calls.CodeInvalidPhoneNumber},
		{"events without a websocket", "GET", "/api/events", alice, nil, 400, calls.CodeInvalidRequest},
		{"unknown API route", "GET", "/api/nope", alice, nil, 404, calls.CodeNotFound},
		{"wrong method", "PUT", "/api/calls", alice, nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.t = t
			s.wantError(tt.method, tt.path, tt.token, tt.body, tt.status, tt.code)
		})
	}
	s.t = t

	// Nothing was lost or corrupted: alice's calls are as they were.
	var mine []calls.Call
	s.do("GET", "/api/calls", alice, nil, http.StatusOK, &mine)
	if len(mine) != 2 {
		t.Errorf("alice has %d calls after the bad requests, want 2", len(mine))
	}
}

func TestExpiredToken(t *testing.T) {
	s := newServer(t, serverOptions{})
	tok, err := s.tokens.Mint(apiTokenRequest("alice", calls.RoleAgent, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.do("GET", "/api/calls", tok.Token, nil, http.StatusOK, nil)
	time.Sleep(time.Until(tok.ExpiresAt) + 50*time.Millisecond)
	s.wantError("GET", "/api/calls", tok.Token, nil, 401, calls.CodeUnauthorized)
}

func TestCallRoutes(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice, bob, carol := s.token("alice", calls.RoleAgent), s.token("bob", calls.RoleAgent), s.token("carol", calls.RoleAgent)
	sup := s.token("sue", calls.RoleSupervisor)
	s.connect(bob).next() // the snapshots: both are online
	s.connect(carol).next()
	gid := map[string]any{"groupId": "6f0b0e3c-8d43-4e2a-9a43-7c1c64b1c0de"}
	var a, b calls.Call
	s.do("POST", "/api/calls/join", alice, gid, http.StatusCreated, &a)
	s.do("POST", "/api/calls/join", bob, gid, http.StatusCreated, &b)
	if a.Kind != calls.Group || a.GroupID == "" {
		t.Fatalf("joined %s %q, want a group call", a.Kind, a.GroupID)
	}

	for _, step := range []struct {
		path  string
		check func(calls.Call) bool
	}{
		{"/mute", func(c calls.Call) bool { return c.IsMuted }},
		{"/unmute", func(c calls.Call) bool { return !c.IsMuted }},
		{"/mute-incoming-audio", func(c calls.Call) bool { return c.IsIncomingAudioMuted }},
		{"/unmute-incoming-audio", func(c calls.Call) bool { return !c.IsIncomingAudioMuted }},
		{"/hold", func(c calls.Call) bool { return c.State == calls.StateLocalHold }},
		{"/resume", func(c calls.Call) bool { return c.State == calls.StateConnected }},
		{"/mute-all", func(c calls.Call) bool { return len(c.RemoteParticipants) == 1 && c.RemoteParticipants[0].IsMuted }},
	} {
		var c calls.Call
		s.do("POST", "/api/calls/"+a.ID+step.path, alice, nil, http.StatusOK, &c)
		if !step.check(c) {
			t.Errorf("after %s: %+v", step.path, c)
		}
	}

	var p calls.Participant
	s.do("POST", "/api/calls/"+a.ID+"/participants", alice, map[string]any{"identifier": identityJSON("carol")}, http.StatusCreated, &p)
	if p.State != calls.ParticipantRinging || p.RawID != "8:acs:carol" {
		t.Fatalf("added %+v, want carol Ringing", p)
	}
	var carolsIn []calls.IncomingCall
	s.do("GET", "/api/incoming-calls", carol, nil, http.StatusOK, &carolsIn)
	s.do("POST", "/api/incoming-calls/"+carolsIn[0].ID+"/reject", carol, nil, http.StatusOK, nil)

	s.do("POST", "/api/calls/"+b.ID+"/unmute", bob, nil, http.StatusOK, nil) // alice's mute-all muted bob
	s.do("POST", "/api/calls/"+a.ID+"/participants/8%3Aacs%3Abob/mute", sup, nil, http.StatusOK, &p)
	if !p.IsMuted {
		t.Fatalf("supervisor's mute: %+v", p)
	}
	s.do("DELETE", "/api/calls/"+a.ID+"/participants/"+url.PathEscape("8:acs:bob"), alice, nil, http.StatusOK, &p)
	if p.State != calls.ParticipantDisconnected || p.CallEndReason == nil || p.CallEndReason.SubCode != 5300 {
		t.Fatalf("removed %+v, want Disconnected 0/5300", p)
	}

	// A supervisor sees and ends anyone's call.
	var all []calls.Call
	s.do("GET", "/api/calls?agent=8%3Aacs%3Aalice", sup, nil, http.StatusOK, &all)
	if len(all) != 1 || all[0].ID != a.ID {
		t.Fatalf("supervisor's view of alice: %+v", all)
	}
	var ended calls.Call
	s.do("POST", "/api/calls/"+a.ID+"/hangup", sup, map[string]any{"forEveryone": true}, http.StatusOK, &ended)
	if ended.State != calls.StateDisconnected || ended.CallEndReason.SubCode != 4097 {
		t.Fatalf("ended for everyone: %s %+v", ended.State, ended.CallEndReason)
	}

	// History: the ended call with its timeline; who muted bob is on record.
	var page calls.CallPage
	s.do("GET", "/api/history/calls?endCode=0", sup, nil, http.StatusOK, &page)
	if len(page.Items) == 0 {
		t.Fatal("history is empty")
	}
	s.do("GET", "/api/history/calls?endCode=0&endSubCode=4097", sup, nil, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != a.ID {
		t.Errorf("calls ended for everyone: %+v, want only %s", page.Items, a.ID)
	}
	var h calls.CallHistory
	s.do("GET", "/api/history/calls/"+b.ID, sup, nil, http.StatusOK, &h)
	var supMuted bool
	for _, e := range h.Timeline {
		if e.Type == calls.EventMutedByOthers && e.Actor != nil && e.Actor.Kind == calls.ActorSupervisor {
			supMuted = true
		}
	}
	if !supMuted {
		t.Errorf("bob's timeline has no mutedByOthers by a supervisor: %+v", h.Timeline)
	}
	s.do("GET", "/api/history/calls/"+a.ID, alice, nil, http.StatusOK, &h)
	s.do("GET", "/api/history/calls?direction=Outgoing&limit=1", alice, nil, http.StatusOK, &page)
	if len(page.Items) != 1 {
		t.Errorf("alice's history page has %d items, want 1", len(page.Items))
	}
}

// TestEchoBotAsUserID: the Calling SDK's samples call the echo bot as
// {"communicationUserId": "8:echo123"}; that is the echo bot, which
// answers at once, not a user nobody is connected as (480).
func TestEchoBotAsUserID(t *testing.T) {
	s := newServer(t, serverOptions{})
	alice := s.token("alice", calls.RoleAgent)
	for _, id := range []map[string]any{{"communicationUserId": "8:echo123"}, {"id": "8:echo123"}} {
		var c calls.Call
		s.do("POST", "/api/calls", alice, map[string]any{"participants": []any{id}}, http.StatusCreated, &c)
		if c.State != calls.StateConnected || len(c.RemoteParticipants) != 1 || c.RemoteParticipants[0].RawID != "8:echo123" {
			t.Fatalf("call to %v: %s with %+v, want Connected with 8:echo123", id, c.State, c.RemoteParticipants)
		}
	}
}

func TestHealth(t *testing.T) {
	down := errors.New("postgres is down")
	ready := down
	s := newServer(t, serverOptions{ready: func(context.Context) error { return ready }})
	s.do("GET", "/healthz", "", nil, http.StatusOK, nil)
	s.wantError("GET", "/readyz", adminKey, nil, http.StatusServiceUnavailable, calls.CodeUnavailable)
	ready = nil
	s.do("GET", "/readyz", adminKey, nil, http.StatusOK, nil)
	s.do("GET", "/api/me", s.token("alice", calls.RoleAgent), nil, http.StatusOK, nil)
	s.wantError("POST", "/api/media/webrtc", s.token("alice", calls.RoleAgent), map[string]any{"sdp": "v=0"}, http.StatusNotImplemented, "not_implemented")
}

// TestTokenCache: a verified token stays subject to expiry and revocation.
func TestTokenCache(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	tokens := api.NewTokens(adminKey, func() time.Time { return now })
	m, err := tokens.Mint(apiTokenRequest("alice", calls.RoleAgent, 60))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second time from the cache
		if _, err := tokens.Verify(m.Token); err != nil {
			t.Fatalf("verify #%d: %v", i+1, err)
		}
	}
	now = now.Add(61 * time.Second)
	if _, err := tokens.Verify(m.Token); err == nil {
		t.Fatal("an expired token verified from the cache")
	}
	now = now.Add(-61 * time.Second)
	if err := tokens.Revoke(context.Background(), m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(m.Token); err == nil {
		t.Fatal("a revoked token verified from the cache")
	}
}
