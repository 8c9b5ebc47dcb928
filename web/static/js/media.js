// Audio through the browser: one WebRTC connection to the switchboard
// (POST /api/media/webrtc {"sdp": offer} -> {"sdp": answer}, no trickle:
// ICE candidates are gathered before the offer is posted), with a choice
// of microphone and speaker. The alternative is the switchboard host's own
// audio device (serve --device), which needs nothing from the browser.

import { post, describe } from './api.js';

const ICE_GATHER_LIMIT_MS = 5000;

export class BrowserAudio {
  constructor(onChange) {
    this.onChange = onChange || (() => {});
    this.pc = null;
    this.stream = null;
    this.audio = new Audio();
    this.audio.autoplay = true;
    this.status = 'off'; // off, connecting, connected, failed
    this.detail = '';
    this.micId = '';
    this.speakerId = '';
  }

  set(status, detail) {
    this.status = status;
    this.detail = detail || '';
    this.onChange(this);
  }

  async connect() {
    this.disconnect(true);
    this.set('connecting', 'asking for the microphone…');
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: this.micId ? { deviceId: { exact: this.micId } } : true,
        video: false,
      });
    } catch (e) {
      this.set('failed', `the microphone could not be opened: ${e.name}${e.message ? ': ' + e.message : ''}`);
      return false;
    }
    const pc = new RTCPeerConnection();
    this.pc = pc;
    for (const track of this.stream.getAudioTracks()) pc.addTrack(track, this.stream);
    pc.ontrack = (e) => {
      this.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      if (pc.connectionState === 'connected') this.set('connected', '');
      else if (pc.connectionState === 'failed') this.set('failed', 'the audio connection failed (ICE or DTLS)');
      else if (pc.connectionState === 'disconnected') this.set('connecting', 'the audio connection was interrupted; waiting for it to come back');
    };
    try {
      this.set('connecting', 'gathering network candidates…');
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      this.set('connecting', 'sending the offer to the switchboard…');
      const answer = await post('/api/media/webrtc', { sdp: pc.localDescription.sdp });
      if (this.pc !== pc) return false;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      if (pc.connectionState !== 'connected') this.set('connecting', 'connecting audio…');
      return true;
    } catch (e) {
      this.disconnect(true);
      this.set('failed', describe(e));
      return false;
    }
  }

  disconnect(quiet) {
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    this.stream = null;
    this.audio.srcObject = null;
    if (!quiet) this.set('off', '');
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
// microphone, speaker, connect.
export class AudioPanel {
  constructor() {
    this.audio = new BrowserAudio(() => this.draw());
    const el = document.createElement('section');
    el.className = 'panel audio-panel';
    el.setAttribute('aria-labelledby', 'audio-h');
    el.innerHTML = `
      <h2 id="audio-h">Audio</h2>
      <fieldset>
        <legend>Your audio goes through</legend>
        <label class="check"><input type="radio" name="audio-mode" value="browser" checked> this browser (WebRTC)</label>
        <label class="check"><input type="radio" name="audio-mode" value="host"> a device on the switchboard host</label>
      </fieldset>
      <div class="browser-audio">
        <label for="mic-select">Microphone</label>
        <select id="mic-select"><option value="">Default microphone</option></select>
        <label for="speaker-select">Speaker</label>
        <select id="speaker-select"><option value="">Default speaker</option></select>
        <p class="hint speaker-hint" hidden>This browser cannot choose a speaker; it plays through its default output.</p>
        <button type="button" class="primary-btn" id="audio-connect">Connect browser audio</button>
      </div>
      <p class="hint host-audio" hidden>Audio goes to the device the switchboard binds to you with
        <code>switchboard serve --device &lt;you&gt;=default</code>. Nothing to set up here.</p>
      <p id="audio-status" role="status" class="audio-status">Browser audio is off.</p>`;
    this.element = el;
    this.statusEl = el.querySelector('#audio-status');
    this.button = el.querySelector('#audio-connect');
    this.mic = el.querySelector('#mic-select');
    this.speaker = el.querySelector('#speaker-select');
    if (typeof this.audio.audio.setSinkId !== 'function') {
      this.speaker.disabled = true;
      el.querySelector('.speaker-hint').hidden = false;
    }
    el.addEventListener('change', (e) => {
      if (e.target.name === 'audio-mode') {
        const host = e.target.value === 'host';
        el.querySelector('.browser-audio').hidden = host;
        el.querySelector('.host-audio').hidden = !host;
        if (host) this.audio.disconnect();
      } else if (e.target === this.mic) {
        this.audio.setMic(this.mic.value);
      } else if (e.target === this.speaker) {
        this.audio.setSpeaker(this.speaker.value);
      }
    });
    this.button.addEventListener('click', async () => {
      if (this.audio.status === 'connected' || this.audio.status === 'connecting') {
        this.audio.disconnect();
        return;
      }
      await this.audio.connect();
      this.fillDevices();
    });
    this.fillDevices();
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
      connected: 'Browser audio is connected.',
      failed: `Browser audio is not connected: ${a.detail}`,
    };
    this.statusEl.textContent = words[a.status];
    this.statusEl.className = 'audio-status' + (a.status === 'failed' ? ' error' : '');
    this.statusEl.setAttribute('role', a.status === 'failed' ? 'alert' : 'status');
    this.button.textContent = a.status === 'connected' || a.status === 'connecting' ? 'Disconnect browser audio' : 'Connect browser audio';
  }
}

function fill(select, devices, fallback, current) {
  select.innerHTML = '';
  select.append(new Option(fallback, ''));
  devices.forEach((d, i) => {
    if (d.deviceId === 'default' || !d.deviceId) return;
    select.append(new Option(d.label || `${fallback.split(' ')[1]} ${i + 1}`, d.deviceId, false, d.deviceId === current));
  });
}
