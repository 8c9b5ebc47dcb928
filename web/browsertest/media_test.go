package browsertest_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/web/browsertest"
)

// The levels of the media test. Tone levels are Goertzel powers normalised
// as audio.ToneLevel's: a full-scale sine is 1, alice's -20 dBov tone about
// 2e-2.
const (
	aliceHz    = 1000 // alice's device speaks this tone
	aliceDBov  = -20
	toneHeard  = 1e-3 // a tone at least this strong is there
	toneAbsent = 1e-4 // and one below this is not
	// beepDBov is the level from which a frame alice's device plays carries
	// the fake microphone's beep.
	beepDBov = -30
)

// A customer calls alice from the "call us" page with the browser's audio:
// headless Chromium's fake microphone, over WebRTC to the server's media
// plane. Alice's device (a test endpoint that speaks 1 kHz) hears nothing
// of the browser while the call rings and its beeps once she accepts; the
// page hears nothing of alice before she accepts, her tone once she has,
// and, once she holds the call, the hold tone and no more of her; when she
// resumes, each hears the other again.
func TestBrowserCallerAudio(t *testing.T) {
	srv := newMediaServer(t)
	aliceRaw := calls.CommunicationUser("alice").RawID()
	alice := srv.token("alice", "Alice Agent", calls.RoleAgent)
	srv.connect(alice)                                                // online: a call to her rings
	ear := audio.NewMemoryEndpoint(audio.NewTone(aliceHz, aliceDBov)) // alice's device: keeps every frame
	srv.mixer.Attach(aliceRaw, ear)

	const customerRaw = "4:+14255550142"
	customer := srv.mint(calls.PhoneNumber("+14255550142"), "Casey Customer", calls.RoleCaller)
	caller := newTab(t, srv)
	caller.do("install the peer connection probe", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: browsertest.RTCProbe})
		return err
	}))
	caller.open("/call.html?to=" + aliceRaw + "&name=Support&token=" + customer)
	caller.waitJS("the call page", `document.body.dataset.conn === 'open' && document.getElementById('use-audio').checked`)
	caller.click("#call-btn")
	caller.waitJS("the browser's audio connected", `window.__rtcProbe.pcs.length === 1 && window.__rtcProbe.pcs[0].connectionState === 'connected'`)
	id := srv.incoming(alice, customerRaw)
	caller.waitJS("the caller told it rings", `document.body.dataset.callState === 'Ringing'`)
	m := startPageMeter(caller)

	// Let a second of the browser's audio reach the mixer while the call
	// rings, so that "nothing before the accept" means something.
	mark := ear.Played()
	waitFor(t, "a second of frames at alice's device", func() bool { return ear.Played() >= mark+audio.FramesPerSec })
	m.waitFrames(audio.FramesPerSec)

	// Alice accepts over the API.
	accept := m.clock()
	nAccept := ear.Played()
	start := time.Now()
	srv.do(http.MethodPost, "/api/incoming-calls/"+id+"/accept", alice, nil, http.StatusOK, nil)
	nAccepted := ear.Played()
	caller.waitJS("the caller connected", `document.body.dataset.callState === 'Connected'`)

	// (1) Alice's device hears the browser: beeps, from the accept on.
	waitFor(t, "three of the browser's beeps at alice's device", func() bool {
		frames, _ := ear.Heard(nAccept)
		return len(beeps(frames)) >= 3
	})
	toDevice := time.Since(start)
	// (2) The browser hears alice's tone.
	m.waitFor("alice's tone in the page", func(f pageFrame) bool { return f.T > accept && f.Alice > toneHeard })
	toPage := time.Since(start)

	frames, sources := ear.Heard(0)
	own, ownInBeeps := 0.0, 0.0
	for n := range nAccept {
		if sources[n] != audio.SourceSilence || frames[n].RMS() != 0 {
			t.Fatalf("alice's device played %s at %.1f dBov in frame %d, before the accept (frame %d): the ringing call leaked", sources[n], frames[n].DBov(), n, nAccept)
		}
	}
	for n := nAccepted; n < len(frames); n++ {
		if sources[n] != audio.SourceCall {
			t.Fatalf("frame %d after the accept (frame %d) is %s, want call", n, nAccepted, sources[n])
		}
		// A beep's abrupt edges spread a little power everywhere: alice's
		// tone must not be heard in it, and be absent between beeps.
		l := frameLevel(&frames[n], aliceHz)
		if frames[n].DBov() >= beepDBov {
			ownInBeeps = max(ownInBeeps, l)
		} else {
			own = max(own, l)
		}
	}
	if own > toneAbsent || ownInBeeps > toneHeard {
		t.Errorf("alice hears her own tone after the accept: level up to %.2g between the beeps, want under %.0e; %.2g in them, want under %.0e", own, toneAbsent, ownInBeeps, toneHeard)
	}
	bs := beeps(frames[nAccept:])
	beepHz, beepLevel := peakHz(frames[nAccept:], bs)
	routed, sound := -1, -1
	for n := nAccept; n < len(frames) && sound < 0; n++ {
		if routed < 0 && sources[n] == audio.SourceCall {
			routed = n - nAccept
		}
		if frames[n].RMS() > 0 {
			sound = n - nAccept
		}
	}
	t.Logf("alice's device, counting from the first frame played after the accept was sent: the call routed to it from frame %d, the first sound at %d ms, the first beep at %d ms",
		routed, sound*20, bs[0].from*20)
	t.Logf("alice's device: %d beeps in %d frames, every %.0f ms, %.1f frames each over %d dBov; the beep's peak %.0f Hz at %.1f dB, the loudest frame %.1f dBov; her own tone at most %.1f dB between the beeps, %.1f dB in them",
		len(bs), len(frames)-nAccept, beepPeriod(bs), beepFrames(bs), beepDBov, beepHz, 10*math.Log10(beepLevel), loudest(frames[nAccept:]), 10*math.Log10(own), 10*math.Log10(ownInBeeps))
	if beepHz < 100 || math.Abs(beepHz-aliceHz) < 50 {
		t.Errorf("the browser's beep peaks at %.0f Hz: want the fake microphone's tone, not silence or alice's %d Hz", beepHz, aliceHz)
	}

	pf := m.frames()
	heardAt := -1.0
	for _, f := range pf {
		if f.T <= accept && (f.Alice > toneAbsent || f.Hold > toneAbsent) {
			t.Fatalf("the page heard a tone at %.3f s, before the accept at %.3f s: alice %.2g, hold %.2g", f.T, accept, f.Alice, f.Hold)
		}
		if heardAt < 0 && f.Alice > toneHeard {
			heardAt = f.T
		}
	}
	t.Logf("the page: alice's tone %.0f ms after the accept on its audio clock (%v of wall time to three beeps at the device, %v to the tone in the page)",
		(heardAt-accept)*1000, toDevice.Round(time.Millisecond), toPage.Round(time.Millisecond))

	// A second of the call for the levels.
	n := len(pf)
	m.waitFrames(n + audio.FramesPerSec)
	pf = m.frames()
	withTone := 0
	var lo, hi float64 = 1, 0
	for _, f := range pf[n:] {
		if f.Alice > toneHeard {
			withTone++
		}
		lo, hi = min(lo, f.Alice), max(hi, f.Alice)
	}
	t.Logf("the page during the call: alice's tone in %d of %d frames, level %.1f to %.1f dB (sent at %d dBov: %.1f dB)",
		withTone, len(pf)-n, 10*math.Log10(lo), 10*math.Log10(hi), aliceDBov, 10*math.Log10(2*math.Pow(10, aliceDBov/10.0)))
	if withTone < (len(pf)-n)*9/10 {
		t.Errorf("during the call the page heard alice's tone in %d of %d frames", withTone, len(pf)-n)
	}

	ctx, cancel := context.WithTimeout(caller.ctx, waitLimit)
	st, err := chromedp.Run(ctx, chromedp.Evaluate[rtcStats](statsJS, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil {
		t.Fatalf("the page's stats: %v", err)
	}
	t.Logf("the page's connection: %+v", st)
	if st.Codec != "audio/PCMU" {
		t.Errorf("the page receives %q, want audio/PCMU", st.Codec)
	}

	// Alice holds the call: she hears nothing of it and sends nothing into
	// it; the browser hears the hold tone.
	hold := m.clock()
	nHold := ear.Played()
	srv.do(http.MethodPost, "/api/calls/"+id+"/hold", alice, nil, http.StatusOK, nil)
	nHeld := ear.Played()
	caller.waitJS("the caller told it is on hold", `document.body.dataset.callState === 'RemoteHold'`)
	m.waitFor("the hold tone in the page", func(f pageFrame) bool { return f.T > hold && f.Hold > toneHeard })
	// Listen on for a whole cycle of the hold tone after it was first heard.
	heldFrom := len(m.frames())
	m.waitFrames(heldFrom + 2*audio.FramesPerSec + audio.FramesPerSec/2)
	waitFor(t, "two seconds of the held call at alice's device", func() bool { return ear.Played() >= nHeld+2*audio.FramesPerSec })

	pf = m.frames()
	gone, holdBeeps, leak := -1.0, 0, 0.0
	for i, f := range pf {
		if f.T <= hold {
			continue
		}
		if gone < 0 && f.Alice < toneAbsent {
			gone = f.T
		}
		if gone >= 0 {
			leak = max(leak, f.Alice)
		}
		if gone >= 0 && f.Alice > toneAbsent {
			t.Errorf("the page hears alice's tone again at %.3f s (level %.2g, the hold tone's %.2g), after it went at %.3f s: the held call leaks", f.T, f.Alice, f.Hold, gone)
		}
		if f.Hold > toneHeard && (i == 0 || pf[i-1].Hold <= toneHeard) {
			holdBeeps++
		}
	}
	t.Logf("the page after the hold: alice's tone gone %.0f ms after the request on its audio clock, then at most %.1f dB; %d hold beeps in %.1f s",
		(gone-hold)*1000, 10*math.Log10(leak), holdBeeps, pf[len(pf)-1].T-hold)
	frames, sources = ear.Heard(nHeld)
	for i := range frames {
		if sources[i] != audio.SourceSilence || frames[i].RMS() != 0 {
			t.Fatalf("alice's device played %s at %.1f dBov in frame %d, after the hold (frame %d)", sources[i], frames[i].DBov(), nHeld+i, nHold)
		}
	}

	// Alice resumes: each hears the other again.
	resume := m.clock()
	nResume := ear.Played()
	srv.do(http.MethodPost, "/api/calls/"+id+"/resume", alice, nil, http.StatusOK, nil)
	m.waitFor("alice's tone in the page after the resume", func(f pageFrame) bool { return f.T > resume && f.Alice > toneHeard })
	waitFor(t, "the browser's beeps at alice's device after the resume", func() bool {
		frames, _ := ear.Heard(nResume)
		return len(beeps(frames)) >= 2
	})
}

// waitFor polls cond until it holds, for at most waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %v", what, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// frameLevel is the Hann-windowed power of hz in a frame.
func frameLevel(f *audio.Frame, hz float64) float64 {
	s := make([]float64, len(f))
	for i, v := range f {
		s[i] = float64(v) / 32768
	}
	return goertzel(s, hz)
}

// beep is a run of frames [from, to) at or over beepDBov.
type beep struct{ from, to int }

func beeps(frames []audio.Frame) []beep {
	var bs []beep
	for n := range frames {
		if frames[n].DBov() < beepDBov {
			continue
		}
		if len(bs) > 0 && bs[len(bs)-1].to == n {
			bs[len(bs)-1].to++
		} else {
			bs = append(bs, beep{n, n + 1})
		}
	}
	return bs
}

// beepPeriod is the mean time between beeps' starts, in ms.
func beepPeriod(bs []beep) float64 {
	if len(bs) < 2 {
		return 0
	}
	return float64(bs[len(bs)-1].from-bs[0].from) * 20 / float64(len(bs)-1)
}

// beepFrames is the mean number of frames a beep lasts.
func beepFrames(bs []beep) float64 {
	n := 0
	for _, b := range bs {
		n += b.to - b.from
	}
	return float64(n) / float64(len(bs))
}

func loudest(frames []audio.Frame) float64 {
	l := math.Inf(-1)
	for i := range frames {
		l = max(l, frames[i].DBov())
	}
	return l
}

// peakHz is the frequency, 50 Hz to 3,950 Hz in steps of 5 Hz, with the
// most power over the beeps (a Hann-windowed Goertzel over each), and its
// mean power, normalised as audio.ToneLevel's.
func peakHz(frames []audio.Frame, bs []beep) (hz, level float64) {
	var runs [][]float64
	for _, b := range bs {
		var s []float64
		for n := b.from; n < b.to; n++ {
			for _, v := range frames[n] {
				s = append(s, float64(v)/32768)
			}
		}
		runs = append(runs, s)
	}
	for f := 50.0; f < 3950; f += 5 {
		var p float64
		for _, s := range runs {
			p += goertzel(s, f)
		}
		if p /= float64(len(runs)); p > level {
			hz, level = f, p
		}
	}
	return hz, level
}

// goertzel is the Hann-windowed power of hz in s at 8 kHz: about A² for a
// sine of amplitude A (full scale 1).
func goertzel(s []float64, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/audio.SampleRate)
	var s1, s2, wsum float64
	for i, x := range s {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(s)-1))
		wsum += w
		s0 := x*w + k*s1 - s2
		s2, s1 = s1, s0
	}
	return (s1*s1 + s2*s2 - k*s1*s2) / (wsum * wsum / 4)
}

