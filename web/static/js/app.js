// The console: sign-in, the event stream, the views, shortcuts, errors.

import { session, takeURLParams, tokenLife, get, post, del, esc, describe, whenUnauthorized, ApiError } from './api.js';
import { EventStream } from './events.js';
import { Model } from './state.js';
import { patch } from './dom.js';
import { since, partyName, rawOfIdentifier, callTitle, endWords, actorName, shortRaw } from './format.js';
import { AgentView, agentShortcuts } from './views/agent.js';
import { SupervisorView, supervisorShortcuts } from './views/supervisor.js';
import { HistoryView } from './views/history.js';
import { AudioPanel } from './media.js';
import { Ringer } from './ringing.js';
import { unlockOnGesture } from './sound.js';
import { recordingRequests, recordingWords, restoreRecordings } from './recording.js';

const $ = (sel) => document.querySelector(sel);
const MAX_ERRORS = 5;
// The token is refreshed when this share of its life has passed.
const REFRESH_AT = 0.8;

// The requests behind the buttons both live views share.
const callRequests = {
  accept: (id) => post(`/api/incoming-calls/${esc(id)}/accept`),
  reject: (id) => post(`/api/incoming-calls/${esc(id)}/reject`),
  hold: (id) => post(`/api/calls/${esc(id)}/hold`),
  resume: (id) => post(`/api/calls/${esc(id)}/resume`),
  mute: (id) => post(`/api/calls/${esc(id)}/mute`),
  unmute: (id) => post(`/api/calls/${esc(id)}/unmute`),
  'mute-incoming': (id) => post(`/api/calls/${esc(id)}/mute-incoming-audio`),
  'unmute-incoming': (id) => post(`/api/calls/${esc(id)}/unmute-incoming-audio`),
  hangup: (id) => post(`/api/calls/${esc(id)}/hangup`, { forEveryone: false }),
  'end-all': (id) => post(`/api/calls/${esc(id)}/hangup`, { forEveryone: true }),
  'mute-all': (id) => post(`/api/calls/${esc(id)}/mute-all`),
  'mute-participant': (id, raw) => post(`/api/calls/${esc(id)}/participants/${esc(raw)}/mute`),
  'remove-participant': (id, raw) => del(`/api/calls/${esc(id)}/participants/${esc(raw)}`),
  dtmf: (id, digit) => post(`/api/calls/${esc(id)}/dtmf`, { tones: digit }),
  'monitor-stop': (id) => del(`/api/calls/${esc(id)}/monitor`),
  'lobby-admit': (id, raw) => post(`/api/calls/${esc(id)}/lobby/admit`, { rawId: raw }),
  'lobby-admit-all': (id) => post(`/api/calls/${esc(id)}/lobby/admit`, { all: true }),
  'transfer-complete': (id) => post(`/api/calls/${esc(id)}/transfer/complete`),
  'transfer-cancel': (id) => post(`/api/calls/${esc(id)}/transfer/cancel`),
};

const callWords = {
  accept: 'Accept', reject: 'Decline', hold: 'Hold', resume: 'Resume', mute: 'Mute', unmute: 'Unmute',
  'mute-incoming': 'Mute incoming audio', 'unmute-incoming': 'Unmute incoming audio', hangup: 'Hang up',
  'end-all': 'End for everyone', 'mute-all': 'Mute all', 'mute-participant': 'Mute participant',
  'remove-participant': 'Remove participant', dtmf: 'Send tone', 'monitor-stop': 'Stop monitoring',
  'lobby-admit': 'Admit', 'lobby-admit-all': 'Admit all',
  'transfer-complete': 'Complete transfer', 'transfer-cancel': 'Cancel transfer',
};

Object.assign(callRequests, recordingRequests);
Object.assign(callWords, recordingWords);

