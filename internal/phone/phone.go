// Package phone is a WebRTC softphone on the switchboard's API: it attaches
// itself as its identity's audio endpoint (POST /api/media/webrtc), dials
// or answers calls, speaks a tone or a WAV file, and keeps or records what
// it hears. `switchboard phone`, the end-to-end tests and the load
// generator use it.
package phone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/calls"
)

// Heard is one frame the phone received, with when it was played out.
type Heard struct {
	At    time.Time
	Frame audio.Frame
}

// Options configure a Phone.
type Options struct {
	// Mic is what the phone says; nil is silence.
	Mic audio.MicSource
	// Record, if set, gets every frame the phone hears.
	Record audio.Endpoint
	// KeepHeard keeps every frame heard in memory, for Heard.
	KeepHeard bool
	// HTTP is the client for API requests (default http.DefaultClient).
	HTTP *http.Client
	// ICEServers has the leg use the STUN and TURN servers the switchboard
	// lists (GET /api/media/ice-servers) besides its host candidates.
	ICEServers bool
	// Relay has the leg use TURN relayed candidates alone (implies
	// ICEServers): media goes through a relay.
	Relay bool
	// TCPOnly has the leg send nothing over UDP: ICE-TCP to the server's
	// passive candidates, and TURN over TCP.
	TCPOnly bool
}

// Phone is one identity's softphone.
type Phone struct {
	base  string // http://host:port
	token string
	opts  Options
	leg   *rtc.Leg

	mu    sync.Mutex
	heard []Heard
}

// Connect attaches a new WebRTC leg as the token holder's audio endpoint
// and waits until ICE connects.
func Connect(ctx context.Context, engine *rtc.Engine, base, token string, opts Options) (*Phone, error) {
	if opts.Mic == nil {
		opts.Mic = audio.Silence{}
	}
	if opts.HTTP == nil {
		opts.HTTP = http.DefaultClient
	}
	p := &Phone{base: strings.TrimRight(base, "/"), token: token, opts: opts}
	offerOpts := rtc.OfferOptions{Relay: opts.Relay, TCPOnly: opts.TCPOnly}
	if opts.ICEServers || opts.Relay {
		servers, err := p.ICEServers(ctx)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && !opts.Relay {
			err = nil // a switchboard from before ICE servers: host candidates alone
		}
		if err != nil {
			return nil, err
		}
		if opts.Relay && len(servers) == 0 {
			return nil, errors.New("phone: relay only, but the switchboard lists no TURN server")
		}
		offerOpts.ICEServers = servers
	}
	leg, offer, err := engine.OfferWith(ctx, offerOpts)
	if err != nil {
		return nil, err
	}
	var answer struct {
		SDP string `json:"sdp"`
	}
	if err := p.do(ctx, http.MethodPost, "/api/media/webrtc", map[string]string{"sdp": offer}, &answer); err != nil {
		_ = leg.Close()
		return nil, fmt.Errorf("phone: attaching the endpoint: %w", err)
	}
	if err := leg.Accept(answer.SDP); err != nil {
		_ = leg.Close()
		return nil, fmt.Errorf("phone: the server's answer: %w", err)
	}
	select {
	case <-leg.Connected():
	case <-ctx.Done():
		_ = leg.Close()
		return nil, fmt.Errorf("phone: connecting: %w", ctx.Err())
	}
	p.leg = leg
	return p, nil
}

