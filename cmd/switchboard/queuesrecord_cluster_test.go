package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/queue"
)

// TestClusterQueueRecordsRemoteAgent: a queue with "record" offers a
// caller on node a to bob, connected to node b; once he answers, his own
// call is recorded on b, whose mixer mixes his audio, started by the
// system: his tone on the left, carl's (from a) on the right.
func TestClusterQueueRecordsRemoteAgent(t *testing.T) {
	const toneA, toneB = 600.0, 1400.0
	x := newAcrossNodes(t)
	x.a.mixer.Attach(calls.CommunicationUser("carl").RawID(), audio.NewMemoryEndpoint(audio.NewTone(toneB, -20)))
	x.b.mixer.Attach(calls.CommunicationUser("bob").RawID(), audio.NewMemoryEndpoint(audio.NewTone(toneA, -20)))
	if status, body, _ := send(t, x.a, "POST", "/api/queues", testAdminKey,
		`{"name":"support","members":[{"agent":"8:acs:bob"}],"ringTimeoutSeconds":30,"record":true}`); status != http.StatusCreated {
		t.Fatalf("define the queue: %d %s", status, body)
	}
	carl := mint(t, "carl", calls.RoleCaller)
	if status, body, _ := send(t, x.a, "GET", "/api/me", carl, ""); status != http.StatusOK { // a owns carl
		t.Fatalf("carl on a: %d %s", status, body)
	}
	if status, body, _ := send(t, x.a, "POST", "/api/calls", carl, `{"queue":"support"}`); status != http.StatusCreated {
		t.Fatalf("carl queues on a: %d %s", status, body)
	}
	status, body, _ := send(t, x.b, "POST", "/api/incoming-calls/"+ringing(t, x.bobNext)+"/accept", x.bob, "")
	var bobCall calls.Call
	if status != http.StatusOK || json.Unmarshal([]byte(body), &bobCall) != nil {
		t.Fatalf("bob accepts on b: %d %s", status, body)
	}
	waitStats(t, x.a, func(st queue.Stats) bool { return st.Answered == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		recs, err := x.b.recordings.Recordings(ctx, bobCall.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			r := recs[0]
			if r.Node != "b" || r.State != calls.RecordingActive || r.StartedBy.Kind != calls.ActorSystem {
				t.Fatalf("bob's recording %+v, want active on b, started by the system", r)
			}
			break
		}
		if len(recs) > 1 || ctx.Err() != nil {
			t.Fatalf("bob's call on b has recordings %+v, want one", recs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Bob pauses and stops it on b: his tone left, carl's right.
	for _, op := range []string{"pause", "resume", "stop"} {
		time.Sleep(time.Second)
		if status, body, _ := send(t, x.b, http.MethodPost, "/api/calls/"+bobCall.ID+"/recording/"+op, x.bob, ""); status != http.StatusOK {
			t.Fatalf("%s: %d %s", op, status, body)
		}
	}
	status, body, hdr := send(t, x.b, http.MethodGet, "/api/history/calls/"+bobCall.ID+"/recording", x.bob, "")
	if status != http.StatusOK || hdr.Get("Content-Type") != "audio/wav" {
		t.Fatalf("GET bob's recording: %d %s", status, hdr.Get("Content-Type"))
	}
	checkRecordedTones(t, []byte(body), toneA, toneB)
}
