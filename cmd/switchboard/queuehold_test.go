package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goaudio "github.com/go-audio/audio"
	"github.com/go-audio/wav"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
)

// writeToneWAV writes seconds of a tone of hz at -20 dBFS, 16 kHz mono
// (the server resamples it to 8 kHz), to a WAV file in dir.
func writeToneWAV(t *testing.T, dir string, hz float64, seconds int) string {
	t.Helper()
	const rate = 16000
	path := filepath.Join(dir, "music.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := wav.NewEncoder(f, rate, 16, 1, 1)
	tone := audio.NewTone(hz/2, -20) // at 8 kHz steps: hz/2 at 16 kHz
	buf := &goaudio.IntBuffer{Format: &goaudio.Format{NumChannels: 1, SampleRate: rate}, SourceBitDepth: 16}
	var fr audio.Frame
	for range seconds * audio.FramesPerSec * 2 {
		tone.Next(&fr)
		buf.Data = buf.Data[:0]
		for _, s := range fr {
			buf.Data = append(buf.Data, int(s))
		}
		if err := enc.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQueueHoldMedia: a customer's pion WebRTC phone waits in a queue
// while the agent's phone rings. Per 20 ms frame (Goertzel): the customer
// hears the position prompt (said on entry: frames of sound that are not
// the music), the queue music (a WAV file of one tone), and once the agent
// accepts, the agent's tone and, from her first frame on, never the music
// again. The prompts' goroutine looks again a minute later only: what
// stops the music at the answer is the mixer (the agent is live).
func TestQueueHoldMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 10 s")
	}
	const musicHz, custHz, amyHz = 700, 400, 1500
	music := writeToneWAV(t, t.TempDir(), musicHz, 2)
	m := startMediaServer(t, MediaConfig{Grace: time.Minute,
		QueueHold: QueueHoldConfig{MusicWAV: music, PromptEvery: time.Minute}})
	base := "http://" + m.Addr
	custTok := mint(t, "cust", calls.RoleCaller)
	amyTok := mint(t, "amy", calls.RoleAgent)
	amyNext, _ := openEvents(t, m.Addr, amyTok)
	firstSnapshots(t, amyNext)
	post(t, base+"/api/queues", testAdminKey, `{"name":"support","members":[{"agent":"8:acs:amy"}],"ringTimeoutSeconds":120}`)

	_, connect := softphones(t, base)
	cust, amy := connect(custTok, custHz), connect(amyTok, amyHz)
	start := time.Now()
	post(t, base+"/api/calls", custTok, `{"queue":"support"}`)
	amyCall := waitIncoming(t, amyNext) // she rings; the customer waits

	isMusic := func(f *audio.Frame) bool { return audio.ToneLevel(f, musicHz) > toneLevel }
	if !within(15*time.Second, func() bool { return countTone(framesSince(cust, start), musicHz) >= 50 }) {
		t.Fatal("the waiting customer never heard a second of the queue music")
	}
	// The position prompt, said as the call entered: frames of sound that
	// are neither the music nor the agent (speech).
	prompt := func() int {
		frames := framesSince(cust, start)
		n := 0
		for i := range frames {
			if !isMusic(&frames[i]) && frames[i].DBov() > -45 && audio.ToneLevel(&frames[i], amyHz) < noTone {
				n++
			}
		}
		return n
	}
	if !within(15*time.Second, func() bool { return prompt() >= 25 }) {
		t.Fatalf("the waiting customer never heard the position prompt (%d frames)", prompt())
	}

	post(t, base+"/api/incoming-calls/"+amyCall+"/accept", amyTok, "")
	at := time.Now()
	if !phoneHears(cust, at, amyHz, true) || !phoneHears(amy, at, custHz, true) {
		t.Fatal("the customer and the agent do not hear each other")
	}
	if !within(10*time.Second, func() bool { return len(framesSince(cust, at)) >= 150 }) {
		t.Fatal("the customer's phone stopped hearing frames")
	}
	frames := framesSince(cust, at)
	agent := monFramesUntil(cust, at, amyHz, true)
	if agent < 0 {
		t.Fatal("the customer never heard the agent")
	}
	if n := countTone(frames[agent:], musicHz); n > 0 {
		t.Errorf("after the agent was first heard, the customer heard the music in %d of %d frames", n, len(frames)-agent)
	}
	if n := countTone(frames[agent:], amyHz); n < len(frames[agent:])*9/10 {
		t.Errorf("the customer heard the agent in %d of %d frames only", n, len(frames)-agent)
	}
	t.Log("the agent reached the customer's ear " + strconv.Itoa(agent) + " frames after the accept's answer; the music " +
		strconv.Itoa(countTone(frames[:agent], musicHz)) + " frames of those")
}
