package browsertest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/web/browsertest"
)

// The console asks GET /api/media/ice-servers (with its token) before each
// attach and gives the answer to its RTCPeerConnection; a relay that does
// not answer costs nothing but time, the host candidates still connect.
// A reload attaches browser audio again by itself; the choice of a host
// device is remembered, and with it the pill says Live without browser
// audio.
func TestConsoleUsesTheICEServersAndRemembersTheAudio(t *testing.T) {
	tokens := api.NewTokens(adminKey, nil)
	st := newStack(t, tokens, 0, true)
	const served = `{"iceServers":[{"urls":["turn:127.0.0.1:9?transport=udp"],"username":"1700000000:alice","credential":"c2VjcmV0"}]}`
	var (
		mu    sync.Mutex
		asked []string // the Authorization of each request
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/media/ice-servers", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, served)
	})
	mux.Handle("/", st.handler)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		st.close()
		ts.Close()
	})
	srv := &server{t: t, url: ts.URL, sb: st.sb, tokens: tokens, mixer: st.mixer}
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	requests := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), asked...)
	}

	page := newTab(t, srv)
	page.installProbe(browsertest.RTCProbe)
	page.open("/?token=" + alice)
	page.waitLive()
	if n := len(requests()); n != 0 {
		t.Errorf("the console asked for ICE servers %d times before audio was attached, want 0", n)
	}
	page.click("#audio-connect")
	page.waitJS("browser audio connected", `document.body.dataset.audio === 'connected'`)
	page.waitPill("Live")
	got := evalJS[string](page, `JSON.stringify(window.__rtcProbe.pcs.at(-1).getConfiguration().iceServers.map((s) => ({ urls: [].concat(s.urls), username: s.username, credential: s.credential })))`)
	if want := `[{"urls":["turn:127.0.0.1:9?transport=udp"],"username":"1700000000:alice","credential":"c2VjcmV0"}]`; got != want {
		t.Errorf("the peer connection's iceServers are %s, want %s", got, want)
	}
	if r := requests(); len(r) != 1 || r[0] != "Bearer "+alice {
		t.Errorf("ICE server requests: %q, want one with alice's token", r)
	}

	// A reload attaches browser audio again, without a click.
	page.open("/")
	page.waitLive()
	page.waitJS("browser audio connected after a reload", `document.body.dataset.audio === 'connected'`)
	page.waitPill("Live")
	if n := len(requests()); n != 2 {
		t.Errorf("%d ICE server requests after the reload's attach, want 2", n)
	}

	// Audio through a device on the host: no browser audio, and Live.
	page.click(`input[name="audio-mode"][value="host"]`)
	page.waitJS("host audio", `document.body.dataset.audio === 'host' && window.__rtcProbe.pcs.at(-1).connectionState === 'closed'`)
	page.waitPill("Live")
	page.open("/")
	page.waitLive()
	page.waitPill("Live")
	if a := evalJS[string](page, `document.body.dataset.audio`); a != "host" {
		t.Errorf("after a reload the audio is %q, want host (remembered)", a)
	}
	if p := evalJS[int](page, `window.__rtcProbe.pcs.length`); p != 0 {
		t.Errorf("with a host device the reloaded page made %d peer connections, want 0", p)
	}
	// What the origin remembers must not reach a later test's server on
	// the same port.
	evalJS[bool](page, `(localStorage.clear(), true)`)
}
