// Pieces both the agent's and the supervisor's views draw: buttons that say
// why they are disabled, participant rows, state badges, and the contract's
// rules for which control is allowed when.

import { h } from '../dom.js';
import {
  callStateText, participantStateText, kindText, partyName, shortRaw, isPhoneRaw, since, endWords, callTitle, clockTime, duration,
} from '../format.js';

export const live = (call) => call.state === 'Connected' || call.state === 'LocalHold' || call.state === 'RemoteHold';

// Rules the contract sets; each answers '' when allowed, or why not.
export const rules = {
  muteOthers(call, overseeing) {
    if (call.kind === 'oneToOne' && !overseeing) return 'Only a supervisor can mute the other side of a 1:1 call.';
    if (call.state === 'InLobby') return 'Nobody to mute while you wait in the lobby.';
    if (!live(call) && !overseeing) return `The call is ${callStateText[call.state] || call.state}: participants are muted in a live call.`;
    return '';
  },
  endForEveryone(call) {
    if (call.kind === 'room') return 'A room cannot be ended for everyone; leave it instead.';
    return '';
  },
  addParticipant(call) {
    if (call.state === 'InLobby') return 'You are waiting in the lobby: participants are added once the organizer admits you.';
    if (!live(call)) return 'Participants are added to a live call; this one is not answered yet.';
    return '';
  },
};

let ids = 0;
export function uid(prefix) {
  ids++;
  return `${prefix}-${ids}`;
}

// button is a control; data are data-* attributes; a disabled button says
// why next to it (and to screen readers through aria-describedby). Its
// accessible name starts with the words on it (opt.context adds which call
// or person it acts on), so that voice control finds it by what it shows.
export function button(label, action, data, opt = {}) {
  const attrs = { type: 'button', 'data-action': action, class: opt.cls || null };
  for (const k in data) attrs['data-' + k] = data[k];
  if (opt.on) attrs.class = (attrs.class ? attrs.class + ' ' : '') + 'is-on';
  if (opt.context) attrs['aria-label'] = `${label}: ${opt.context}`;
  if (opt.keys) attrs['aria-keyshortcuts'] = opt.keys;
  if (opt.reason) {
    attrs.disabled = true;
    attrs.title = opt.reason;
    if (opt.reasonId) attrs['aria-describedby'] = opt.reasonId;
  }
  const children = [label];
  if (opt.kbd) children.push(' ', h('kbd', { 'aria-hidden': 'true' }, opt.kbd));
  return h('button', attrs, ...children);
}

export function reasonNote(id, text) {
  return text ? h('p', { class: 'reason', id }, text) : null;
}

export function stateBadge(call) {
  const cls = call.isActive ? 'badge active' : call.state === 'LocalHold' || call.state === 'RemoteHold' ? 'badge held' : call.state === 'Disconnected' ? 'badge ended' : 'badge other';
  return h('span', { class: cls }, call.isActive ? 'Active' : callStateText[call.state] || call.state);
}

// timing is how long the call has been on hold, its talk time (time on
// hold left out) and its total time, ticking.
export function timing(call) {
  const parts = [];
  if (call.state === 'LocalHold' && call.heldTime) {
    parts.push(h('p', { class: 'timing held-for' }, 'On hold for ', tick(call.heldTime)));
  } else if (call.state === 'RemoteHold') {
    parts.push(h('p', { class: 'timing' }, 'The other side put this call on hold'));
  } else if (call.state === 'Connecting' || call.state === 'Ringing') {
    parts.push(h('p', { class: 'timing' }, 'Calling… since ', clockTime(call.startTime)));
  }
  if (call.connectedTime) {
    const talkStart = Date.parse(call.connectedTime) + (call._heldMs || 0);
    const held = call._holdStart ? Date.parse(call._holdStart) : 0;
    const talk = held
      ? h('span', { class: 'talk-time' }, duration(held - talkStart)) // stands still on hold
      : h('time', { class: 'talk-time', datetime: call.connectedTime, 'data-since': new Date(talkStart).toISOString(), 'data-live-text': true }, since(new Date(talkStart).toISOString()));
    parts.push(h('p', { class: 'timers' },
      h('span', null, 'Talk ', talk),
      h('span', null, 'Total ', h('time', { class: 'total-time', datetime: call.startTime, 'data-since': call.startTime, 'data-live-text': true }, since(call.startTime)))));
  }
  return parts;
}

export function tick(iso) {
  return h('time', { datetime: iso, 'data-since': iso, 'data-live-text': true }, since(iso));
}

