// Pieces both the agent's and the supervisor's views draw: buttons that say
// why they are disabled, participant rows, state badges, and the contract's
// rules for which control is allowed when.

import { h } from '../dom.js';
import {
  callStateText, participantStateText, kindText, partyName, shortRaw, isPhoneRaw, since, endReasonText, callTitle, clockTime,
} from '../format.js';

export const live = (call) => call.state === 'Connected' || call.state === 'LocalHold' || call.state === 'RemoteHold';

// Rules the contract sets; each answers '' when allowed, or why not.
export const rules = {
  muteOthers(call, overseeing) {
    if (call.kind === 'oneToOne' && !overseeing) return 'Muting the other side of a 1:1 call is not supported (contract: not_supported_in_one_to_one).';
    if (!live(call) && !overseeing) return `The call is ${callStateText[call.state] || call.state}: participants are muted in a live call.`;
    return '';
  },
  endForEveryone(call) {
    if (call.kind === 'room') return 'A room cannot be ended for everyone (contract: not_supported_in_rooms); leave it instead.';
    return '';
  },
  addParticipant(call) {
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
// why next to it (and to screen readers through aria-describedby).
export function button(label, action, data, opt = {}) {
  const attrs = { type: 'button', 'data-action': action, class: opt.cls || null };
  for (const k in data) attrs['data-' + k] = data[k];
  if (opt.pressed !== undefined) attrs['aria-pressed'] = opt.pressed ? 'true' : 'false';
  if (opt.label) attrs['aria-label'] = opt.label;
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

// timing is how long the call has been on hold or active, ticking.
export function timing(call) {
  if (call.state === 'LocalHold' && call.heldTime) {
    return h('p', { class: 'timing held-for' }, 'On hold for ', tick(call.heldTime));
  }
  if (call.isActive && call.connectedTime) {
    return h('p', { class: 'timing' }, 'Talking for ', tick(call.connectedTime));
  }
  if (call.state === 'RemoteHold') return h('p', { class: 'timing' }, 'The other side put this call on hold');
  if (call.state === 'Connecting' || call.state === 'Ringing') return h('p', { class: 'timing' }, 'Calling… since ', clockTime(call.startTime));
  return null;
}

export function tick(iso) {
  return h('time', { datetime: iso, 'data-since': iso, 'data-live-text': true }, since(iso));
}

export function speaking(p) {
  return p.isSpeaking
    ? h('span', { class: 'speaking on', role: 'img', 'aria-label': 'speaking' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), 'speaking')
    : h('span', { class: 'speaking', 'aria-hidden': 'true' });
}

export function flags(call) {
  const out = [];
  if (call.isMuted) out.push(h('span', { class: 'flag' }, call._mutedBy ? `Microphone muted by ${shortRaw(call._mutedBy)}` : 'Microphone muted'));
  if (call.isIncomingAudioMuted) out.push(h('span', { class: 'flag' }, 'Incoming audio muted'));
  return out.length ? h('p', { class: 'flags' }, out) : null;
}

// participantRows lists a call's remote participants with their state,
// speaking indicator and the mute and remove controls.
export function participantRows(call, opt) {
  const reasonId = `mute-reason-${call.id}`;
  const muteReason = rules.muteOthers(call, opt.overseeing);
  const rows = (call.remoteParticipants || []).map((p) => h('li', { key: p.rawId, class: 'participant' + (p.isSpeaking ? ' is-speaking' : '') },
    h('span', { class: 'p-name' }, partyName(p.displayName, p.rawId)),
    h('span', { class: 'p-raw' }, isPhoneRaw(p.rawId) ? shortRaw(p.rawId) : p.rawId),
    h('span', { class: 'p-state state-' + p.state }, participantStateText[p.state] || p.state),
    p.isMuted ? h('span', { class: 'flag' }, 'muted') : null,
    speaking(p),
    h('span', { class: 'p-actions' },
      button('Mute', 'mute-participant', { call: call.id, raw: p.rawId }, {
        label: `Mute ${partyName(p.displayName, p.rawId)}`,
        reason: muteReason || (p.isMuted ? 'Already muted' : ''),
        reasonId: muteReason ? reasonId : null,
      }),
      button('Remove', 'remove-participant', { call: call.id, raw: p.rawId }, { label: `Remove ${partyName(p.displayName, p.rawId)} from the call` }),
    )));
  return [
    h('ul', { class: 'participants', 'aria-label': 'Participants' }, rows.length ? rows : h('li', { class: 'empty' }, 'Nobody else is in the call.')),
    reasonNote(reasonId, muteReason),
  ];
}

export function endedCard(call, opt = {}) {
  return h('li', { key: call.id, class: 'ended-call' },
    h('span', { class: 'ended-title' }, opt.prefix || '', callTitle(call)),
    h('span', { class: 'end-reason' }, 'Ended: ', endReasonText(call.callEndReason)),
    h('span', { class: 'muted-text' }, clockTime(call._at || call.endTime)),
    opt.dismiss ? button('Dismiss', 'dismiss-ended', { call: call.id }, { label: `Dismiss ended call with ${callTitle(call)}` }) : null);
}

export function kindLabel(call) {
  return kindText[call.kind] || call.kind;
}
