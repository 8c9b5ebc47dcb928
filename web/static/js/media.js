// Audio through the browser: one WebRTC connection to the switchboard
// (POST /api/media/webrtc {"sdp": offer} -> {"sdp": answer}, no trickle:
// ICE candidates are gathered before the offer is posted, with the relay
// servers of GET /api/media/ice-servers), with a choice of microphone and
// speaker. The console's connection heals itself: it attaches again, with
// backoff, when it fails, stays interrupted, or the switchboard may have
// lost it. The alternative is the switchboard host's own audio device
// (serve --device), which needs nothing from the browser.

import { get, post, describe, ApiError } from './api.js';
import { LevelMeter, dB } from './sound.js';

const ICE_GATHER_LIMIT_MS = 5000;

// Statuses of BrowserAudio:
//   off          not attached (the user has not asked for browser audio)
//   connecting   the first attach is under way
//   connected    audio flows both ways
//   reconnecting it was wanted and is down: an attach is under way or
//                one is due (healing BrowserAudio only)
//   failed       down, and trying again by itself would not help (the
//                microphone was refused, the server has no media plane)
//   unavailable  the page may not use a microphone at all (not a secure
//                context): detail says how to fix it
export class BrowserAudio {
  // opts.heal: re-attach by itself, with backoff, when the connection fails
  // or stays interrupted, and when kick() says the server may have lost it.
  constructor(onChange, opts) {
    this.onChange = onChange || (() => {});
    this.heal = !!(opts && opts.heal);
    this.pc = null;
    this.stream = null;
    this.audio = new Audio();
    this.audio.autoplay = true;
    this.remoteStream = null;
    this.micId = '';
    this.speakerId = '';
    this.wanted = false;
    this.gen = 0; // grows with every attach and disconnect: late answers of older ones are dropped
    this.attempt = 0;
    this.attaches = 0; // successful attaches since the page loaded
    this.playBlocked = false; // the browser will not play sound before a click
    this.timer = null; // the next retry
    this.downTimer = null; // how long an interruption may last
    const why = insecureReason();
    this.status = why ? 'unavailable' : 'off';
    this.detail = why;
  }

  set(status, detail) {
    this.status = status;
    this.detail = detail || '';
    this.onChange(this);
  }

  get available() {
    return this.status !== 'unavailable';
  }

  // connect attaches browser audio at the user's request; it answers
  // whether the offer was answered.
  async connect() {
    if (!this.available) {
      this.onChange(this);
      return false;
    }
    this.wanted = true;
    this.attempt = 0;
    return this.attach();
  }

  // kick re-attaches at once when audio is wanted: the event connection
  // came back, so the server may have restarted and lost this leg while
  // the browser's side still looks connected.
  kick(why) {
    if (!this.heal || !this.wanted) return;
    this.attempt = 0;
    this.attach(why);
  }

  async attach(why) {
    this.clearTimers();
    const g = ++this.gen;
    const first = this.attaches === 0 && this.status !== 'reconnecting';
    const phase = (what) => this.set(first ? 'connecting' : 'reconnecting', why ? `${why}; ${what}` : what);
    if (this.pc) this.pc.close();
    this.pc = null;
    if (!micLive(this.stream)) {
      phase('asking for the microphone…');
      if (this.stream) for (const t of this.stream.getTracks()) t.stop();
      this.stream = null;
      try {
        const s = await navigator.mediaDevices.getUserMedia({
          audio: this.micId ? { deviceId: { exact: this.micId } } : true,
          video: false,
        });
        if (g !== this.gen) {
          for (const t of s.getTracks()) t.stop();
          return false;
        }
        this.stream = s;
      } catch (e) {
        if (g !== this.gen) return false;
        const blocked = e.name === 'NotAllowedError' || e.name === 'SecurityError' || e.name === 'NotFoundError';
        const msg = `the microphone could not be opened: ${e.name}${e.message ? ': ' + e.message : ''}`;
        if (blocked || !this.heal) this.set('failed', msg);
        else this.retry(msg);
        return false;
      }
    }
    let pc;
    try {
      phase('asking for relay servers…');
      const iceServers = await fetchIceServers();
      if (g !== this.gen) return false;
      try {
        pc = new RTCPeerConnection({ iceServers });
      } catch {
        pc = new RTCPeerConnection(); // servers the browser refuses: host candidates still work on a LAN
      }
      this.pc = pc;
      for (const track of this.stream.getAudioTracks()) pc.addTrack(track, this.stream);
      pc.ontrack = (e) => {
        if (this.pc !== pc) return;
        this.remoteStream = e.streams[0] || new MediaStream([e.track]);
        this.audio.srcObject = this.remoteStream;
        this.play();
        this.onChange(this);
      };
      pc.onconnectionstatechange = () => this.pcState(pc);
      phase('gathering network candidates…');
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (g !== this.gen) return false;
      phase('sending the offer to the switchboard…');
      const answer = await post('/api/media/webrtc', { sdp: pc.localDescription.sdp });
      if (g !== this.gen) return false;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      if (pc.connectionState === 'connected') this.pcState(pc);
      else {
        phase('connecting audio…');
        if (this.heal) this.downTimer = setTimeout(() => this.retry('the audio connection did not come up'), CONNECT_LIMIT_MS);
      }
      return true;
    } catch (e) {
      if (g !== this.gen) return false;
      if (pc) pc.close();
      if (this.pc === pc) this.pc = null;
      const msg = describe(e);
      if (!this.heal || !retryable(e)) this.set('failed', msg);
      else this.retry(msg);
      return false;
    }
  }

