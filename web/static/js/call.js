// The customer's "call us" page: a caller token calls one agent or identity
// (?to=8:acs:alice, or the default in call-config.json) from the browser,
// with its audio through WebRTC.

import { session, takeURLParams, get, post, esc, describe, whenUnauthorized } from './api.js';
import { EventStream } from './events.js';
import { BrowserAudio } from './media.js';
import { parseIdentifier, shortRaw, endReasonText, since, callStateText } from './format.js';

const $ = (sel) => document.querySelector(sel);

class CallPage {
  constructor() {
    this.me = null;
    this.to = null; // {identifier, rawId, name}
    this.callId = '';
    this.call = null;
    this.stream = null;
    this.audio = new BrowserAudio((a) => this.audioChanged(a));
  }

  async start() {
    const params = new URL(location.href).searchParams;
    takeURLParams();
    whenUnauthorized(() => {
      if (this.me) this.expired();
    });
    let to = params.get('to') || '';
    let name = params.get('name') || '';
    if (!to) {
      try {
        const cfg = await fetch('call-config.json').then((r) => (r.ok ? r.json() : {}));
        to = cfg.to || '';
        name = name || cfg.name || '';
      } catch {
        to = '';
      }
    }
    if (!to) return this.fail('This page does not know whom to call: open it with ?to=, for example call.html?to=8:acs:alice.');
    try {
      const id = parseIdentifier(to);
      this.to = { ...id, name: name || shortRaw(id.rawId) };
    } catch (e) {
      return this.fail(`"${to}" is not someone this page can call: ${e.message}.`);
    }
    $('#callee-name').textContent = this.to.name;
    $('#callee-raw').textContent = this.to.rawId;
    $('#signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      session.set(String(new FormData(e.target).get('token')));
      this.signIn();
    });
    $('#call-btn').addEventListener('click', () => this.place(true));
    $('#call-no-audio').addEventListener('click', () => this.place(false));
    $('#hangup-btn').addEventListener('click', () => this.request('Hang up', () => post(`/api/calls/${esc(this.callId)}/hangup`, { forEveryone: false })));
    $('#mute-btn').addEventListener('click', () => {
      const muted = this.call && this.call.isMuted;
      this.request(muted ? 'Unmute' : 'Mute', () => post(`/api/calls/${esc(this.callId)}/${muted ? 'unmute' : 'mute'}`));
    });
    setInterval(() => this.drawTimer(), 1000);
    if (!session.token) return this.showSignIn();
    this.signIn();
  }

  showSignIn(message) {
    $('#signin').hidden = false;
    $('#caller').hidden = true;
    $('#call-error').textContent = message || '';
    $('#token').focus();
  }

  async signIn() {
    try {
      this.me = await get('/api/me');
    } catch (e) {
      session.clear();
      return this.showSignIn(`Signing in failed: ${describe(e)}`);
    }
    $('#signin').hidden = true;
    $('#caller').hidden = false;
    $('#call-error').textContent = '';
    document.body.dataset.conn = 'connecting';
    this.stream = new EventStream(session.token, {
      self: () => this.me && this.me.rawId,
      onEvent: (ev) => this.onEvent(ev),
      onStatus: (s, detail) => {
        document.body.dataset.conn = s;
        $('#conn').textContent = s === 'open' ? 'Online' : s === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
        if (s === 'reconnecting') $('#call-error').textContent = `The connection dropped: ${detail}`;
        else if (s === 'open' && $('#call-error').textContent.startsWith('The connection dropped')) $('#call-error').textContent = '';
      },
      onExpired: () => this.expired(),
    });
    this.stream.start();
  }

  expired() {
    this.me = null;
    if (this.stream) this.stream.stop();
    this.audio.disconnect();
    session.clear();
    document.body.dataset.conn = 'expired';
    $('#conn').textContent = 'Signed out';
    this.showSignIn('Your session has ended: the token expired or was revoked. Sign in with a new token.');
  }

  fail(text) {
    $('#call-error').textContent = text;
  }

  async request(label, fn) {
    try {
      return await fn();
    } catch (e) {
      this.fail(`${label} failed: ${describe(e)}`);
      return null;
    }
  }

  // place connects the browser's audio (when asked) and calls.
  async place(withAudio) {
    this.fail('');
    $('#call-btn').disabled = true;
    $('#call-no-audio').hidden = true;
    if (withAudio && $('#use-audio').checked) {
      $('#call-status').textContent = 'Connecting your audio…';
      if (!(await this.audio.connect())) {
        this.fail(`Your audio could not be connected: ${this.audio.detail}`);
        $('#call-status').textContent = 'Not calling yet.';
        $('#call-btn').disabled = false;
        $('#call-no-audio').hidden = false;
        return;
      }
    }
    $('#call-status').textContent = 'Calling…';
    const call = await this.request('Calling', () => post('/api/calls', { participants: [this.to.identifier] }));
    if (!call) {
      $('#call-status').textContent = 'Not calling.';
      $('#call-btn').disabled = false;
      this.audio.disconnect();
      return;
    }
    this.callId = call.id;
    if (!this.call || this.call.id !== call.id) this.call = call;
    this.draw();
  }

  onEvent(ev) {
    const d = ev.data || {};
    if (ev.type === 'snapshot') {
      if (this.callId) {
        const c = (d.calls || []).find((x) => x.id === this.callId);
        if (c) this.call = c;
      }
      this.draw();
      return;
    }
    if (!this.callId || ev.callId !== this.callId) return;
    const c = this.call || (this.call = { id: this.callId });
    switch (ev.type) {
      case 'callsUpdated':
        for (const a of d.added || []) if (a.id === this.callId) Object.assign(c, a);
        break;
      case 'stateChanged':
        c.state = d.state;
        if (d.state === 'Connected' && !c.connectedTime) c.connectedTime = ev.at;
        break;
      case 'isMutedChanged':
        if (!d.participant) c.isMuted = d.isMuted;
        break;
      case 'callEnded':
        c.state = 'Disconnected';
        c.callEndReason = d.callEndReason;
        c._recording = '';
        break;
      case 'recordingStateChanged': // {state}: the agent records the call
        c._recording = d.state === 'recording' || d.state === 'paused' ? d.state : '';
        break;
      default:
        return;
    }
    this.draw();
  }

  draw() {
    const c = this.call;
    if (!c) return;
    const ended = c.state === 'Disconnected';
    const words = {
      Connecting: `Calling ${this.to.name}…`,
      Ringing: `Ringing ${this.to.name}…`,
      Connected: `Connected with ${this.to.name}`,
      RemoteHold: 'You are on hold. Please stay on the line.',
      LocalHold: 'On hold',
    };
    $('#call-status').textContent = ended
      ? `The call ended: ${endReasonText(c.callEndReason)}`
      : words[c.state] || callStateText[c.state] || c.state;
    const rec = $('#call-recording');
    rec.hidden = !c._recording;
    rec.textContent = c._recording === 'paused' ? 'Recording paused' : 'This call is being recorded';
    $('#hangup-btn').hidden = ended;
    $('#mute-btn').hidden = ended;
    $('#mute-btn').textContent = c.isMuted ? 'Unmute' : 'Mute';
    $('#mute-btn').setAttribute('aria-pressed', c.isMuted ? 'true' : 'false');
    $('#call-btn').disabled = !ended;
    $('#call-btn').textContent = ended ? 'Call again' : 'Call';
    document.body.dataset.callState = c.state;
    if (ended) {
      this.callId = '';
      this.audio.disconnect();
    }
    this.drawTimer();
  }

  drawTimer() {
    const c = this.call;
    $('#call-timer').textContent = c && c.state === 'Connected' && c.connectedTime ? `Talking for ${since(c.connectedTime)}` : '';
  }

  audioChanged(a) {
    if (a.status === 'failed' && this.callId) this.fail(`Your audio: ${a.detail}`);
  }
}

new CallPage().start().catch((e) => {
  document.querySelector('#call-error').textContent = `The page failed to start: ${e.message}`;
});


