// The supervisor's view: every agent (and supervisor) the switchboard knows,
// each with its calls live: states, the active call, time on hold, who is
// speaking; mute and remove participants and end calls anywhere; listen to,
// whisper in or barge into an agent's live call (the supervisor's monitor
// leg is a call of hers, shown in her own section). Agents are
// ordered by urgency: a call ringing longest first, then the longest hold,
// then by name; each agent's calls can be collapsed.

import { h } from '../dom.js';
import { put, esc } from '../api.js';
import { partyName, rawOfIdentifier, shortRaw, callTitle, isPhoneRaw, callKindLine } from '../format.js';
import { button, reasonNote, stateBadge, timing, flags, participantRows, endedCard, rules, tick, notice, confirmEndAll } from './common.js';
import { recordingControls } from '../recording.js';
import { Wallboard } from './wallboard.js';

// monitorLine says what the supervisor's own monitor leg is, by mode.
const monitorLine = {
  listen: 'You are listening: nobody hears you',
  whisper: 'You are whispering: only the agent hears you',
  barge: 'You barged in: everyone hears you',
};

export const supervisorShortcuts = [
  ['/', 'Filter agents'],
];

export class SupervisorView {
  constructor(app) {
    this.app = app;
    this.model = app.model;
    this.cards = new Map();
    this.filter = '';
    this.showOffline = false;
    this.collapsed = new Set(); // rawIds of agents whose calls are hidden
  }

  mount(root) {
    root.innerHTML = `
      <section id="wallboard" class="wallboard-panel" aria-labelledby="wallboard-h"></section>
      <div class="toolbar" role="search">
        <label for="agent-filter">Filter agents</label>
        <input id="agent-filter" type="search" autocomplete="off" placeholder="name or id" aria-keyshortcuts="/">
        <label class="check"><input id="show-offline" type="checkbox"> Show disconnected agents without calls</label>
      </div>
      <div id="sup-live"></div>`;
    this.root = root.querySelector('#sup-live');
    this.wallboard = new Wallboard(root.querySelector('#wallboard'));
    this.wallboard.load();
    root.querySelector('#agent-filter').addEventListener('input', (e) => {
      this.filter = e.target.value.trim().toLowerCase();
      this.app.schedule();
    });
    root.querySelector('#show-offline').addEventListener('change', (e) => {
      this.showOffline = e.target.checked;
      this.app.schedule();
    });
    this.primary = this.root;
  }

  // agents answers every identity to show: known agents, and anyone with
  // calls, the most urgent first: a call ringing (the longest ringing
  // first), then a call on hold (the longest held first), then by name.
  agents() {
    const m = this.model;
    const byId = new Map();
    for (const a of m.agents.values()) byId.set(a.rawId, a);
    for (const c of m.calls.values()) if (!byId.has(c.agentId)) byId.set(c.agentId, { rawId: c.agentId, connectionState: 'Disconnected' });
    for (const c of m.incoming.values()) if (!byId.has(c.agentId)) byId.set(c.agentId, { rawId: c.agentId, connectionState: 'Disconnected' });
    const ringSince = new Map();
    for (const ic of m.incoming.values()) {
      const t = ringSince.get(ic.agentId);
      if (!t || ic.startTime < t) ringSince.set(ic.agentId, ic.startTime);
    }
    const heldSince = new Map();
    for (const c of m.calls.values()) {
      if (c.state !== 'LocalHold' || !c.heldTime) continue;
      const t = heldSince.get(c.agentId);
      if (!t || c.heldTime < t) heldSince.set(c.agentId, c.heldTime);
    }
    const rank = (a) => (ringSince.has(a.rawId) ? 0 : heldSince.has(a.rawId) ? 1 : 2);
    const since = (a) => ringSince.get(a.rawId) || heldSince.get(a.rawId) || '';
    return [...byId.values()].sort((a, b) => rank(a) - rank(b)
      || (since(a) < since(b) ? -1 : since(a) > since(b) ? 1 : 0)
      || this.nameOf(a.rawId).localeCompare(this.nameOf(b.rawId)));
  }

