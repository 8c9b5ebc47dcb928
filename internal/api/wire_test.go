package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// wireEvent is what encodeEvent must match: an event as encoding/json
// writes it on the wire, without its seq.
type wireEvent struct {
	Type    calls.EventType `json:"type"`
	At      time.Time       `json:"at"`
	AgentID string          `json:"agentId"`
	CallID  string          `json:"callId,omitempty"`
	Actor   *calls.Actor    `json:"actor,omitempty"`
	Data    any             `json:"data"`
}

// TestWireFields fails when a type the hand-written encoder writes gains or
// loses a field: appendCall and its helpers must then learn it.
func TestWireFields(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want int
	}{
		{calls.Call{}, 25},
		{calls.Participant{}, 9},
		{calls.CallerInfo{}, 2},
		{calls.EndReason{}, 3},
		{calls.EndpointDetail{}, 1},
		{calls.Identifier{}, 4},
		{calls.Actor{}, 3},
		{calls.Event{}, 7},
		{calls.StateChangedData{}, 3},
		{calls.ConnectionStateData{}, 3},
	} {
		if got := reflect.TypeOf(tc.v).NumField(); got != tc.want {
			t.Errorf("%T has %d fields, want %d: teach wire.go the change", tc.v, got, tc.want)
		}
	}
}

var wireStrings = []string{
	"", "alice", "8:acs:alice", "Bob <bob@example.com> & co", "ünïcødé", "tab\tnew\nline\r", "\x00\x1f\x7f",
	"quote\" back\\slash", "\u2028\u2029", "bad \xff utf8", "emoji 😀", "/?#%",
}

func randString(r *rand.Rand) string { return wireStrings[r.IntN(len(wireStrings))] }

func randTime(r *rand.Rand) time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600), time.Local}
	t := time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(zones[r.IntN(len(zones))])
	switch r.IntN(5) {
	case 0:
		return time.Time{}
	case 1:
		return t.Truncate(time.Second)
	}
	return t
}

func randIdentifier(r *rand.Rand) calls.Identifier {
	return calls.Identifier{
		Kind: calls.IdentifierKind(r.IntN(5)), ID: randString(r), IsAnonymous: r.IntN(2) == 0,
		Cloud: []string{"", calls.CloudPublic, calls.CloudDoD, calls.CloudGCCH, "weird"}[r.IntN(5)],
	}
}

func randReason(r *rand.Rand) *calls.EndReason {
	if r.IntN(2) == 0 {
		return nil
	}
	return &calls.EndReason{Code: r.IntN(700) - 100, SubCode: r.IntN(6000), Message: randString(r)}
}

func randOptTime(r *rand.Rand) *time.Time {
	if r.IntN(2) == 0 {
		return nil
	}
	t := randTime(r)
	return &t
}

func randCall(r *rand.Rand) calls.Call {
	c := calls.Call{
		ID: randString(r), ServerCallID: randString(r), AgentID: randString(r),
		Direction: calls.Direction(randString(r)), Kind: calls.Kind(randString(r)),
		GroupID: randString(r), RoomID: randString(r), State: calls.CallState(randString(r)),
		IsActive: r.IntN(2) == 0, IsMuted: r.IntN(2) == 0, IsIncomingAudioMuted: r.IntN(2) == 0,
		CallerInfo:    calls.CallerInfo{Identifier: randIdentifier(r), DisplayName: randString(r)},
		CallEndReason: randReason(r), StartTime: randTime(r),
		ConnectedTime: randOptTime(r), HeldTime: randOptTime(r), EndTime: randOptTime(r),
		MonitorMode: calls.MonitorMode(randString(r)), MonitoredCallID: randString(r), ConsultCallID: randString(r),
		Lobby: r.IntN(2) == 0, IsOrganizer: r.IntN(2) == 0,
		WrapUpCode: randString(r),
	}
	if n := r.IntN(3); n > 0 {
		c.Queues = []string{}
		for range n - 1 {
			c.Queues = append(c.Queues, randString(r))
		}
	}
	if n := r.IntN(4); n > 0 {
		c.RemoteParticipants = []calls.Participant{}
		for range n - 1 {
			p := calls.Participant{
				Identifier: randIdentifier(r), RawID: randString(r), DisplayName: randString(r),
				State: calls.ParticipantState(randString(r)), IsMuted: r.IntN(2) == 0,
				IsSpeaking: r.IntN(2) == 0, CallEndReason: randReason(r), MonitorMode: calls.MonitorMode(randString(r)),
			}
			if k := r.IntN(3); k > 0 {
				p.EndpointDetails = []calls.EndpointDetail{}
				for range k - 1 {
					p.EndpointDetails = append(p.EndpointDetails, calls.EndpointDetail{ParticipantID: randString(r)})
				}
			}
			c.RemoteParticipants = append(c.RemoteParticipants, p)
		}
	}
	return c
}

