package rtc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/internal/audio"
)

// Leg is one WebRTC peer connection carrying one PCMU stream each way. It is
// an audio.Endpoint: Capture plays out its jitter buffer, Play sends a frame.
// Its goroutines (pion's, and one reading RTP and one reading RTCP) end with
// Close.
type Leg struct {
	stats  *engineStats
	count  bool // CountOnly: no jitter buffer
	pc     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	jitter *audio.JitterBuffer
	gather time.Duration

	// Owned by the one goroutine that calls Play (or Send): the next
	// packet's header fields, and a frame to encode into.
	pkt     rtp.Packet
	payload [audio.FrameSamples]byte
	writers *writers
	out     outQueue

	mu        sync.Mutex
	onState   func(webrtc.ICEConnectionState)
	closed    bool
	readers   sync.WaitGroup
	connected chan struct{}
	connOnce  sync.Once
}

func (e *Engine) newLeg() (*Leg, error) {
	cert, err := e.certificate()
	if err != nil {
		return nil, err
	}
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{Certificates: []webrtc.Certificate{cert}})
	if err != nil {
		return nil, fmt.Errorf("rtc: new peer connection: %w", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(PCMU, "audio", "switchboard")
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("rtc: local track: %w", err)
	}
	e.stats.open.Add(1)
	e.stats.opened.Add(1)
	l := &Leg{
		stats: &e.stats, count: e.cfg.CountOnly, writers: e.writers,
		pc: pc, track: track, jitter: audio.NewJitterBuffer(e.cfg.JitterFrames),
		gather: e.cfg.GatherTimeout, connected: make(chan struct{}),
	}
	l.pkt.Header = rtp.Header{
		Version: 2, PayloadType: 0,
		SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32(),
	}
	pc.OnICEConnectionStateChange(l.iceState)
	pc.OnTrack(l.receive)
	return l, nil
}

// addTrack sends the leg's audio; an answerer attaches it to the offer's
// audio section, an offerer creates the section.
func (l *Leg) addTrack() error {
	sender, err := l.pc.AddTrack(l.track)
	if err != nil {
		return fmt.Errorf("rtc: adding the audio track: %w", err)
	}
	l.sender = sender
	l.readers.Add(1)
	go l.readRTCP(sender)
	return nil
}

func (l *Leg) offer(ctx context.Context) (string, error) {
	if err := l.addTrack(); err != nil {
		return "", err
	}
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("rtc: creating the offer: %w", err)
	}
	return l.setLocal(ctx, offer)
}

func (l *Leg) answer(ctx context.Context, offer string) (string, error) {
	if err := checkOffer(offer); err != nil {
		return "", err
	}
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if err := l.addTrack(); err != nil {
		return "", err
	}
	answer, err := l.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: cannot answer it: %v", ErrBadSDP, err)
	}
	if !strings.Contains(answer.SDP, "a=rtpmap:0 PCMU/8000") || strings.Contains(answer.SDP, "m=audio 0 ") {
		return "", fmt.Errorf("%w: the offer's audio does not take PCMU", ErrBadSDP)
	}
	return l.setLocal(ctx, answer)
}

// checkOffer parses an offer and rejects what pion might take but a voice
// leg should not: control bytes, payload types out of RTP's 0-127, no
// audio section.
func checkOffer(offer string) error {
	switch {
	case strings.TrimSpace(offer) == "":
		return fmt.Errorf("%w: the offer is empty", ErrBadSDP)
	case strings.ContainsFunc(offer, func(r rune) bool { return r < 0x20 && r != '\r' && r != '\n' && r != '\t' }):
		return fmt.Errorf("%w: the offer contains control characters", ErrBadSDP)
	}
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(offer); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	audio := false
	for _, m := range desc.MediaDescriptions {
		audio = audio || m.MediaName.Media == "audio"
		for _, f := range m.MediaName.Formats {
			if pt, err := strconv.Atoi(f); err != nil || pt < 0 || pt > 127 {
				return fmt.Errorf("%w: payload type %q is not 0-127", ErrBadSDP, f)
			}
		}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" && a.Key != "fmtp" {
				continue
			}
			pt, _, _ := strings.Cut(a.Value, " ")
			if n, err := strconv.Atoi(pt); err != nil || n < 0 || n > 127 {
				return fmt.Errorf("%w: a=%s names payload type %q, not 0-127", ErrBadSDP, a.Key, pt)
			}
		}
	}
	if !audio {
		return fmt.Errorf("%w: the offer has no audio section", ErrBadSDP)
	}
	return nil
}