class App {
  constructor() {
    this.me = null;
    this.model = null;
    this.stream = null;
    this.view = null; // the view on screen
    this.live = null; // the live calls view (agent or supervisor)
    this.history = null;
    this.frame = 0;
    this.perf = null;
    this.ended = false;
    this.audioPanel = null;
    this.ringer = null;
    this.conn = 'signin'; // the event connection's status
    this.baseTitle = document.title; // the title when nothing rings
    this.refreshTimer = null;
  }

  // start signs in with the token kept for the tab, if any.
  async start() {
    takeURLParams();
    unlockOnGesture();
    if (session.perf) this.perf = newPerf();
    whenUnauthorized(() => {
      if (this.me) this.expire(); // a signed-in session's token stopped working
    });
    document.addEventListener('click', (e) => this.onClick(e));
    document.addEventListener('keydown', (e) => this.onKey(e));
    window.addEventListener('hashchange', () => {
      this.route();
      if (this.me) $('#main').focus({ preventScroll: true });
    });
    $('#signout').addEventListener('click', () => this.signOut());
    $('#help-btn').addEventListener('click', () => this.help());
    setInterval(() => {
      for (const el of document.querySelectorAll('[data-since]')) el.textContent = since(el.dataset.since);
    }, 1000);
    if (!session.token) return this.signInScreen('');
    await this.signIn(session.token);
  }

  async signIn(token) {
    session.set(token);
    let me;
    try {
      me = await get('/api/me');
    } catch (e) {
      session.clear();
      return this.signInScreen(`Signing in failed: ${describe(e)}`);
    }
    if (me.role === 'caller') {
      location.replace('call.html' + location.search);
      return;
    }
    this.me = me;
    this.ended = false;
    this.model = new Model(me.rawId);
    this.ringer = this.ringer || new Ringer((id) => this.openRinging(id));
    this.audioPanel = this.audioPanel || new AudioPanel(() => this.drawPill(), this.ringer.settings);
    this.live = me.role === 'supervisor' ? new SupervisorView(this) : new AgentView(this);
    this.history = null;
    document.body.dataset.role = me.role;
    $('#who').textContent = `${partyName(me.displayName, me.rawId)} (${me.role}) · ${me.rawId}`;
    $('#nav').hidden = false;
    $('#signout').hidden = false;
    $('#help-btn').hidden = false;
    this.setConn('connecting', '');
    this.stream = new EventStream(session.token, {
      self: () => this.me && this.me.rawId,
      onEvent: (ev, arrived) => this.onEvent(ev, arrived),
      onStatus: (s, detail) => this.setConn(s, detail),
      onExpired: () => this.expire(),
    });
    this.stream.start();
    this.scheduleRefresh(session.token, false);
    this.route();
    if (this.audioMatters()) this.audioPanel.resume();
  }

  // scheduleRefresh refreshes the token (POST /api/tokens/refresh) when
  // REFRESH_AT of its life has passed, keeps the new one for the tab and
  // moves the event stream to it, so a signed-in console outlives its
  // first token. A token just received is timed from now (no clock skew);
  // one of unknown age from its expiry by this browser's clock.
  scheduleRefresh(token, fresh) {
    clearTimeout(this.refreshTimer);
    const life = tokenLife(token);
    if (!life) return;
    const span = life.expiresAt - life.issuedAt;
    let delay = REFRESH_AT * span;
    if (!fresh) delay = Math.min(delay, life.expiresAt - Date.now() - (1 - REFRESH_AT) * span);
    this.refreshTimer = setTimeout(() => this.refresh(token, 0), Math.max(0, delay));
  }

  async refresh(token, attempt) {
    if (!this.me || session.token !== token) return;
    let minted;
    try {
      minted = await post('/api/tokens/refresh');
    } catch (e) {
      // 401 ends the session (whenUnauthorized); other failures retry
      // while the token lasts.
      if (!(e instanceof ApiError) || e.status !== 401) {
        this.refreshTimer = setTimeout(() => this.refresh(token, attempt + 1), Math.min(500 * 2 ** attempt, 5000));
      }
      return;
    }
    if (!this.me || session.token !== token) return;
    session.set(minted.token);
    if (this.stream) this.stream.useToken(minted.token);
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    this.scheduleRefresh(minted.token, true);
  }

