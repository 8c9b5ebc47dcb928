// Package metrics is Switchboard's Prometheus surface: it owns a registry
// with the service's metrics (calls by state, active-call changes, events,
// media legs, the history store's backlog, media ticks and drops, HTTP
// latency) and serves it in Prometheus's text format.
//
// It learns what happens by wrapping the switchboard's event publisher
// (calls.Publisher) and by being told of every answered HTTP request
// (api.RequestObserver); media and store figures are read from functions
// at scrape time. The other packages never import Prometheus: cmd wires
// them to this one. It decides nothing and changes nothing it watches.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard/switchboard/internal/calls"
)

// Media is what the media plane carried so far, read at each scrape.
type Media struct {
	LegsOpen        int64  // WebRTC legs (browser or softphone endpoints) attached now
	LegsOpened      int64  // WebRTC legs made since start
	Ticks           uint64 // mixer ticks (one per 20 ms frame)
	LateTicks       uint64 // mixer ticks that started late
	DroppedFrames   uint64 // frames queued for a leg that no writer sent in time
	PacketsReceived uint64 // RTP packets received
	PacketsLost     uint64 // gaps in received RTP sequence numbers
	PacketsSent     uint64 // RTP packets sent or tried
}

// Backlog is how much history waits to be written, read at each scrape.
type Backlog struct {
	Memory  int // changes waiting in memory
	Spooled int // changes waiting in the journal only (let go from memory)
	Journal int // changes in the journal not yet written, wherever else they are
}

// Config says where the figures read at scrape time come from; nil
// functions leave their metrics out.
type Config struct {
	Media   func() Media
	Backlog func() Backlog
	// Version and Revision label switchboard_build_info.
	Version, Revision string
}

// Metrics is the registry and the instruments the rest of the service
// feeds. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	calls    *prometheus.GaugeVec
	byState  map[calls.CallState]prometheus.Gauge
	switches prometheus.Counter
	events   *prometheus.CounterVec
	byType   sync.Map // calls.EventType → prometheus.Counter
	requests *prometheus.HistogramVec

	mu    sync.Mutex
	views map[viewKey]calls.CallState // each identity's listed live calls
}

// viewKey is one identity's view of one call.
type viewKey struct{ agent, call string }

// New returns the metrics with a fresh registry, the Go runtime's and the
// process's collectors included.
func New(cfg Config) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_calls",
			Help: "Live calls by state, counted once per identity that has the call in its list (GET /api/calls).",
		}, []string{"state"}),
		byState: map[calls.CallState]prometheus.Gauge{},
		switches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_active_call_changes_total",
			Help: "Times a call became an identity's active call (entered Connected): accepts, resumes and swaps.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_published_total",
			Help: "Events the switchboard published, by type.",
		}, []string{"type"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_http_request_duration_seconds",
			Help:    "How long HTTP requests took to answer, by route, method and status (a websocket: its whole connection).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method", "status"}),
		views: map[viewKey]calls.CallState{},
	}
	for _, s := range []calls.CallState{
		calls.StateNone, calls.StateConnecting, calls.StateRinging, calls.StateEarlyMedia,
		calls.StateConnected, calls.StateLocalHold, calls.StateRemoteHold, calls.StateInLobby,
		calls.StateDisconnecting, calls.StateDisconnected,
	} {
		m.byState[s] = m.calls.WithLabelValues(string(s))
	}
	for _, t := range []calls.EventType{
		calls.EventConnectionStateChanged, calls.EventIncomingCall, calls.EventCallsUpdated,
		calls.EventStateChanged, calls.EventRemoteParticipantsUpdated, calls.EventParticipantStateChanged,
		calls.EventIsMutedChanged, calls.EventIsIncomingAudioMuted, calls.EventMutedByOthers,
		calls.EventIsSpeakingChanged, calls.EventKindChanged, calls.EventCallEnded,
	} {
		m.byType.Store(t, m.events.WithLabelValues(string(t)))
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchboard_build_info",
		Help:        "Always 1; its labels name the running build.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "revision": cfg.Revision},
	})
	build.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.calls, m.switches, m.events, m.requests, build,
		&scraped{cfg: cfg},
	)
	return m
}

// Handler serves the registry in Prometheus's text (or protobuf, when
// asked) exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one answered HTTP request (api.RequestObserver).
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// Publisher returns a calls.Publisher that counts each event and hands it
// on to next. Like every publisher it never blocks.
func (m *Metrics) Publisher(next calls.Publisher) calls.Publisher {
	return &publisher{m: m, next: next}
}

type publisher struct {
	m    *Metrics
	next calls.Publisher
}