// setLocal sets the local description and waits for ICE gathering, so the
// description it returns has every candidate.
func (l *Leg) setLocal(ctx context.Context, desc webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("rtc: setting the local description: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.gather)
	defer cancel()
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("rtc: gathering ICE candidates: %w", ctx.Err())
	}
	return l.pc.LocalDescription().SDP, nil
}

// Accept takes the peer's answer to the leg's offer.
func (l *Leg) Accept(answer string) error {
	if err := l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	return nil
}

// OnState tells f every ICE connection state change (connected,
// disconnected, failed, closed...). Set it before the leg connects.
func (l *Leg) OnState(f func(webrtc.ICEConnectionState)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onState = f
}

// Connected is closed once ICE has connected.
func (l *Leg) Connected() <-chan struct{} { return l.connected }

func (l *Leg) iceState(s webrtc.ICEConnectionState) {
	if s == webrtc.ICEConnectionStateConnected {
		l.connOnce.Do(func() { close(l.connected) })
	}
	l.mu.Lock()
	f := l.onState
	l.mu.Unlock()
	if f != nil {
		f(s)
	}
}

// receive reads the peer's audio into the jitter buffer until the leg
// closes. pion runs it on a goroutine of its own for each incoming track.
func (l *Leg) receive(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.readers.Add(1)
	l.mu.Unlock()
	defer l.readers.Done()
	if !strings.EqualFold(track.Codec().MimeType, webrtc.MimeTypePCMU) {
		return
	}
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var next uint16
	started := false
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != 0 {
			continue
		}
		l.stats.received.Add(1)
		if gap := pkt.SequenceNumber - next; started && gap != 0 && gap < 1<<15 {
			l.stats.lost.Add(uint64(gap))
		}
		if d := pkt.SequenceNumber - next; !started || d < 1<<15 {
			next = pkt.SequenceNumber + 1 // not a late, reordered packet
		}
		started = true
		if !l.count {
			l.jitter.PushUlaw(pkt.Timestamp, pkt.Payload)
		}
	}
}

// readRTCP drains the sender's RTCP, which runs the report interceptor.
func (l *Leg) readRTCP(sender *webrtc.RTPSender) {
	defer l.readers.Done()
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// Capture plays out the next 20 ms the peer sent.
func (l *Leg) Capture(f *audio.Frame) bool { return l.jitter.Pop(f) }

// Play sends a frame to the peer. It does not wait for the network: it
// queues the frame for the engine's writer goroutines (a leg more than
// four frames behind drops its oldest). It is not safe for concurrent use:
// one clock calls it. Use Play or Send on a leg, not both.
func (l *Leg) Play(out audio.Output) {
	payload := out.Ulaw
	if payload == nil {
		payload = audio.EncodeUlaw(l.payload[:], out.PCM)
	}
	l.play(payload)
}

// Send sends one 20 ms packet of µ-law now, on the caller's goroutine (a
// load generator's sender).
func (l *Leg) Send(ulaw []byte) {
	l.pkt.Payload = ulaw
	l.write(&l.pkt)
	l.pkt.SequenceNumber++
	l.pkt.Timestamp += uint32(len(ulaw))
}

func (l *Leg) write(pkt *rtp.Packet) {
	l.stats.sent.Add(1)
	if l.track.WriteRTP(pkt) != nil { // a closed or unbound track drops it
		l.stats.sendErrors.Add(1)
	}
}

// Jitter is the leg's jitter buffer's counts.
func (l *Leg) Jitter() audio.JitterStats { return l.jitter.Stats() }

// Close ends the peer connection and waits for the leg's goroutines.
func (l *Leg) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.onState = nil
	l.mu.Unlock()
	l.stats.open.Add(-1)
	err := l.pc.Close()
	l.readers.Wait()
	if err != nil && !errors.Is(err, webrtc.ErrConnectionClosed) {
		return fmt.Errorf("rtc: closing the peer connection: %w", err)
	}
	return nil
}
