package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
)

// The tones of the lobby test: the organizer's, an admitted member's and
// the waiting joiner's.
const (
	lobbyOrganizerHz = 400
	lobbyMemberHz    = 1000
	lobbyJoinerHz    = 600
)

// TestLobbyMedia is the per-frame proof of a room's lobby with three pion
// WebRTC softphones (Goertzel per 20 ms frame): the organizer (tone A)
// and an admitted member (tone B) hear each other; while a joiner (tone C)
// waits InLobby, not one frame he hears carries A or B and not one frame
// they hear carries C; once the organizer admits him, everyone hears
// everyone.
func TestLobbyMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 10 s")
	}
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	annTok := mint(t, "ann", calls.RoleAgent)
	benTok := mint(t, "ben", calls.RoleAgent)
	joeTok := mint(t, "joe", calls.RoleCaller)

	_, connect := softphones(t, base)
	ann, ben, joe := connect(annTok, lobbyOrganizerHz), connect(benTok, lobbyMemberHz), connect(joeTok, lobbyJoinerHz)

	join := func(tok, body, want string) map[string]any {
		t.Helper()
		res := post(t, base+"/api/calls/join", tok, body)
		if res["state"] != want {
			t.Fatalf("join %s: %v, want %s", body, res, want)
		}
		return res
	}
	admit := func(tok, call, raw string) {
		t.Helper()
		res := post(t, base+"/api/calls/"+call+"/lobby/admit", tok, `{"rawId":"`+raw+`"}`)
		if res["id"] != call {
			t.Fatalf("admit %s: %v", raw, res)
		}
	}
	annCall := join(annTok, `{"roomId":"lobby-media","lobby":true}`, "Connected")["id"].(string)
	join(benTok, `{"roomId":"lobby-media"}`, "InLobby")
	admit(annTok, annCall, "8:acs:ben")
	start := time.Now()
	if !phoneHears(ann, start, lobbyMemberHz, true) || !phoneHears(ben, start, lobbyOrganizerHz, true) {
		t.Fatal("the organizer and the admitted member do not hear each other")
	}

	// joe waits: he hears nothing, nobody hears him, for a few seconds of
	// frames while ann and ben go on hearing each other.
	waitAt := time.Now()
	join(joeTok, `{"roomId":"lobby-media"}`, "InLobby")
	if !phoneHears(ann, waitAt, lobbyMemberHz, true) || !phoneHears(ben, waitAt, lobbyOrganizerHz, true) {
		t.Fatal("the room's members stopped hearing each other once joe waits")
	}
	if !within(10*time.Second, func() bool { return len(framesSince(joe, waitAt)) >= 150 }) {
		t.Fatalf("joe heard %d frames in the lobby, want 150 (silence) to judge by", len(framesSince(joe, waitAt)))
	}
	admitAt := time.Now()
	waited := framesBetween(joe, waitAt, admitAt)
	if n := countTone(waited, lobbyOrganizerHz) + countTone(waited, lobbyMemberHz); n > 0 {
		t.Errorf("joe, waiting in the lobby, heard the room in %d of %d frames", n, len(waited))
	}
	for name, p := range map[string]*phone.Phone{"ann": ann, "ben": ben} {
		heard := framesBetween(p, waitAt, admitAt)
		if n := countTone(heard, lobbyJoinerHz); n > 0 || len(heard) < 100 {
			t.Errorf("%s heard joe, waiting in the lobby, in %d of %d frames", name, n, len(heard))
		}
	}

	// Admitted: everyone hears everyone.
	admit(annTok, annCall, "8:acs:joe")
	if !phoneHears(joe, admitAt, lobbyOrganizerHz, true) || !phoneHears(joe, admitAt, lobbyMemberHz, true) {
		t.Fatal("joe, admitted, does not hear the room")
	}
	if !phoneHears(ann, admitAt, lobbyJoinerHz, true) || !phoneHears(ben, admitAt, lobbyJoinerHz, true) {
		t.Fatal("the room does not hear joe once admitted")
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("frames (20 ms) from admission to joe heard by ann: %s, to joe hearing ann: %s; joe waited %d frames; load average %s",
		strconv.Itoa(monFramesUntil(ann, admitAt, lobbyJoinerHz, true)), strconv.Itoa(monFramesUntil(joe, admitAt, lobbyOrganizerHz, true)),
		len(waited), strings.TrimSpace(string(load)))
}