  view() {
    const m = this.model;
    const all = this.agents();
    let calls = 0;
    let held = 0;
    let connected = 0;
    for (const c of m.calls.values()) {
      calls++;
      if (c.state === 'LocalHold') held++;
    }
    for (const a of all) if (a.connectionState === 'Connected') connected++;
    const shown = all.filter((a) => {
      const hasCalls = m.callsOf(a.rawId).length || m.incomingOf(a.rawId).length;
      if (!this.showOffline && a.connectionState !== 'Connected' && !hasCalls) return false;
      if (!this.filter) return true;
      return (a.displayName || '').toLowerCase().includes(this.filter) || a.rawId.toLowerCase().includes(this.filter);
    });
    return [
      h('p', { class: 'summary', role: 'status' },
        `${connected} connected · ${calls} live calls · ${held} on hold · ${m.incoming.size} ringing`),
      shown.length
        ? h('ul', { class: 'agent-list', 'aria-label': 'Agents' }, shown.map((a) => this.agentSection(a)))
        : h('p', { class: 'empty' }, this.filter ? 'No agent matches the filter.' : 'No agent is connected.'),
      m.ended.length ? h('section', { class: 'ended', 'aria-labelledby': 'sup-ended-h' },
        h('h2', { id: 'sup-ended-h' }, 'Recently ended'),
        h('ul', { class: 'ended-list' }, m.ended.map((c) => endedCard(c, { prefix: `${this.nameOf(c.agentId)}: `, names: m.names })))) : null,
    ];
  }

  nameOf(raw) {
    const a = this.model.agents.get(raw);
    return partyName((a && a.displayName) || this.model.names.get(raw), raw);
  }

