package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchboard/switchboard/internal/calls"
)

type nopPublisher struct{ n int }

func (p *nopPublisher) Publish(calls.Event) { p.n++ }

// TestCallsByState follows one identity's view of a call through its
// events: the gauges by state, the active-call changes and the event
// counts move as they should, and every event reaches the next publisher.
func TestCallsByState(t *testing.T) {
	m := New(Config{
		Media:   func() Media { return Media{LegsOpen: 2, LateTicks: 3, DroppedFrames: 4} },
		Backlog: func() Backlog { return Backlog{Memory: 5, Spooled: 6, Journal: 11} },
		Version: "v1", Revision: "abc",
	})
	next := &nopPublisher{}
	pub := m.Publisher(next)
	call := calls.Call{ID: "c1", State: calls.StateConnected}
	for _, ev := range []calls.Event{
		{Type: calls.EventCallsUpdated, AgentID: "8:acs:alice", CallID: "c1", Data: calls.CallsUpdatedData{Added: []calls.Call{call}}},
		{Type: calls.EventStateChanged, AgentID: "8:acs:alice", CallID: "c1", Data: calls.StateChangedData{OldState: calls.StateConnected, State: calls.StateLocalHold}},
		{Type: calls.EventStateChanged, AgentID: "8:acs:alice", CallID: "c1", Data: calls.StateChangedData{OldState: calls.StateLocalHold, State: calls.StateConnected, IsActive: true}},
		{Type: calls.EventCallsUpdated, AgentID: "8:acs:bob", CallID: "c2", Data: calls.CallsUpdatedData{Added: []calls.Call{{ID: "c2", State: calls.StateRinging}}}},
	} {
		pub.Publish(ev)
	}
	m.ObserveRequest("POST", "/api/calls", 201, 3*time.Millisecond)
	want := map[string]float64{
		`switchboard_calls{state="Connected"}`:                                                           1,
		`switchboard_calls{state="LocalHold"}`:                                                           0,
		`switchboard_calls{state="Ringing"}`:                                                             1,
		`switchboard_active_call_changes_total`:                                                          2,
		`switchboard_events_published_total{type="stateChanged"}`:                                        2,
		`switchboard_events_published_total{type="callsUpdated"}`:                                        2,
		`switchboard_media_legs`:                                                                         2,
		`switchboard_media_late_ticks_total`:                                                             3,
		`switchboard_media_dropped_frames_total`:                                                         4,
		`switchboard_store_queue_depth{place="memory"}`:                                                  5,
		`switchboard_store_queue_depth{place="spool"}`:                                                   6,
		`switchboard_store_queue_depth{place="journal"}`:                                                 11,
		`switchboard_build_info{revision="abc",version="v1"}`:                                            1,
		`switchboard_http_request_duration_seconds_count{method="POST",route="/api/calls",status="201"}`: 1,
	}
	got := scrape(t, m)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if next.n != 4 {
		t.Errorf("the next publisher got %d events, want 4", next.n)
	}

	pub.Publish(calls.Event{Type: calls.EventCallsUpdated, AgentID: "8:acs:alice", CallID: "c1", Data: calls.CallsUpdatedData{Removed: []calls.Call{call}}})
	if got := scrape(t, m)[`switchboard_calls{state="Connected"}`]; got != 0 {
		t.Errorf("Connected after the call was removed = %v, want 0", got)
	}
}

// scrape serves the metrics and flattens them to "name{labels}" → value.
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("not Prometheus text: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, mt := range f.Metric {
			var labels []string
			for _, l := range mt.Label {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case mt.Counter != nil:
				out[key] = mt.Counter.GetValue()
			case mt.Gauge != nil:
				out[key] = mt.Gauge.GetValue()
			case mt.Histogram != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	return out
}
