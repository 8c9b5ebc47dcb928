// Words for what the API says: identifiers, states, end reasons, times.

// parseIdentifier turns what a person types (alice, +14255550123, a rawId
// such as 8:acs:alice or 8:orgid:u1) into the API's identifier and its rawId.
export function parseIdentifier(text) {
  const t = (text || '').trim();
  if (!t) throw new Error('enter a user id, a phone number or a raw id');
  const prefixes = [
    ['8:acs:', (id) => ({ communicationUserId: id })],
    ['4:', (id) => ({ phoneNumber: id })],
    ['8:orgid:', (id) => ({ microsoftTeamsUserId: id, isAnonymous: false, cloud: 'public' })],
    ['8:dod:', (id) => ({ microsoftTeamsUserId: id, isAnonymous: false, cloud: 'dod' })],
    ['8:gcch:', (id) => ({ microsoftTeamsUserId: id, isAnonymous: false, cloud: 'gcch' })],
    ['8:teamsvisitor:', (id) => ({ microsoftTeamsUserId: id, isAnonymous: true, cloud: 'public' })],
  ];
  for (const [prefix, make] of prefixes) {
    if (t.startsWith(prefix)) return { identifier: make(t.slice(prefix.length)), rawId: t };
  }
  if (t.startsWith('+')) return { identifier: { phoneNumber: t }, rawId: '4:' + t };
  if (t.includes(':')) return { identifier: { id: t }, rawId: t };
  return { identifier: { communicationUserId: t }, rawId: '8:acs:' + t };
}

// rawIdOf is parseIdentifier's rawId, or '' for empty input.
export function rawIdOf(text) {
  return (text || '').trim() ? parseIdentifier(text).rawId : '';
}

export function isPhoneRaw(raw) {
  return typeof raw === 'string' && raw.startsWith('4:');
}

// shortRaw is a rawId without its type prefix, as people read it.
export function shortRaw(raw) {
  if (!raw) return '';
  if (raw === '8:echo123') return 'echo bot';
  const m = /^(8:acs:|4:|8:orgid:|8:dod:|8:gcch:|8:teamsvisitor:)(.*)$/.exec(raw);
  return m ? m[2] : raw;
}

export function rawOfIdentifier(id) {
  if (!id) return '';
  if (id.rawId) return id.rawId;
  if (id.communicationUserId) return '8:acs:' + id.communicationUserId;
  if (id.phoneNumber) return '4:' + id.phoneNumber;
  if (id.id) return id.id;
  return '';
}

// partyName is a participant's or caller's name for a heading.
export function partyName(displayName, raw) {
  return displayName || shortRaw(raw) || 'unknown';
}

// callTitle names a call by the people in it.
export function callTitle(call) {
  if (call.kind === 'room') return 'Room ' + (call.roomId || '');
  const names = (call.remoteParticipants || []).map((p) => partyName(p.displayName, p.rawId));
  if (call.kind === 'group') {
    return names.length ? 'Group: ' + names.join(', ') : 'Group call';
  }
  if (names.length) return names[0];
  const caller = call.callerInfo || {};
  return partyName(caller.displayName, rawOfIdentifier(caller.identifier));
}

export const callStateText = {
  None: 'Not started',
  Connecting: 'Connecting',
  Ringing: 'Ringing',
  EarlyMedia: 'Early media',
  Connected: 'Active',
  LocalHold: 'On hold',
  RemoteHold: 'Held by the other side',
  InLobby: 'In the lobby',
  Disconnecting: 'Ending',
  Disconnected: 'Ended',
};

export const participantStateText = {
  Idle: 'Idle',
  Connecting: 'Connecting',
  Ringing: 'Ringing',
  Connected: 'Connected',
  Hold: 'On hold',
  EarlyMedia: 'Early media',
  InLobby: 'In the lobby',
  Disconnected: 'Left',
};

export const kindText = { oneToOne: '1:1 call', group: 'Group call', room: 'Room' };

// callKindLine is the line under a card's title: which way the call went
// and, unless it is the usual 1:1 call, what kind it is.
export function callKindLine(call) {
  const dir = call.direction === 'Outgoing' ? 'Outgoing' : 'Incoming';
  if (call.kind === 'oneToOne' || !call.kind) return `${dir} call`;
  return `${kindText[call.kind] || 'Call'} · ${dir.toLowerCase()}`;
}

