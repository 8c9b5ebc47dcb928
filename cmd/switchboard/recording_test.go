package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-audio/wav"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/store"
)

// TestRecordingRealMedia records a call with real media on the running
// program: alice's device speaks tone A (600 Hz); the customer is a pion
// WebRTC softphone that speaks tone B (1400 Hz). Alice records about a
// second, pauses for about a second, and records about a second more. The
// WAV served by GET /api/history/calls/{id}/recording carries A and never
// B on the left, never A on the right and B on it (but for frames the
// jitter buffer lost), and the paused span is one run of silence in both
// channels. The mixer's clock is real, so spans are counted, not timed.
func TestRecordingRealMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("media end to end: about 5 s")
	}
	const toneA, toneB = 600.0, 1400.0
	m := &Main{
		Config: Config{Addr: "127.0.0.1:0", AdminKey: testAdminKey, RingTimeout: time.Minute,
			Media: MediaConfig{Grace: time.Minute}, DataDir: t.TempDir()},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard, Store: store.NewMemory(),
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	base := "http://" + m.Addr
	aliceToken := mint(t, "alice", calls.RoleAgent)
	next, _ := openEvents(t, m.Addr, aliceToken)
	device := audio.NewMemoryEndpoint(audio.NewTone(toneA, -20))
	m.mixer.Attach(calls.CommunicationUser("alice").RawID(), device)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := phone.Connect(ctx, phoneEngine(t), base, mint(t, "customer", calls.RoleCaller), phone.Options{Mic: audio.NewTone(toneB, -20)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done; p.Close() }()
	if _, err := p.Call(ctx, "8:acs:alice"); err != nil {
		t.Fatal(err)
	}
	call := post(t, base+"/api/incoming-calls/"+waitIncoming(t, next)+"/accept", aliceToken, "")["id"].(string)
	// Wait until alice hears the customer (the jitter buffer filled).
	for deadline, from := time.Now().Add(10*time.Second), 0; ; time.Sleep(20 * time.Millisecond) {
		heard, _ := device.Heard(from)
		from += len(heard)
		hears := false
		for i := range heard {
			hears = hears || audio.ToneLevel(&heard[i], toneB) > toneLevel
		}
		if hears {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice does not hear the customer within 10 s")
		}
	}

	rec := base + "/api/calls/" + call + "/recording/"
	post(t, rec+"start", aliceToken, "")
	time.Sleep(time.Second)
	post(t, rec+"pause", aliceToken, "")
	time.Sleep(time.Second)
	post(t, rec+"resume", aliceToken, "")
	time.Sleep(time.Second)
	stopped := post(t, rec+"stop", aliceToken, "")
	if stopped["state"] != "stopped" {
		t.Fatalf("stop answered %v", stopped)
	}

	status, body := get(t, base+"/api/history/calls/"+call+"/recording", aliceToken)
	if status != http.StatusOK {
		t.Fatalf("GET the recording: %d %s", status, body)
	}
	checkRecordedTones(t, body, toneA, toneB)
}

// TestRecordingFlags: --recording-dir and --recording-retention, their
// environment fallbacks, and a retention that is not a duration.
func TestRecordingFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    RecordingConfig
		wantErr bool
	}{
		{name: "defaults: keep everything, in the data directory", want: RecordingConfig{}},
		{name: "environment", env: map[string]string{"SWITCHBOARD_RECORDING_DIR": "/srv/rec", "SWITCHBOARD_RECORDING_RETENTION": "720h"},
			want: RecordingConfig{Dir: "/srv/rec", Retention: 720 * time.Hour}},
		{name: "flags win", args: []string{"--recording-dir", "/mnt/shared", "--recording-retention", "24h"},
			env:  map[string]string{"SWITCHBOARD_RECORDING_DIR": "/srv/rec", "SWITCHBOARD_RECORDING_RETENTION": "720h"},
			want: RecordingConfig{Dir: "/mnt/shared", Retention: 24 * time.Hour}},
		{name: "not a duration", args: []string{"--recording-retention", "30 days"}, wantErr: true},
		{name: "negative", args: []string{"--recording-retention", "-1h"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseServeFlags(tt.args, io.Discard, env(tt.env))
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "--recording-retention") {
					t.Fatalf("error %v, want one naming --recording-retention", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Recording != tt.want {
				t.Errorf("Recording %+v, want %+v", c.Recording, tt.want)
			}
		})
	}
}

