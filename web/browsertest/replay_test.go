package browsertest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/calls"
)

// socketProbe keeps every WebSocket the page opens in window.__sockets,
// with its URL and the types of the messages it received, in order.
const socketProbe = `(() => {
	const rec = window.__sockets = [];
	const Native = window.WebSocket;
	window.WebSocket = class extends Native {
		constructor(url, ...rest) {
			super(url, ...rest);
			const s = { ws: this, url: String(url), types: [] };
			rec.push(s);
			this.addEventListener('message', (m) => {
				try { s.types.push(JSON.parse(m.data).type); } catch { s.types.push('?'); }
			});
		}
	};
})()`

// A console whose event connection drops reconnects with the last seq it
// applied and applies the events it missed, without a snapshot: the call
// held meanwhile shows as held.
func TestConsoleReplaysMissedEvents(t *testing.T) {
	srv := newServer(t, 0)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	page := newTab(t, srv)
	page.installProbe(socketProbe)
	page.open("/?token=" + alice)
	page.waitLive()
	c := srv.call(alice, "8:echo123")
	page.waitJS("the call", `document.querySelector('`+card(c.ID)+`.is-active') !== null`)

	// The connection drops (the page closes it as a network would); the
	// call is held before the console is back.
	page.waitJS("the socket closed", `(window.__sockets.at(-1).ws.close(), true)`)
	srv.do(http.MethodPost, "/api/calls/"+c.ID+"/hold", alice, nil, http.StatusOK, nil)
	page.waitJS("a reconnect", `window.__sockets.length === 2 && document.body.dataset.conn === 'open'`)
	page.waitJS("the held call", `document.querySelector('`+card(c.ID)+`') !== null && document.querySelector('`+card(c.ID)+`.is-active') === null`)
	if url := evalJS[string](page, `window.__sockets[1].url`); !strings.Contains(url, "sinceSeq=") {
		t.Fatalf("the reconnect's URL %s has no sinceSeq", url)
	}
	if types := evalJS[[]string](page, `window.__sockets[1].types`); len(types) == 0 || types[0] == "snapshot" {
		t.Fatalf("the reconnect got %v, want the missed events and no snapshot", types)
	}
	if types := evalJS[[]string](page, `window.__sockets[0].types`); len(types) == 0 || types[0] != "snapshot" {
		t.Fatalf("the first connection got %v, want a snapshot first", types)
	}
}
