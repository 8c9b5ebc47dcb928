package browsertest_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// The active call's keypad sends DTMF: the agent taps 5, then #, and the
// other side (the echo bot, which plays what it hears back to the agent's
// device a second later) gets both digits; a held call shows no keypad.
func TestAgentKeypadSendsTones(t *testing.T) {
	srv := newMediaServer(t)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	device := audio.NewMemoryEndpoint(nil)
	srv.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)

	page := newTab(t, srv)
	page.open("/?token=" + alice)
	page.waitLive()
	held := srv.call(alice, "8:echo123")
	active := srv.call(alice, "8:echo123") // holds the first
	page.waitJS("the second call active", `document.querySelector('`+card(active.ID)+`.is-active') !== null`)
	if got := evalJS[bool](page, `document.querySelector('`+card(held.ID)+` .keypad') !== null`); got {
		t.Errorf("the held call shows a keypad")
	}
	from := device.Played()
	page.click(card(active.ID) + ` .keypad summary`)
	page.waitJS("the keypad open", `document.querySelector('`+card(active.ID)+` .keypad[open] button[data-digit="5"]') !== null`)
	if name := evalJS[string](page, `document.querySelector('`+card(active.ID)+` button[data-digit="#"]').getAttribute('aria-label')`); len(name) == 0 || name[0] != '#' {
		t.Errorf("the # key's accessible name is %q, want it to start with what it shows", name)
	}
	page.click(card(active.ID) + ` button[data-digit="5"]`)
	page.click(card(active.ID) + ` button[data-digit="#"]`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		frames, _ := device.Heard(from)
		if got := audio.HeardDTMF(frames); got == "5#" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the echo bot played back %q, want %q", got, "5#")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := evalJS[int](page, `document.querySelectorAll('#errors li').length`); n != 0 {
		t.Errorf("%d errors shown after the keypad", n)
	}
}
