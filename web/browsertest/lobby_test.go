package browsertest_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// An organizer opens a room with a lobby from the join form; a joiner's
// page says he waits in the lobby; the organizer's card lists him with an
// Admit button, which admits him: his page then shows the organizer and
// no lobby notice.
func TestLobbyAdmit(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	ben := srv.token("ben", "Ben Agent", calls.RoleAgent)

	org := newTab(t, srv)
	org.open("/?token=" + alice)
	org.waitLive()
	org.setValue("#join-id", "standup")
	org.click(`form[data-action="join"] input[name="lobby"]`)
	org.click(`form[data-action="join"] button[type="submit"]`)
	org.waitJS("her room card, as organizer", `[...document.querySelectorAll('li.call-card')].some((c) => c.textContent.includes('you admit from its lobby'))`)

	joiner := newTab(t, srv)
	joiner.open("/?token=" + ben)
	joiner.waitLive()
	var b calls.Call
	srv.do(http.MethodPost, "/api/calls/join", ben, map[string]any{"roomId": "standup"}, http.StatusCreated, &b)
	if b.State != calls.StateInLobby {
		t.Fatalf("ben's call is %s, want InLobby", b.State)
	}
	joiner.waitJS("ben told he waits in the lobby", `(() => {
		const c = document.querySelector('`+card(b.ID)+`');
		return c && c.textContent.includes('You are waiting in the lobby') && !c.textContent.includes('Alice Agent');
	})()`)
	org.waitJS("ben in the lobby with Admit", `[...document.querySelectorAll('li.participant.in-lobby')]
		.some((r) => r.textContent.includes('Ben Agent') && r.querySelector('button[data-action="lobby-admit"]'))`)
	joiner.screenshot("lobby-waiting")
	org.screenshot("lobby-organizer")

	org.click(`li.participant.in-lobby button[data-action="lobby-admit"]`)
	joiner.waitJS("ben admitted: he sees alice, no lobby notice", `(() => {
		const c = document.querySelector('`+card(b.ID)+`');
		return c && c.textContent.includes('Alice Agent') && !c.textContent.includes('waiting in the lobby');
	})()`)
	org.waitJS("ben a participant, not in the lobby", `!document.querySelector('li.participant.in-lobby')
		&& [...document.querySelectorAll('li.participant')].some((r) => r.textContent.includes('Ben Agent'))`)
	if got := srv.getCall(ben, b.ID); got.State != calls.StateConnected {
		t.Errorf("ben's call is %s after the Admit button, want Connected", got.State)
	}
}