  agentSection(a) {
    const m = this.model;
    const list = m.callsOf(a.rawId);
    const ringing = m.incomingOf(a.rawId);
    const active = list.find((c) => c.isActive);
    const held = list.filter((c) => c.state === 'LocalHold').length;
    const name = this.nameOf(a.rawId);
    const online = a.connectionState === 'Connected';
    const hid = `agent-${a.rawId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const collapsed = this.collapsed.has(a.rawId);
    return h('li', { key: a.rawId, class: 'agent' + (online ? '' : ' offline') + (collapsed ? ' collapsed' : ''), 'data-agent': a.rawId },
      h('section', { 'aria-labelledby': hid },
        h('header', { class: 'agent-head' },
          h('h2', { id: hid, title: a.rawId }, name),
          a.role && a.role !== 'agent' ? h('span', { class: 'role' }, a.role) : null,
          h('span', { class: online ? 'badge online' : 'badge offline' }, online ? 'Connected' : 'Disconnected'),
          a.status ? h('span', {
            class: `badge agent-status status-${a.status.toLowerCase()}`, 'data-status': a.status,
            title: a.chosenStatus && a.chosenStatus !== a.status ? `then ${a.chosenStatus}` : '',
          }, a.status) : null,
          a.status ? ['Available', 'Away'].filter((st) => st !== a.chosenStatus).map((st) => button(`Set ${st}`, 'set-agent-status',
            { agent: a.rawId, status: st }, { context: name })) : null,
          h('span', { class: 'agent-active' }, active ? ['Active: ', h('strong', null, callTitle(active))] : 'No active call'),
          h('span', { class: 'muted-text' }, `${list.length} call${list.length === 1 ? '' : 's'}`, held ? ` · ${held} on hold` : '', ringing.length ? ` · ${ringing.length} ringing` : ''),
          list.length ? h('button', {
            type: 'button', class: 'collapse-btn', 'data-action': 'toggle-agent', 'data-agent': a.rawId,
            'aria-expanded': collapsed ? 'false' : 'true', 'aria-controls': `${hid}-calls`, 'aria-label': `${collapsed ? 'Show calls' : 'Hide calls'}: ${name}`,
          }, collapsed ? 'Show calls' : 'Hide calls') : null),
        ringing.length ? h('ul', { class: 'ringing-list' }, ringing.map((ic) => {
          const raw = rawOfIdentifier(ic.callerInfo && ic.callerInfo.identifier);
          const from = partyName(ic.callerInfo && ic.callerInfo.displayName, raw);
          return h('li', { key: ic.id }, 'Ringing: ', h('strong', { title: raw }, from), ' ',
            isPhoneRaw(raw) ? shortRaw(raw) : '', ' · for ', tick(ic.startTime),
            a.rawId === this.app.me.rawId ? [' ',
              button('Accept', 'accept', { call: ic.id }, { cls: 'primary-btn', context: `call from ${from}` }), ' ',
              button('Decline', 'reject', { call: ic.id }, { cls: 'danger-btn', context: `call from ${from}` })] : null);
        })) : null,
        list.length ? h('ol', { class: 'call-grid compact', id: `${hid}-calls`, hidden: collapsed },
          collapsed ? [] : list.slice().sort((x, y) => y.isActive - x.isActive).map((c) => this.card(c, a))) : null));
  }

  card(call, agent) {
    const mon = this.monitorOf(call.id);
    const monKey = mon ? `${mon.id}:${mon.monitorMode}:${mon._v}` : '';
    const cached = this.cards.get(call.id);
    if (cached && cached.v === call._v && cached.mon === monKey) return cached.vnode;
    const vnode = this.drawCard(call, agent, mon);
    this.cards.set(call.id, { v: call._v, mon: monKey, vnode });
    return vnode;
  }

  // monitorOf answers the signed-in supervisor's monitor leg of the call
  // id, if she monitors it.
  monitorOf(id) {
    for (const c of this.model.calls.values()) {
      if (c.agentId === this.app.me.rawId && c.monitoredCallId === id) return c;
    }
    return null;
  }

  // monitorButtons are listen, whisper and barge for the agent's call id
  // (the pressed one is her mode now), and stop when she monitors it.
  monitorButtons(id, mon, context, reason) {
    const modes = [['listen', 'Listen'], ['whisper', 'Whisper'], ['barge', 'Barge in']];
    return h('div', { class: 'actions monitor-actions', role: 'group', 'aria-label': `Monitor: ${context}` },
      modes.map(([mode, label]) => button(label, 'monitor', { call: id, mode }, {
        context, on: !!mon && mon.monitorMode === mode, reason: mon && mon.monitorMode === mode ? '' : reason,
      })),
      mon ? button('Stop monitoring', 'monitor-stop', { call: id }, { context }) : null);
  }

  drawCard(call, agent, mon) {
    const id = call.id;
    const overseeing = call.agentId !== this.app.me.rawId;
    const live = ['Connected', 'LocalHold', 'RemoteHold'].includes(call.state);
    const title = callTitle(call);
    const agentName = this.nameOf(agent.rawId);
    const endAllReason = rules.endForEveryone(call);
    const endAllId = `endall-reason-${id}`;
    const cls = 'call-card' + (call.isActive ? ' is-active' : '') + (call.state === 'LocalHold' ? ' is-held' : '');
    const context = `${agentName}'s call with ${title}`;
    return h('li', { key: id, class: cls, 'data-call-id': id, 'data-state': call.state, 'aria-current': call.isActive ? 'true' : null },
      h('article', { 'aria-labelledby': `title-${id}` },
        h('header', { class: 'card-head' },
          h('h3', { id: `title-${id}`, class: 'card-title' }, title),
          stateBadge(call)),
        h('p', { class: 'muted-text' }, call.monitoredCallId ? monitorLine[call.monitorMode] || 'Monitoring' : callKindLine(call)),
        timing(call),
        flags(call, !overseeing),
        notice(call),
        recordingControls(call, context, true),
        participantRows(call, { overseeing }),
        call.monitoredCallId
          ? this.monitorButtons(call.monitoredCallId, call, `the call you monitor (${call.monitorMode})`, '')
          : overseeing ? this.monitorButtons(id, mon, context, live ? '' : 'Only a live call can be monitored') : null,
        h('div', { class: 'actions' },
          overseeing ? [
            button(call.isMuted ? 'Agent muted' : 'Mute agent', 'mute-participant', { call: id, raw: call.agentId }, {
              context, reason: call.isMuted ? 'The agent is muted already' : '',
            }),
            button('Remove agent', 'hangup', { call: id }, { context }),
          ] : button('Hang up', 'hangup', { call: id }, { context: `your call with ${title}` }),
          button('End for everyone', 'confirm-end-all', { call: id }, { cls: 'danger-btn', context, reason: endAllReason, reasonId: endAllId })),
        reasonNote(endAllId, endAllReason)));
  }

  actions() {
    return {
      'set-agent-status': (d) => this.app.act(`Set ${d.status}`, () => put(`/api/agents/${esc(d.agent)}/status`, { status: d.status })),
      'toggle-agent': (d) => {
        if (this.collapsed.has(d.agent)) this.collapsed.delete(d.agent);
        else this.collapsed.add(d.agent);
        this.app.schedule();
      },
      monitor: (d) => this.app.monitor(d.call, d.mode),
      'confirm-end-all': async (d) => {
        const c = this.model.calls.get(d.call);
        if (c && await confirmEndAll(c, this.nameOf(c.agentId))) this.app.callAction('end-all', d.call);
      },
    };
  }

  keys() {
    return { '/': () => document.getElementById('agent-filter').focus() };
  }
}
