// The event stream: one websocket to /api/events, reopened with backoff when
// it drops, and closed for good when the server says the token is no longer
// valid. A reopened connection passes the last seq it applied as sinceSeq:
// the server replays the events missed since (the first message is not a
// snapshot, and carries sinceSeq+1), or, when it no longer holds them,
// starts over with a fresh snapshot. Either way nothing is reloaded but
// what the server sends.

import { get, ApiError } from './api.js';

const RETRY_MAX_MS = 3000;

export class EventStream {
  // handlers: onEvent(ev, arrivedAt), onStatus(status, detail), onExpired().
  // status is 'connecting', 'open' or 'reconnecting'.
  constructor(token, handlers) {
    this.token = token;
    this.h = handlers;
    this.ws = null;
    this.stopped = false;
    this.expired = false;
    this.attempt = 0;
    this.reconnects = 0;
    this.lastSeq = null; // the seq of the last event applied, once a snapshot came
    this.timer = null;
    this.retiring = null; // the connection a refreshed token replaces
  }

  start() {
    this.h.onStatus('connecting', '');
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'signed out');
    this.retire();
  }

  // useToken moves the stream to a refreshed token: a connection opens
  // with it, resuming where the old one is, and the old one closes once the
  // new one is open (resuming) or has its snapshot, so the identity stays
  // connected throughout.
  useToken(token) {
    this.token = token;
    if (this.stopped) return;
    this.retire();
    this.retiring = this.ws;
    clearTimeout(this.timer);
    this.open();
  }

  retire() {
    if (this.retiring) this.retiring.close(1000, 'token refreshed');
    this.retiring = null;
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const resume = this.lastSeq !== null;
    const since = resume ? `&sinceSeq=${this.lastSeq}` : '';
    const ws = new WebSocket(`${scheme}//${location.host}/api/events?access_token=${encodeURIComponent(this.token)}${since}`);
    this.ws = ws;
    let first = true;
    // A resumed connection may have nothing to replay: it is live once open.
    ws.onopen = () => {
      if (this.ws !== ws || !resume) return;
      this.live();
    };
    ws.onmessage = (m) => {
      if (this.ws !== ws) return; // a connection being retired
      const arrived = performance.now();
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        this.h.onStatus('reconnecting', 'an event could not be read; reconnecting for a fresh snapshot');
        ws.close(4000, 'bad event');
        return;
      }
      // A connection's snapshot carries its stream's seq, whatever it is;
      // every other message must follow the last one applied.
      const snapshot = first && ev.type === 'snapshot';
      first = false;
      if (!snapshot && (this.lastSeq === null || ev.seq !== this.lastSeq + 1)) {
        this.h.onStatus('reconnecting', `events were missed (seq ${ev.seq} after ${this.lastSeq}); reconnecting`);
        ws.close(4000, 'seq gap');
        return;
      }
      if (ev.type === 'connectionStateChanged' && ev.data && ev.data.reason === 'invalidToken' && ev.agentId === this.h.self()) {
        // The connection's own last word, not its stream's: not resumed from.
        this.expired = true;
      } else {
        this.lastSeq = ev.seq;
      }
      if (snapshot) this.live();
      this.h.onEvent(ev, arrived);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws || this.stopped) return;
      if (this.expired || (e.code === 1008 && e.reason === 'invalidToken')) {
        this.stopped = true;
        this.h.onExpired();
        return;
      }
      const why = e.reason ? `${e.reason} (${e.code})` : `the connection closed (${e.code})`;
      this.retry(why);
    };
  }

  // live marks the current connection as the one in use.
  live() {
    this.retire();
    this.attempt = 0;
    this.h.onStatus('open', '');
  }

  // retry reconnects after a backoff, once the token is known to be valid:
  // a websocket refused for a bad token only says 1006. The backoff stops
  // growing at 3 s: a restarted switchboard has its consoles (and, through
  // them, their audio) back within a few seconds of answering again.
  retry(why) {
    this.attempt++;
    const delay = Math.min(RETRY_MAX_MS, 250 * 2 ** (this.attempt - 1)) * (0.75 + Math.random() / 2);
    this.h.onStatus('reconnecting', `${why}; reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${this.attempt})`);
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      try {
        await get('/api/me');
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          this.stopped = true;
          this.h.onExpired();
          return;
        }
        this.retry(err.message);
        return;
      }
      this.reconnects++;
      this.open();
    }, delay);
  }
}
