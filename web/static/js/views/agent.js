// The agent's view: ringing calls, every call as a card (the active one
// first and unmistakable, held ones with how long they have been held),
// recently ended calls with their end reason, and forms to call and join.
// A call keeps its number (its shortcut) from when it appears until it
// ends: ending call 2 leaves call 4 number 4.

import { h } from '../dom.js';
import { get, post, put, esc } from '../api.js';
import { parseIdentifier, partyName, rawOfIdentifier, shortRaw, isPhoneRaw, callTitle, kindText, callKindLine } from '../format.js';
import {
  button, reasonNote, stateBadge, timing, flags, participantRows, endedCard, rules, tick, notice, confirmEndAll,
} from './common.js';
import { recordingControls } from '../recording.js';

const NUMBERS_KEY = 'switchboard.callNumbers';

function loadNumbers() {
  try {
    const v = JSON.parse(sessionStorage.getItem(NUMBERS_KEY) || '[]');
    return Array.isArray(v) ? v.filter((e) => Array.isArray(e) && typeof e[0] === 'string' && Number.isInteger(e[1])) : [];
  } catch {
    return [];
  }
}

export const agentShortcuts = [
  ['a', 'Accept the ringing call'],
  ['d', 'Decline the ringing call'],
  ['s', 'Swap: resume the call held last (holds the active one)'],
  ['1 – 9', 'Make call number N active'],
  ['g', 'Go to call number N (any number, for calls past the ninth)'],
  ['h', 'Hold the active call'],
  ['m', 'Mute or unmute your microphone'],
  ['i', 'Mute or unmute incoming audio'],
  ['x', 'Hang up the active call'],
  ['n', 'New call: jump to the number field'],
];

export class AgentView {
  constructor(app) {
    this.app = app;
    this.model = app.model;
    this.cards = new Map(); // call id -> {v, n, vnode}
    // call id -> its number while it lives; kept for the tab, so that a
    // reload does not renumber the calls.
    this.numbers = new Map(loadNumbers());
    this.ringing = new Set(); // ids of the calls ringing at the last draw
  }

  // mount draws the parts that do not follow events once; render() draws
  // the rest.
  mount(root) {
    root.innerHTML = '';
    const layout = document.createElement('div');
    layout.className = 'agent-layout';
    this.primary = document.createElement('div');
    this.primary.className = 'primary';
    const side = document.createElement('aside');
    side.className = 'side';
    side.setAttribute('aria-label', 'Place calls and audio');
    side.append(this.statusPanel(), this.newCallForm(), this.app.audioPanel.element);
    this.statusRead = -1; // the model's snapshot count when the status was last read
    layout.append(this.primary, side);
    layout.addEventListener('submit', (e) => this.onSubmit(e));
    root.append(layout);
  }

  // number gives each of the calls a number that stays while the call
  // lives: a new call takes the lowest number free.
  number(list) {
    if (!this.model.synced) return; // before the snapshot every call seems gone
    const live = new Set(list.map((c) => c.id));
    let changed = false;
    for (const id of this.numbers.keys()) {
      if (!live.has(id)) {
        this.numbers.delete(id);
        changed = true;
      }
    }
    const used = new Set(this.numbers.values());
    let next = 1;
    for (const c of list) {
      if (this.numbers.has(c.id)) continue;
      while (used.has(next)) next++;
      this.numbers.set(c.id, next);
      used.add(next);
      changed = true;
    }
    if (changed) sessionStorage.setItem(NUMBERS_KEY, JSON.stringify([...this.numbers]));
  }

  // callNumbered answers the living call with number n.
  callNumbered(n) {
    const me = this.app.me.rawId;
    this.number(this.model.callsOf(me));
    for (const [id, k] of this.numbers) if (k === n) return this.model.calls.get(id) || null;
    return null;
  }

