package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/calls"
)

// Fixtures. Times have microsecond precision and ids sort the same in any
// collation.
var (
	t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

	agentA = "8:acs:agent-a"
	agentB = "8:acs:agent-b"
	super  = "8:acs:supervisor-1"

	p1 = "4:+15550100001"
	p2 = "8:acs:caller-2"
	p3 = "8:orgid:caller-3"
)

// at is t0 plus minutes and microseconds.
func at(minutes, micros int) time.Time {
	return t0.Add(time.Duration(minutes)*time.Minute + time.Duration(micros)*time.Microsecond)
}

// newCall is a live call of agent's with the remote participants parts.
func newCall(id, agent string, dir calls.Direction, start time.Time, parts ...string) calls.Call {
	c := calls.Call{
		ID:           id,
		ServerCallID: "srv-" + id,
		AgentID:      agent,
		Direction:    dir,
		Kind:         calls.OneToOne,
		State:        calls.StateConnected,
		IsActive:     true,
		CallerInfo: calls.CallerInfo{
			Identifier:  mustParse(agent),
			DisplayName: "Agent " + agent,
		},
		RemoteParticipants: []calls.Participant{},
		StartTime:          start,
	}
	if dir == calls.Incoming && len(parts) > 0 {
		c.CallerInfo = calls.CallerInfo{Identifier: mustParse(parts[0])}
	}
	if len(parts) > 1 {
		c.Kind = calls.Group
		c.GroupID = "9b2e4a4c-0d7f-4f1e-8a53-0c9c2b7c1d2e"
	}
	for _, raw := range parts {
		c.RemoteParticipants = append(c.RemoteParticipants, calls.Participant{
			Identifier:      mustParse(raw),
			RawID:           raw,
			DisplayName:     "Remote " + raw,
			State:           calls.ParticipantConnected,
			EndpointDetails: []calls.EndpointDetail{{ParticipantID: "ep-" + raw}},
		})
	}
	connected := start.Add(3 * time.Second)
	c.ConnectedTime = &connected
	return c
}

// ended is c after it ended with code; it shares nothing with c.
func ended(c calls.Call, code int) calls.Call {
	c.State, c.IsActive = calls.StateDisconnected, false
	c.CallEndReason = &calls.EndReason{Code: code, SubCode: 7, Message: fmt.Sprintf("ended with %d", code)}
	end := c.StartTime.Add(90 * time.Second)
	c.EndTime = &end
	c.RemoteParticipants = slices.Clone(c.RemoteParticipants)
	for i := range c.RemoteParticipants {
		c.RemoteParticipants[i].State = calls.ParticipantDisconnected
	}
	return c
}

func mustParse(raw string) calls.Identifier {
	id, err := calls.ParseRawID(raw)
	if err != nil {
		panic(fmt.Sprintf("storetest: bad fixture rawId %q: %v", raw, err))
	}
	return id
}

// event is an event of call c, caused by actor (nil: none given).
func event(c calls.Call, typ calls.EventType, when time.Time, actor *calls.Actor, data any) calls.Event {
	return calls.Event{Type: typ, At: when, AgentID: c.AgentID, CallID: c.ID, Actor: actor, Data: data, Supervised: true}
}

func actor(kind calls.ActorKind, raw string) *calls.Actor {
	return &calls.Actor{Kind: kind, RawID: raw}
}