// TestRecordingSurvivesSIGKILL kills the switchboard (SIGKILL) while it
// records: the file on disk plays as a WAV up to the last flush (the
// agent's tone on the left, the silent customer on the right), and the
// next start marks the recording stopped with the audio's length and
// serves it.
func TestRecordingSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the switchboard: about 10 s")
	}
	dataDir := t.TempDir()
	srv := &crashServer{t: t, bin: buildSwitchboard(t),
		env:  []string{"DATABASE_URL=", "SWITCHBOARD_STORE=", "SWITCHBOARD_ADMIN_KEY=" + testAdminKey},
		args: []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--device", "alice=tone:600"}}
	srv.start()
	alice, cust := mint(t, "alice", calls.RoleAgent), mint(t, "cust", calls.RoleCaller)
	addr := strings.TrimPrefix(srv.base, "http://")
	next, _ := openEvents(t, addr, cust)
	call := post(t, srv.base+"/api/calls", alice, `{"participants": [{"communicationUserId": "cust"}]}`)["id"].(string)
	post(t, srv.base+"/api/incoming-calls/"+waitIncoming(t, next)+"/accept", cust, "")
	rec := post(t, srv.base+"/api/calls/"+call+"/recording/start", alice, "")
	path := filepath.Join(dataDir, "recordings", rec["file"].(string))

	// Kill it once the header counts two seconds (two flushes).
	const twoSeconds = 2 * audio.SampleRate * 4
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(b) >= 44 && binary.LittleEndian.Uint32(b[40:]) >= twoSeconds {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recording's header did not count 2 s within 20 s:\n%s", srv.log.tail())
		}
	}
	srv.kill()

	checkFile := func(b []byte, when string) int {
		t.Helper()
		d := wav.NewDecoder(bytes.NewReader(b))
		buf, err := d.FullPCMBuffer()
		if err != nil || d.NumChans != 2 || d.SampleRate != audio.SampleRate {
			t.Fatalf("%s: decode: %v (%d channels, %d Hz)", when, err, d.NumChans, d.SampleRate)
		}
		n := len(buf.Data) / (2 * audio.FrameSamples)
		for i := range n {
			var l, r audio.Frame
			for j := range audio.FrameSamples {
				k := (i*audio.FrameSamples + j) * 2
				l[j], r[j] = int16(buf.Data[k]), int16(buf.Data[k+1])
			}
			if audio.ToneLevel(&l, 600) < toneLevel || r.RMS() != 0 {
				t.Fatalf("%s: frame %d: left 600 Hz at %.2e, right RMS %.1f; want the tone left, silence right", when, i, audio.ToneLevel(&l, 600), r.RMS())
			}
		}
		return n
	}
	killed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := checkFile(killed, "as the kill left it"); n < 100 {
		t.Fatalf("as the kill left it: %d frames, want at least 100 (2 s)", n)
	}

	srv.start()
	var h struct {
		Recordings []calls.Recording `json:"recordings"`
	}
	status, body := get(t, srv.base+"/api/history/calls/"+call, alice)
	if err := json.Unmarshal(body, &h); status != http.StatusOK || err != nil || len(h.Recordings) != 1 {
		t.Fatalf("history after the restart: %d %s", status, body)
	}
	r := h.Recordings[0]
	if r.State != calls.RecordingStopped || r.StoppedAt == nil || r.DurationMs < 2000 {
		t.Errorf("the recording after the restart: %+v; want stopped with at least 2 s", r)
	}
	status, served := get(t, srv.base+"/api/history/calls/"+call+"/recording", alice)
	if status != http.StatusOK {
		t.Fatalf("GET the recording after the restart: %d %s", status, served)
	}
	if n := checkFile(served, "served after the restart"); int64(n)*20 != r.DurationMs {
		t.Errorf("served %d frames, the metadata says %d ms", n, r.DurationMs)
	}
}