  view() {
    const me = this.app.me.rawId;
    const model = this.model;
    const incoming = model.incomingOf(me);
    const list = model.callsOf(me);
    this.number(list);
    const active = list.find((c) => c.isActive);
    const held = list.filter((c) => c.state === 'LocalHold').length;
    // The active call first, then the others by number.
    const ordered = list.slice().sort((a, b) => (b.isActive - a.isActive) || (this.numbers.get(a.id) - this.numbers.get(b.id)));
    this.keepFocus(list);
    const mine = model.ended.filter((c) => c.agentId === me || !c.agentId);
    this.drawStatus(mine.filter((c) => c.agentId === me));
    return [
      incoming.length ? h('section', { class: 'incoming', 'aria-labelledby': 'incoming-h' },
        h('h2', { id: 'incoming-h' }, incoming.length === 1 ? 'Incoming call' : `Incoming calls (${incoming.length})`),
        h('ul', { class: 'incoming-list' }, incoming.map((ic, i) => this.incomingCard(ic, i === 0)))) : null,
      h('section', { class: 'calls', 'aria-labelledby': 'calls-h' },
        h('div', { class: 'section-head' },
          h('h2', { id: 'calls-h' }, `Your calls (${list.length})`),
          h('p', { class: 'summary', id: 'active-summary', role: 'status' },
            active ? ['Active: ', h('strong', null, callTitle(active))] : 'No active call',
            held ? ` · ${held} on hold` : ''),
          Math.max(0, ...this.numbers.values()) > 9 ? h('form', { class: 'goto', 'data-action': 'goto-call' },
            h('label', { for: 'goto-n' }, 'Go to call'),
            h('input', { id: 'goto-n', name: 'n', type: 'number', min: '1', inputmode: 'numeric', required: true, 'aria-keyshortcuts': 'g' }),
            h('button', { type: 'submit' }, 'Go')) : null),
        list.length
          ? h('ol', { class: 'call-grid' }, ordered.map((c) => this.card(c, this.numbers.get(c.id))))
          : h('p', { class: 'empty' }, 'No calls. Incoming calls appear here; place one with New call.')),
      mine.length ? h('section', { class: 'ended', 'aria-labelledby': 'ended-h' },
        h('div', { class: 'section-head' },
          h('h2', { id: 'ended-h' }, 'Recently ended'),
          button('Clear', 'clear-ended', {}, { context: 'recently ended calls' })),
        h('ul', { class: 'ended-list' }, mine.map((c) => endedCard(c, { dismiss: true, names: model.names })))) : null,
    ];
  }

  // keepFocus runs after this draw is on the page: a call just accepted
  // takes the focus (unless the agent is busy elsewhere, in a form), and a
  // card the draw moved (the active call goes first) keeps it.
  keepFocus(list) {
    const accepted = list.find((c) => this.ringing.has(c.id));
    this.ringing = new Set(this.model.incomingOf(this.app.me.rawId).map((ic) => ic.id));
    const before = document.activeElement;
    const wasHere = before && this.primary.contains(before);
    queueMicrotask(() => {
      const now = document.activeElement;
      const idle = !now || now === document.body || now === document.getElementById('main');
      const card = (id) => this.primary.querySelector(id ? `li.call-card[data-call-id="${CSS.escape(id)}"] > article` : 'li.call-card > article');
      if (accepted && (idle || (now && now.closest('.incoming')))) {
        const art = card(accepted.id);
        if (art) {
          art.focus();
          return;
        }
      }
      if (!idle || !wasHere || before === now) return;
      if (before.isConnected) before.focus({ preventScroll: true }); // its card moved
      else if (card()) card().focus({ preventScroll: true }); // its call ended: the active call (first)
    });
  }

  incomingCard(ic, first) {
    const caller = ic.callerInfo || {};
    const raw = rawOfIdentifier(caller.identifier);
    const name = partyName(caller.displayName, raw);
    const number = isPhoneRaw(raw) ? shortRaw(raw) : '';
    return h('li', { key: ic.id, class: 'incoming-card', 'aria-label': `Incoming call from ${name}` },
      h('p', { class: 'caller' }, h('strong', { class: 'caller-name', title: raw }, name), ' ',
        number && number !== name ? h('span', { class: 'caller-number' }, number) : null),
      h('p', { class: 'muted-text' }, ic.kind === 'oneToOne' ? 'Ringing for ' : `${kindText[ic.kind] || 'Call'} · ringing for `, tick(ic.startTime)),
      h('div', { class: 'actions' },
        button('Accept', 'accept', { call: ic.id }, { cls: 'primary-btn', context: `call from ${name}`, kbd: first ? 'A' : null, keys: first ? 'a' : null }),
        button('Decline', 'reject', { call: ic.id }, { cls: 'danger-btn', context: `call from ${name}`, kbd: first ? 'D' : null, keys: first ? 'd' : null })));
  }

