package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-audio/wav"
	"github.com/google/uuid"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/recording"
	"github.com/switchboard/switchboard/internal/store"
)

// recordingServer is the real API with a real mixer (ticked by the test)
// and the recording service, as switchboard serve wires them.
type recordingServer struct {
	*server
	mixer *audio.Mixer
}

func newRecordingServer(t *testing.T) *recordingServer {
	t.Helper()
	st := store.NewMemory()
	hub := api.NewHub(nil, 0)
	mixer := audio.NewMixer(audio.MixerConfig{})
	var sb *calls.Switchboard
	rec, err := recording.New(t.Context(), recording.Config{
		Dir: t.TempDir(), Media: mixer, Store: st, Publisher: hub, NewID: uuid.NewString,
		Calls: recording.CallsFunc(func(ctx context.Context, p calls.Principal, id string) (calls.Call, error) {
			return sb.GetCall(ctx, p, id)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	sb, err = calls.New(calls.Config{Store: st, Publisher: rec.Publisher(hub), Media: mixer, NewID: uuid.NewString})
	if err != nil {
		t.Fatal(err)
	}
	tokens := api.NewTokens(adminKey, nil)
	srv := api.New(api.Config{Switchboard: sb, Hub: hub, Tokens: tokens, Ready: st.Ready, Recordings: rec})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		_ = sb.Close(context.Background())
		if err := rec.Close(context.Background()); err != nil {
			t.Error(err)
		}
		srv.Close()
		ts.Close()
	})
	return &recordingServer{server: &server{t: t, url: ts.URL, sb: sb, hub: hub, tokens: tokens, store: st, api: srv}, mixer: mixer}
}

func (s *recordingServer) tick(n int) {
	for range n {
		s.mixer.Tick()
	}
}

// TestRecordingOverHTTP: alice (an agent, tone A) calls a customer (a
// caller, tone B); alice starts, a supervisor pauses, alice resumes and
// stops the recording over the API; alice's event stream shows each
// state; the history lists the recording; the WAV served to alice carries
// A on the left and B on the right, frame by frame, the paused second
// silent; a Range request is served; others get the contract's errors.
func TestRecordingOverHTTP(t *testing.T) {
	const toneA, toneB = 600.0, 1400.0
	s := newRecordingServer(t)
	ta, tc := s.token("alice", calls.RoleAgent), s.token("cust", calls.RoleCaller)
	tb, tboss := s.token("bob", calls.RoleAgent), s.token("boss", calls.RoleSupervisor)
	s.mixer.Attach("8:acs:alice", audio.NewMemoryEndpoint(audio.NewTone(toneA, -12)))
	s.mixer.Attach("8:acs:cust", audio.NewMemoryEndpoint(audio.NewTone(toneB, -12)))
	custEvents := s.connect(tc)
	aliceEvents := s.connect(ta)

	var ac calls.Call
	s.do("POST", "/api/calls", ta, map[string]any{"participants": []any{identityJSON("cust")}}, http.StatusCreated, &ac)
	in := decodeData[calls.IncomingCallData](t, custEvents.waitFor(calls.EventIncomingCall, "")).IncomingCall
	s.do("POST", "/api/incoming-calls/"+in.ID+"/accept", tc, nil, http.StatusOK, nil)
	s.tick(3)

	base := "/api/calls/" + ac.ID + "/recording/"
	s.wantError("POST", base+"pause", ta, nil, http.StatusConflict, calls.CodeInvalidState)
	s.wantError("POST", base+"start", tb, nil, http.StatusNotFound, calls.CodeCallNotFound)
	s.wantError("POST", base+"start", tc, nil, http.StatusForbidden, calls.CodeForbidden)
	var rec calls.Recording
	s.do("POST", base+"start", ta, nil, http.StatusOK, &rec)
	if rec.State != calls.RecordingActive || rec.CallID != ac.ID || rec.AgentID != "8:acs:alice" {
		t.Fatalf("started %+v", rec)
	}
	s.wantError("POST", base+"start", tboss, nil, http.StatusConflict, calls.CodeInvalidState)
	s.tick(50)
	s.do("POST", base+"pause", tboss, nil, http.StatusOK, &rec)
	s.tick(50)
	s.do("POST", base+"resume", ta, nil, http.StatusOK, &rec)
	s.tick(50)
	s.do("POST", base+"stop", ta, nil, http.StatusOK, &rec)
	if rec.State != calls.RecordingStopped || rec.DurationMs != 3000 || len(rec.Paused) != 1 {
		t.Fatalf("stopped %+v", rec)
	}
	for _, want := range []calls.RecordingState{calls.RecordingActive, calls.RecordingPaused, calls.RecordingActive, calls.RecordingStopped} {
		ev := aliceEvents.waitFor(calls.EventRecordingStateChanged, ac.ID)
		if got := decodeData[calls.Recording](t, ev); got.State != want || got.ID != rec.ID {
			t.Errorf("recordingStateChanged %+v, want %s", got, want)
		}
	}
	// The customer is told on her own call, without who or where.
	for _, want := range []calls.RecordingState{calls.RecordingActive, calls.RecordingPaused, calls.RecordingActive, calls.RecordingStopped} {
		ev := custEvents.waitFor(calls.EventRecordingStateChanged, in.ID)
		var notice map[string]any
		if err := json.Unmarshal(ev.Data, &notice); err != nil || len(notice) != 1 || notice["state"] != string(want) || ev.Actor != nil {
			t.Errorf("the customer's recordingStateChanged %s (actor %v), want only the state %s", ev.Data, ev.Actor, want)
		}
	}
	s.do("POST", "/api/calls/"+ac.ID+"/hangup", ta, map[string]any{"forEveryone": true}, http.StatusOK, nil)

	var h struct {
		Call       calls.Call        `json:"call"`
		Recordings []calls.Recording `json:"recordings"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.do("GET", "/api/history/calls/"+ac.ID, ta, nil, http.StatusOK, &h)
		if h.Call.State == calls.StateDisconnected || time.Now().After(deadline) {
			break
		}
	}
	if len(h.Recordings) != 1 || h.Recordings[0].ID != rec.ID || h.Recordings[0].State != calls.RecordingStopped {
		t.Fatalf("history recordings %+v", h.Recordings)
	}

	path := "/api/history/calls/" + ac.ID + "/recording"
	s.wantError("GET", path, tb, nil, http.StatusNotFound, calls.CodeCallNotFound)
	s.wantError("GET", path, tc, nil, http.StatusForbidden, calls.CodeForbidden)
	s.wantError("GET", "/api/history/calls/nope/recording", tboss, nil, http.StatusNotFound, calls.CodeNotFound)
	s.do("GET", path, tboss, nil, http.StatusOK, nil)
	resp, body := get(t, s.url+path, ta, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	d := wav.NewDecoder(bytes.NewReader(body))
	buf, err := d.FullPCMBuffer()
	if err != nil || d.NumChans != 2 || d.SampleRate != 8000 || d.BitDepth != 16 {
		t.Fatalf("decode: %v (%d channels, %d Hz, %d bits)", err, d.NumChans, d.SampleRate, d.BitDepth)
	}
	frames := len(buf.Data) / (2 * audio.FrameSamples)
	if frames != 150 {
		t.Fatalf("%d frames, want 150", frames)
	}
	for i := range frames {
		var l, r audio.Frame
		for j := range audio.FrameSamples {
			k := (i*audio.FrameSamples + j) * 2
			l[j], r[j] = int16(buf.Data[k]), int16(buf.Data[k+1])
		}
		paused := i >= 50 && i < 100
		switch {
		case paused && (l.RMS() != 0 || r.RMS() != 0):
			t.Errorf("frame %d is paused but not silent", i)
		case !paused && (audio.ToneLevel(&l, toneA) < 0.05 || audio.ToneLevel(&l, toneB) > 0.001):
			t.Errorf("frame %d: left A %.4f B %.4f; want A only", i, audio.ToneLevel(&l, toneA), audio.ToneLevel(&l, toneB))
		case !paused && (audio.ToneLevel(&r, toneB) < 0.05 || audio.ToneLevel(&r, toneA) > 0.001):
			t.Errorf("frame %d: right A %.4f B %.4f; want B only", i, audio.ToneLevel(&r, toneA), audio.ToneLevel(&r, toneB))
		}
	}
	resp, part := get(t, s.url+path, ta, "bytes=0-43")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[:44]) {
		t.Errorf("Range bytes=0-43: %d, %d bytes", resp.StatusCode, len(part))
	}
}

// get fetches url with a token and an optional Range, through the OpenAPI
// checker as every request here.
func get(t *testing.T, url, token, rng string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(fmt.Errorf("read %s: %w", url, err))
	}
	return resp, body
}
