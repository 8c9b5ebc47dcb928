// The console's model of what the event stream has said: calls, ringing
// calls, identities (for supervisors) and recently ended calls. apply()
// folds one event in; every call it changes gets a new version number, so
// views can reuse what they drew for calls that did not change.

import { actorName, shortRaw } from './format.js';

const MAX_ENDED = 20;

export class Model {
  constructor(self) {
    this.self = self; // rawId of the signed-in identity
    this.calls = new Map(); // id -> call
    this.incoming = new Map(); // id -> incoming call
    this.agents = new Map(); // rawId -> agent status (supervisors)
    this.ended = []; // ended calls, newest first
    this.names = new Map(); // rawId -> display name, learned from calls
    this.version = 0; // grows on every change
    this.synced = false;
    this.myStatus = null; // GET /api/me/status, then agentStatusChanged
  }

  touch(call) {
    call._v = ++this.version;
  }

  apply(ev) {
    this.version++;
    const d = ev.data || {};
    const call = ev.callId ? this.calls.get(ev.callId) : null;
    switch (ev.type) {
      case 'snapshot':
        this.calls.clear();
        this.incoming.clear();
        this.agents.clear();
        for (const c of d.calls || []) this.addCall(c);
        for (const ic of d.incomingCalls || []) this.incoming.set(ic.id, ic);
        for (const a of d.agents || []) this.agents.set(a.rawId, { ...a });
        this.synced = true;
        this.snapshots = (this.snapshots || 0) + 1; // the agent's status is read again after each
        const mine = (d.agents || []).find((a) => a.rawId === this.self);
        if (mine && mine.status && this.myStatus) this.myStatus = { ...this.myStatus, status: mine.status, chosenStatus: mine.chosenStatus };
        return;
      case 'connectionStateChanged':
        if (ev.agentId !== this.self) {
          const a = this.agents.get(ev.agentId) || { rawId: ev.agentId, displayName: '', role: '', activeCallId: '' };
          a.connectionState = d.newState;
          this.agents.set(ev.agentId, a);
        }
        return;
      case 'agentStatusChanged': {
        // Agent status: what dashboards show (Busy, Offline derived) and
        // what was chosen; the agent's own drives her status picker.
        if (ev.agentId === this.self) this.myStatus = d;
        const a = this.agents.get(ev.agentId);
        if (a) {
          a.status = d.status;
          a.chosenStatus = d.chosenStatus;
          a.statusSince = d.since;
        } else if (ev.agentId !== this.self) {
          this.agents.set(ev.agentId, {
            rawId: ev.agentId, displayName: '', role: '', activeCallId: '',
            connectionState: d.status === 'Offline' ? 'Disconnected' : 'Connected',
            status: d.status, chosenStatus: d.chosenStatus, statusSince: d.since,
          });
        }
        return;
      }
      case 'incomingCall':
        this.incoming.set(d.incomingCall.id, d.incomingCall);
        return;
      case 'callsUpdated':
        for (const c of d.added || []) {
          this.incoming.delete(c.id);
          this.addCall(c);
        }
        for (const c of d.removed || []) this.calls.delete(c.id);
        return;
      case 'callEnded': {
        this.incoming.delete(ev.callId);
        // Either side of a consult transfer ending ends the consult.
        for (const c of this.calls.values()) {
          if (c.consultCallId === ev.callId) {
            delete c.consultCallId;
            this.touch(c);
          }
        }
        const ended = { ...(d.call || call || { id: ev.callId }) };
        ended.callEndReason = d.callEndReason || ended.callEndReason;
        ended.state = 'Disconnected';
        ended.isActive = false;
        ended._at = ev.at;
        ended._actor = ev.actor || null;
        ended.endTime = ended.endTime || ev.at;
        if (ended.remoteParticipants === undefined && call) ended.remoteParticipants = call.remoteParticipants;
        this.touch(ended);
        this.calls.delete(ev.callId);
        this.ended.unshift(ended);
        if (this.ended.length > MAX_ENDED) this.ended.length = MAX_ENDED;
        const a = this.agents.get(ev.agentId);
        if (a && a.activeCallId === ev.callId) a.activeCallId = '';
        return;
      }
    }
    if (!call) return;
    switch (ev.type) {
      case 'stateChanged': {
        const wasHeld = isHold(call.state);
        call.state = d.state;
        call.isActive = d.isActive;
        if (d.state === 'LocalHold') call.heldTime = call.heldTime || ev.at;
        else call.heldTime = null;
        // Talk time leaves out time on hold: add up each hold as it ends.
        if (!wasHeld && isHold(d.state)) call._holdStart = ev.at;
        if (wasHeld && !isHold(d.state) && call._holdStart) {
          call._heldMs = (call._heldMs || 0) + Math.max(0, Date.parse(ev.at) - Date.parse(call._holdStart));
          call._holdStart = null;
        }
        if (d.state === 'Connected' && !call.connectedTime) call.connectedTime = ev.at;
        const a = this.agents.get(ev.agentId);
        if (a) {
          if (d.isActive) a.activeCallId = call.id;
          else if (a.activeCallId === call.id) a.activeCallId = '';
        }
        break;
      }
      case 'kindChanged':
        call.kind = d.kind;
        break;
      case 'transferUpdated':
        // A consult started on the agent's own call (callId: her consult
        // call); any other step ends it.
        if (d.step === 'consult' && d.agent === ev.agentId && d.callId) call.consultCallId = d.callId;
        else delete call.consultCallId;
        if (d.serverCallId) call.serverCallId = d.serverCallId; // moved into another conversation
        break;
      case 'monitorChanged': {
        // A supervisor started monitoring, changed her mode or left: her
        // own monitor leg, or the monitored call's participant.
        if (call.monitoredCallId && d.mode) call.monitorMode = d.mode;
        const p = participant(call, d.supervisor);
        if (p && d.mode) p.monitorMode = d.mode;
        break;
      }
      case 'recordingStateChanged': // d is the recording, or (another party) {state}
        call._recording = d.state === 'recording' || d.state === 'paused' ? d.state : '';
        break;
      case 'isMutedChanged':
        if (d.participant) {
          const p = participant(call, d.participant);
          if (p) p.isMuted = d.isMuted;
        } else {
          call.isMuted = d.isMuted;
          if (!d.isMuted) call._mutedBy = '';
        }
        break;
      case 'isIncomingAudioMutedChanged':
        call.isIncomingAudioMuted = d.isMuted;
        break;
      case 'mutedByOthers':
        call._mutedBy = d.by;
        call._mutedByName = (ev.actor && ev.actor.rawId === d.by && ev.actor.displayName) || '';
        break;
      case 'isSpeakingChanged': {
        const p = participant(call, d.participant);
        if (p) p.isSpeaking = d.isSpeaking;
        break;
      }
      case 'participantStateChanged': {
        const p = participant(call, d.participant);
        if (p) p.state = d.state;
        break;
      }
      case 'remoteParticipantsUpdated': {
        const gone = new Set((d.removed || []).map((p) => p.rawId));
        const list = (call.remoteParticipants || []).filter((p) => !gone.has(p.rawId));
        for (const p of d.added || []) {
          if (p.displayName) this.names.set(p.rawId, p.displayName);
          const i = list.findIndex((q) => q.rawId === p.rawId);
          if (i >= 0) list[i] = { ...p };
          else list.push({ ...p });
        }
        call.remoteParticipants = list;
        // Someone from outside the call (a supervisor) removed a
        // participant: the card says who removed whom.
        // (A monitoring supervisor who leaves removed nobody.)
        const removedByOther = ev.actor ? (d.removed || []).filter((p) => p.rawId !== ev.actor.rawId) : [];
        if (ev.actor && ev.actor.kind === 'supervisor' && removedByOther.length) {
          const who = removedByOther.map((p) => p.displayName || this.names.get(p.rawId) || shortRaw(p.rawId)).join(', ');
          call._notice = `${actorName(ev.actor, this.names)} removed ${who}`;
        }
        break;
      }
      default:
        return;
    }
    this.touch(call);
  }