  card(call, n) {
    const cached = this.cards.get(call.id);
    if (cached && cached.v === call._v && cached.n === n) return cached.vnode;
    const vnode = this.drawCard(call, n);
    this.cards.set(call.id, { v: call._v, n, vnode });
    return vnode;
  }

  drawCard(call, n) {
    const id = call.id;
    const title = callTitle(call);
    const endAllReason = rules.endForEveryone(call);
    const endAllId = `endall-reason-${id}`;
    const addReason = rules.addParticipant(call);
    const context = `call ${n}, ${title}`;
    const cls = 'call-card' + (call.isActive ? ' is-active' : '') + (call.state === 'LocalHold' ? ' is-held' : '');
    const main = [];
    if (call.state === 'LocalHold') {
      main.push(button('Resume', 'resume', { call: id }, { cls: 'primary-btn', context: `${context} (holds the active call)`, kbd: n <= 9 ? String(n) : null }));
    } else if (call.isActive || call.state === 'RemoteHold') {
      main.push(button('Hold', 'hold', { call: id }, { context, kbd: call.isActive ? 'H' : null }));
    }
    main.push(
      button(call.isMuted ? 'Unmute mic' : 'Mute mic', call.isMuted ? 'unmute' : 'mute', { call: id }, { on: call.isMuted, context, kbd: call.isActive ? 'M' : null }),
      button(call.isIncomingAudioMuted ? 'Unmute speaker' : 'Mute speaker', call.isIncomingAudioMuted ? 'unmute-incoming' : 'mute-incoming', { call: id }, { on: call.isIncomingAudioMuted, context, kbd: call.isActive ? 'I' : null }),
      button('Hang up', 'hangup', { call: id }, { cls: 'danger-btn', context, kbd: call.isActive ? 'X' : null }),
      button('End for everyone', 'confirm-end-all', { call: id }, { cls: 'danger-btn', context, reason: endAllReason, reasonId: endAllId }),
    );
    const group = call.kind !== 'oneToOne';
    const consult = call.consultCallId ? h('div', { class: 'actions transfer-actions', role: 'group', 'aria-label': `Transfer: ${context}` },
      h('p', { class: 'notice' }, call.isActive ? 'Consult call: complete the transfer to hand the customer over, or cancel to go back.'
        : 'Transfer in progress: the customer is on hold while you consult.'),
      button('Complete transfer', 'transfer-complete', { call: id }, { cls: 'primary-btn', context }),
      button('Cancel transfer', 'transfer-cancel', { call: id }, { context })) : null;
    const transferable = call.isActive && !group && !call.consultCallId && !call.monitoredCallId;
    const mergeable = call.state === 'LocalHold' && !call.consultCallId && !call.monitoredCallId && call.kind !== 'room';
    return h('li', { key: id, class: cls, 'data-call-id': id, 'data-n': String(n), 'data-state': call.state, 'aria-current': call.isActive ? 'true' : null },
      h('article', { 'aria-labelledby': `n-${id} title-${id}`, tabindex: '-1' },
        h('header', { class: 'card-head' },
          h('span', { class: 'card-n', id: `n-${id}`, 'aria-label': `Call ${n}:` }, String(n)),
          h('h3', { id: `title-${id}`, class: 'card-title' }, title),
          stateBadge(call)),
        h('p', { class: 'muted-text' }, callKindLine(call)),
        timing(call),
        flags(call),
        notice(call),
        h('div', { class: 'actions' }, main),
        recordingControls(call, context, true),
        reasonNote(endAllId, endAllReason),
        participantRows(call, { overseeing: false }),
        consult,
        transferable ? transferForm(id) : null,
        mergeable ? h('div', { class: 'actions' },
          button('Merge with the active call', 'merge-into-active', { call: id }, { context: `${context}: its participants join your active call` })) : null,
        call.isActive ? keypad(id, context) : null,
        h('details', { class: 'more' },
          h('summary', null, group ? 'Add participant, mute all' : 'Add participant'),
          h('form', { 'data-action': 'add-participant', 'data-call': id, class: 'inline-form' },
            h('label', { for: `add-${id}` }, 'User or phone number'),
            h('input', { id: `add-${id}`, name: 'who', autocomplete: 'off', placeholder: 'carol or +14255550123', required: true, disabled: !!addReason }),
            h('label', { for: `add-cid-${id}` }, 'Caller id (for a phone number)'),
            h('input', { id: `add-cid-${id}`, name: 'callerId', autocomplete: 'off', placeholder: '+14255550100', disabled: !!addReason }),
            h('button', { type: 'submit', disabled: !!addReason, title: addReason || null }, 'Add')),
          addReason ? h('p', { class: 'reason' }, addReason) : null,
          group ? button('Mute all others', 'mute-all', { call: id }, { context, reason: rules.muteOthers(call, false), reasonId: `mute-reason-${id}` }) : null)));
  }

