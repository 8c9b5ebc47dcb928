package browsertest

// The snippets here are shared by the browser tests of this package and
// by the end-to-end tests that drive a browser elsewhere (a remote agent
// in cmd/switchboard).

// RTCProbe runs in the page before the page's own scripts: it keeps every
// RTCPeerConnection the page makes in window.__rtcProbe.pcs, so that the
// test can listen to what the page receives. The page itself is unchanged.
const RTCProbe = `(() => {
	if (window.__rtcProbe || !window.RTCPeerConnection) return;
	const probe = window.__rtcProbe = { pcs: [] };
	const Native = window.RTCPeerConnection;
	window.RTCPeerConnection = class extends Native {
		constructor(...args) {
			super(...args);
			probe.pcs.push(this);
		}
	};
})()`

// ReceivedLevelJS measures, for ms milliseconds, the loudest level (RMS
// over ~43 ms, full scale 1) of the audio the page's newest peer connection
// receives, through a WebAudio graph of the test's own (RTCProbe keeps the
// connections); -1 when it receives no track.
const ReceivedLevelJS = `(async (ms) => {
	const p = window.__rtcProbe;
	const pc = p.pcs[p.pcs.length - 1];
	const r = pc && pc.getReceivers().find((r) => r.track && r.track.kind === 'audio');
	if (!r) return -1;
	const ctx = p.levelCtx || (p.levelCtx = new AudioContext());
	await ctx.resume();
	const src = ctx.createMediaStreamSource(new MediaStream([r.track]));
	const an = ctx.createAnalyser();
	an.fftSize = 2048;
	src.connect(an);
	const buf = new Float32Array(an.fftSize);
	let peak = 0;
	for (const end = performance.now() + ms; performance.now() < end;) {
		an.getFloatTimeDomainData(buf);
		let s = 0;
		for (const v of buf) s += v * v;
		peak = Math.max(peak, Math.sqrt(s / buf.length));
		await new Promise((res) => setTimeout(res, 40));
	}
	src.disconnect();
	return peak;
})(%d)`