  signOut() {
    this.stop();
    session.clear();
    this.signInScreen('You signed out.');
  }

  stop() {
    clearTimeout(this.refreshTimer);
    if (this.stream) this.stream.stop();
    this.stream = null;
    if (this.audioPanel) this.audioPanel.disconnect();
    if (this.ringer) this.ringer.stop();
    this.setTitle('Switchboard');
    this.me = null;
    this.view = null;
    $('#nav').hidden = true;
    $('#signout').hidden = true;
    $('#help-btn').hidden = true;
    $('#who').textContent = '';
  }

  // expire is the clear screen when the token stops being valid.
  expire() {
    if (this.ended) return;
    this.ended = true;
    this.stop();
    session.clear();
    this.setConn('expired', '');
    this.signInScreen('', true);
  }

  signInScreen(message, expired) {
    if (!expired) this.setConn('signin', '');
    const main = $('#main');
    main.innerHTML = `
      <section class="signin panel" aria-labelledby="signin-h">
        ${expired ? `<h2 id="signin-h">Your session has ended</h2>
          <p class="error" role="alert" id="expired-msg">Your token expired or was revoked (invalidToken), so the switchboard closed
          the connection. Calls you had keep going. Sign in with a new token to see them again.</p>`
        : '<h2 id="signin-h">Sign in</h2>'}
        <div id="company-signin" class="stack-form" hidden>
          <a id="company-signin-link" class="button-link primary-btn" href="/auth/login">Sign in with your company account</a>
          <p class="hint">Or sign in with a token:</p>
        </div>
        <form id="signin-form" class="stack-form">
          <label for="token">Token</label>
          <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required
            aria-describedby="token-hint">
          <p class="hint" id="token-hint">Ask your administrator for a token, or mint one with
            <code>switchboard token --user you --url ${location.origin}</code> and open the link it prints.
            The token is kept for this tab only.</p>
          <button type="submit" class="primary-btn">Sign in</button>
        </form>
        <p id="signin-error" class="error" role="alert"></p>
      </section>`;
    $('#signin-error').textContent = message;
    main.querySelector('#signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = new FormData(e.target).get('token');
      this.signIn(String(t));
    });
    main.querySelector('#token').focus();
    this.offerCompanySignIn(main);
  }

  // offerCompanySignIn shows "Sign in with your company account" when the
  // switchboard has an OIDC provider (GET /api/auth/config).
  async offerCompanySignIn(main) {
    let conf;
    try {
      const res = await fetch('/api/auth/config');
      if (!res.ok) return;
      conf = await res.json();
    } catch {
      return;
    }
    const box = main.querySelector('#company-signin');
    if (!conf || !conf.oidc || !box) return;
    const link = box.querySelector('#company-signin-link');
    link.href = conf.loginUrl || '/auth/login';
    box.hidden = false;
    const input = main.querySelector('#token');
    if (document.activeElement === input && !input.value) link.focus();
  }

  route() {
    if (!this.me) return;
    const hash = location.hash || '#/calls';
    const m = /^#\/history(?:\/(.+))?$/.exec(hash);
    for (const a of document.querySelectorAll('#nav a')) {
      const current = m ? a.getAttribute('href') === '#/history' : a.getAttribute('href') === '#/calls';
      if (current) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const main = $('#main');
    if (m) {
      const id = m[1] ? decodeURIComponent(m[1]) : '';
      if (this.view === this.history && this.history) {
        if (id) this.history.open(id);
        else {
          this.history.detail = null;
          this.history.detailSeq++;
          this.history.drawDetail();
        }
        return;
      }
      this.history = new HistoryView(this);
      this.view = this.history;
      this.history.mount(main, id);
      this.setTitle('History · Switchboard');
      return;
    }
    this.view = this.live;
    this.live.cards.clear();
    this.live.mount(main);
    this.setTitle((this.me.role === 'supervisor' ? 'Supervisor' : 'Calls') + ' · Switchboard');
    this.render();
  }

  onEvent(ev, arrived) {
    this.model.apply(ev);
    const board = this.live && this.live.wallboard;
    if (board && ev.type === 'queueStatsChanged') board.apply(ev.data);
    if (board && ev.type === 'snapshot' && this.model.snapshots > 1) board.load();
    this.notify(ev);
    this.schedule(arrived);
    if (ev.type === 'snapshot' && this.me.role !== 'caller') {
      restoreRecordings(this.model, [...this.model.calls.values()], () => this.schedule());
    }
  }

  // notify says out loud what concerns the signed-in identity.
  notify(ev) {
    if (ev.agentId !== this.me.rawId) return;
    const d = ev.data || {};
    if (ev.type === 'incomingCall') {
      const c = d.incomingCall.callerInfo || {};
      const raw = rawOfIdentifier(c.identifier);
      this.say(`Incoming call from ${partyName(c.displayName, raw)} ${shortRaw(raw)}. Press A to accept, D to decline.`);
    } else if (ev.type === 'mutedByOthers') {
      this.say(`${actorName(ev.actor && ev.actor.rawId === d.by ? ev.actor : { rawId: d.by }, this.model.names)} muted your microphone.`);
    } else if (ev.type === 'callEnded' && d.call) {
      this.say(`The call with ${callTitle(d.call)} ended: ${endWords(d.call, d.callEndReason, ev.actor, this.model.names)}.`);
    }
  }

  // schedule draws on the next frame; arrived is when the event that asked
  // for it reached the page (for the latency measurement).
  schedule(arrived) {
    if (this.perf && arrived !== undefined) this.perf.pending.push(arrived);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.frameDraw());
  }

  frameDraw() {
    this.frame = 0;
    const t0 = performance.now();
    this.render();
    if (!this.perf) return;
    const renderMs = performance.now() - t0;
    const batch = this.perf.pending.splice(0);
    if (batch.length) this.perf.afterPaint(batch, renderMs);
  }

  render() {
    if (!this.me || !this.model) return;
    const ringing = this.model.incomingOf(this.me.rawId).length;
    const chip = $('#ringing-chip');
    chip.hidden = !ringing;
    chip.textContent = ringing ? `${ringing} ringing` : '';
    if (ringing && this.me.role !== 'supervisor') {
      const hint = document.createElement('span');
      hint.className = 'chip-hint';
      hint.textContent = ' — A to accept';
      chip.append(hint);
    }
    if (this.view === this.live && this.live.primary) patch(this.live.primary, this.live.view());
    else if (this.view && this.view.refresh) this.view.refresh();
    document.body.dataset.synced = this.model.synced ? 'true' : 'false';
    this.ringer.update(this.model.incomingOf(this.me.rawId).map((ic) => {
      const c = ic.callerInfo || {};
      return { id: ic.id, name: partyName(c.displayName, rawOfIdentifier(c.identifier)) };
    }));
    this.setTitle(this.baseTitle);
    this.audioPanel.setBusy(this.model.activeOf(this.me.rawId)
      ? 'You are on a call: the test call would put it on hold. Hold or end it first.' : '');
  }

  // setTitle sets the tab's title; while calls ring, the title says so.
  setTitle(base) {
    this.baseTitle = base;
    const ringing = this.me && this.ringer ? this.ringer.title() : '';
    document.title = ringing || base;
  }

  // openRinging brings a ringing call into view and focus (its
  // notification was clicked). The calls view is the default (no hash), so
  // the hash is set only when another view shows, and then the focus moves
  // once the hashchange handler has run: it focuses #main, and would take
  // the focus back from the Accept button.
  openRinging(id) {
    const focus = () => requestAnimationFrame(() => {
      const target = document.querySelector(`button[data-action="accept"][data-call="${CSS.escape(id)}"]`) || $('#main');
      target.focus();
      target.scrollIntoView({ block: 'nearest' });
    });
    if ((location.hash || '#/calls') === '#/calls') {
      focus();
      return;
    }
    window.addEventListener('hashchange', focus, { once: true });
    location.hash = '#/calls';
  }

  // audioMatters says whether the signed-in identity's audio is this
  // console's business: agents have the Audio panel, supervisors do not.
  audioMatters() {
    return !!this.me && this.me.role !== 'supervisor';
  }

  setConn(status, detail) {
    const was = this.conn;
    this.conn = status;
    document.body.dataset.conn = status;
    if (this.stream) document.body.dataset.reconnects = String(this.stream.reconnects);
    const banner = $('#banner');
    if (status === 'reconnecting') {
      banner.hidden = false;
      banner.textContent = `The connection to the switchboard dropped: ${detail}. What you see may be out of date until it is back.`;
      $('#main').setAttribute('aria-busy', 'true');
    } else {
      banner.hidden = true;
      banner.textContent = '';
      $('#main').removeAttribute('aria-busy');
    }
    // The event connection is back after a drop: the switchboard may have
    // restarted and lost the audio leg while the browser's side still
    // looks connected, so the audio attaches again too.
    if (status === 'open' && was === 'reconnecting' && this.audioMatters()) {
      this.audioPanel.audio.kick('the connection to the switchboard came back');
    }
    this.drawPill();
  }

  // drawPill says in the top bar whether the console is live: "Live" only
  // when the event connection and the audio are both up; otherwise which
  // one is down. Its accessible name is its text.
  drawPill() {
    const status = this.conn;
    const audio = this.audioMatters() && this.audioPanel ? this.audioPanel.pill() : '';
    const a = this.audioPanel ? this.audioPanel.audio.status : 'off';
    const audioOff = a === 'off' || a === 'unavailable';
    let text = '';
    let pill = status;
    switch (status) {
      case 'signin': break;
      case 'connecting': text = 'Connecting…'; break;
      case 'expired': text = 'Signed out'; break;
      case 'reconnecting':
        text = audio && a === 'reconnecting' ? 'Events and audio reconnecting…' : 'Events reconnecting…';
        pill = 'events-down';
        break;
      case 'open':
        text = audio || 'Live';
        pill = !audio ? 'live' : audioOff ? 'audio-off' : a === 'connecting' ? 'audio-connecting' : 'audio-down';
        break;
      default: text = status;
    }
    // A phone's one-row top bar shows a word or two (CSS, data-short);
    // the full text stays the pill's accessible name and title.
    const short = { live: 'Live', 'events-down': 'Offline', 'audio-off': 'No audio', 'audio-connecting': 'Audio…', 'audio-down': 'No audio' };
    const el = $('#conn');
    el.textContent = text;
    el.dataset.short = short[pill] || text;
    if (text) {
      el.setAttribute('aria-label', text);
      el.title = text; // a phone's narrow top bar may cut the text short
    } else {
      el.removeAttribute('aria-label');
      el.removeAttribute('title');
    }
    el.className = 'conn conn-' + pill;
    document.body.dataset.pill = pill;
    if (this.audioMatters() && this.audioPanel) document.body.dataset.audio = this.audioPanel.mode === 'host' ? 'host' : this.audioPanel.audio.status;
    else delete document.body.dataset.audio;
  }

  // act runs a request and shows its failure in words; it answers whether
  // it succeeded.
  async act(label, fn) {
    try {
      await fn();
      return true;
    } catch (e) {
      this.error(`${label} failed: ${describe(e)}`);
      return false;
    }
  }

  callAction(action, id, raw) {
    return this.act(callWords[action] || action, () => callRequests[action](id, raw));
  }

  // monitor has the supervisor listen to, whisper in or barge into an
  // agent's call (POST /api/calls/{id}/monitor), attaching her browser's
  // audio first when it is not: she hears the call there.
  async monitor(id, mode) {
    const p = this.audioPanel;
    if (p && p.mode === 'browser' && !p.audio.wanted) await p.connect();
    const words = { listen: 'Listen', whisper: 'Whisper', barge: 'Barge in' };
    return this.act(words[mode] || 'Monitor', () => post(`/api/calls/${esc(id)}/monitor`, { mode }));
  }

  error(text) {
    const list = $('#errors');
    const li = document.createElement('li');
    const span = document.createElement('span');
    span.textContent = text;
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = 'Dismiss';
    b.setAttribute('aria-label', 'Dismiss this error');
    b.addEventListener('click', () => li.remove());
    li.append(span, ' ', b);
    list.prepend(li);
    while (list.children.length > MAX_ERRORS) list.lastChild.remove();
  }

  say(text) {
    const el = $('#announce');
    el.textContent = '';
    setTimeout(() => { el.textContent = text; }, 20);
  }

  onClick(e) {
    const b = e.target.closest('button[data-action]');
    if (!b || b.disabled) return;
    const a = b.dataset.action;
    if (callRequests[a]) {
      this.callAction(a, b.dataset.call, b.dataset.raw ?? b.dataset.digit);
      return;
    }
    const fn = (this.view && this.view.actions()[a]) || (this.live && this.live.actions()[a]);
    if (fn) fn(b.dataset);
  }

  onKey(e) {
    if (!this.me || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof Element && t.closest('input, textarea, select, [contenteditable], dialog[open]')) {
      if (e.key === 'Escape' && t.blur) t.blur();
      return;
    }
    if (document.querySelector('dialog[open]')) return;
    const key = e.key;
    let fn = null;
    if (key === '?') fn = () => this.help();
    else if (key === 'c') fn = () => { location.hash = '#/calls'; };
    else if (key === 'p') fn = () => { location.hash = '#/history'; };
    else {
      const liveKeys = this.live.keys();
      const viewKeys = this.view ? this.view.keys() : {};
      fn = viewKeys[key] || liveKeys[key];
      if (key === 'n' && this.view !== this.live) {
        location.hash = '#/calls';
        fn = () => setTimeout(() => liveKeys.n(), 0);
      }
    }
    if (fn) {
      e.preventDefault();
      fn();
    }
  }

  help() {
    const d = $('#help');
    const rows = [['?', 'Show these shortcuts'], ['c', 'Calls view'], ['p', 'Past calls (history)']]
      .concat(this.me && this.me.role === 'supervisor' ? supervisorShortcuts : agentShortcuts);
    d.querySelector('tbody').innerHTML = '';
    for (const [k, what] of rows) {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      const kbd = document.createElement('kbd');
      kbd.textContent = k;
      th.append(kbd);
      const td = document.createElement('td');
      td.textContent = what;
      tr.append(th, td);
      d.querySelector('tbody').append(tr);
    }
    d.showModal();
  }
}

// newPerf records, for each event, the time from its arrival on the
// websocket to the end of the first frame painted after the DOM reflecting
// it was updated (a message posted from the rAF callback runs after that
// frame's style, layout and paint).
function newPerf() {
  const queue = [];
  const ch = new MessageChannel();
  const perf = {
    pending: [],
    samples: [],
    renders: [],
    reset() {
      perf.samples.length = 0;
      perf.renders.length = 0;
    },
    afterPaint(batch, renderMs) {
      queue.push({ batch, renderMs });
      ch.port2.postMessage(null); // called from the rAF callback: runs after this frame is painted
    },
  };
  ch.port1.onmessage = () => {
    const now = performance.now();
    const { batch, renderMs } = queue.shift();
    for (const t of batch) perf.samples.push(now - t);
    perf.renders.push(renderMs);
  };
  window.__switchboardPerf = perf;
  return perf;
}

new App().start();