// record records recs in one call and waits until they can be read.
func record(t *testing.T, s calls.Store, recs ...calls.Record) {
	t.Helper()
	s.Record(recs...)
	if f, ok := s.(Flusher); ok {
		if err := f.Flush(t.Context()); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
}

// recordCalls records each call once, without events, in the order given.
func recordCalls(t *testing.T, s calls.Store, cs ...calls.Call) {
	t.Helper()
	recs := make([]calls.Record, len(cs))
	for i, c := range cs {
		recs[i] = calls.Record{Call: c}
	}
	record(t, s, recs...)
}

func findCalls(t *testing.T, s calls.Store, f calls.CallFilter) calls.CallPage {
	t.Helper()
	page, err := s.FindCalls(t.Context(), f)
	if err != nil {
		t.Fatalf("FindCalls(%+v): %v", f, err)
	}
	if page.Items == nil {
		t.Fatalf("FindCalls(%+v).Items is nil, want a slice (JSON [] rather than null)", f)
	}
	return page
}

// walk follows f's cursor chain to the last page, checking each page's
// size and cursor.
func walk(t *testing.T, s calls.Store, f calls.CallFilter) [][]calls.Call {
	t.Helper()
	limit := f.Limit
	if limit == 0 {
		limit = calls.DefaultHistoryLimit
	}
	var pages [][]calls.Call
	for {
		page := findCalls(t, s, f)
		if len(page.Items) > limit {
			t.Fatalf("page %d has %d calls, want at most %d", len(pages)+1, len(page.Items), limit)
		}
		pages = append(pages, page.Items)
		if page.NextCursor == "" {
			return pages
		}
		if len(page.Items) < limit {
			t.Fatalf("page %d has %d calls and a next cursor, want a full page of %d before another", len(pages), len(page.Items), limit)
		}
		if len(pages) > 1000 {
			t.Fatalf("more than 1000 pages: the cursor chain does not end")
		}
		f.Cursor = page.NextCursor
	}
}

func idsOf(cs []calls.Call) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// newestFirst is cs in history order: start time, then id, descending.
func newestFirst(cs []calls.Call) []calls.Call {
	cs = slices.Clone(cs)
	slices.SortFunc(cs, func(a, b calls.Call) int {
		if c := b.StartTime.Compare(a.StartTime); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return cs
}

// canon is c as the suite compares it: times in UTC, no monotonic
// readings, nil slices empty.
func canon(c calls.Call) calls.Call {
	utc := func(p *time.Time) *time.Time {
		if p == nil {
			return nil
		}
		u := p.UTC()
		return &u
	}
	c.StartTime = c.StartTime.UTC()
	c.ConnectedTime, c.HeldTime, c.EndTime = utc(c.ConnectedTime), utc(c.HeldTime), utc(c.EndTime)
	ps := make([]calls.Participant, len(c.RemoteParticipants))
	for i, p := range c.RemoteParticipants {
		if p.EndpointDetails == nil {
			p.EndpointDetails = []calls.EndpointDetail{}
		}
		ps[i] = p
	}
	c.RemoteParticipants = ps
	return c
}

// jsonValue is v marshalled to JSON and read back as plain values, so that
// a struct and a map read back from a JSON column compare equal.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal(%#v): %v", v, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("json.Unmarshal(%s): %v", b, err)
	}
	return out
}

func checkCall(t *testing.T, got, want calls.Call) {
	t.Helper()
	g, w := jsonValue(t, canon(got)), jsonValue(t, canon(want))
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		t.Errorf("call %s:\n got %s\nwant %s", want.ID, gb, wb)
	}
}

func checkTimeline(t *testing.T, got []calls.TimelineEntry, want []calls.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("timeline has %d entries, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i, g := range got {
		w := want[i]
		if g.Type != w.Type || !g.At.Equal(w.At) {
			t.Errorf("timeline[%d] = %s at %v, want %s at %v", i, g.Type, g.At, w.Type, w.At)
		}
		if !reflect.DeepEqual(g.Actor, w.Actor) {
			t.Errorf("timeline[%d].Actor = %+v, want %+v", i, g.Actor, w.Actor)
		}
		if gd, wd := jsonValue(t, g.Data), jsonValue(t, w.Data); !reflect.DeepEqual(gd, wd) {
			t.Errorf("timeline[%d].Data = %v, want %v (as JSON)", i, gd, wd)
		}
	}
}
