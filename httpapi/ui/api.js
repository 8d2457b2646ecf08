// Requests to ProcMan's API. Every request is a same-origin fetch() to a
// relative URL. The token, when the server asks for one (401), is kept in
// sessionStorage and sent as "Authorization: Bearer" on every request.
// EventSource cannot send that header, so /events and log follows are read
// with fetch() and a stream reader (readStream).

const TOKEN_KEY = 'procman.token';

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let authNeeded = () => {};

export class AuthError extends Error {}

export class APIError extends Error {
  constructor(status, message, code, errors) {
    super(message);
    this.status = status;
    this.code = code || ''; // what went wrong, for programs: not_found, exists, invalid, ...
    this.errors = errors || []; // [{field, message}] for a refused definition
  }
}

export function hasToken() {
  return token !== '';
}

// whenAuthNeeded sets what a 401 does: fn is given what to tell the user.
export function whenAuthNeeded(fn) {
  authNeeded = fn;
}

// tryToken reports whether ProcMan takes candidate, and keeps it for the tab if it does.
export async function tryToken(candidate) {
  const res = await fetch('/jobs', { headers: { Authorization: 'Bearer ' + candidate }, cache: 'no-store' });
  if (res.status === 401) return false;
  token = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  return true;
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  token = '';
}

function headers(extra) {
  const h = Object.assign({}, extra);
  if (token) h.Authorization = 'Bearer ' + token;
  return h;
}

// api makes one request; a 401 asks for the token and throws AuthError.
// A PATCH body is a JSON merge patch (RFC 7396).
export async function api(method, path, body, signal) {
  const init = { method, headers: headers(), cache: 'no-store', signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    authNeeded(token ? 'The token was refused.' : '');
    throw new AuthError('a token is needed');
  }
  return res;
}

// apiErrorOf reads an error answer: {"error": "...", "code": "...", "errors": [...]}.
export async function apiErrorOf(res) {
  const text = await res.text();
  try {
    const v = JSON.parse(text);
    if (v && typeof v.error === 'string') return new APIError(res.status, v.error, v.code, Array.isArray(v.errors) ? v.errors : []);
  } catch (_) { /* not JSON */ }
  return new APIError(res.status, text.trim() || res.status + ' ' + res.statusText);
}

export async function errorOf(res) {
  return (await apiErrorOf(res)).message;
}

export async function apiJSON(method, path, body) {
  const res = await api(method, path, body);
  if (!res.ok) throw await apiErrorOf(res);
  return res.json();
}

// A job's name is one path segment: encoded, so that no name can reach
// another route (the server also refuses an encoded '/').
export const jobPath = (name) => '/job/' + encodeURIComponent(name);
export const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

// readStream calls onText with each decoded piece of the body until it ends.
export async function readStream(res, onText) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onText(value);
    }
  } finally {
    reader.releaseLock();
  }
}
