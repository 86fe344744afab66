// The API client: the session (auth mode, placement), the token (sessionStorage only), JSON requests with
// X-Auth-Token, error documents, and a cache of node hostnames shared by every page.

const TOKEN_KEY = 'allot.token';
export const PLACEMENT_VERSION = 'placement 1.39';

export const session = { auth: 'token', placement: true, loaded: false };

let unauthorizedHandler = () => {};
/** Called (once per burst) when the server answers 401: the token was cleared and login must show. */
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}
export class AuthError extends ApiError {
  constructor(message) { super(401, message); this.name = 'AuthError'; }
}

/** Reads /ui/session.json (public). On failure assumes token auth with Placement and says so. */
export async function loadSession() {
  try {
    const resp = await fetch('/ui/session.json', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const doc = await resp.json();
    session.auth = ['token', 'keystone', 'noauth'].includes(doc.auth) ? doc.auth : 'token';
    session.placement = doc.placement !== false;
    session.loaded = true;
    return null;
  } catch (err) {
    session.loaded = false;
    return `Could not read /ui/session.json (${err.message}); assuming token authentication.`;
  }
}

export function getToken() {
  if (session.auth === 'noauth') return 'admin';
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}
export function setToken(token) { try { sessionStorage.setItem(TOKEN_KEY, token); } catch { /* private mode */ } }
export function clearToken() { try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* ignore */ } }
export function hasToken() { return Boolean(getToken()); }

let unauthorizedPending = false;
/** Clears the token and shows the login form with a message (a 401 seen anywhere). */
export function reportUnauthorized(message) { unauthorized(message); }
function unauthorized(message) {
  if (session.auth === 'noauth') return;
  clearToken();
  if (unauthorizedPending) return;
  unauthorizedPending = true;
  // Several requests may fail together: report once.
  setTimeout(() => { unauthorizedPending = false; }, 0);
  try { unauthorizedHandler(message); } catch { /* the handler shows its own errors */ }
}

/** Headers for an API call. */
export function apiHeaders({ placement = false, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  const token = getToken();
  if (token) headers['X-Auth-Token'] = token;
  if (placement) headers['OpenStack-API-Version'] = PLACEMENT_VERSION;
  return headers;
}

/** The message of an error document ({"errors": [{"detail"…}]}), or the text of the body. */
export function errorMessage(body, fallback) {
  if (body && typeof body === 'object') {
    const first = Array.isArray(body.errors) ? body.errors[0] : null;
    if (first) {
      const detail = String(first.detail || first.title || '').trim();
      // Placement's details start with a generic sentence and then the useful one after a blank line.
      const parts = detail.split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
      return parts.length > 1 ? parts.slice(1).join(' ') : (parts[0] || fallback);
    }
    if (body.message) return String(body.message);
    if (body.error) return typeof body.error === 'string' ? body.error : (body.error.message || fallback);
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  return fallback;
}

/**
 * GETs a path and returns its JSON. Throws ApiError (status 0 when the server cannot be reached), or AuthError
 * after a 401 (the token is then cleared and the login form shown).
 */
export async function getJSON(path, options = {}) {
  const resp = await send(path, options);
  try {
    return await resp.json();
  } catch {
    throw new ApiError(resp.status, `The answer to ${path} is not JSON.`);
  }
}

/** GETs a path and returns its text. */
export async function getText(path, options = {}) {
  const resp = await send(path, { accept: 'text/plain', ...options });
  return resp.text();
}

async function send(path, options) {
  let resp;
  try {
    resp = await fetch(path, { headers: apiHeaders(options), cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    throw new ApiError(0, `Cannot reach the server (${path}): ${err.message}`);
  }
  if (resp.status === 401) {
    const message = 'The server refused the token (401 Unauthorized). Log in again.';
    unauthorized(message);
    throw new AuthError(message);
  }
  if (!resp.ok) {
    let body = null;
    const text = await resp.text().catch(() => '');
    try { body = JSON.parse(text); } catch { body = text; }
    const fallback = `${resp.status} ${resp.statusText || 'error'}`;
    throw new ApiError(resp.status, `${path}: ${errorMessage(body, fallback)}`, body);
  }
  return resp;
}

/** Reports an error in the status line unless it is an AuthError (the login form already says it). */
export function describe(err) {
  if (err instanceof AuthError) return null;
  if (err instanceof ApiError) return err.message;
  return `Unexpected error: ${err && err.message ? err.message : err}`;
}

// ---- node hostnames ----

/** uuid → hostname of every node seen (lists, details, events). */
export const hostnames = new Map();
const missing = new Set();
const inflight = new Map();
const queue = [];
let active = 0;

export function rememberNodes(nodes) {
  for (const node of nodes || []) if (node && node.uuid) hostnames.set(node.uuid, node.hostname);
}

function pump() {
  while (active < 4 && queue.length) {
    const { uuid, resolve } = queue.shift();
    active += 1;
    getJSON(`/compute/v1/nodes/${encodeURIComponent(uuid)}`)
      .then((node) => { hostnames.set(uuid, node.hostname); resolve(node.hostname); })
      .catch(() => { missing.add(uuid); resolve(null); })
      .finally(() => { active -= 1; inflight.delete(uuid); pump(); });
  }
}

/** The hostname of a node: from the cache, or GET /compute/v1/nodes/<uuid> (four at a time). Null if unknown. */
export function hostnameOf(uuid) {
  if (!uuid) return Promise.resolve(null);
  if (hostnames.has(uuid)) return Promise.resolve(hostnames.get(uuid));
  if (missing.has(uuid)) return Promise.resolve(null);
  if (inflight.has(uuid)) return inflight.get(uuid);
  const promise = new Promise((resolve) => queue.push({ uuid, resolve }));
  inflight.set(uuid, promise);
  pump();
  return promise;
}

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}