  // statusPanel is the agent's status picker and wrap-up form: she
  // chooses Available, Away or WrapUp (Busy and Offline are shown, never
  // chosen), and gives a call she finished a wrap-up code.
  statusPanel() {
    const wrap = document.createElement('section');
    wrap.setAttribute('aria-labelledby', 'status-h');
    wrap.className = 'panel status-panel';
    wrap.innerHTML = `
      <h2 id="status-h">My status</h2>
      <p id="my-status" class="summary" role="status" data-status="">Status: …</p>
      <form data-action="set-status" class="stack-form">
        <label for="status-pick">Set status</label>
        <select id="status-pick" name="status">
          <option value="Available">Available</option>
          <option value="Away">Away</option>
          <option value="WrapUp">Wrap-up</option>
        </select>
        <label for="wrap-secs">Wrap-up seconds <span class="hint">(with Wrap-up; 60 if empty)</span></label>
        <input id="wrap-secs" name="seconds" type="number" min="1" max="3600" inputmode="numeric" placeholder="60">
        <button type="submit" class="primary-btn">Set status</button>
      </form>
      <form data-action="wrap-up-code" class="stack-form">
        <label for="wrap-call">Wrap-up code for the call</label>
        <select id="wrap-call" name="callId" required></select>
        <label for="wrap-code">Code</label>
        <input id="wrap-code" name="code" maxlength="64" autocomplete="off" placeholder="sale, no-sale, callback" required>
        <button type="submit">Save code</button>
      </form>`;
    this.statusLine = wrap.querySelector('#my-status');
    this.wrapCalls = wrap.querySelector('#wrap-call');
    return wrap;
  }

  async loadStatus() {
    try {
      this.model.myStatus = await get('/api/me/status');
      this.app.schedule();
    } catch {
      // The event stream tells the next change.
    }
  }

  // drawStatus updates the status panel (drawn once) from the model.
  drawStatus(ended) {
    // Each snapshot (a new connection) reads the status again: the
    // change its connection made came before the snapshot.
    if (this.model.synced && this.statusRead !== this.model.snapshots) {
      this.statusRead = this.model.snapshots;
      this.loadStatus();
    }
    const st = this.model.myStatus;
    if (this.statusLine) {
      let text = 'Status: …';
      if (st) {
        text = `Status: ${st.status}`;
        if (st.chosenStatus && st.chosenStatus !== st.status) text += ` (then ${st.chosenStatus})`;
        if (st.status === 'WrapUp' && st.wrapUpUntil) text += ` until ${new Date(st.wrapUpUntil).toLocaleTimeString()}`;
      }
      if (this.statusLine.textContent !== text) this.statusLine.textContent = text;
      this.statusLine.dataset.status = st ? st.status : '';
    }
    if (this.wrapCalls) {
      // The call her wrap-up follows (a queue call's) comes first and is
      // chosen, also when this page did not see it end (a reload).
      const follows = st && st.status === 'WrapUp' ? st.wrapUpCallId || '' : '';
      const calls = ended.map((c) => [c.id, callTitle(c)]);
      const i = calls.findIndex(([id]) => id === follows);
      const first = i >= 0 ? calls.splice(i, 1)[0] : [follows, 'The call you are wrapping up'];
      if (follows) calls.unshift(first);
      const key = follows + '|' + calls.map(([id]) => id).join(',');
      if (this.wrapCalls.dataset.key !== key) {
        this.wrapCalls.dataset.key = key;
        this.wrapCalls.replaceChildren(...calls.map(([id, title]) => {
          const o = document.createElement('option');
          o.value = id;
          o.textContent = id === follows ? `${title} (wrap-up)` : title;
          return o;
        }));
        if (follows) this.wrapCalls.value = follows;
      }
    }
  }

