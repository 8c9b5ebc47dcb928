// The console's own sounds and measurements: one shared AudioContext (for
// the ringtone and the level meters), unlocked by the first click or key
// press where the browser's autoplay policy wants one, and a level meter
// on any MediaStream.

let ctx = null;

// audioContext answers the page's AudioContext, made on first use; null
// when the browser has no WebAudio.
export function audioContext() {
  if (ctx) return ctx;
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return null;
  ctx = new AC();
  if (ctx.state !== 'running') ctx.resume().catch(() => {});
  return ctx;
}

// unlockOnGesture resumes the AudioContext at the user's first click or
// key press: a browser may keep it suspended until then.
export function unlockOnGesture() {
  const unlock = () => {
    const c = audioContext();
    if (c && c.state !== 'running') c.resume().catch(() => {});
  };
  document.addEventListener('pointerdown', unlock, { capture: true });
  document.addEventListener('keydown', unlock, { capture: true });
}

// LevelMeter measures a stream's level: level() is the RMS of the last
// ~43 ms (1 is full scale). It plays nothing: an AnalyserNode is pulled by
// the audio graph without an output.
export class LevelMeter {
  constructor(stream) {
    this.ctx = audioContext();
    this.source = null;
    this.analyser = null;
    if (!this.ctx || !stream || !stream.getAudioTracks().length) return;
    this.source = this.ctx.createMediaStreamSource(stream);
    this.analyser = this.ctx.createAnalyser();
    this.analyser.fftSize = 2048;
    this.buf = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  level() {
    if (!this.analyser) return 0;
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    return Math.sqrt(sum / this.buf.length);
  }

  close() {
    if (this.source) this.source.disconnect();
    this.source = null;
    this.analyser = null;
  }
}

// dB is a level in decibels relative to full scale, for people.
export function dB(level) {
  return level > 0 ? Math.round(20 * Math.log10(level)) : -Infinity;
}
