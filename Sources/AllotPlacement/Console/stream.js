// The one event stream of the app: GET /compute/v1/events read with fetch (EventSource cannot send
// X-Auth-Token), parsed as Server-Sent Events, fanned out to subscribers. Reconnects with ?after=<last id> and a
// growing pause; the top bar's indicator follows its state.

import { apiHeaders, getToken, hostnames, reportUnauthorized } from '/ui/api.js';

/** Incremental Server-Sent Events parser: push(text) returns the events completed by that text. */
export class SSEParser {
  constructor() { this.buffer = ''; this.reset(); this.lastId = null; }
  reset() { this.data = []; this.type = ''; this.id = null; this.hasData = false; }
  push(text) {
    this.buffer += text;
    const out = [];
    let start = 0;
    for (;;) {
      const m = /\r\n|\r|\n/g;
      m.lastIndex = start;
      const found = m.exec(this.buffer);
      if (!found) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more text.
      if (found[0] === '\r' && found.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(start, found.index);
      start = found.index + found[0].length;
      const event = this.line(line);
      if (event) out.push(event);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }
  line(line) {
    if (line === '') {
      if (!this.hasData) { this.reset(); return null; }
      const event = { id: this.id ?? this.lastId, type: this.type || 'message', data: this.data.join('\n') };
      this.reset();
      return event;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') { this.data.push(value); this.hasData = true; }
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) { this.id = value; this.lastId = value; }
    return null;
  }
}

const KEEP = 500;
const listeners = new Set();
const stateListeners = new Set();
const recent = [];
/** hostname → {uuid, reason, time} of nodes the last audits found invalid (they are not in the node list). */
export const invalidNodes = new Map();

let state = 'closed';
let stateReason = '';
let running = false;
let generation = 0;
let lastId = 0;
let reader = null;

export function getState() { return { state, reason: stateReason }; }
export function recentEvents() { return recent.slice(); }
export function lastSequence() { return lastId; }

/** Calls fn(event, {replay}) for every event; returns the unsubscribe function. */
export function subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); }
/** Calls fn(state, reason) at once and on every change of the connection. */
export function onState(fn) { stateListeners.add(fn); fn(state, stateReason); return () => stateListeners.delete(fn); }

function setState(next, reason = '') {
  if (next === state && reason === stateReason) return;
  state = next;
  stateReason = reason;
  for (const fn of stateListeners) { try { fn(state, reason); } catch { /* listener's own problem */ } }
}

/** Keeps an event in the recent list; compute.metrics.update keeps only the latest per node. */
function keep(event) {
  if (event.type === 'compute.metrics.update') {
    for (let i = recent.length - 1; i >= 0; i -= 1) {
      if (recent[i].type === event.type && recent[i].node === event.node) { recent.splice(i, 1); break; }
    }
  }
  recent.push(event);
  if (recent.length > KEEP) recent.splice(0, recent.length - KEEP);
}

function learn(event) {
  const f = event.fields || {};
  if (event.node && typeof f.hostname === 'string' && event.type.startsWith('node.') && event.type !== 'node.invalid' && event.type !== 'node.removed') {
    hostnames.set(event.node, f.hostname);
  }
  if (event.type === 'node.invalid' && f.hostname) {
    invalidNodes.set(f.hostname, { uuid: event.node, reason: f.reason || '', time: event.time });
  } else if ((event.type === 'node.registered' || event.type === 'node.updated' || event.type === 'node.removed') && f.hostname) {
    invalidNodes.delete(f.hostname);
  } else if (event.type === 'audit.pass' && Number(f.invalid) === 0) {
    invalidNodes.clear();
  }
}

function dispatch(raw, replayBefore) {
  let event;
  try { event = JSON.parse(raw.data); } catch { return; }
  if (!event || typeof event !== 'object') return;
  if (typeof event.sequence !== 'number') event.sequence = Number(raw.id) || 0;
  if (!event.type) event.type = raw.type;
  if (!event.fields || typeof event.fields !== 'object') event.fields = {};
  // Sequences only grow within a server process; a smaller one means the server restarted (and numbers again
  // from 1): take it, so that the next reconnection asks for what follows it.
  lastId = event.sequence;
  learn(event);
  keep(event);
  const meta = { replay: replayBefore !== null && Number(event.time) < replayBefore };
  for (const fn of listeners) { try { fn(event, meta); } catch { /* a page's problem, not the stream's */ } }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens the stream (idempotent). */
export function start() {
  if (running) return;
  running = true;
  generation += 1;
  loop(generation);
}

/** Closes the stream (logout, 401). */
export function stop() {
  running = false;
  generation += 1;
  const r = reader;
  reader = null;
  if (r) r.cancel().catch(() => {});
  setState('closed', 'stopped');
}

async function loop(gen) {
  let delay = 1000;
  let first = lastId === 0;
  while (running && gen === generation) {
    const url = `/compute/v1/events?after=${lastId}`;
    let gotEvents = false;
    try {
      if (!getToken()) { setState('closed', 'no token'); return; }
      const resp = await fetch(url, { headers: apiHeaders({ accept: 'text/event-stream' }), cache: 'no-store' });
      if (gen !== generation) { resp.body && resp.body.cancel().catch(() => {}); return; }
      if (resp.status === 401) {
        setState('closed', 'token refused');
        reportUnauthorized('The server refused the token (401 Unauthorized). Log in again.');
        return;
      }
      if (resp.status === 403 || resp.status === 404 || resp.status === 409) {
        // Not allowed for this token, or a server without tracker events: asking again would not help.
        setState('closed', resp.status === 403 ? 'events not allowed for this token' : 'this server has no tracker events');
        return;
      }
      if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
      // Events from before the connection (the replay of ?after=0) are not news: pages need not reload for them.
      const serverDate = Date.parse(resp.headers.get('Date') || '');
      const replayBefore = first ? (Number.isNaN(serverDate) ? Date.now() / 1000 : serverDate / 1000) : null;
      first = false;
      setState('open');
      reader = resp.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SSEParser();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || gen !== generation) break;
        const events = parser.push(decoder.decode(value, { stream: true }));
        for (const raw of events) { dispatch(raw, replayBefore); gotEvents = true; }
        if (gotEvents) delay = 1000;
      }
    } catch {
      // A dropped connection: try again below.
    }
    reader = null;
    if (!running || gen !== generation) return;
    setState('closed', `reconnecting in ${Math.round(delay / 1000)} s`);
    await sleep(delay);
    delay = Math.min(delay * 2, 30000);
  }
}
