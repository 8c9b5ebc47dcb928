// Call history: filters (agent, time range, direction, outcome,
// participant), pages through nextCursor, and one call's timeline. A call
// between two agents is one conversation with a view per agent: a
// supervisor sees it once, with both agents. Live rows follow the event
// stream: a call that ends while shown gets its end and length.

import { h, patch } from '../dom.js';
import { get, esc, describe } from '../api.js';
import { recordingList, loadRecordingAudio } from '../recording.js';
import {
  rawIdOf, callTitle, dateTime, clockTime, endReasonText, endCodes, duration, partyName, participantStateText, kindText, callStateText, since,
} from '../format.js';

export class HistoryView {
  constructor(app) {
    this.app = app;
    this.supervisor = app.me.role === 'supervisor';
    this.page = null; // {items, nextCursor}
    this.cursors = ['']; // the cursor of each page from the first to the one shown
    this.error = '';
    this.loading = false;
    this.detail = null; // {history} or {error}
    this.query = null;
    this.seq = 0;
    this.detailSeq = 0;
    this.pageServerIds = []; // per page shown, the serverCallIds on it
    this.audio = new Map(); // recording id -> blob URL or {error}, for the call shown
  }

  mount(root, callId) {
    root.innerHTML = '';
    const codes = endCodes.map((c) => `<option value="${c.code}">${c.text.charAt(0).toUpperCase() + c.text.slice(1)} (${c.code})</option>`).join('');
    const wrap = document.createElement('div');
    wrap.className = 'history';
    wrap.innerHTML = `
      <h2 id="history-h">Call history</h2>
      <form id="history-filter" class="filter-grid" aria-labelledby="history-h">
        ${this.supervisor ? `<div><label for="f-agent">Agent</label>
          <input id="f-agent" name="agent" autocomplete="off" placeholder="Alice Agent, alice or 8:acs:alice" list="known-agents"></div>` : ''}
        <div><label for="f-from">From</label><input id="f-from" name="from" type="datetime-local" step="1"></div>
        <div><label for="f-to">To</label><input id="f-to" name="to" type="datetime-local" step="1"></div>
        <div><label for="f-direction">Direction</label>
          <select id="f-direction" name="direction"><option value="">Any</option><option>Incoming</option><option>Outgoing</option></select></div>
        <div><label for="f-code">Outcome</label>
          <select id="f-code" name="endCode"><option value="">Any</option>${codes}</select></div>
        <div><label for="f-participant">Participant</label>
          <input id="f-participant" name="participant" autocomplete="off" placeholder="bob or +14255550123"></div>
        <div><label for="f-wrapup">Wrap-up code</label>
          <input id="f-wrapup" name="wrapUpCode" autocomplete="off" maxlength="64" placeholder="sale"></div>
        <div><label for="f-queue">Queue</label>
          <input id="f-queue" name="queue" autocomplete="off" maxlength="64" placeholder="support"></div>
        <div><label for="f-limit">Per page</label>
          <input id="f-limit" name="limit" type="number" min="1" max="500" value="25"></div>
        <div class="filter-buttons"><button type="submit" class="primary-btn">Search</button>
          <button type="reset">Reset</button></div>
      </form>
      <datalist id="known-agents"></datalist>
      <div id="history-results" aria-live="polite"></div>
      <div id="history-detail"></div>`;
    root.append(wrap);
    this.results = wrap.querySelector('#history-results');
    this.detailEl = wrap.querySelector('#history-detail');
    const form = wrap.querySelector('#history-filter');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.search(form);
    });
    form.addEventListener('reset', () => setTimeout(() => this.search(form), 0));
    const dl = wrap.querySelector('#known-agents');
    for (const a of this.app.model.agents.values()) {
      const o = document.createElement('option');
      o.value = a.displayName || a.rawId;
      o.label = a.rawId;
      dl.append(o);
    }
    this.search(form);
    if (callId) this.open(callId);
  }

  async search(form) {
    const f = new FormData(form);
    const q = new URLSearchParams();
    try {
      const agent = this.agentOf(String(f.get('agent') || ''));
      if (agent) q.set('agent', agent);
      const participant = rawIdOf(f.get('participant'));
      if (participant) q.set('participant', participant);
    } catch (e) {
      this.error = e.message;
      this.draw();
      return;
    }
    for (const k of ['from', 'to']) {
      const v = f.get(k);
      if (v) q.set(k, new Date(v).toISOString());
    }
    for (const k of ['direction', 'limit', 'wrapUpCode', 'queue']) {
      const v = f.get(k);
      if (v) q.set(k, v);
    }
    const outcome = String(f.get('endCode') || '');
    if (outcome) {
      const [code, sub] = outcome.split('/');
      q.set('endCode', code);
      if (sub !== undefined) q.set('endSubCode', sub);
    }
    this.query = q;
    await this.load(['']);
  }

  // load shows the page at the end of cursors (the cursor of every page
  // from the first), and keeps that stack once the page is there.
  async load(cursors) {
    const q = new URLSearchParams(this.query);
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set('cursor', cursor);
    const seq = ++this.seq; // only the latest search is shown
    this.loading = true;
    this.draw();
    let page = null;
    let error = '';
    try {
      page = await get('/api/history/calls?' + q.toString());
    } catch (e) {
      error = 'Searching history failed: ' + describe(e);
    }
    if (seq !== this.seq) return;
    if (page) {
      this.page = page;
      this.cursors = cursors;
      this.pageServerIds.length = cursors.length - 1;
      this.pageServerIds.push(new Set(page.items.map((c) => c.serverCallId).filter(Boolean)));
    }
    this.error = error;
    this.loading = false;
    this.draw();
  }

  // agentOf is the rawId of the agent typed in the filter: a display name
  // the console knows, a user id or a raw id.
  agentOf(text) {
    const t = text.trim().toLowerCase();
    if (!t) return '';
    for (const a of this.app.model.agents.values()) if ((a.displayName || '').toLowerCase() === t) return a.rawId;
    return rawIdOf(text);
  }

  // nameOf is an identity's display name, as the console knows it.
  nameOf(raw) {
    const m = this.app.model;
    const a = m.agents.get(raw);
    if (raw === this.app.me.rawId) return partyName(this.app.me.displayName, raw);
    return partyName((a && a.displayName) || m.names.get(raw), raw);
  }

  // rows groups a page's calls into conversations: every identity's view
  // of one call (same serverCallId) is one row, shown through an agent's
  // view (the one who placed it, when both are agents), listing the agents.
  // A conversation already on the newer page is not shown again.
  rows(items) {
    const before = this.pageServerIds[this.cursors.length - 2];
    const agents = this.app.model.agents;
    const rank = (c) => (agents.has(c.agentId) || c.agentId === this.app.me.rawId ? 0 : 2) + (c.direction === 'Outgoing' ? 0 : 1);
    const groups = new Map();
    const out = [];
    for (const c of items) {
      const key = c.serverCallId || c.id;
      if (before && c.serverCallId && before.has(c.serverCallId)) continue;
      let g = groups.get(key);
      if (!g) {
        g = { main: c, views: [] };
        groups.set(key, g);
        out.push(g);
      } else if (rank(c) < rank(g.main)) {
        g.main = c;
      }
      g.views.push(c);
    }
    for (const g of out) {
      const staff = g.views.filter((c) => rank(c) < 2);
      g.agents = (staff.length ? staff : g.views).sort((a, b) => rank(a) - rank(b)).map((c) => c.agentId);
    }
    return out;
  }

  draw() {
    const page = this.page;
    const n = this.cursors.length;
    const rows = page ? this.rows(page.items) : [];
    patch(this.results, [
      this.error ? h('p', { class: 'error', role: 'alert' }, this.error) : null,
      this.loading ? h('p', { class: 'muted-text' }, 'Loading…') : null,
      page ? h('div', { class: 'table-scroll' }, h('table', { class: 'history-table' },
        h('caption', null, `Calls, newest first — page ${n}`, rows.length ? ` (${rows.length})` : ''),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Started'),
          this.supervisor ? h('th', { scope: 'col' }, 'Agent') : null,
          h('th', { scope: 'col' }, 'Direction'),
          h('th', { scope: 'col' }, 'With'),
          h('th', { scope: 'col' }, 'Outcome'),
          h('th', { scope: 'col' }, 'Length'),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Timeline')))),
        h('tbody', null, rows.length ? rows.map((g) => this.row(g))
          : h('tr', null, h('td', { colspan: this.supervisor ? 7 : 6 }, page.items.length
            ? 'The calls of this page are on the newer page already (each call once, with both agents).'
            : 'No call matches these filters.'))))) : null,
      page ? h('nav', { class: 'pager', 'aria-label': 'History pages' },
        h('button', { type: 'button', 'data-action': 'history-newer', disabled: n <= 1 || this.loading }, '← Newer'),
        h('button', { type: 'button', 'data-action': 'history-older', disabled: !page.nextCursor || this.loading }, 'Older →')) : null,
    ]);
  }

  row(g) {
    const c = g.main;
    const agents = g.agents.map((a) => this.nameOf(a));
    // Between two agents, "with" is the other agent, not the agent again.
    const withWho = g.agents.length > 1 ? agents.filter((_, i) => g.agents[i] !== c.agentId).join(', ') : callTitle(c);
    const live = !c.endTime;
    return h('tr', { key: c.id, 'data-call-id': c.id, 'data-server-call-id': c.serverCallId || null, 'data-live': live ? 'true' : null },
      h('td', null, dateTime(c.startTime)),
      this.supervisor ? h('td', { class: 'agents' }, agents.join(' → ')) : null,
      h('td', null, g.agents.length > 1 ? 'Between agents' : c.direction),
      h('td', null, withWho),
      h('td', { class: 'outcome' }, c.callEndReason ? endReasonText(c.callEndReason) : live ? `Live · ${callStateText[c.state] || c.state}` : callStateText[c.state] || c.state,
        c.wrapUpCode ? h('span', { class: 'wrap-up-code' }, ` · wrap-up: ${c.wrapUpCode}`) : null,
        c.queues?.length ? h('span', { class: 'call-queues' }, ` · queue: ${c.queues.join(', ')}`) : null),
      h('td', { class: 'length' }, live
        ? h('time', { datetime: c.startTime, 'data-since': c.startTime, 'data-live-text': true }, since(c.startTime))
        : duration(Date.parse(c.endTime) - Date.parse(c.startTime))),
      h('td', null, h('a', { href: `#/history/${encodeURIComponent(c.id)}`, 'aria-label': `Timeline: call with ${withWho} at ${dateTime(c.startTime)}` }, 'Timeline')));
  }

  // refresh brings live rows in line with the event stream: a call that
  // ended, or changed state, since the page was loaded.
  refresh() {
    if (!this.page) return;
    const m = this.app.model;
    // Names and who is an agent come with the snapshot, maybe after the page.
    const known = `${m.synced} ${m.agents.size} ${m.names.size}`;
    let changed = known !== this.known;
    this.known = known;
    for (const [i, c] of this.page.items.entries()) {
      if (c.endTime) continue;
      const ended = m.ended.find((e) => e.id === c.id);
      const now = ended || m.calls.get(c.id);
      if (!now) continue;
      if (ended) {
        this.page.items[i] = { ...c, state: 'Disconnected', callEndReason: ended.callEndReason, endTime: ended.endTime || ended._at };
        changed = true;
      } else if (now.state !== c.state) {
        this.page.items[i] = { ...c, state: now.state };
        changed = true;
      }
    }
    if (changed) this.draw();
  }

  async open(id) {
    const seq = ++this.detailSeq;
    this.detail = { loading: true };
    this.drawDetail();
    let detail;
    try {
      detail = { history: await get(`/api/history/calls/${esc(id)}`) };
    } catch (e) {
      detail = { error: `Loading call ${id} failed: ${describe(e)}` };
    }
    if (seq !== this.detailSeq) return;
    this.detail = detail;
    for (const u of this.audio.values()) if (typeof u === 'string') URL.revokeObjectURL(u);
    this.audio = new Map();
    this.drawDetail();
    const heading = this.detailEl.querySelector('h3');
    if (heading) heading.focus();
    this.loadAudio(seq, detail);
  }

  // loadAudio fetches the shown call's recordings for their players.
  async loadAudio(seq, detail) {
    const recs = (detail.history && detail.history.recordings) || [];
    for (const r of recs) {
      if (r.deletedAt) continue;
      let u;
      try {
        u = await loadRecordingAudio(detail.history.call.id, r);
      } catch (e) {
        u = { error: `Loading the recording failed: ${describe(e)}` };
      }
      if (seq !== this.detailSeq) {
        if (typeof u === 'string') URL.revokeObjectURL(u);
        return;
      }
      this.audio.set(r.id, u);
      this.drawDetail();
    }
  }

  drawDetail() {
    const d = this.detail;
    if (!d) return patch(this.detailEl, []);
    if (d.loading) return patch(this.detailEl, h('p', { class: 'muted-text' }, 'Loading the call…'));
    if (d.error) return patch(this.detailEl, h('p', { class: 'error', role: 'alert' }, d.error));
    const c = d.history.call;
    patch(this.detailEl, h('section', { class: 'timeline panel', 'aria-labelledby': 'timeline-h' },
      h('div', { class: 'section-head' },
        h('h3', { id: 'timeline-h', tabindex: '-1' }, 'Call with ', callTitle(c)),
        h('a', { href: '#/history', class: 'button-link' }, 'Close')),
      h('dl', { class: 'facts' },
        h('dt', null, 'Call id'), h('dd', null, h('code', null, c.id)),
        h('dt', null, 'Agent'), h('dd', null, this.nameOf(c.agentId), ' ', h('span', { class: 'muted-text' }, c.agentId)),
        h('dt', null, 'Kind'), h('dd', null, kindText[c.kind] || c.kind, ' · ', c.direction),
        h('dt', null, 'Started'), h('dd', null, dateTime(c.startTime)),
        h('dt', null, 'Ended'), h('dd', null, c.endTime ? `${dateTime(c.endTime)} — ${endReasonText(c.callEndReason)}` : 'still live')),
      h('h4', null, 'Participants'),
      h('ul', { class: 'plain' }, (c.remoteParticipants || []).map((p) => h('li', { key: p.rawId },
        h('strong', null, partyName(p.displayName, p.rawId)), ` ${p.rawId} — ${participantStateText[p.state] || p.state}`,
        p.callEndReason ? ` — ${endReasonText(p.callEndReason)}` : ''))),
      recordingList(d.history.recordings, this.audio),
      h('h4', null, 'Timeline'),
      h('ol', { class: 'timeline-list' }, (d.history.timeline || []).map((t, i) => h('li', { key: String(i) },
        h('time', { datetime: t.at }, clockTime(t.at, true)), ' ',
        h('strong', null, t.type), ' ',
        h('span', null, summarize(t)),
        t.actor ? h('span', { class: 'muted-text' }, ` — by ${t.actor.kind}${t.actor.rawId ? ' ' + (t.actor.displayName || this.nameOf(t.actor.rawId)) : ''}`) : '')))));
  }

  actions() {
    return {
      'history-older': () => {
        if (this.loading || !this.page || !this.page.nextCursor) return;
        this.load([...this.cursors, this.page.nextCursor]);
      },
      'history-newer': () => {
        if (this.loading || this.cursors.length <= 1) return;
        this.load(this.cursors.slice(0, -1));
      },
    };
  }

  keys() {
    return {};
  }
}