  // play starts the speaker. A browser may refuse to play sound until the
  // user has clicked in the page (a reload re-attached the audio by
  // itself): then playBlocked is set and the next click plays.
  play() {
    const p = this.audio.play();
    if (!p || !p.catch) return;
    p.then(() => {
      if (this.playBlocked) {
        this.playBlocked = false;
        this.onChange(this);
      }
    }).catch((e) => {
      if (e.name !== 'NotAllowedError' || !this.audio.srcObject) return;
      this.playBlocked = true;
      this.onChange(this);
      const again = () => {
        document.removeEventListener('pointerdown', again, true);
        document.removeEventListener('keydown', again, true);
        if (this.audio.srcObject) this.play();
      };
      document.addEventListener('pointerdown', again, true);
      document.addEventListener('keydown', again, true);
    });
  }

  pcState(pc) {
    if (this.pc !== pc) return;
    const s = pc.connectionState;
    if (s === 'connected') {
      clearTimeout(this.downTimer);
      this.attempt = 0;
      this.attaches++;
      if (this.status !== 'connected') this.set('connected', '');
    } else if (s === 'failed') {
      if (this.heal) this.retry('the audio connection failed (ICE or DTLS)');
      else this.set('failed', 'the audio connection failed (ICE or DTLS)');
    } else if (s === 'disconnected') {
      this.set(this.heal ? 'reconnecting' : 'connecting', 'the audio connection was interrupted; waiting for it to come back');
      if (this.heal) {
        clearTimeout(this.downTimer);
        this.downTimer = setTimeout(() => {
          if (this.pc === pc && pc.connectionState !== 'connected') this.retry('the audio connection stayed interrupted');
        }, DISCONNECTED_LIMIT_MS);
      }
    }
  }

  // retry attaches again after a backoff with jitter.
  retry(why) {
    if (!this.wanted) return;
    this.clearTimers();
    this.attempt++;
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.attempt - 1)) * (0.75 + Math.random() / 2);
    this.set('reconnecting', `${why}; trying again in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.timer = setTimeout(() => this.attach(why), delay);
  }

  clearTimers() {
    clearTimeout(this.timer);
    clearTimeout(this.downTimer);
    this.timer = null;
    this.downTimer = null;
  }

  disconnect(quiet) {
    this.wanted = false;
    this.gen++;
    this.clearTimers();
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    this.remoteStream = null;
    this.audio.srcObject = null;
    this.playBlocked = false;
    this.attaches = 0;
    if (!quiet && this.available) this.set('off', '');
  }

  async setMic(id) {
    this.micId = id;
    if (!this.pc || !this.stream) return;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: id ? { deviceId: { exact: id } } : true });
      const track = s.getAudioTracks()[0];
      const sender = this.pc.getSenders().find((x) => x.track && x.track.kind === 'audio');
      if (sender) await sender.replaceTrack(track);
      for (const t of this.stream.getTracks()) t.stop();
      this.stream = s;
      this.onChange(this);
    } catch (e) {
      this.set(this.status, `switching the microphone failed: ${e.name}`);
    }
  }

  async setSpeaker(id) {
    this.speakerId = id;
    if (typeof this.audio.setSinkId !== 'function') return;
    try {
      await this.audio.setSinkId(id);
    } catch (e) {
      this.set(this.status, `switching the speaker failed: ${e.name}`);
    }
  }
}

const CONNECT_LIMIT_MS = 15000; // an answered offer that does not connect by then is tried again
const DISCONNECTED_LIMIT_MS = 3000; // an interruption longer than this is a lost leg
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 15000;

// insecureReason says why this page may not use a microphone, with the
// fix; '' when it may.
export function insecureReason() {
  if (window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) return '';
  const port = location.port ? ':' + location.port : '';
  if (!window.isSecureContext) {
    return `This page was opened at ${location.origin}, which is not a secure address, so the browser gives it no microphone. ` +
      `Open the console over https:// (see "Remote agents" in the README), or on the switchboard's own machine at http://localhost${port}/.`;
  }
  return 'This browser gives the page no microphone (navigator.mediaDevices is missing). Use a current Chrome, Edge, Firefox or Safari.';
}