// meterWorklet runs on the page's audio thread: every 20 ms of what the
// peer connection receives, it posts the level of the two tones over the
// last 80 ms (a Hann-windowed Goertzel, normalised as audio.ToneLevel's)
// and the time on the audio clock where that window ends. The audio thread
// is not throttled as the page's timers may be, and no frame is lost when
// the page is slow to take them.
//
// 80 ms, not 20: a hold beep starts and stops abruptly, and the edge
// spreads power to nearby frequencies in proportion to 1/window; over 20
// ms a beep's edge puts up to 1.5e-4 at 1 kHz, over 80 ms 16 times less,
// well under toneAbsent.
const meterWorklet = `
class SwitchboardMeter extends AudioWorkletProcessor {
	constructor(options) {
		super();
		this.hz = options.processorOptions.hz;
		this.hop = Math.round(sampleRate / 50);
		this.n = 4 * this.hop;
		this.buf = new Float32Array(this.n);
		this.i = 0;
		this.filled = 0;
		this.w = new Float32Array(this.n);
		let sum = 0;
		for (let i = 0; i < this.n; i++) sum += this.w[i] = 0.5 - 0.5 * Math.cos(2 * Math.PI * i / (this.n - 1));
		this.norm = sum * sum / 4;
	}
	process(inputs) {
		const ch = inputs[0] && inputs[0][0];
		for (let j = 0; j < 128; j++) {
			this.buf[this.i] = ch ? ch[j] : 0;
			this.i = (this.i + 1) % this.n;
			if (++this.filled % this.hop === 0 && this.filled >= this.n) {
				this.port.postMessage({ t: currentTime + (j + 1) / sampleRate, levels: this.hz.map((hz) => this.level(hz)) });
			}
		}
		return true;
	}
	level(hz) {
		const k = 2 * Math.cos(2 * Math.PI * hz / sampleRate);
		let s1 = 0, s2 = 0;
		for (let i = 0; i < this.n; i++) {
			const s0 = this.buf[(this.i + i) % this.n] * this.w[i] + k * s1 - s2;
			s2 = s1;
			s1 = s0;
		}
		return (s1 * s1 + s2 * s2 - k * s1 * s2) / this.norm;
	}
}
registerProcessor('switchboard-meter', SwitchboardMeter);
`