export function speaking(p) {
  return p.isSpeaking
    ? h('span', { class: 'speaking on', role: 'img', 'aria-label': 'speaking' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'speaking')
    : h('span', { class: 'speaking', 'aria-hidden': 'true' });
}

// flags are the call's muted states; own says the viewer is the call's
// agent (who reads "your microphone").
export function flags(call, own = true) {
  const out = [];
  const by = call._mutedBy ? call._mutedByName || shortRaw(call._mutedBy) : '';
  if (call.isMuted) out.push(h('span', { class: 'flag' }, by ? (own ? `${by} muted your microphone` : `Microphone muted by ${by}`) : 'Microphone muted'));
  if (call.isIncomingAudioMuted) out.push(h('span', { class: 'flag' }, 'Incoming audio muted'));
  // A room with a lobby: who waits, who admits (lobby.go).
  let lobby = null;
  if (call.state === 'InLobby') lobby = own ? 'You are waiting in the lobby: the organizer admits you.' : 'Waiting in the lobby.';
  else if (call.isOrganizer) lobby = own ? 'You organize this room: you admit from its lobby.' : 'Organizes this room: admits from its lobby.';
  return [
    out.length ? h('p', { class: 'flags' }, out) : null,
    lobby ? h('p', { class: 'lobby-note', role: 'status' }, lobby) : null,
  ];
}

// participantRows lists a call's remote participants with their state,
// speaking indicator and the mute and remove controls. An agent's 1:1 call
// has no mute control for the other side (only a supervisor may), rather
// than a disabled one with a reason on every card. Raw ids are shown for
// phone numbers (the number) and for two people of the same name.
// monitorText says what a monitoring supervisor's mode means.
const monitorText = {
  listen: 'Listening: nobody hears the supervisor',
  whisper: 'Whispering: only the agent hears the supervisor',
  barge: 'Barged in: everyone hears the supervisor',
};

export function participantRows(call, opt) {
  const reasonId = `mute-reason-${call.id}`;
  const muteReason = rules.muteOthers(call, opt.overseeing);
  const noMute = call.kind === 'oneToOne' && !opt.overseeing;
  const list = call.remoteParticipants || [];
  const names = list.map((p) => partyName(p.displayName, p.rawId));
  const waiting = list.filter((p) => p.state === 'InLobby').length;
  const rows = list.map((p, i) => {
    const name = names[i];
    const raw = isPhoneRaw(p.rawId) ? shortRaw(p.rawId) : names.indexOf(name) !== names.lastIndexOf(name) ? p.rawId : '';
    if (p.state === 'InLobby') {
      // A joiner waiting in the room's lobby: the organizer (and a
      // supervisor) admits or turns away; only they see the row.
      return h('li', { key: p.rawId, class: 'participant in-lobby' },
        h('span', { class: 'p-name', title: p.rawId }, name),
        raw && raw !== name ? h('span', { class: 'p-raw' }, raw) : null,
        h('span', { class: 'p-state state-' + p.state }, participantStateText[p.state] || p.state),
        h('span', { class: 'p-actions' },
          button('Admit', 'lobby-admit', { call: call.id, raw: p.rawId }, { cls: 'primary-btn', context: `${name}, from the lobby` }),
          button('Turn away', 'remove-participant', { call: call.id, raw: p.rawId }, { context: `${name}, from the lobby` })));
    }
    return h('li', { key: p.rawId, class: 'participant' + (p.isSpeaking ? ' is-speaking' : '') },
      h('span', { class: 'p-name', title: p.rawId }, name),
      raw && raw !== name ? h('span', { class: 'p-raw' }, raw) : null,
      h('span', { class: 'p-state state-' + p.state }, participantStateText[p.state] || p.state),
      p.isMuted ? h('span', { class: 'flag' }, 'muted') : null,
      p.monitorMode ? h('span', { class: 'flag monitor', title: monitorText[p.monitorMode] }, `supervisor · ${p.monitorMode}`) : null,
      speaking(p),
      // A monitoring supervisor answers to supervisors only.
      p.monitorMode && !opt.overseeing ? null : h('span', { class: 'p-actions' },
        noMute ? null : button('Mute', 'mute-participant', { call: call.id, raw: p.rawId }, {
          context: name,
          reason: muteReason || (p.isMuted ? 'Already muted' : ''),
          reasonId: muteReason ? reasonId : null,
        }),
        button('Remove', 'remove-participant', { call: call.id, raw: p.rawId }, { context: `${name}, from the call` }),
      ));
  });
  const empty = call.state === 'InLobby' ? 'Waiting in the lobby: you hear nobody and nobody hears you until the organizer admits you.' : 'Nobody else is in the call.';
  return [
    waiting > 1 ? h('p', { class: 'lobby-all' }, button('Admit all', 'lobby-admit-all', { call: call.id }, { context: `${waiting} waiting in the lobby` })) : null,
    h('ul', { class: 'participants', 'aria-label': 'Participants' }, rows.length ? rows : h('li', { class: 'empty' }, empty)),
    noMute ? null : reasonNote(reasonId, muteReason),
  ];
}

// confirmEndAll asks before a call is ended for everyone: it cannot be
// undone and disconnects every participant. It answers whether to go on.
export function confirmEndAll(call, who) {
  const d = document.getElementById('confirm');
  d.querySelector('#confirm-h').textContent = 'End the call for everyone?';
  d.querySelector('#confirm-text').textContent = `Everyone in the call with ${callTitle(call)}${who ? ` (${who}'s call)` : ''} is disconnected. This cannot be undone.`;
  d.querySelector('#confirm-ok').textContent = 'End for everyone';
  d.returnValue = '';
  d.showModal();
  d.querySelector('#confirm-cancel').focus();
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
  });
}

export function endedCard(call, opt = {}) {
  return h('li', { key: call.id, class: 'ended-call', 'data-call-id': call.id },
    h('span', { class: 'ended-title' }, opt.prefix || '', callTitle(call)),
    h('span', { class: 'end-reason' }, 'Ended: ', endWords(call, call.callEndReason, call._actor, opt.names)),
    h('span', { class: 'muted-text' }, clockTime(call._at || call.endTime)),
    opt.dismiss ? button('Dismiss', 'dismiss-ended', { call: call.id }, { context: `ended call with ${callTitle(call)}` }) : null);
}

export function kindLabel(call) {
  return kindText[call.kind] || call.kind;
}

// notice is what someone outside the call did to it, in words ("Sam Reyes
// removed Dana Whitfield").
export function notice(call) {
  return call._notice ? h('p', { class: 'notice', role: 'note' }, call._notice) : null;
}
