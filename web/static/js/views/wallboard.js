// The supervisor's queue wallboard: one row per queue with the calls
// waiting, the longest wait (ticking while calls wait), answered,
// abandoned, voicemails left and the service level. It loads GET /api/queues and each
// queue's stats, then follows queueStatsChanged events (this node's
// queues; a queue created later shows from its first event). load() runs
// again after every snapshot, so a reconnect catches up.

import { h, patch } from '../dom.js';
import { get, describe, ApiError } from '../api.js';

export class Wallboard {
  constructor(root) {
    this.root = root;
    this.stats = new Map(); // queue name -> { s: stats, at: ms received }
    this.error = '';
    this.loaded = false;
    this.timer = setInterval(() => {
      if (!this.root.isConnected) {
        clearInterval(this.timer);
        return;
      }
      if ([...this.stats.values()].some((e) => e.s.waiting > 0)) this.render();
    }, 1000);
  }

  async load() {
    try {
      const list = await get('/api/queues');
      const queues = Array.isArray(list) ? list : (list && list.queues) || [];
      const all = await Promise.all(queues.map((q) => get(`/api/queues/${encodeURIComponent(q.name)}/stats`)));
      for (const s of all) this.apply(s, false);
      this.error = '';
    } catch (err) {
      if (err instanceof ApiError && err.status === 501) {
        this.root.hidden = true; // this switchboard runs no queues
        return;
      }
      this.error = `Queues: ${describe(err)}`;
    }
    this.loaded = true;
    this.render();
  }

  // apply takes one queue's stats (a queueStatsChanged event's data).
  apply(s, render = true) {
    if (!s || !s.queue) return;
    this.stats.set(s.queue, { s, at: Date.now() });
    if (render) this.render();
  }

  render() {
    const rows = [...this.stats.keys()].sort().map((name) => {
      const { s, at } = this.stats.get(name);
      const longest = s.waiting > 0 ? Math.floor(s.longestWaitSeconds + (Date.now() - at) / 1000) : 0;
      return h('tr', { key: name, 'data-queue': name },
        h('th', { scope: 'row' }, name),
        h('td', { 'data-col': 'waiting' }, String(s.waiting)),
        h('td', { 'data-col': 'longest' }, s.waiting > 0 ? mmss(longest) : '–'),
        h('td', { 'data-col': 'answered' }, String(s.answered || 0)),
        h('td', { 'data-col': 'abandoned' }, String(s.abandoned || 0)),
        h('td', { 'data-col': 'voicemails' }, String(s.voicemails || 0)),
        h('td', { 'data-col': 'service' }, `${Math.round(s.serviceLevel)}%`,
          s.serviceLevelSeconds ? ` (${s.serviceLevelSeconds} s)` : ''));
    });
    patch(this.root, [
      h('h2', { id: 'wallboard-h' }, 'Queues'),
      this.error ? h('p', { class: 'error', role: 'alert' }, this.error) : null,
      rows.length
        ? h('table', { class: 'wallboard', 'aria-labelledby': 'wallboard-h' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Queue'), h('th', { scope: 'col' }, 'Waiting'),
            h('th', { scope: 'col' }, 'Longest wait'), h('th', { scope: 'col' }, 'Answered'),
            h('th', { scope: 'col' }, 'Abandoned'), h('th', { scope: 'col' }, 'Voicemails'),
            h('th', { scope: 'col' }, 'Service level'))),
          h('tbody', null, rows))
        : h('p', { class: 'empty' }, this.loaded ? 'No queues.' : 'Loading queues…'),
    ]);
  }
}

function mmss(sec) {
  const m = Math.floor(sec / 60);
  const s = sec % 60;
  return `${m}:${String(s).padStart(2, '0')}`;
}