// startMeterJS connects the meter to the audio track the page's peer
// connection receives, through a WebAudio graph of its own; it resolves
// false while there is no track yet.
const startMeterJS = `(async () => {
	const p = window.__rtcProbe;
	if (p.ctx) return true;
	const pc = p.pcs[p.pcs.length - 1];
	const r = pc && pc.getReceivers().find((r) => r.track && r.track.kind === 'audio');
	if (!r) return false;
	const ctx = new AudioContext();
	p.ctx = ctx;
	p.log = [];
	await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([%s], { type: 'text/javascript' })));
	const meter = new AudioWorkletNode(ctx, 'switchboard-meter', { processorOptions: { hz: [%d, %d] } });
	meter.port.onmessage = (e) => p.log.push({ t: e.data.t, alice: e.data.levels[0], hold: e.data.levels[1] });
	ctx.createMediaStreamSource(new MediaStream([r.track])).connect(meter);
	const quiet = ctx.createGain();
	quiet.gain.value = 0;
	meter.connect(quiet).connect(ctx.destination);
	await ctx.resume();
	return ctx.state === 'running';
})()`

// statsJS sums up the page's peer connection from getStats.
const statsJS = `(async () => {
	const pc = window.__rtcProbe.pcs[0];
	const all = [...(await pc.getStats()).values()];
	const byId = (id) => all.find((s) => s.id === id) || {};
	const pair = all.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') || {};
	const local = byId(pair.localCandidateId), remote = byId(pair.remoteCandidateId);
	const inbound = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'audio') || {};
	const outbound = all.find((s) => s.type === 'outbound-rtp' && s.kind === 'audio') || {};
	return {
		local: local.candidateType + ' ' + local.address + ':' + local.port,
		remote: remote.candidateType + ' ' + remote.address + ':' + remote.port,
		codec: byId(inbound.codecId).mimeType || '',
		sent: outbound.packetsSent || 0,
		received: inbound.packetsReceived || 0,
		lost: inbound.packetsLost || 0,
		offerCandidates: (pc.localDescription.sdp.match(/^a=candidate:.*$/gm) || []).map((c) => c.split(' ').slice(4, 8).join(' ')).join(', '),
		jitterBufferMs: inbound.jitterBufferEmittedCount ? Math.round(1000 * inbound.jitterBufferDelay / inbound.jitterBufferEmittedCount) : 0,
	};
})()`

