package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/go-audio/wav"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

// TestQueueVoicemailMedia: a customer's pion WebRTC phone, sending a
// tone, calls a queue whose only agent is not connected (maxWaitSeconds
// 1, voicemail on, voicemailMaxSeconds 2). At max wait she hears the
// built-in beep and never the queue music again; her audio is recorded
// and her call ends 0/7017 (voicemail), in history and found by
// ?queue=support. The queue counts one voicemail and no timeout. The WAV
// (a supervisor fetches it; amy, an agent who was not on the call, gets
// 404) carries her tone on the right, frame by frame (Goertzel), and
// silence on the left.
func TestQueueVoicemailMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 6 s")
	}
	const custHz = 400.0
	m, base := startVoicemailServer(t, 2)
	custTok := mint(t, "cust", calls.RoleCaller)
	amyTok := mint(t, "amy", calls.RoleAgent)
	supTok := mint(t, "sue", calls.RoleSupervisor)

	_, connect := softphones(t, base)
	cust := connect(custTok, custHz)
	start := time.Now()
	call := post(t, base+"/api/calls", custTok, `{"queue":"support"}`)["id"].(string)

	// Her call ends by itself: max wait (1 s), the beep, 2 s recorded.
	// Looked at every 250 ms: the media on this small machine is not to
	// share the CPU with a busy poll.
	var ended calls.Call
	if !withinEvery(20*time.Second, 250*time.Millisecond, func() bool {
		status, body := get(t, base+"/api/history/calls/"+call, supTok)
		var h struct {
			Call calls.Call `json:"call"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Call.CallEndReason == nil {
			return false
		}
		ended = h.Call
		return true
	}) {
		t.Fatal("the voicemail call never ended in history")
	}
	if *ended.CallEndReason != calls.ReasonVoicemail {
		t.Errorf("end reason %+v, want %+v", *ended.CallEndReason, calls.ReasonVoicemail)
	}
	if d := ended.EndTime.Sub(start); d < 3*time.Second || d > 10*time.Second {
		t.Errorf("the call ended %v after it entered the queue; want about 3.5 s (max wait, beep, 2 s)", d)
	}
	var page calls.CallPage
	if status, body := get(t, base+"/api/history/calls?queue=support", supTok); status != http.StatusOK || json.Unmarshal(body, &page) != nil {
		t.Fatalf("history?queue=support: %d %s", status, body)
	}
	if len(page.Items) != 1 || page.Items[0].ID != call {
		t.Errorf("history?queue=support = %+v, want the voicemail call %s", page.Items, call)
	}
	waitStatsOf(t, m, "support", func(s queue.Stats) bool {
		return s.Waiting == 0 && s.Voicemails == 1 && s.TimedOut == 0 && s.Abandoned == 0 && s.Answered == 0
	})

	// She heard the beep (the greeting), and silence after it.
	heard := framesSince(cust, start)
	beep := countTone(heard, voicemailBeepHz)
	if beep < 10 {
		t.Errorf("the customer heard the beep in %d frames, want about 25", beep)
	}
	t.Logf("the customer heard %d frames, %d of them the beep", len(heard), beep)

	// The recording: the supervisor may fetch it, amy may not.
	status, body := get(t, base+"/api/history/calls/"+call+"/recording", supTok)
	if status != http.StatusOK {
		t.Fatalf("a supervisor GETs the voicemail: %d %s", status, body)
	}
	if status, b := get(t, base+"/api/history/calls/"+call+"/recording", amyTok); status != http.StatusNotFound && status != http.StatusForbidden {
		t.Errorf("amy, not on the call, GETs the voicemail: %d %s; want 404 or 403", status, b)
	}
	d := wav.NewDecoder(bytes.NewReader(body))
	buf, err := d.FullPCMBuffer()
	if err != nil || d.NumChans != 2 || d.SampleRate != audio.SampleRate {
		t.Fatalf("decode the voicemail: %v (%d channels, %d Hz)", err, d.NumChans, d.SampleRate)
	}
	// Her tone is on the right from when her phone's audio first reaches
	// the mixer (under load, a second or so after she entered) in every
	// frame but for the jitter buffer's losses; nothing else is, the beep
	// she heard never.
	n := len(buf.Data) / (2 * audio.FrameSamples)
	first, tone, leftLoud, beeps := -1, 0, 0, 0
	var pattern []byte
	for i := range n {
		var l, r audio.Frame
		for j := range audio.FrameSamples {
			k := (i*audio.FrameSamples + j) * 2
			l[j], r[j] = int16(buf.Data[k]), int16(buf.Data[k+1])
		}
		if l.RMS() != 0 {
			leftLoud++
		}
		if audio.ToneLevel(&r, voicemailBeepHz) > noTone {
			beeps++
		}
		pattern = append(pattern, '.')
		if audio.ToneLevel(&r, custHz) > toneLevel {
			pattern[i] = '#'
			tone++
			if first < 0 {
				first = i
			}
		}
	}
	t.Logf("voicemail: %d frames, her tone on the right in %d from frame %d: %s", n, tone, first, pattern)
	if n < 75 || n > 125 {
		t.Errorf("the voicemail holds %d frames, want about 100 (2 s)", n)
	}
	if leftLoud > 0 || beeps > 0 {
		t.Errorf("%d frames on the left are not silent, %d on the right carry the beep", leftLoud, beeps)
	}
	if first < 0 || first > n/2 || tone < (n-first)*9/10 {
		t.Errorf("the customer's tone is on the right in %d of %d frames, from frame %d", tone, n, first)
	}
	var recs struct {
		Recordings []calls.Recording `json:"recordings"`
	}
	if _, b := get(t, base+"/api/history/calls/"+call, supTok); json.Unmarshal(b, &recs) != nil || len(recs.Recordings) != 1 ||
		recs.Recordings[0].StartedBy.Kind != calls.ActorSystem || recs.Recordings[0].State != calls.RecordingStopped {
		t.Errorf("the call's recordings in history: %+v", recs.Recordings)
	}
}

// TestQueueVoicemailNoRecordings: a switchboard that records no calls (no
// recordings directory) cannot take voicemail: a voicemail queue is
// refused (501 not_implemented); without voicemail it is created.
func TestQueueVoicemailNoRecordings(t *testing.T) {
	m := startMediaServer(t, MediaConfig{Grace: time.Minute})
	base := "http://" + m.Addr
	resp := postResponse(t, base+"/api/queues", testAdminKey, `{"name":"support","maxWaitSeconds":1,"voicemail":true}`)
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("a voicemail queue without media: %d %v; want 501", resp.StatusCode, body)
	}
	post(t, base+"/api/queues", testAdminKey, `{"name":"support","maxWaitSeconds":1}`)
}

// startVoicemailServer runs a switchboard with media and recordings whose
// queue support (its agent amy, never connected) sends its calls to
// voicemail after 1 s, recording up to maxSeconds.
func startVoicemailServer(t *testing.T, maxSeconds int) (*Main, string) {
	t.Helper()
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute, DataDir: t.TempDir(),
			Media: MediaConfig{Grace: time.Minute, QueueHold: QueueHoldConfig{PromptEvery: time.Minute}}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard, Store: store.NewMemory(),
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	base := "http://" + m.Addr
	q := post(t, base+"/api/queues", testAdminKey, fmt.Sprintf(
		`{"name":"support","members":[{"agent":"8:acs:amy"}],"maxWaitSeconds":1,"voicemail":true,"voicemailMaxSeconds":%d}`, maxSeconds))
	if q["voicemail"] != true || q["voicemailMaxSeconds"] != float64(maxSeconds) {
		t.Fatalf("created %v", q)
	}
	return m, base
}

// TestQueueVoicemailHangUp: a caller who hangs up while her voicemail
// records (the usual way to finish a message) ends her call 0/7017, the
// voicemail's end, as at voicemailMaxSeconds: history shows it as the
// voicemail the queue counts; the recording stops with the call.
func TestQueueVoicemailHangUp(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 3 s")
	}
	m, base := startVoicemailServer(t, 60)
	custTok := mint(t, "cust", calls.RoleCaller)
	supTok := mint(t, "sue", calls.RoleSupervisor)
	_, connect := softphones(t, base)
	connect(custTok, 400)
	call := post(t, base+"/api/calls", custTok, `{"queue":"support"}`)["id"].(string)
	type history struct {
		Call       calls.Call        `json:"call"`
		Recordings []calls.Recording `json:"recordings"`
	}
	look := func() history {
		var h history
		if _, b := get(t, base+"/api/history/calls/"+call, supTok); json.Unmarshal(b, &h) != nil {
			t.Fatalf("history of %s: %s", call, b)
		}
		return h
	}
	if !withinEvery(15*time.Second, 250*time.Millisecond, func() bool { h := look(); return len(h.Recordings) == 1 }) {
		t.Fatal("the voicemail never started recording")
	}
	time.Sleep(time.Second)
	post(t, base+"/api/calls/"+call+"/hangup", custTok, "")
	var h history
	if !withinEvery(10*time.Second, 250*time.Millisecond, func() bool {
		h = look()
		return h.Call.CallEndReason != nil && len(h.Recordings) == 1 && h.Recordings[0].State == calls.RecordingStopped
	}) {
		t.Fatalf("after the hang-up: %+v", h)
	}
	if *h.Call.CallEndReason != calls.ReasonVoicemail {
		t.Errorf("end reason %+v, want the voicemail's %+v", *h.Call.CallEndReason, calls.ReasonVoicemail)
	}
	if d := h.Recordings[0].DurationMs; d < 500 || d > 5000 {
		t.Errorf("the voicemail lasted %d ms, want about 1 s", d)
	}
	waitStatsOf(t, m, "support", func(s queue.Stats) bool { return s.Voicemails == 1 && s.TimedOut == 0 && s.Abandoned == 0 })
}

// withinEvery polls cond every every until it holds or d passes.
func withinEvery(d, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}