  addCall(c) {
    const call = { ...c, remoteParticipants: (c.remoteParticipants || []).map((p) => ({ ...p })) };
    // Holds before the snapshot are not known; the one in progress is.
    call._heldMs = 0;
    call._holdStart = isHold(call.state) ? call.heldTime || null : null;
    for (const p of call.remoteParticipants) if (p.displayName) this.names.set(p.rawId, p.displayName);
    this.touch(call);
    this.calls.set(call.id, call);
  }

  // callsOf answers an identity's calls, oldest first.
  callsOf(agentId) {
    const out = [];
    for (const c of this.calls.values()) if (!agentId || c.agentId === agentId) out.push(c);
    out.sort(byStart);
    return out;
  }

  incomingOf(agentId) {
    const out = [];
    for (const c of this.incoming.values()) if (!agentId || c.agentId === agentId) out.push(c);
    out.sort(byStart);
    return out;
  }

  activeOf(agentId) {
    for (const c of this.calls.values()) if (c.agentId === agentId && c.isActive) return c;
    return null;
  }

  dismissEnded(id) {
    this.ended = this.ended.filter((c) => c.id !== id);
    this.version++;
  }
}

function isHold(state) {
  return state === 'LocalHold' || state === 'RemoteHold';
}

function participant(call, raw) {
  return (call.remoteParticipants || []).find((p) => p.rawId === raw);
}

function byStart(a, b) {
  return a.startTime < b.startTime ? -1 : a.startTime > b.startTime ? 1 : a.id < b.id ? -1 : 1;
}
