// The HTTP side of the contract: the token kept for the tab, requests, and
// the server's errors as words.

import { errorText } from './format.js';

const TOKEN_KEY = 'switchboard.token';
const PERF_KEY = 'switchboard.perf';

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token.trim());
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
  // perf is set by ?perf=1 (the browser tests' latency measurement).
  get perf() {
    return sessionStorage.getItem(PERF_KEY) === '1';
  },
};

// tokenLife is a token's issue and expiry times (ms since the epoch, the
// server's clock), read from the token itself; null when it does not say.
export function tokenLife(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part));
    if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || claims.exp <= claims.iat) return null;
    return { issuedAt: claims.iat * 1000, expiresAt: claims.exp * 1000 };
  } catch {
    return null;
  }
}

// takeURLParams moves ?token= (the link `switchboard token --url` prints),
// #token= (where the sign-in with a company account lands: a fragment is
// sent to no server and in no Referer) and ?perf= into sessionStorage and
// out of the address bar, so the token does not linger in the history or
// on screen.
export function takeURLParams() {
  const url = new URL(location.href);
  let changed = false;
  const token = url.searchParams.get('token');
  if (token) {
    session.set(token);
    url.searchParams.delete('token');
    changed = true;
  }
  if (url.hash.startsWith('#token=')) {
    const fragToken = new URLSearchParams(url.hash.slice(1)).get('token');
    if (fragToken) session.set(fragToken);
    url.hash = '';
    changed = true;
  }
  const perf = url.searchParams.get('perf');
  if (perf !== null) {
    sessionStorage.setItem(PERF_KEY, perf === '1' ? '1' : '0');
    url.searchParams.delete('perf');
    changed = true;
  }
  if (changed) history.replaceState(null, '', url.pathname + url.search + url.hash);
}

// ApiError is an error answer, with the contract's code and message.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = null;

// whenUnauthorized sets what happens when any request answers 401.
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export async function request(method, path, body) {
  const headers = { Authorization: 'Bearer ' + session.token };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network_error', `the switchboard could not be reached (${e.message})`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = data && data.error;
    const err = new ApiError(res.status, (e && e.code) || 'http_' + res.status, (e && e.message) || text.trim() || res.statusText);
    if (res.status === 401 && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body === undefined ? {} : body);
export const del = (path) => request('DELETE', path);
export const put = (path, body) => request('PUT', path, body);

// describe is an error in plain words: a sentence for each of the
// contract's codes (the server's message may name request fields, such as
// alternateCallerId, which mean nothing to an agent), else the server's
// message.
export function describe(err) {
  if (err instanceof ApiError) {
    const text = errorText[err.code];
    if (text) return text;
    if (/^http_5/.test(err.code)) return `The switchboard answered with an error (${err.status}). Try again in a moment.`;
    return err.message;
  }
  return err && err.message ? err.message : String(err);
}

export function esc(s) {
  return encodeURIComponent(s);
}
