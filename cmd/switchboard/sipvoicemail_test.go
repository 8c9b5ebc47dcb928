package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/go-audio/wav"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// TestSIPQueueVoicemail: sipp calls, as a carrier, a number routed to a
// queue that takes voicemail and whose only agent is not connected
// (maxWaitSeconds 1, voicemailMaxSeconds 60). Its audio is the test's
// RTP socket, which talks a tone. At max wait the phone hears the
// greeting (the built-in beep), its tone is recorded, and 4 s after its
// ACK it hangs up (BYE): the phone's call ends 0/7017, the voicemail's
// end, in history and found by ?queue=support; the queue counts one
// voicemail and nothing else; the recording a supervisor fetches carries
// the phone's tone on the right, frame by frame (Goertzel), the left
// silent, and never the beep.
func TestSIPQueueVoicemail(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	if testing.Short() {
		t.Skip("SIP media end to end: about 5 s")
	}
	const phoneHz = 400
	m := startSIPQueueSwitchboard(t, "28850-28899", QueueHoldConfig{PromptEvery: time.Minute}, func(c *Config) {
		c.DataDir = t.TempDir() // recordings on: the queue may take voicemail
	})
	base := "http://" + m.Addr
	post(t, base+"/api/queues", testAdminKey,
		`{"name":"support","members":[{"agent":"8:acs:amy"}],"maxWaitSeconds":1,"voicemail":true,"voicemailMaxSeconds":60}`)
	routeNumberTo(t, m, "+14255550100", `{"queue": "support"}`)
	supTok := mint(t, "sue", calls.RoleSupervisor)

	ear := listenPhone(t, phoneHz)
	carrier := sippWith(t, "queue_leaves_voicemail.xml", "-set", "rtpport", strconv.Itoa(ear.port()),
		"-s", "+14255550100", "-p", sippPort(t), m.SIPAddr)
	carrier() // the phone hung up (BYE answered 200)

	// History: the phone's call, through the queue, ended 0/7017 with its
	// recording stopped.
	var page calls.CallPage
	if !withinEvery(10*time.Second, 250*time.Millisecond, func() bool {
		status, body := get(t, base+"/api/history/calls?queue=support", supTok)
		return status == http.StatusOK && json.Unmarshal(body, &page) == nil && len(page.Items) == 1 &&
			page.Items[0].CallEndReason != nil
	}) {
		t.Fatalf("history?queue=support never showed the phone's call ended: %+v", page.Items)
	}
	call := page.Items[0]
	if *call.CallEndReason != calls.ReasonVoicemail {
		t.Errorf("the phone's call ended %+v, want the voicemail's %+v", *call.CallEndReason, calls.ReasonVoicemail)
	}
	if ps := call.RemoteParticipants; len(ps) != 0 {
		t.Errorf("the voicemail call had participants %+v, want the phone alone", ps)
	}
	var h struct {
		Recordings []calls.Recording `json:"recordings"`
	}
	if !withinEvery(10*time.Second, 250*time.Millisecond, func() bool {
		_, b := get(t, base+"/api/history/calls/"+call.ID, supTok)
		return json.Unmarshal(b, &h) == nil && len(h.Recordings) == 1 && h.Recordings[0].State == calls.RecordingStopped
	}) {
		t.Fatalf("the voicemail's recording in history: %+v", h.Recordings)
	}
	waitStatsOf(t, m, "support", func(s queue.Stats) bool {
		return s.Waiting == 0 && s.Voicemails == 1 && s.TimedOut == 0 && s.Abandoned == 0 && s.Answered == 0
	})
	if n := countTone(ear.heard(), voicemailBeepHz); n < 10 {
		t.Errorf("the phone heard the greeting's beep in %d frames, want about 25", n)
	}

	// The recording: the phone's tone on the right from when its RTP
	// reached the mixer, the left silent, no beep.
	status, body := get(t, base+"/api/history/calls/"+call.ID+"/recording", supTok)
	if status != http.StatusOK {
		t.Fatalf("a supervisor GETs the voicemail: %d %s", status, body)
	}
	d := wav.NewDecoder(bytes.NewReader(body))
	buf, err := d.FullPCMBuffer()
	if err != nil || d.NumChans != 2 || d.SampleRate != audio.SampleRate {
		t.Fatalf("decode the voicemail: %v (%d channels, %d Hz)", err, d.NumChans, d.SampleRate)
	}
	n := len(buf.Data) / (2 * audio.FrameSamples)
	first, tone, leftLoud, beeps := -1, 0, 0, 0
	pattern := make([]byte, n)
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
		pattern[i] = '.'
		if audio.ToneLevel(&r, phoneHz) > toneLevel {
			pattern[i] = '#'
			tone++
			if first < 0 {
				first = i
			}
		}
	}
	t.Logf("voicemail: %d frames, the phone's tone on the right in %d from frame %d: %s", n, tone, first, pattern)
	// sipp hangs up 4 s after its ACK: max wait (1 s), the beep (0.5 s),
	// then about 2.5 s recorded.
	if n < 50 || n > 200 {
		t.Errorf("the voicemail holds %d frames, want about 125 (2.5 s)", n)
	}
	if leftLoud > 0 || beeps > 0 {
		t.Errorf("%d frames on the left are not silent, %d on the right carry the beep", leftLoud, beeps)
	}
	if first < 0 || first > n/2 || tone < (n-first)*9/10 {
		t.Errorf("the phone's tone is on the right in %d of %d frames, from frame %d", tone, n, first)
	}
}
