package rtc

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/turnserver"
)

// TestPeerConnectionCallsALeg has a full pion PeerConnection, as a browser
// would, offer Opus and PCMU with trickle-less ICE to an engine: the answer
// (ICE-lite, PCMU only) connects, and a tone crosses each way.
func TestPeerConnectionCallsALeg(t *testing.T) {
	relay, err := turnserver.New(turnserver.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	user, pass, err := relay.Credentials("browser")
	if err != nil {
		t.Fatal(err)
	}
	viaRelay := func(transport string) webrtc.Configuration {
		return webrtc.Configuration{ICETransportPolicy: webrtc.ICETransportPolicyRelay, ICEServers: []webrtc.ICEServer{{
			URLs: []string{"turn:" + relay.Addr() + "?transport=" + transport}, Username: user, Credential: pass,
		}}}
	}
	tcpEngine, err := NewEngine(Config{Loopback: true, Shared: true, TCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine(t, tcpEngine)
	tests := []struct {
		name     string
		engine   *Engine
		cfg      webrtc.Configuration
		networks []webrtc.NetworkType
		// want is the PeerConnection's selected pair: its local
		// candidate's type and the pair's transport.
		wantType  webrtc.ICECandidateType
		wantProto webrtc.ICEProtocol
	}{
		{"UDP", testEngine(t), webrtc.Configuration{}, nil, webrtc.ICECandidateTypeHost, webrtc.ICEProtocolUDP},
		{"TURN over UDP", testEngine(t), viaRelay("udp"), nil, webrtc.ICECandidateTypeRelay, webrtc.ICEProtocolUDP},
		{"TURN over TCP", testEngine(t), viaRelay("tcp"), nil, webrtc.ICECandidateTypeRelay, webrtc.ICEProtocolUDP},
		// A PeerConnection that may not use UDP reaches the leg's ICE-TCP
		// passive candidate from an active one of its own.
		{"ICE-TCP", tcpEngine, webrtc.Configuration{}, []webrtc.NetworkType{webrtc.NetworkTypeTCP4}, webrtc.ICECandidateTypeHost, webrtc.ICEProtocolTCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peerConnectionCallsALeg(t, tt.engine, tt.cfg, tt.networks, tt.wantType, tt.wantProto)
		})
	}
}

func peerConnectionCallsALeg(t *testing.T, e *Engine, cfg webrtc.Configuration, networks []webrtc.NetworkType, wantType webrtc.ICECandidateType, wantProto webrtc.ICEProtocol) {
	codecs := &webrtc.MediaEngine{}
	if err := codecs.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	if networks != nil {
		se.SetNetworkTypes(networks)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(codecs), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, "audio", "browser")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	// The leg's RTCP sender reports reach the PeerConnection's sender.
	var reports atomic.Int32
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.SenderReport); ok {
					reports.Add(1)
				}
			}
		}
	}()
	var heardDown atomic.Int32
	pc.OnTrack(func(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var f audio.Frame
		for {
			pkt, _, err := remote.ReadRTP()
			if err != nil {
				return
			}
			if len(pkt.Payload) != audio.FrameSamples {
				continue
			}
			audio.DecodeUlaw(&f, pkt.Payload)
			if i, ok := audio.Dominant(&f, 1e-3, 400, 800); ok && i == 1 {
				heardDown.Add(1)
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	leg, answer, err := e.Answer(context.Background(), pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	defer leg.Close()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("the PeerConnection refused the answer: %v\n%s", err, answer)
	}
	select {
	case <-leg.Connected():
	case <-time.After(10 * time.Second):
		t.Fatal("the leg did not connect in 10 s")
	}
	pair, err := sender.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected pair: %v", err)
	}
	if pair.Local.Typ != wantType || pair.Local.Protocol != wantProto {
		t.Errorf("selected pair %s; want a local %s candidate over %s", pair, wantType, wantProto)
	}

	up, down := audio.NewTone(400, -20), audio.NewTone(800, -20)
	var f audio.Frame
	ulaw := make([]byte, audio.FrameSamples)
	heardUp := 0
	tick := time.NewTicker(audio.FrameDuration)
	defer tick.Stop()
	for range 50 {
		<-tick.C
		up.Next(&f)
		if err := track.WriteSample(media.Sample{Data: audio.EncodeUlaw(ulaw, &f), Duration: audio.FrameDuration}); err != nil {
			t.Fatal(err)
		}
		down.Next(&f)
		leg.Play(audio.Output{PCM: &f})
		if leg.Capture(&f) {
			if i, ok := audio.Dominant(&f, 1e-3, 400, 800); ok && i == 0 {
				heardUp++
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	if reports.Load() == 0 {
		t.Error("no RTCP sender report from the leg reached the PeerConnection")
	}
	if heardUp < 40 || heardDown.Load() < 40 {
		t.Errorf("frames with the tone in 1 s: leg heard %d, PeerConnection heard %d; want at least 40 each", heardUp, heardDown.Load())
	}
}