  newCallForm() {
    const wrap = document.createElement('section');
    wrap.setAttribute('aria-labelledby', 'new-call-h');
    wrap.className = 'panel';
    wrap.innerHTML = `
      <h2 id="new-call-h">New call</h2>
      <form data-action="start-call" class="stack-form">
        <label for="new-call-to">Call <span class="hint">(user id, +phone number or raw id; commas for a group)</span></label>
        <input id="new-call-to" name="to" autocomplete="off" placeholder="bob, +14255550123, 8:echo123" required aria-keyshortcuts="n">
        <label for="new-call-cid">Caller id <span class="hint">(needed to call a phone number)</span></label>
        <input id="new-call-cid" name="callerId" autocomplete="off" placeholder="+14255550100">
        <button type="submit" class="primary-btn">Call</button>
      </form>
      <form data-action="join" class="stack-form">
        <label for="join-id">Join a group call (GUID) or a room</label>
        <input id="join-id" name="id" autocomplete="off" placeholder="group GUID or room id" required>
        <label class="check"><input type="checkbox" name="lobby" value="1"> Open the room with a lobby <span class="hint">(its first joiner admits the others)</span></label>
        <button type="submit">Join</button>
      </form>`;
    return wrap;
  }

  async onSubmit(e) {
    const form = e.target.closest('form[data-action]');
    if (!form) return;
    e.preventDefault();
    const f = new FormData(form);
    const action = form.dataset.action;
    const callerId = (f.get('callerId') || '').trim();
    const alt = callerId ? parseIdentifier(callerId).identifier : undefined;
    if (action === 'set-status') {
      const status = String(f.get('status'));
      const secs = Number(f.get('seconds') || 0);
      const body = { status };
      if (status === 'WrapUp' && secs > 0) body.wrapUpSeconds = secs;
      await this.app.act('Set status', async () => {
        this.model.myStatus = await put('/api/me/status', body);
        this.app.schedule();
      });
    } else if (action === 'wrap-up-code') {
      const ok = await this.app.act('Save wrap-up code', () => put('/api/me/wrap-up', {
        callId: String(f.get('callId')), code: String(f.get('code')).trim(),
      }));
      if (ok) {
        form.querySelector('#wrap-code').value = '';
        this.app.say('Wrap-up code saved.');
      }
    } else if (action === 'start-call') {
      const ok = await this.app.act('Call', () => {
        const participants = String(f.get('to')).split(',').filter((s) => s.trim()).map((s) => parseIdentifier(s).identifier);
        return post('/api/calls', { participants, alternateCallerId: alt });
      });
      if (ok) form.reset();
    } else if (action === 'join') {
      const id = String(f.get('id')).trim();
      const body = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id) ? { groupId: id } : { roomId: id };
      if (body.roomId && f.get('lobby')) body.lobby = true;
      const ok = await this.app.act('Join', () => post('/api/calls/join', body));
      if (ok) form.reset();
    } else if (action === 'goto-call') {
      const n = Number(f.get('n'));
      if (this.goTo(n)) form.reset();
    } else if (action === 'transfer') {
      const call = form.dataset.call;
      const who = String(f.get('who')).trim();
      const mode = String(f.get('mode'));
      // "queue" hands the customer to a queue's agents (blind: a queue has
      // nobody to consult).
      const body = mode === 'queue' ? { queue: who, mode: 'blind' }
        : { target: parseIdentifier(who).identifier, mode, alternateCallerId: alt };
      const ok = await this.app.act('Transfer', () => post(`/api/calls/${esc(call)}/transfer`, body));
      if (ok) form.reset();
    } else if (action === 'add-participant') {
      const call = form.dataset.call;
      const ok = await this.app.act('Add participant', () => post(`/api/calls/${esc(call)}/participants`, {
        identifier: parseIdentifier(String(f.get('who'))).identifier, alternateCallerId: alt,
      }));
      if (ok) form.reset();
    }
  }

  // actions answer the data-action of a clicked button.
  actions() {
    const m = this.model;
    return {
      'confirm-end-all': async (d) => {
        const c = m.calls.get(d.call);
        if (c && await confirmEndAll(c)) this.app.callAction('end-all', d.call);
      },
      'clear-ended': () => {
        m.ended = m.ended.filter((c) => c.agentId && c.agentId !== this.app.me.rawId);
        m.version++;
        this.app.schedule();
      },
      'merge-into-active': (d) => {
        const active = m.activeOf(this.app.me.rawId);
        if (!active) return this.app.say('Merge: there is no active call to merge into.');
        this.app.act('Merge', () => post(`/api/calls/${esc(active.id)}/merge`, { callId: d.call }));
      },
      'dismiss-ended': (d) => {
        m.dismissEnded(d.call);
        this.app.schedule();
      },
    };
  }

  // keys are the agent's shortcuts.
  keys() {
    const me = () => this.app.me.rawId;
    const active = () => this.model.activeOf(me());
    const call = (label, fn) => {
      const c = active();
      if (!c) {
        this.app.say(`${label}: there is no active call.`);
        return;
      }
      this.app.callAction(fn(c), c.id);
    };
    const keys = {
      a: () => {
        const ic = this.model.incomingOf(me())[0];
        if (!ic) return this.app.say('No call is ringing.');
        this.app.callAction('accept', ic.id);
      },
      d: () => {
        const ic = this.model.incomingOf(me())[0];
        if (!ic) return this.app.say('No call is ringing.');
        this.app.callAction('reject', ic.id);
      },
      s: () => {
        const held = this.model.callsOf(me()).filter((c) => c.state === 'LocalHold');
        if (!held.length) return this.app.say('Swap: no call is on hold.');
        held.sort((x, y) => (x.heldTime || '') < (y.heldTime || '') ? 1 : -1);
        this.app.callAction('resume', held[0].id);
      },
      h: () => call('Hold', () => 'hold'),
      m: () => call('Mute', (c) => (c.isMuted ? 'unmute' : 'mute')),
      i: () => call('Incoming audio', (c) => (c.isIncomingAudioMuted ? 'unmute-incoming' : 'mute-incoming')),
      x: () => call('Hang up', () => 'hangup'),
      n: () => document.getElementById('new-call-to').focus(),
    };
    keys.g = () => {
      const input = document.getElementById('goto-n');
      if (!input) return this.app.say('No call has a number past 9: press 1 to 9.');
      input.focus();
    };
    for (let n = 1; n <= 9; n++) keys[String(n)] = () => this.goTo(n);
    return keys;
  }

  // goTo makes call number n active; it answers whether it could.
  goTo(n) {
    const c = this.callNumbered(n);
    if (!c) {
      this.app.say(`There is no call number ${n}.`);
      return false;
    }
    if (c.isActive) {
      this.app.say(`Call ${n} is already active.`);
      return true;
    }
    if (c.state !== 'LocalHold') {
      this.app.say(`Call ${n} cannot be resumed yet: it is ${(c.state || '').toLowerCase()}.`);
      return false;
    }
    this.app.callAction('resume', c.id);
    return true;
  }
}