// summarize says what a timeline entry's data means.
function summarize(t) {
  const d = t.data || {};
  switch (t.type) {
    case 'stateChanged': return `${d.oldState} → ${d.state}`;
    case 'participantStateChanged': return `${d.participant}: ${d.oldState} → ${d.state}`;
    case 'isMutedChanged': return `${d.participant || 'agent'} ${d.isMuted ? 'muted' : 'unmuted'}`;
    case 'isIncomingAudioMutedChanged': return d.isMuted ? 'incoming audio muted' : 'incoming audio unmuted';
    case 'mutedByOthers': return `muted by ${d.by}`;
    case 'isSpeakingChanged': return `${d.participant} ${d.isSpeaking ? 'speaking' : 'stopped speaking'}`;
    case 'kindChanged': return `now ${kindText[d.kind] || d.kind}`;
    case 'callEnded': return endReasonText(d.callEndReason);
    case 'remoteParticipantsUpdated': {
      const add = (d.added || []).map((p) => '+' + p.rawId);
      const rem = (d.removed || []).map((p) => '−' + p.rawId);
      return add.concat(rem).join(' ');
    }
    case 'callsUpdated': return (d.added || []).length ? 'listed' : 'removed from the list';
    case 'incomingCall': return 'ringing';
    case 'lobbyChanged': return d.action === 'admitted'
      ? `${d.participant} admitted from the lobby by ${d.admittedBy} after ${Math.round((d.waitedMs || 0) / 1000)} s`
      : `${d.participant} waits in the lobby`;
    case 'dtmf': return `${d.participant} keyed ${d.count} DTMF tone${d.count === 1 ? '' : 's'}`;
    case 'transferUpdated': {
      const to = d.queue ? `queue ${d.queue}` : d.target || '';
      const words = {
        blind: `transferred to ${to}`, consult: `consulting ${to}`, completed: `transfer to ${to} completed`,
        canceled: `consult with ${to} canceled`, merged: 'merged calls',
      };
      return words[d.step] || d.step || '';
    }
    default: return '';
  }
}