type rtcStats struct {
	Local          string `json:"local"` // the candidate pair in use
	Remote         string `json:"remote"`
	Codec          string `json:"codec"` // what the page receives
	Sent           int    `json:"sent"`  // packets
	Received       int    `json:"received"`
	Lost           int    `json:"lost"`
	JitterBufferMs int    `json:"jitterBufferMs"`
	// OfferCandidates are the page's: address, port, "typ", type.
	OfferCandidates string `json:"offerCandidates"`
}

// pageFrame is what the page received in the 80 ms up to T, measured
// every 20 ms.
type pageFrame struct {
	T     float64 `json:"t"` // s, on the page's audio clock
	Alice float64 `json:"alice"`
	Hold  float64 `json:"hold"`
}

// pageMeter collects the page's meter frames.
type pageMeter struct {
	tab *tab
	log []pageFrame
}

func startPageMeter(tb *tab) *pageMeter {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitLimit)
	defer cancel()
	js := fmt.Sprintf(startMeterJS, jsString(meterWorklet), aliceHz, audio.HoldToneHz)
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
	if err != nil || !ok {
		tb.t.Fatalf("start the page's meter: %v, %v\n%s", ok, err, tb.dump())
	}
	return &pageMeter{tab: tb}
}

// clock is the page's audio clock now: every frame with a later time was
// heard after this call.
func (m *pageMeter) clock() float64 {
	return evalJS[float64](m.tab, `window.__rtcProbe.ctx.currentTime`)
}

// frames takes the frames the page measured since the last call and
// answers them all.
func (m *pageMeter) frames() []pageFrame {
	m.log = append(m.log, evalJS[[]pageFrame](m.tab, `window.__rtcProbe.log.splice(0)`)...)
	return m.log
}

// waitFrames waits until the page has measured n frames in all.
func (m *pageMeter) waitFrames(n int) {
	m.tab.t.Helper()
	waitFor(m.tab.t, fmt.Sprintf("%d frames measured in the page", n), func() bool { return len(m.frames()) >= n })
}

// waitFor waits until a frame the page measured meets cond.
func (m *pageMeter) waitFor(what string, cond func(pageFrame) bool) {
	m.tab.t.Helper()
	seen := 0
	waitFor(m.tab.t, what, func() bool {
		all := m.frames()
		for _, f := range all[seen:] {
			if cond(f) {
				return true
			}
		}
		seen = len(all)
		return false
	})
}