// transferForm hands the active 1:1 call to someone (POST
// /api/calls/{id}/transfer): blind, after a consult call, or blind to a
// queue.
function transferForm(id) {
  return h('details', { class: 'more transfer' },
    h('summary', null, 'Transfer'),
    h('form', { 'data-action': 'transfer', 'data-call': id, class: 'inline-form' },
      h('label', { for: `xfer-${id}` }, 'To (user, phone number or queue name)'),
      h('input', { id: `xfer-${id}`, name: 'who', autocomplete: 'off', placeholder: 'bob, +14255550123 or support', required: true }),
      h('label', { for: `xfer-mode-${id}` }, 'How'),
      h('select', { id: `xfer-mode-${id}`, name: 'mode' },
        h('option', { value: 'consult' }, 'Consult first (the customer is on hold)'),
        h('option', { value: 'blind' }, 'Blind (hand over now)'),
        h('option', { value: 'queue' }, 'To a queue (hand over now; its agents are offered the call)')),
      h('label', { for: `xfer-cid-${id}` }, 'Caller id (for a phone number)'),
      h('input', { id: `xfer-cid-${id}`, name: 'callerId', autocomplete: 'off', placeholder: '+14255550100' }),
      h('button', { type: 'submit' }, 'Transfer')));
}

// keypad sends DTMF tones on the active call (a phone menu, a PIN): the
// others hear each digit; a phone gets it as a telephone-event.
function keypad(id, context) {
  const keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
  return h('details', { class: 'more keypad' },
    h('summary', null, 'Keypad'),
    h('div', { class: 'keypad-grid', role: 'group', 'aria-label': `Keypad: ${context}` },
      ...keys.map((k) => button(k, 'dtmf', { call: id, digit: k }, { context: `send tone ${k}, ${context}` }))));
}