function micLive(stream) {
  return !!stream && stream.getAudioTracks().some((t) => t.readyState === 'live');
}

// retryable says whether trying the same attach again later may work: the
// network or the server, not the request.
function retryable(e) {
  if (!(e instanceof ApiError)) return true; // a network error, or the browser's own
  return e.status === 0 || e.status === 429 || e.status === 500 || e.status >= 502;
}

// fetchIceServers answers the RTCPeerConnection's iceServers from GET
// /api/media/ice-servers; none when the server does not serve them (404,
// 501) or cannot be asked.
export async function fetchIceServers() {
  try {
    const r = await get('/api/media/ice-servers');
    return (r && Array.isArray(r.iceServers)) ? r.iceServers : [];
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    return [];
  }
}

// gathered resolves when ICE gathering is complete, or after a limit (the
// candidates found by then are in the offer).
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, ICE_GATHER_LIMIT_MS);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// listDevices answers the audio inputs and outputs (names appear once the
// page may use the microphone).
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return { inputs: [], outputs: [] };
  const all = await navigator.mediaDevices.enumerateDevices();
  return {
    inputs: all.filter((d) => d.kind === 'audioinput'),
    outputs: all.filter((d) => d.kind === 'audiooutput'),
  };
}

// AudioPanel is the console's audio settings: browser or host device,
// microphone, speaker, connect, the microphone's level, a test call to the
// echo bot, and whatever settings the console adds below (extra).
export class AudioPanel {
  // onChange is told whenever the audio's status changes (the status pill).
  constructor(onChange, extra) {
    this.onChange = onChange || (() => {});
    this.audio = new BrowserAudio(() => this.changed(), { heal: true });
    this.mode = 'browser';
    this.busy = ''; // why a test call cannot be made now ('' when it can)
    this.testing = false;
    this.micMeter = null;
    this.micStream = null;
    this.meterFrame = 0;
    const el = document.createElement('section');
    el.className = 'panel audio-panel';
    el.setAttribute('aria-labelledby', 'audio-h');
    el.innerHTML = `
      <h2 id="audio-h">Audio</h2>
      <p id="audio-insecure" class="error insecure" role="note" hidden></p>
      <fieldset>
        <legend>Your audio goes through</legend>
        <label class="check"><input type="radio" name="audio-mode" value="browser" checked> this browser (WebRTC)</label>
        <label class="check"><input type="radio" name="audio-mode" value="host"> a device on the switchboard host</label>
      </fieldset>
      <div class="browser-audio">
        <label for="mic-select">Microphone</label>
        <select id="mic-select"><option value="">Default microphone</option></select>
        <label for="mic-level">Microphone level</label>
        <meter id="mic-level" min="0" max="1" low="0.02" high="0.5" optimum="0.2" value="0"></meter>
        <label for="speaker-select">Speaker</label>
        <select id="speaker-select"><option value="">Default speaker</option></select>
        <p class="hint speaker-hint" hidden>This browser cannot choose a speaker; it plays through its default output.</p>
        <div class="audio-buttons">
          <button type="button" class="primary-btn" id="audio-connect">Connect browser audio</button>
          <button type="button" id="audio-test" aria-describedby="audio-test-why">Test my audio</button>
        </div>
        <p id="audio-test-why" class="reason" hidden></p>
        <p id="audio-test-result" role="status" class="audio-test-result"></p>
      </div>
      <p class="hint host-audio" hidden>Audio goes to the device the switchboard binds to you with
        <code>switchboard serve --device &lt;you&gt;=default</code>. Nothing to set up here.</p>
      <p id="audio-status" role="status" class="audio-status">Browser audio is off.</p>`;
    if (extra) el.append(extra);
    this.element = el;
    this.statusEl = el.querySelector('#audio-status');
    this.button = el.querySelector('#audio-connect');
    this.testBtn = el.querySelector('#audio-test');
    this.testWhy = el.querySelector('#audio-test-why');
    this.testResult = el.querySelector('#audio-test-result');
    this.meterEl = el.querySelector('#mic-level');
    this.mic = el.querySelector('#mic-select');
    this.speaker = el.querySelector('#speaker-select');
    if (typeof this.audio.audio.setSinkId !== 'function') {
      this.speaker.disabled = true;
      el.querySelector('.speaker-hint').hidden = false;
    }
    el.addEventListener('change', (e) => {
      if (e.target.name === 'audio-mode') {
        this.setMode(e.target.value);
      } else if (e.target === this.mic) {
        this.audio.setMic(this.mic.value);
      } else if (e.target === this.speaker) {
        this.audio.setSpeaker(this.speaker.value);
      }
    });
    this.button.addEventListener('click', async () => {
      if (this.audio.wanted) {
        this.disconnect();
        return;
      }
      await this.connect();
    });
    this.testBtn.addEventListener('click', () => this.test());
    this.fillDevices();
    if (localStorage.getItem(MODE_KEY) === 'host') {
      el.querySelector('input[name="audio-mode"][value="host"]').checked = true;
      this.setMode('host');
    }
    this.draw();
  }