func randEvent(r *rand.Rand) calls.Event {
	ev := calls.Event{
		Type: calls.EventType(randString(r)), At: randTime(r), AgentID: randString(r), CallID: randString(r),
	}
	if r.IntN(3) > 0 {
		ev.Actor = &calls.Actor{Kind: calls.ActorKind(randString(r)), RawID: randString(r), DisplayName: randString(r)}
	}
	switch r.IntN(6) {
	case 0:
		ev.Data = calls.StateChangedData{OldState: calls.CallState(randString(r)), State: calls.CallState(randString(r)), IsActive: r.IntN(2) == 0}
	case 1:
		ev.Data = calls.ConnectionStateData{OldState: calls.ConnectionState(randString(r)), NewState: calls.ConnectionState(randString(r)), Reason: randString(r)}
	case 2:
		ev.Data = calls.CallsUpdatedData{Added: []calls.Call{randCall(r)}, Removed: []calls.Call{}}
	case 3:
		ev.Data = calls.MutedData{Participant: randString(r), IsMuted: true}
	case 4:
		ev.Data = nil
	default:
		ev.Data = calls.Snapshot{ConnectionState: calls.Connected, Calls: []calls.Call{randCall(r)}}
	}
	return ev
}

// TestAppendCallMatchesEncodingJSON: the hand-written encoding of a Call
// and of an event is byte for byte encoding/json's.
func TestAppendCallMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		c := randCall(r)
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendCall(nil, &c)
		if err != nil {
			t.Fatalf("case %d: appendCall: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\ngot  %s\nwant %s", i, got, want)
		}

		ev := randEvent(r)
		want, err = json.Marshal(wireEvent{Type: ev.Type, At: ev.At, AgentID: ev.AgentID, CallID: ev.CallID, Actor: ev.Actor, Data: ev.Data})
		if err != nil {
			t.Fatal(err)
		}
		got, err = encodeEvent(ev)
		if err != nil {
			t.Fatalf("case %d: encodeEvent: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\ngot  %s\nwant %s", i, got, want)
		}
	}
}

// TestAppendCallBadTime: a time encoding/json refuses is refused too.
func TestAppendCallBadTime(t *testing.T) {
	c := calls.Call{StartTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := json.Marshal(c); err == nil {
		t.Fatal("encoding/json took year 10000")
	}
	if _, err := appendCall(nil, &c); err == nil {
		t.Error("appendCall took year 10000, encoding/json does not")
	}
	if _, err := encodeEvent(calls.Event{At: c.StartTime}); err == nil {
		t.Error("encodeEvent took year 10000, encoding/json does not")
	}
}

// TestFrame: a frame is the body with the seq first.
func TestFrame(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"type":"x"}`, `{"seq":7,"type":"x"}`},
		{`{}`, `{"seq":7}`},
	} {
		if got := frame(7, []byte(tc.body)); string(got) != tc.want {
			t.Errorf("frame(7, %s) = %s, want %s", tc.body, got, tc.want)
		}
	}
}
