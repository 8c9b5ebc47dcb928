// Ringing outside the tab: while calls ring for the signed-in identity, a
// ringtone plays (generated with WebAudio: no file), each ringing call has
// a browser notification (when the user allowed them from the settings,
// never asked on load), and the tab's title says who is calling. All of it
// stops when the call is answered, declined or gone.
//
// For the browser tests, <body data-ringtone> is "playing" while the
// ringtone sounds, "blocked" while the browser keeps the page silent until
// a click, and absent otherwise.

import { audioContext } from './sound.js';

const NOTIFY_KEY = 'switchboard.notify';
const TONE_KEY = 'switchboard.ringtone';

// The North American ring: 440 Hz and 480 Hz together, 2 s on, 4 s off.
const RING_HZ = [440, 480];
const RING_ON_S = 2;
const RING_PERIOD_S = 6;
const RING_GAIN = 0.08;

export class Ringer {
  // onOpen(callId) brings a ringing call into view (a notification was
  // clicked).
  constructor(onOpen) {
    this.onOpen = onOpen;
    this.tone = null; // { gain, oscs, timer } while the ringtone plays
    this.notes = new Map(); // call id -> Notification
    this.ringing = [];
    this.settings = this.buildSettings();
  }

  get toneOn() {
    return localStorage.getItem(TONE_KEY) !== 'off';
  }

  get notifyOn() {
    return notificationsSupported() && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_KEY) === 'on';
  }

  // update is given the calls ringing now, oldest first, each as
  // { id, name } (name: the caller in words).
  update(ringing) {
    this.ringing = ringing;
    if (ringing.length && this.toneOn) this.startTone();
    else this.stopTone();
    const live = new Set(ringing.map((r) => r.id));
    for (const [id, n] of this.notes) {
      if (!live.has(id)) {
        n.close();
        this.notes.delete(id);
      }
    }
    if (this.notifyOn) for (const r of ringing) if (!this.notes.has(r.id)) this.notify(r);
  }

  // title is the tab's title while calls ring; '' when none does.
  title() {
    const n = this.ringing.length;
    if (!n) return '';
    return `(${n}) Ringing: ${this.ringing[0].name} — Switchboard`;
  }

  notify(r) {
    let n;
    try {
      n = new Notification(`Incoming call: ${r.name}`, {
        body: 'Click to answer it in the Switchboard console.',
        tag: 'switchboard-ringing-' + r.id,
        requireInteraction: true,
        silent: this.toneOn, // the console rings itself
      });
    } catch {
      return; // a browser that only shows notifications from a service worker
    }
    n.onclick = () => {
      window.focus();
      n.close();
      this.onOpen(r.id);
    };
    this.notes.set(r.id, n);
  }

  startTone() {
    if (this.tone) {
      this.markTone();
      return;
    }
    const ctx = audioContext();
    if (!ctx) return;
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    const oscs = RING_HZ.map((hz) => {
      const o = ctx.createOscillator();
      o.frequency.value = hz;
      o.connect(gain);
      o.start();
      return o;
    });
    const tone = { ctx, gain, oscs, until: 0, timer: 0 };
    // Schedule the cadence a few periods ahead, and top it up.
    const schedule = () => {
      const now = ctx.currentTime;
      if (tone.until < now) tone.until = now + 0.05;
      while (tone.until < now + 3 * RING_PERIOD_S) {
        const t = tone.until;
        gain.gain.setValueAtTime(0, t);
        gain.gain.linearRampToValueAtTime(RING_GAIN, t + 0.02);
        gain.gain.setValueAtTime(RING_GAIN, t + RING_ON_S - 0.02);
        gain.gain.linearRampToValueAtTime(0, t + RING_ON_S);
        tone.until += RING_PERIOD_S;
      }
      this.markTone();
    };
    schedule();
    tone.timer = setInterval(schedule, RING_PERIOD_S * 1000);
    ctx.onstatechange = () => this.markTone();
    this.tone = tone;
  }

  markTone() {
    if (!this.tone) delete document.body.dataset.ringtone;
    else document.body.dataset.ringtone = this.tone.ctx.state === 'running' ? 'playing' : 'blocked';
    const hint = this.settings.querySelector('#ringtone-blocked');
    hint.hidden = !this.tone || this.tone.ctx.state === 'running';
  }

  stopTone() {
    const tone = this.tone;
    if (!tone) return;
    this.tone = null;
    clearInterval(tone.timer);
    for (const o of tone.oscs) o.stop();
    tone.gain.disconnect();
    this.markTone();
  }

  // stop silences everything (sign-out).
  stop() {
    this.update([]);
  }

  // buildSettings is the "Incoming calls" settings: the ringtone on or off,
  // and notifications (the only place that asks for their permission).
  buildSettings() {
    const el = document.createElement('fieldset');
    el.className = 'ring-settings';
    el.innerHTML = `
      <legend>Incoming calls</legend>
      <label class="check"><input type="checkbox" id="ringtone-on"> Play a ringtone</label>
      <p id="ringtone-blocked" class="reason" hidden>The browser keeps this page silent until you click in it once.</p>
      <button type="button" id="notify-btn">Notify me outside this tab</button>
      <p id="notify-status" class="hint" role="status"></p>`;
    const box = el.querySelector('#ringtone-on');
    box.checked = this.toneOn;
    box.addEventListener('change', () => {
      localStorage.setItem(TONE_KEY, box.checked ? 'on' : 'off');
      this.update(this.ringing);
    });
    el.querySelector('#notify-btn').addEventListener('click', () => this.toggleNotify());
    this.drawNotify(el);
    return el;
  }

  async toggleNotify() {
    if (!notificationsSupported()) return;
    if (this.notifyOn) {
      localStorage.setItem(NOTIFY_KEY, 'off');
    } else {
      let p = Notification.permission;
      if (p === 'default') {
        try {
          p = await Notification.requestPermission();
        } catch {
          p = Notification.permission;
        }
      }
      localStorage.setItem(NOTIFY_KEY, p === 'granted' ? 'on' : 'off');
    }
    this.drawNotify(this.settings);
    this.update(this.ringing);
  }

  drawNotify(el) {
    const btn = el.querySelector('#notify-btn');
    const status = el.querySelector('#notify-status');
    if (!notificationsSupported()) {
      btn.disabled = true;
      status.textContent = window.isSecureContext
        ? 'This browser does not show notifications.'
        : 'Notifications need a secure page (https://), as the microphone does.';
      return;
    }
    const p = Notification.permission;
    btn.disabled = p === 'denied';
    btn.textContent = this.notifyOn ? 'Stop notifying me' : 'Notify me outside this tab';
    status.textContent = p === 'denied'
      ? 'This browser blocks notifications from this page: allow them in the site settings (the icon left of the address), then reload.'
      : this.notifyOn ? 'A notification appears for every call that rings, even while you are in another tab or window.'
        : 'Notifications are off.';
  }
}

function notificationsSupported() {
  return typeof window.Notification === 'function' && window.isSecureContext;
}