// ICEServers fetches the STUN and TURN servers the switchboard lists for
// the token holder, with fresh credentials.
func (p *Phone) ICEServers(ctx context.Context) ([]rtc.ICEServer, error) {
	var body struct {
		ICEServers []struct {
			URLs       []string `json:"urls"`
			Username   string   `json:"username"`
			Credential string   `json:"credential"`
		} `json:"iceServers"`
	}
	if err := p.do(ctx, http.MethodGet, "/api/media/ice-servers", nil, &body); err != nil {
		return nil, fmt.Errorf("phone: fetching the ICE servers: %w", err)
	}
	servers := make([]rtc.ICEServer, 0, len(body.ICEServers))
	for _, s := range body.ICEServers {
		servers = append(servers, rtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return servers, nil
}

// Leg is the phone's WebRTC leg.
func (p *Phone) Leg() *rtc.Leg { return p.leg }

// Run sends the microphone and takes what the phone hears, every 20 ms,
// until ctx ends.
func (p *Phone) Run(ctx context.Context) {
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	var out, in audio.Frame
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			p.opts.Mic.Next(&out)
			p.leg.Play(audio.Output{PCM: &out, Source: audio.SourceCall})
			p.leg.Capture(&in)
			if p.opts.Record != nil {
				p.opts.Record.Play(audio.Output{PCM: &in, Source: audio.SourceCall})
			}
			if p.opts.KeepHeard {
				p.mu.Lock()
				p.heard = append(p.heard, Heard{At: now, Frame: in})
				p.mu.Unlock()
			}
		}
	}
}

// Heard returns the frames heard so far (with KeepHeard).
func (p *Phone) Heard() []Heard {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Heard(nil), p.heard...)
}

// Call dials an identity by its raw id (8:acs:alice, 8:echo123, ...) and
// returns the phone's call id.
func (p *Phone) Call(ctx context.Context, rawID string) (string, error) {
	id, err := calls.ParseRawID(rawID)
	if err != nil {
		return "", fmt.Errorf("phone: %q: %w", rawID, err)
	}
	var call struct {
		ID string `json:"id"`
	}
	req := calls.StartCallRequest{Participants: []calls.Identifier{id}}
	if err := p.do(ctx, http.MethodPost, "/api/calls", req, &call); err != nil {
		return "", fmt.Errorf("phone: calling %s: %w", rawID, err)
	}
	return call.ID, nil
}

// Answer waits for an incoming call on the event stream and accepts it,
// returning its id.
func (p *Phone) Answer(ctx context.Context) (string, error) {
	u, err := url.Parse(p.base)
	if err != nil {
		return "", fmt.Errorf("phone: server URL: %w", err)
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = "/api/events"
	dialer := *websocket.DefaultDialer
	if t, ok := p.opts.HTTP.Transport.(*http.Transport); ok {
		dialer.TLSClientConfig = t.TLSClientConfig // the API client's trust
	}
	conn, _, err := dialer.DialContext(ctx, u.String(), http.Header{"Authorization": {"Bearer " + p.token}})
	if err != nil {
		return "", fmt.Errorf("phone: event stream: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		var ev struct {
			Type   string `json:"type"`
			CallID string `json:"callId"`
		}
		if err := conn.ReadJSON(&ev); err != nil {
			return "", fmt.Errorf("phone: waiting for a call: %w", errors.Join(ctx.Err(), err))
		}
		if ev.Type != string(calls.EventIncomingCall) {
			continue
		}
		if err := p.do(ctx, http.MethodPost, "/api/incoming-calls/"+ev.CallID+"/accept", nil, nil); err != nil {
			return "", fmt.Errorf("phone: accepting %s: %w", ev.CallID, err)
		}
		return ev.CallID, nil
	}
}

// Hangup leaves the call.
func (p *Phone) Hangup(ctx context.Context, callID string) error {
	return p.do(ctx, http.MethodPost, "/api/calls/"+callID+"/hangup", map[string]bool{"forEveryone": false}, nil)
}

// Close ends the leg (the server notices the peer is gone).
func (p *Phone) Close() error {
	var err error
	if p.leg != nil {
		err = p.leg.Close()
	}
	if p.opts.Record != nil {
		err = errors.Join(err, p.opts.Record.Close())
	}
	return err
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// do sends a JSON request and decodes a JSON answer into out (nil: drop).
func (p *Phone) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.opts.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