// endReasons are the contract's end reasons, in words.
export const endReasons = [
  { code: 0, subCode: 0, text: 'hung up' },
  { code: 0, subCode: 4097, text: 'ended for everyone' },
  { code: 0, subCode: 5000, text: 'the other side hung up' },
  { code: 0, subCode: 5300, text: 'removed from the call' },
  { code: 487, subCode: 0, text: 'canceled before it was answered' },
  { code: 603, subCode: 0, text: 'declined' },
  { code: 480, subCode: 0, text: 'nobody answered, or the callee is not connected' },
  { code: 410, subCode: 0, text: 'media or network lost' },
  { code: 503, subCode: 0, text: 'the switchboard stopped during the call' },
  { code: 503, subCode: 1, text: 'the switchboard was shut down' },
];

// endCodes are the history's outcome filter: a code, or code/subCode.
export const endCodes = [
  { code: 0, text: 'normal end' },
  { code: '0/4097', text: 'ended for everyone' },
  { code: '0/5300', text: 'removed from the call' },
  { code: 410, text: 'media lost' },
  { code: 480, text: 'no answer / not connected' },
  { code: 487, text: 'canceled' },
  { code: 503, text: 'switchboard stopped' },
  { code: 603, text: 'declined' },
];

// actorName is who caused an event, as people read it: the name the
// actor's token carries, else a name learned from calls, else its id.
export function actorName(actor, names) {
  if (!actor) return '';
  return actor.displayName || (names && names.get(actor.rawId)) || shortRaw(actor.rawId) || 'The switchboard';
}

// endWords says how a call ended, naming who ended it when someone from
// outside the call did (a supervisor): "Sam Reyes ended the call for
// everyone", "Sam Reyes removed Bob" (the other side of a 1:1 call), "Sam
// Reyes removed you from the call". Otherwise the end reason in words.
export function endWords(call, reason, actor, names) {
  const r = reason || {};
  if (actor && (actor.kind === 'supervisor' || actor.kind === 'remote') && r.code === 0) {
    const who = actorName(actor, names);
    if (r.subCode === 4097) return `${who} ended the call for everyone`;
    if (r.subCode === 5300) return `${who} removed you from the call`;
    if (r.subCode === 5000 && actor.kind === 'supervisor') return `${who} removed ${callTitle(call)}`;
  }
  return endReasonText(reason);
}

export function endReasonText(r) {
  if (!r) return '';
  const known = endReasons.find((e) => e.code === r.code && e.subCode === r.subCode);
  let text = known ? known.text : r.message || 'ended';
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return `${text} (${r.code}/${r.subCode})`;
}

// duration formats milliseconds as m:ss or h:mm:ss.
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export function since(iso) {
  return iso ? duration(Date.now() - Date.parse(iso)) : '';
}

export function clockTime(iso, withMillis) {
  if (!iso) return '';
  const d = new Date(iso);
  const base = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  return withMillis ? `${base}.${String(d.getMilliseconds()).padStart(3, '0')}` : base;
}

export function dateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return `${d.toLocaleDateString()} ${clockTime(iso)}`;
}

// errorText says in plain words what went wrong, from the contract's error
// code; the server's own message (which may name request fields) is used
// only for a code the console does not know.
export const errorText = {
  invalid_request: 'The switchboard could not use what was sent. Check what you typed and try again.',
  invalid_identifier: 'That is not someone the switchboard can call. Type a user name (alice), a phone number (+14255550123) or a raw id (8:acs:alice).',
  invalid_phone_number: 'That phone number is not valid. Write it with + and the country code, for example +14255550123.',
  invalid_group_id: 'That group id is not valid. A group id looks like 6f0b0e3c-8d43-4e2a-9a43-7c1c64b1c0de; anything else is joined as a room.',
  alternate_caller_id_required: 'Calling a phone number needs a caller id: type the number to show the callee (for example +14255550100) in "Caller id".',
  unauthorized: 'The token is not valid: it is mistyped, expired or revoked. Sign in with a new token.',
  forbidden: 'Your role does not allow this.',
  operation_not_supported_for_identity: 'This cannot be done for this kind of participant.',
  call_not_found: 'The call is not there any more: it may just have ended.',
  participant_not_found: 'That participant is not in the call any more.',
  not_found: 'The switchboard does not know this.',
  invalid_state: 'The call changed before this could happen (it may have just been answered, held or ended). Look at the call and try again.',
  not_supported_in_one_to_one: 'That is not possible in a 1:1 call; only a supervisor can mute the other side.',
  not_supported_in_rooms: 'A room cannot be ended for everyone; leave it instead.',
  unavailable: 'The switchboard cannot do this right now (its history store may be out of reach). Try again in a moment.',
  internal: 'Something went wrong inside the switchboard. Try again; if it happens again, tell your administrator.',
  rate_limited: 'Too many attempts. Wait a minute, then try again.',
  network_error: 'The switchboard could not be reached. Check the network, then try again.',
};
