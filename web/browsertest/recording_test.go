package browsertest_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/recording"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/web"
)

// newRecordingServer is a server with the mixer's clock running and the
// recording service and queues (a queue may record its calls) wired as
// serve wires them.
func newRecordingServer(t *testing.T) *server {
	t.Helper()
	st := store.NewMemory()
	hub := api.NewHub(nil, 0)
	quiet := slog.New(slog.DiscardHandler)
	mixer := audio.NewMixer(audio.MixerConfig{Logger: quiet})
	var sb *calls.Switchboard
	rec, err := recording.New(t.Context(), recording.Config{
		Dir: t.TempDir(), Media: mixer, Store: st, Publisher: hub, NewID: uuid.NewString, Logger: quiet,
		Calls: recording.CallsFunc(func(ctx context.Context, p calls.Principal, id string) (calls.Call, error) {
			return sb.GetCall(ctx, p, id)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	qs := newQueues(rec.Publisher(hub))
	sb, err = calls.New(calls.Config{Store: st, Publisher: qs.wake, Queues: qs.transfers, Media: mixer, NewID: uuid.NewString})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mixer.Run(ctx) }()
	tokens := api.NewTokens(adminKey, nil)
	acfg := api.Config{Switchboard: sb, Hub: hub, Tokens: tokens, Ready: st.Ready, Console: web.Console(),
		WriteTimeout: 2 * time.Second, Recordings: rec}
	stopQueues := qs.run(sb, hub, &acfg, rec)
	srv := api.New(acfg)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		stopQueues()
		_ = sb.Close(context.Background())
		_ = rec.Close(context.Background())
		cancel()
		<-done
		srv.Close()
		ts.Close()
	})
	return &server{t: t, url: ts.URL, sb: sb, tokens: tokens, mixer: mixer}
}

// An agent records a customer's call from its card: Record shows the
// indicator, pause and resume change it, a reload keeps it, stop takes it
// away; the customer's "call us" page says the call is being recorded
// (and paused) meanwhile; the call's history plays the recording.
func TestRecordingFromTheCard(t *testing.T) {
	srv := newRecordingServer(t)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	customer := srv.mint(calls.PhoneNumber("+14255550142"), "Casey Customer", calls.RoleCaller)
	page := newTab(t, srv)
	page.open("/?token=" + alice)
	page.waitLive()
	caller := newTab(t, srv)
	caller.open("/call.html?to=8:acs:alice&name=Support&token=" + customer)
	caller.waitJS("the call page", `document.body.dataset.conn === 'open'`)
	caller.click("#use-audio")
	caller.click("#call-btn")
	id := srv.incoming(alice, "4:+14255550142")
	page.click(`button[data-action="accept"][data-call="` + id + `"]`)
	caller.waitJS("the caller connected", `document.body.dataset.callState === 'Connected'`)
	cardCSS := card(id)
	page.waitJS("the connected call's Record button", `document.querySelector('`+cardCSS+` button[data-action="record-start"]') !== null`)
	recorded := `(() => { const r = document.getElementById('call-recording'); return !r.hidden && r.textContent.includes(%s); })()`

	page.click(cardCSS + ` button[data-action="record-start"]`)
	page.waitJS("the recording indicator", `(() => {
		const f = document.querySelector('`+cardCSS+` .flag.rec-on');
		return f && f.textContent.includes('Recording') && document.querySelector('`+cardCSS+` button[data-action="record-pause"]');
	})()`)
	caller.waitJS("the customer told", fmt.Sprintf(recorded, `'being recorded'`))
	page.screenshot("recording")
	page.click(cardCSS + ` button[data-action="record-pause"]`)
	page.waitJS("the paused indicator", `document.querySelector('`+cardCSS+` .flag.rec-paused') !== null && document.querySelector('`+cardCSS+` button[data-action="record-resume"]') !== null`)
	caller.waitJS("the customer told of the pause", fmt.Sprintf(recorded, `'paused'`))
	page.click(cardCSS + ` button[data-action="record-resume"]`)
	page.waitJS("recording again", `document.querySelector('`+cardCSS+` .flag.rec-on') !== null`)

	// A reload shows the recording still on (from the call's history).
	page.open("/?token=" + alice)
	page.waitLive()
	page.waitJS("the indicator after a reload", `document.querySelector('`+cardCSS+` .flag.rec-on') !== null`)

	page.click(cardCSS + ` button[data-action="record-stop"]`)
	page.waitJS("the indicator gone", `document.querySelector('`+cardCSS+` .flag.rec-on') === null && document.querySelector('`+cardCSS+` button[data-action="record-start"]') !== null`)
	caller.waitJS("the customer's notice gone", `document.getElementById('call-recording').hidden`)
	srv.do(http.MethodPost, "/api/calls/"+id+"/hangup", alice, map[string]bool{"forEveryone": true}, http.StatusOK, nil)

	// The call's history lists the one recording, its pause and who
	// stopped it, and plays it: the player's length is the recording's.
	var hist struct {
		Recordings []calls.Recording `json:"recordings"`
	}
	srv.do(http.MethodGet, "/api/history/calls/"+id, alice, nil, http.StatusOK, &hist)
	if len(hist.Recordings) != 1 {
		t.Fatalf("the call's history lists %d recordings, want 1", len(hist.Recordings))
	}
	r := hist.Recordings[0]
	if r.State != calls.RecordingStopped || len(r.Paused) != 1 || r.Paused[0].End == nil || r.StoppedBy == nil || r.StoppedBy.RawID != "8:acs:alice" || r.DurationMs <= 0 {
		t.Errorf("the recording in history is %+v, want stopped by alice with one ended pause and some audio", r)
	}
	page.open("/?token=" + alice + "#/history/" + id)
	page.waitLive()
	page.waitJS("the recording's player", `(() => {
		const a = document.querySelector('.recordings audio');
		return a && a.src.startsWith('blob:') && a.readyState >= 1 && a.duration > 0;
	})()`)
	// One 20 ms frame either way: the WAV holds whole frames.
	if ms := evalJS[float64](page, `document.querySelector('.recordings audio').duration * 1000`); ms < float64(r.DurationMs)-20 || ms > float64(r.DurationMs)+20 {
		t.Errorf("the player's recording lasts %.0f ms, the history says %d ms", ms, r.DurationMs)
	}
}

// A queue that records its calls: the agent answers a queue call in the
// console and its card shows the recording indicator without her pressing
// Record; the call's history lists the recording, started by the system.
func TestQueueRecordingIndicator(t *testing.T) {
	srv := newRecordingServer(t)
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	cust := srv.mint(calls.PhoneNumber("+14255550199"), "Casey Customer", calls.RoleCaller)
	srv.do(http.MethodPost, "/api/queues", adminKey, map[string]any{
		"name": "sales", "members": []map[string]any{{"agent": "8:acs:alice"}}, "ringTimeoutSeconds": 600, "record": true,
	}, http.StatusCreated, nil)
	page := newTab(t, srv)
	page.open("/?token=" + alice)
	page.waitLive()
	srv.do(http.MethodPost, "/api/calls", cust, map[string]string{"queue": "sales"}, http.StatusCreated, nil)
	id := srv.incoming(alice, "4:+14255550199")
	page.click(`button[data-action="accept"][data-call="` + id + `"]`)
	page.waitJS("the recording indicator on the answered queue call", `(() => {
		const f = document.querySelector('`+card(id)+` .flag.rec-on');
		return f && f.textContent.includes('Recording');
	})()`)
	var hist struct {
		Recordings []calls.Recording `json:"recordings"`
	}
	srv.do(http.MethodGet, "/api/history/calls/"+id, alice, nil, http.StatusOK, &hist)
	if len(hist.Recordings) != 1 || hist.Recordings[0].StartedBy.Kind != calls.ActorSystem || hist.Recordings[0].State != calls.RecordingActive {
		t.Errorf("the queue call's history lists %+v, want one recording going, started by the system", hist.Recordings)
	}
}