  // setMode chooses where the agent's audio goes: 'browser' or 'host' (a
  // device on the switchboard's machine), remembered in this browser.
  setMode(mode) {
    this.mode = mode;
    localStorage.setItem(MODE_KEY, mode);
    const host = mode === 'host';
    this.element.querySelector('.browser-audio').hidden = host;
    this.element.querySelector('.host-audio').hidden = !host;
    if (host) this.disconnect();
    this.changed();
  }

  // resume attaches browser audio again when this tab had it before a
  // reload.
  resume() {
    if (this.mode === 'browser' && sessionStorage.getItem(WANT_KEY) === '1' && !this.audio.wanted) this.connect();
  }

  async connect() {
    sessionStorage.setItem(WANT_KEY, '1');
    const ok = await this.audio.connect();
    this.fillDevices();
    return ok;
  }

  disconnect() {
    sessionStorage.removeItem(WANT_KEY);
    this.audio.disconnect();
  }

  // pill is what the status pill says about audio: '' when it is up.
  pill() {
    if (this.mode === 'host') return '';
    switch (this.audio.status) {
      case 'connected': return this.audio.playBlocked ? 'Audio silent — click the page to hear it' : '';
      case 'off': return 'Audio: not attached';
      case 'connecting': return 'Audio connecting…';
      case 'reconnecting': return 'Audio down — reconnecting';
      case 'unavailable': return 'Audio unavailable — page not secure';
      default: return 'Audio down — see the Audio panel';
    }
  }

  // setBusy says why a test call cannot be made now ('' when it can).
  setBusy(why) {
    if (why === this.busy) return;
    this.busy = why;
    this.draw();
  }

  changed() {
    this.draw();
    this.watchMic();
    this.onChange(this);
  }

  // watchMic keeps the level meter on the microphone the connection sends.
  watchMic() {
    const s = this.audio.stream;
    if (s === this.micStream) return;
    if (this.micMeter) this.micMeter.close();
    this.micStream = s;
    this.micMeter = s ? new LevelMeter(s) : null;
    if (this.micMeter && !this.meterFrame) this.meterFrame = requestAnimationFrame(() => this.drawMeter());
    if (!this.micMeter) {
      this.meterEl.value = 0;
      this.meterEl.dataset.level = '0';
    }
  }

  drawMeter() {
    this.meterFrame = 0;
    if (!this.micMeter) return;
    // A square root spreads speech over the bar as the ear hears it.
    const v = Math.min(1, Math.sqrt(this.micMeter.level()));
    if (Math.abs(v - this.meterEl.value) > 0.01) {
      this.meterEl.value = v;
      this.meterEl.dataset.level = v.toFixed(2);
    }
    this.meterFrame = requestAnimationFrame(() => this.drawMeter());
  }

