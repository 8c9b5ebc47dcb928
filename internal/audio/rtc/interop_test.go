package rtc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/switchboard/switchboard/internal/audio"
)

// TestPeerConnectionCallsALeg has a full pion PeerConnection, as a browser
// would, offer Opus and PCMU with trickle-less ICE to an engine: the answer
// (ICE-lite, PCMU only) connects, and a tone crosses each way.
func TestPeerConnectionCallsALeg(t *testing.T) {
	e := testEngine(t)
	codecs := &webrtc.MediaEngine{}
	if err := codecs.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(codecs), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
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