func (p *publisher) Publish(ev calls.Event) {
	p.m.observe(ev)
	p.next.Publish(ev)
}

// observe counts ev and follows the call views it adds, changes and
// removes. Events of one identity come in order (the switchboard holds its
// lock), and each view belongs to one identity, so the map is exact.
func (m *Metrics) observe(ev calls.Event) {
	m.eventCounter(ev.Type).Inc()
	switch d := ev.Data.(type) {
	case calls.CallsUpdatedData:
		for i := range d.Removed {
			m.setView(viewKey{ev.AgentID, d.Removed[i].ID}, "")
		}
		for i := range d.Added {
			m.setView(viewKey{ev.AgentID, d.Added[i].ID}, d.Added[i].State)
		}
	case calls.StateChangedData:
		m.setView(viewKey{ev.AgentID, ev.CallID}, d.State)
	}
}

func (m *Metrics) eventCounter(t calls.EventType) prometheus.Counter {
	if c, ok := m.byType.Load(t); ok {
		return c.(prometheus.Counter)
	}
	c, _ := m.byType.LoadOrStore(t, m.events.WithLabelValues(string(t)))
	return c.(prometheus.Counter)
}

// setView moves one view to state ("" removes it) and counts it as a
// switch when it enters Connected.
func (m *Metrics) setView(k viewKey, state calls.CallState) {
	m.mu.Lock()
	old, had := m.views[k]
	if state == "" {
		delete(m.views, k)
	} else {
		m.views[k] = state
	}
	m.mu.Unlock()
	if had && old == state {
		return
	}
	if had {
		m.stateGauge(old).Dec()
	}
	if state != "" {
		m.stateGauge(state).Inc()
		if state == calls.StateConnected {
			m.switches.Inc()
		}
	}
}

func (m *Metrics) stateGauge(s calls.CallState) prometheus.Gauge {
	if g, ok := m.byState[s]; ok {
		return g
	}
	return m.calls.WithLabelValues(string(s))
}

// scraped is the collector of the figures Config's functions read.
type scraped struct{ cfg Config }

var (
	descLegs       = prometheus.NewDesc("switchboard_media_legs", "WebRTC audio endpoints (browsers, softphones) attached now.", nil, nil)
	descLegsOpened = prometheus.NewDesc("switchboard_media_legs_opened_total", "WebRTC audio endpoints attached since start.", nil, nil)
	descTicks      = prometheus.NewDesc("switchboard_media_mixer_ticks_total", "Mixer ticks (one per 20 ms audio frame).", nil, nil)
	descLate       = prometheus.NewDesc("switchboard_media_late_ticks_total", "Mixer ticks that started late (over 5 ms).", nil, nil)
	descDropped    = prometheus.NewDesc("switchboard_media_dropped_frames_total", "Audio frames queued for a WebRTC leg that were not sent in time.", nil, nil)
	descReceived   = prometheus.NewDesc("switchboard_media_packets_received_total", "RTP packets received on WebRTC legs.", nil, nil)
	descLost       = prometheus.NewDesc("switchboard_media_packets_lost_total", "Gaps in the sequence numbers of received RTP packets.", nil, nil)
	descSent       = prometheus.NewDesc("switchboard_media_packets_sent_total", "RTP packets sent (or tried) on WebRTC legs.", nil, nil)
	descBacklog    = prometheus.NewDesc("switchboard_store_queue_depth", "History changes waiting to be written, by where they wait: memory, spool (the journal only), journal (all in the journal not yet written).", []string{"place"}, nil)
)

func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	if s.cfg.Media != nil {
		for _, d := range []*prometheus.Desc{descLegs, descLegsOpened, descTicks, descLate, descDropped, descReceived, descLost, descSent} {
			ch <- d
		}
	}
	if s.cfg.Backlog != nil {
		ch <- descBacklog
	}
}

func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	if s.cfg.Media != nil {
		md := s.cfg.Media()
		ch <- prometheus.MustNewConstMetric(descLegs, prometheus.GaugeValue, float64(md.LegsOpen))
		ch <- prometheus.MustNewConstMetric(descLegsOpened, prometheus.CounterValue, float64(md.LegsOpened))
		for _, c := range []struct {
			d *prometheus.Desc
			v uint64
		}{
			{descTicks, md.Ticks}, {descLate, md.LateTicks}, {descDropped, md.DroppedFrames},
			{descReceived, md.PacketsReceived}, {descLost, md.PacketsLost}, {descSent, md.PacketsSent},
		} {
			ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v))
		}
	}
	if s.cfg.Backlog != nil {
		b := s.cfg.Backlog()
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(b.Memory), "memory")
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(b.Spooled), "spool")
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(b.Journal), "journal")
	}
}