  // test calls the echo bot, listens for what comes back, hangs up and
  // says whether audio made the round trip.
  async test() {
    if (this.testing || this.busy) return;
    this.testing = true;
    this.result('running', 'Testing: connecting your audio…');
    this.draw();
    let callId = '';
    try {
      if (this.audio.status !== 'connected') {
        if (!this.audio.wanted) await this.connect();
        if (!(await this.until(() => this.audio.status === 'connected', TEST_CONNECT_MS))) {
          this.result('error', `Your audio could not be connected: ${this.audio.detail || this.audio.status}.`);
          return;
        }
      }
      this.result('running', 'Testing: calling the echo bot (8:echo123); speak, and it plays you back…');
      const call = await post('/api/calls', { participants: [{ id: ECHO_BOT }] });
      callId = call.id;
      const remote = new LevelMeter(this.audio.remoteStream);
      let mic = 0, back = 0;
      const heard = await this.until(() => {
        mic = Math.max(mic, this.micMeter ? this.micMeter.level() : 0);
        back = Math.max(back, remote.level());
        return back >= HEARD_LEVEL;
      }, TEST_LISTEN_MS);
      remote.close();
      if (heard) {
        this.result('ok', `Audio came back: the echo bot played your microphone back at ${dB(back)} dB. Your microphone, the connection and the switchboard carry sound both ways.`);
      } else if (mic < HEARD_LEVEL) {
        this.result('silent', `Your microphone picked up no sound (loudest ${fmtDB(mic)}), so nothing came back. Check the microphone chosen above, and that it is not muted.`);
      } else {
        this.result('no-echo', `Your microphone works (loudest ${fmtDB(mic)}), but no audio came back within ${TEST_LISTEN_MS / 1000} s: the connection to the switchboard carries no sound (a firewall blocking UDP? see "Remote agents" in the README).`);
      }
    } catch (e) {
      this.result('error', `The audio test failed: ${describe(e)}`);
    } finally {
      if (callId) post(`/api/calls/${encodeURIComponent(callId)}/hangup`, { forEveryone: false }).catch(() => {});
      this.testing = false;
      this.draw();
    }
  }

  result(state, text) {
    this.testResult.dataset.result = state;
    this.testResult.textContent = text;
    this.testResult.className = 'audio-test-result' + (state === 'ok' ? ' ok' : state === 'running' ? '' : ' error');
  }

  // until polls cond every 50 ms for at most ms; it answers whether cond held.
  until(cond, ms) {
    return new Promise((resolve) => {
      const end = performance.now() + ms;
      const tick = () => {
        if (cond()) return resolve(true);
        if (performance.now() > end) return resolve(false);
        setTimeout(tick, 50);
      };
      tick();
    });
  }

  async fillDevices() {
    let d;
    try {
      d = await listDevices();
    } catch {
      return;
    }
    fill(this.mic, d.inputs, 'Default microphone', this.audio.micId);
    fill(this.speaker, d.outputs, 'Default speaker', this.audio.speakerId);
  }

  draw() {
    const a = this.audio;
    const words = {
      off: 'Browser audio is off.',
      connecting: `Connecting browser audio: ${a.detail}`,
      connected: a.playBlocked ? 'Browser audio is connected, but the browser plays no sound until you click in the page.' : 'Browser audio is connected.',
      reconnecting: `Browser audio is down and reconnecting by itself: ${a.detail}`,
      failed: `Browser audio is not connected: ${a.detail}`,
      unavailable: 'Browser audio is not available on this page.',
    };
    this.statusEl.textContent = words[a.status];
    const bad = a.status === 'failed' || a.status === 'unavailable';
    this.statusEl.className = 'audio-status' + (bad ? ' error' : '');
    this.statusEl.setAttribute('role', a.status === 'failed' ? 'alert' : 'status');
    const insecure = this.element.querySelector('#audio-insecure');
    insecure.hidden = a.available;
    insecure.textContent = a.available ? '' : a.detail;
    this.button.textContent = a.wanted ? 'Disconnect browser audio' : 'Connect browser audio';
    this.button.disabled = !a.available;
    const why = !a.available ? 'Browser audio is not available on this page.'
      : this.testing ? '' : this.busy;
    this.testBtn.disabled = !a.available || this.testing || !!this.busy;
    this.testBtn.textContent = this.testing ? 'Testing my audio…' : 'Test my audio';
    this.testWhy.hidden = !why;
    this.testWhy.textContent = why;
    this.mic.disabled = !a.available;
  }
}

const WANT_KEY = 'switchboard.browserAudio'; // sessionStorage: this tab had browser audio
const MODE_KEY = 'switchboard.audioMode'; // localStorage: 'browser' or 'host'
const ECHO_BOT = '8:echo123';
const TEST_CONNECT_MS = 15000;
const TEST_LISTEN_MS = 8000;
const HEARD_LEVEL = 0.005; // RMS, about -46 dBFS: more than a quiet line's noise

function fmtDB(level) {
  const d = dB(level);
  return d === -Infinity ? 'silence' : `${d} dB`;
}

function fill(select, devices, fallback, current) {
  select.innerHTML = '';
  select.append(new Option(fallback, ''));
  devices.forEach((d, i) => {
    if (d.deviceId === 'default' || !d.deviceId) return;
    select.append(new Option(d.label || `${fallback.split(' ')[1]} ${i + 1}`, d.deviceId, false, d.deviceId === current));
  });
}
