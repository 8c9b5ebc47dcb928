package rtc

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/ice/v4"

	"github.com/switchboard/switchboard/internal/audio"
)

// DefaultGrace is how long a leg whose peer went silent may come back
// before its calls end with 410: the Calling SDK's two minutes.
const DefaultGrace = 2 * time.Minute

// Attacher makes browsers and softphones identities' audio endpoints: it
// answers their offers, hands the legs to the mixer, and when a peer
// vanishes (ICE disconnected or failed) and stays away for the grace
// period, detaches the leg and tells OnLost, which ends the identity's
// calls with 410.
type Attacher struct {
	engine *Engine
	mixer  *audio.Mixer
	grace  time.Duration
	onLost func(rawID string)
	log    *slog.Logger

	mu     sync.Mutex
	legs   map[string]*attached // by raw id: the identity's current leg
	closed bool
}

type attached struct {
	rawID     string
	leg       *Leg
	lost      *time.Timer // running while the peer is away
	connected bool        // ICE connected once
}

// NewAttacher attaches legs of engine to mixer. grace <= 0 is DefaultGrace.
func NewAttacher(engine *Engine, mixer *audio.Mixer, grace time.Duration, onLost func(rawID string), log *slog.Logger) *Attacher {
	if grace <= 0 {
		grace = DefaultGrace
	}
	if log == nil {
		log = slog.Default()
	}
	return &Attacher{engine: engine, mixer: mixer, grace: grace, onLost: onLost, log: log, legs: map[string]*attached{}}
}

// AttachWebRTC answers the identity's offer and makes the new leg its audio
// endpoint, replacing the one it had. Errors wrap ErrBadSDP when the offer
// is at fault.
func (a *Attacher) AttachWebRTC(ctx context.Context, rawID, offer string) (string, error) {
	leg, answer, err := a.engine.Answer(ctx, offer)
	if err != nil {
		return "", err
	}
	at := &attached{rawID: rawID, leg: leg}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		_ = leg.Close()
		return "", fmt.Errorf("rtc: the media plane is shutting down")
	}
	if old := a.legs[rawID]; old != nil && old.lost != nil {
		old.lost.Stop()
	}
	a.legs[rawID] = at
	a.mu.Unlock()
	leg.OnState(func(s State) { a.iceState(at, s) })
	a.mixer.Attach(rawID, leg) // closes the old leg
	a.log.Info("audio endpoint attached", "identity", rawID, "kind", "webrtc")
	return answer, nil
}

// iceState runs the grace timer: it starts when the peer goes away and
// stops if it comes back.
func (a *Attacher) iceState(at *attached, s State) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.legs[at.rawID] != at {
		return // replaced or shutting down: nothing to end
	}
	switch s {
	case ice.ConnectionStateDisconnected, ice.ConnectionStateFailed:
		if at.lost == nil {
			a.log.Warn("audio endpoint lost; waiting for it to come back", "identity", at.rawID, "ice", s.String(), "grace", a.grace)
			at.lost = time.AfterFunc(a.grace, func() { a.expire(at) })
		}
	case ice.ConnectionStateConnected, ice.ConnectionStateCompleted:
		if !at.connected {
			at.connected = true
			a.log.Info("audio endpoint connected", "identity", at.rawID, "path", at.leg.Path())
		}
		if at.lost != nil {
			at.lost.Stop()
			at.lost = nil
			a.log.Info("audio endpoint back", "identity", at.rawID)
		}
	}
}

// expire ends the identity's calls: its peer stayed away past the grace.
func (a *Attacher) expire(at *attached) {
	a.mu.Lock()
	if a.closed || a.legs[at.rawID] != at || at.lost == nil {
		a.mu.Unlock()
		return
	}
	delete(a.legs, at.rawID)
	a.mu.Unlock()
	a.log.Warn("audio endpoint gone past the grace period; ending its calls", "identity", at.rawID)
	a.mixer.Detach(at.rawID, at.leg)
	if a.onLost != nil {
		a.onLost(at.rawID)
	}
}

// Close stops the grace timers; the mixer closes the legs.
func (a *Attacher) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for _, at := range a.legs {
		if at.lost != nil {
			at.lost.Stop()
		}
	}
}