// checkRecordedTones checks a recording of a call where the agent sent
// toneA and the other party toneB, paused once: one run of silence in
// both channels (the pause), at least 25 frames before, during and
// after it; A and never B on the left; never A on the right and B on it
// but for a fifth of the frames at most (the jitter buffer's losses).
func checkRecordedTones(t *testing.T, body []byte, toneA, toneB float64) {
	t.Helper()
	d := wav.NewDecoder(bytes.NewReader(body))
	buf, err := d.FullPCMBuffer()
	if err != nil || d.NumChans != 2 || d.SampleRate != audio.SampleRate || d.BitDepth != 16 {
		t.Fatalf("decode: %v (%d channels, %d Hz, %d bits)", err, d.NumChans, d.SampleRate, d.BitDepth)
	}
	n := len(buf.Data) / (2 * audio.FrameSamples)
	var before, paused, after, rightLost int
	for i := range n {
		var l, r audio.Frame
		for j := range audio.FrameSamples {
			k := (i*audio.FrameSamples + j) * 2
			l[j], r[j] = int16(buf.Data[k]), int16(buf.Data[k+1])
		}
		if l.RMS() == 0 { // alice's tone never is: the pause
			if after > 0 {
				t.Fatalf("frame %d: silence after the pause's span ended", i)
			}
			if r.RMS() != 0 {
				t.Errorf("frame %d: paused, but the right channel is not silent (RMS %.1f)", i, r.RMS())
			}
			paused++
			continue
		}
		if paused > 0 {
			after++
		} else {
			before++
		}
		if la, lb := audio.ToneLevel(&l, toneA), audio.ToneLevel(&l, toneB); la < toneLevel || lb > noTone {
			t.Errorf("frame %d: left A %.2e B %.2e; want A only", i, la, lb)
		}
		if ra := audio.ToneLevel(&r, toneA); ra > noTone {
			t.Errorf("frame %d: right carries the agent's A at %.2e", i, ra)
		}
		if audio.ToneLevel(&r, toneB) < toneLevel {
			rightLost++
		}
	}
	t.Logf("recording: %d frames before the pause, %d paused, %d after; %d right frames without B", before, paused, after, rightLost)
	if before < 25 || paused < 25 || after < 25 {
		t.Errorf("%d frames before the pause, %d paused, %d after; want about 50 each", before, paused, after)
	}
	if rightLost > (before+after)/5 {
		t.Errorf("%d of %d recorded frames lack the customer's B on the right", rightLost, before+after)
	}
}

// TestClusterRecordingAcrossNodes: alice on node a (tone A) calls bob on
// node b (tone B), whose audio reaches a over the leg between the nodes.
// Alice's requests reach nodes c and b and are forwarded to a, whose
// mixer records her call: the WAV (from a, and from b and c, which
// forward the download to a, for her and for a supervisor whose node is
// c) carries A on the left and B on the right, the paused second silent;
// the recording names node a.
func TestClusterRecordingAcrossNodes(t *testing.T) {
	const toneA, toneB = 600.0, 1400.0
	x := newAcrossNodes(t)
	aliceDev := audio.NewMemoryEndpoint(audio.NewTone(toneA, -20))
	x.a.mixer.Attach(calls.CommunicationUser("alice").RawID(), aliceDev)
	x.b.mixer.Attach(calls.CommunicationUser("bob").RawID(), audio.NewMemoryEndpoint(audio.NewTone(toneB, -20)))
	aliceCall, bobCall := x.call(t)
	post(t, "http://"+x.b.Addr+"/api/incoming-calls/"+bobCall+"/accept", x.bob, "")
	if !hearsTone(aliceDev, toneB) {
		t.Fatal("alice, on a, does not hear bob, on b")
	}

	step := func(node *Main, op string) calls.Recording {
		t.Helper()
		status, body, _ := send(t, node, http.MethodPost, "/api/calls/"+aliceCall+"/recording/"+op, x.alice, "")
		var rec calls.Recording
		if status != http.StatusOK || json.Unmarshal([]byte(body), &rec) != nil {
			t.Fatalf("%s through node %s: %d %s", op, node.Config.Cluster.NodeID, status, body)
		}
		return rec
	}
	step(x.c, "start")
	time.Sleep(time.Second)
	step(x.b, "pause")
	time.Sleep(time.Second)
	step(x.c, "resume")
	time.Sleep(time.Second)
	rec := step(x.b, "stop")
	if rec.Node != "a" || rec.State != calls.RecordingStopped {
		t.Fatalf("the recording %+v, want it stopped on node a", rec)
	}
	if _, err := os.Stat(filepath.Join(x.a.Config.DataDir, "recordings", rec.File)); err != nil {
		t.Fatalf("the file on node a: %v", err)
	}
	// Alice through a (which has the file) and c; a supervisor whose
	// node is c, through c and b: each node that cannot read the file
	// forwards the download to a.
	sam, _ := online(t, x.c, "sam", calls.RoleSupervisor)
	var bodies []string
	for _, get := range []struct {
		node  *Main
		token string
	}{{x.a, x.alice}, {x.c, x.alice}, {x.c, sam}, {x.b, sam}} {
		status, body, hdr := send(t, get.node, http.MethodGet, "/api/history/calls/"+aliceCall+"/recording", get.token, "")
		if status != http.StatusOK || hdr.Get("Content-Type") != "audio/wav" {
			t.Fatalf("GET the recording through node %s: %d %s", get.node.Config.Cluster.NodeID, status, hdr.Get("Content-Type"))
		}
		if len(bodies) > 0 && body != bodies[0] {
			t.Errorf("node %s served %d bytes, node a %d", get.node.Config.Cluster.NodeID, len(body), len(bodies[0]))
		}
		bodies = append(bodies, body)
	}
	checkRecordedTones(t, []byte(bodies[0]), toneA, toneB)
}
