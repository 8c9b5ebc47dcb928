// Recording on the console: the indicator and the start, pause, resume and
// stop buttons on a live call's card; the recording's state from
// recordingStateChanged events (and, after a reload, from the call's
// history, since a snapshot's calls do not carry it); playback of a
// call's recordings in history.

import { h } from './dom.js';
import { get, post, esc, session, ApiError } from './api.js';
import { button } from './views/common.js';
import { dateTime } from './format.js';

export const recordingRequests = {
  'record-start': (id) => post(`/api/calls/${esc(id)}/recording/start`),
  'record-pause': (id) => post(`/api/calls/${esc(id)}/recording/pause`),
  'record-resume': (id) => post(`/api/calls/${esc(id)}/recording/resume`),
  'record-stop': (id) => post(`/api/calls/${esc(id)}/recording/stop`),
};

export const recordingWords = {
  'record-start': 'Start recording', 'record-pause': 'Pause recording',
  'record-resume': 'Resume recording', 'record-stop': 'Stop recording',
};

// applyRecording folds a recordingStateChanged's data (a recording, or for
// the call's other parties just its state) into the call.
export function applyRecording(call, d) {
  call._recording = d.state === 'recording' || d.state === 'paused' ? d.state : '';
}

// recordingControls is a live call's recording indicator and, for who may
// record it (its agent, a supervisor), its buttons.
export function recordingControls(call, context, canControl) {
  const st = call._recording || '';
  const indicator = st === 'recording'
    ? h('span', { class: 'flag rec-on', role: 'status' }, '● Recording')
    : st === 'paused' ? h('span', { class: 'flag rec-paused', role: 'status' }, 'Recording paused') : null;
  if (!canControl) return indicator ? h('p', { class: 'flags recording' }, indicator) : null;
  const data = { call: call.id };
  const buttons = st === ''
    ? [button('Record', 'record-start', data, { context })]
    : [st === 'recording'
      ? button('Pause recording', 'record-pause', data, { context })
      : button('Resume recording', 'record-resume', data, { context, cls: 'primary-btn' }),
    button('Stop recording', 'record-stop', data, { context })];
  return h('div', { class: 'actions recording' }, indicator, buttons);
}

// restoreRecordings reads, after a snapshot, whether each of the calls is
// being recorded (from its history), then calls done.
export async function restoreRecordings(model, calls, done) {
  await Promise.all(calls.map(async (c) => {
    try {
      const hist = await get(`/api/history/calls/${esc(c.id)}`);
      const last = (hist.recordings || []).at(-1);
      if (last && !c._recording) {
        applyRecording(c, last);
        model.touch(c);
      }
    } catch {
      // Not in the history yet, or no right to read it: no indicator.
    }
  }));
  done();
}

// loadRecordingAudio fetches one recording (with the token: an <audio>
// element cannot send it) and answers a blob URL for an <audio> element;
// the caller revokes it.
export async function loadRecordingAudio(callId, rec) {
  const res = await fetch(`/api/history/calls/${esc(callId)}/recording?recordingId=${esc(rec.id)}`,
    { headers: { Authorization: 'Bearer ' + session.token } });
  if (!res.ok) {
    let e = null;
    try {
      e = (await res.json()).error;
    } catch {
      e = null;
    }
    throw new ApiError(res.status, (e && e.code) || 'http_' + res.status, (e && e.message) || res.statusText);
  }
  return URL.createObjectURL(await res.blob());
}

// recordingList is a call's recordings in history, each with a player
// once its audio loaded (urls: recording id -> blob URL or {error}).
export function recordingList(recs, urls) {
  if (!recs || !recs.length) return null;
  return [
    h('h4', null, 'Recordings'),
    h('ul', { class: 'plain recordings' }, recs.map((r) => {
      const u = urls.get(r.id);
      const paused = (r.pausedSpans || []).length;
      return h('li', { key: r.id, class: 'recording' },
        h('p', null, 'Started ', dateTime(r.startedAt),
          r.startedBy ? ` by ${r.startedBy.displayName || r.startedBy.rawId || r.startedBy.kind}` : '',
          ` · ${Math.round((r.durationMs || 0) / 1000)} s`,
          paused ? ` · paused ${paused === 1 ? 'once' : paused + ' times'} (silent there)` : '',
          r.stoppedBy ? ` · stopped by ${r.stoppedBy.kind === 'system' ? 'the switchboard' : r.stoppedBy.displayName || r.stoppedBy.rawId}` : '',
          r.state !== 'stopped' ? ` · ${r.state}` : ''),
        r.deletedAt ? h('p', { class: 'muted-text' }, `Deleted by the retention setting on ${dateTime(r.deletedAt)}`)
          : u && u.error ? h('p', { class: 'error' }, u.error)
            : u ? h('audio', { controls: true, preload: 'metadata', src: u, 'aria-label': `Recording started ${dateTime(r.startedAt)}` })
              : h('p', { class: 'muted-text' }, 'Loading the recording…'));
    })),
  ];
}
