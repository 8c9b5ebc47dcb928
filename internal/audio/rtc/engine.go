// Package rtc carries audio over WebRTC with pion: PCMU only, ICE without
// trickle, RTCP reports, and nothing else a voice leg does not need. A Leg
// is one peer connection with one audio track each way; the server answers
// browsers and softphones with it, and the softphone and the load
// generator offer with it.
package rtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Config sets up an Engine.
type Config struct {
	// PublicIPs replace the host's addresses in the candidates it offers
	// (a server behind 1:1 NAT); empty offers the host's own.
	PublicIPs []string
	// PortMin and PortMax bound the UDP ports legs use; zero is any.
	PortMin, PortMax uint16
	// Loopback offers 127.0.0.1 too (tests, a browser on the same host).
	Loopback bool
	// DisconnectedAfter is how long without an answer from the peer before
	// ICE calls it disconnected (default 3 s); FailedAfter, failed (default
	// 15 s); KeepAlive, how often ICE checks (default 1 s).
	DisconnectedAfter, FailedAfter, KeepAlive time.Duration
	// JitterFrames is the jitter buffer's target delay (default 3: 60 ms).
	JitterFrames int
	// GatherTimeout bounds ICE gathering (default 5 s).
	GatherTimeout time.Duration
	// IPv4Only gathers IPv4 candidates alone (a load generator on the
	// server's host: one socket per leg, fewer ICE checks).
	IPv4Only bool
	// CountOnly makes legs count the packets they receive and keep no
	// audio: Capture is always silence (load generators).
	CountOnly bool
	// NoReports leaves out the RTCP report interceptors: legs send and
	// read no RTCP (load generators).
	NoReports bool
	Logger    *slog.Logger
}

// Engine makes legs that share one configuration.
type Engine struct {
	api     *webrtc.API
	cfg     Config
	stats   engineStats
	writers *writers
}

type engineStats struct {
	open, opened         atomic.Int64
	received, lost, sent atomic.Uint64
	sendErrors, dropped  atomic.Uint64
}

// Stats is what an engine's legs did so far.
type Stats struct {
	Open     int64  // legs not yet closed
	Opened   int64  // legs made
	Received uint64 // RTP packets received
	Lost     uint64 // gaps in the received RTP sequence numbers
	Sent     uint64 // RTP packets handed to pion
	// SendErrors counts packets pion refused (a track not yet bound, a
	// closed connection).
	SendErrors uint64
	// Dropped counts frames Play queued that no writer sent in time.
	Dropped uint64
}

// Stats returns the counts of every leg the engine made.
func (e *Engine) Stats() Stats {
	return Stats{
		Open: e.stats.open.Load(), Opened: e.stats.opened.Load(),
		Received: e.stats.received.Load(), Lost: e.stats.lost.Load(),
		Sent: e.stats.sent.Load(), SendErrors: e.stats.sendErrors.Load(),
		Dropped: e.stats.dropped.Load(),
	}
}

// PCMU is the only codec a leg speaks: G.711 µ-law, 8 kHz, payload type 0.
var PCMU = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}

// NewEngine configures pion for voice legs.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.DisconnectedAfter <= 0 {
		cfg.DisconnectedAfter = 3 * time.Second
	}
	if cfg.FailedAfter <= 0 {
		cfg.FailedAfter = 15 * time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = time.Second
	}
	if cfg.JitterFrames <= 0 {
		cfg.JitterFrames = 3
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	media := &webrtc.MediaEngine{}
	if err := media.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: PCMU, PayloadType: 0}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("rtc: registering PCMU: %w", err)
	}
	// Only RTCP sender and receiver reports: no NACK (a lost voice packet
	// is not worth resending), no congestion control (64 kbit/s fixed).
	registry := &interceptor.Registry{}
	if !cfg.NoReports {
		if err := webrtc.ConfigureRTCPReports(registry); err != nil {
			return nil, fmt.Errorf("rtc: RTCP reports: %w", err)
		}
	}

	var se webrtc.SettingEngine
	se.SetICETimeouts(cfg.DisconnectedAfter, cfg.FailedAfter, cfg.KeepAlive)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.IPv4Only {
		networks = networks[:1]
	}
	se.SetNetworkTypes(networks)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	se.LoggerFactory = pionLogs{cfg.Logger}
	if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("rtc: UDP port range %d-%d: %w", cfg.PortMin, cfg.PortMax, err)
		}
	}
	if len(cfg.PublicIPs) > 0 {
		rule := webrtc.ICEAddressRewriteRule{External: cfg.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost}
		if err := se.SetICEAddressRewriteRules(rule); err != nil {
			return nil, fmt.Errorf("rtc: public IPs %v: %w", cfg.PublicIPs, err)
		}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(media), webrtc.WithInterceptorRegistry(registry), webrtc.WithSettingEngine(se))
	e := &Engine{api: api, cfg: cfg}
	e.writers = newWriters()
	return e, nil
}

// ErrBadSDP wraps what is wrong with a peer's session description.
var ErrBadSDP = errors.New("invalid SDP")

// Answer makes a leg from a peer's offer and returns it with the answer
// (ICE gathered: no trickle). The offer must have an audio section that
// takes PCMU.
func (e *Engine) Answer(ctx context.Context, offer string) (*Leg, string, error) {
	l, err := e.newLeg()
	if err != nil {
		return nil, "", err
	}
	answer, err := l.answer(ctx, offer)
	if err != nil {
		_ = l.Close()
		return nil, "", err
	}
	return l, answer, nil
}

// Offer makes a leg that offers (the calling side) and returns its offer;
// finish it with Leg.Accept and the peer's answer.
func (e *Engine) Offer(ctx context.Context) (*Leg, string, error) {
	l, err := e.newLeg()
	if err != nil {
		return nil, "", err
	}
	offer, err := l.offer(ctx)
	if err != nil {
		_ = l.Close()
		return nil, "", err
	}
	return l, offer, nil
}

// pionLogs sends pion's errors to slog as warnings and its warnings as
// debug lines (a peer that goes away makes several), and drops the rest.
type pionLogs struct{ log *slog.Logger }

func (p pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope(scope, logging.LogLevelWarn, slogWriter{p.log.With("pion", scope)})
}

type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.Contains(line, "ERROR") {
		w.log.Warn(line)
	} else {
		w.log.Debug(line)
	}
	return len(p), nil
}
