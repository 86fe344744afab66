// The live page: the event stream (newest first, at most 500, metrics updates coalesced) and charts of
// /metrics polled every 2 s: claims per second, mean claim latency, audit duration over the last 5 minutes.

import { h, clear, setStatus, fmtClock, nodeHref, shortId } from '/ui/dom.js';
import { getText, describe, hostnames, AuthError } from '/ui/api.js';
import * as stream from '/ui/stream.js';
import { lineChart } from '/ui/charts.js';

const MAX_EVENTS = 500;
const WINDOW = 300;
const POLL_MS = 2000;

/** Parses Prometheus text: [{name, labels: {}, value}] (comments and bad lines skipped). */
export function parsePrometheus(text) {
  const out = [];
  for (const raw of String(text || '').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      const body = m[2].slice(1, -1);
      const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      while ((lm = re.exec(body))) labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    let value = Number(m[3]);
    if (m[3] === '+Inf') value = Infinity; else if (m[3] === '-Inf') value = -Infinity; else if (m[3] === 'NaN') value = NaN;
    out.push({ name: m[1], labels, value });
  }
  return out;
}

/** Sum of the samples of a metric (optionally only those whose labels match), or null when there is none. */
export function sumOf(samples, name, match = null) {
  let total = null;
  for (const smp of samples) {
    if (smp.name !== name) continue;
    if (match && !Object.entries(match).every(([k, v]) => smp.labels[k] === v)) continue;
    if (!Number.isFinite(smp.value)) continue;
    total = (total ?? 0) + smp.value;
  }
  return total;
}

/** A snapshot of the counters the charts need at time t (seconds). */
export function snapshot(samples, t) {
  return {
    t,
    claims: sumOf(samples, 'allot_claims_total'),
    refused: sumOf(samples, 'allot_claims_total', { result: 'refused' }),
    claimSum: sumOf(samples, 'allot_claim_duration_seconds_sum'),
    claimCount: sumOf(samples, 'allot_claim_duration_seconds_count'),
    auditSum: sumOf(samples, 'allot_audit_duration_seconds_sum'),
    auditCount: sumOf(samples, 'allot_audit_duration_seconds_count'),
  };
}

/** The chart series from consecutive snapshots. A counter that went down (restart) gives no point. */
export function series(snaps) {
  const claims = [], refused = [], latency = [], audit = [];
  let lastAudit = null;
  for (let i = 0; i < snaps.length; i += 1) {
    const b = snaps[i];
    const a = snaps[i - 1];
    if (i === 0) {
      if (b.auditCount > 0 && b.auditSum !== null) { lastAudit = b.auditSum / b.auditCount; audit.push([b.t, lastAudit * 1000]); }
      continue;
    }
    const dt = b.t - a.t;
    if (dt <= 0) continue;
    const delta = (x, y) => (x === null || y === null || y < x ? null : y - x);
    const dc = delta(a.claims, b.claims);
    claims.push([b.t, dc === null ? null : dc / dt]);
    const dr = delta(a.refused, b.refused);
    refused.push([b.t, dr === null ? (b.claims === null ? null : 0) : dr / dt]);
    const dn = delta(a.claimCount, b.claimCount);
    const ds = delta(a.claimSum, b.claimSum);
    latency.push([b.t, dn && ds !== null ? (ds / dn) * 1000 : null]);
    const an = delta(a.auditCount, b.auditCount);
    const as = delta(a.auditSum, b.auditSum);
    if (an && as !== null) lastAudit = as / an;
    else if (lastAudit === null && b.auditCount > 0 && b.auditSum !== null) lastAudit = b.auditSum / b.auditCount;
    audit.push([b.t, lastAudit === null ? null : lastAudit * 1000]);
  }
  return { claims, refused, latency, audit };
}

// Kept across visits, so coming back shows the recent past (polling only runs while the page is open).
const snaps = [];
const prefs = { filter: 'all' };

const FAMILIES = [
  ['all', 'All events'], ['claim.', 'Claims'], ['move.', 'Moves'], ['audit.', 'Audits'], ['node.', 'Nodes'],
  ['allocation.', 'Allocations'], ['usage.', 'Usage drift'], ['instance.', 'Instances'], ['compute.metrics.update', 'Host metrics'],
  ['problems', 'Problems only'],
];
const PROBLEMS = new Set(['claim.refused', 'audit.failed', 'audit.node_failed', 'node.invalid', 'node.remove_refused', 'usage.drift', 'instance.orphan', 'allocation.repaired', 'allocation.repair_refused', 'allocation.unknown']);

export function eventMatches(type, filter) {
  if (filter === 'all') return true;
  if (filter === 'problems') return PROBLEMS.has(type);
  return type === filter || type.startsWith(filter);
}

/** A short "k=v · k=v" summary of an event's fields. */
export function fieldsSummary(fields, max = 160) {
  const parts = [];
  for (const [k, v] of Object.entries(fields || {})) {
    let text = typeof v === 'number' && !Number.isInteger(v) ? String(Math.round(v * 100) / 100) : String(v);
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-/.test(text)) text = shortId(text);
    parts.push(`${k}=${text}`);
  }
  const out = parts.join(' · ');
  return out.length > max ? `${out.slice(0, max - 1)}…` : out;
}

function eventRow(e) {
  const family = e.type.split('.')[0];
  const name = e.node ? (hostnames.get(e.node) || (e.fields && e.fields.hostname) || shortId(e.node)) : '';
  return h('li', {
    class: `event family-${family}${PROBLEMS.has(e.type) ? ' problem' : ''}`,
    dataset: { seq: e.sequence, type: e.type, node: e.node || null },
    title: JSON.stringify(e.fields || {}),
  },
  h('span', { class: 'ev-time', text: fmtClock(e.time) }),
  h('span', { class: 'ev-type', text: e.type }),
  e.node ? h('a', { class: 'ev-node', href: nodeHref(e.node), text: name }) : h('span', { class: 'ev-node' }),
  h('span', { class: 'ev-fields', text: fieldsSummary(e.fields) }));
}

export function mount(root) {
  let alive = true;
  const svgClaims = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svgClaims.id = 'chart-claims';
  const svgLatency = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svgLatency.id = 'chart-latency';
  const svgAudit = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svgAudit.id = 'chart-audit';
  const chart = (title, svg, legend) => h('figure', { class: 'chart-box' }, h('figcaption', null, title, legend || ''), svg);
  const charts = h('div', { class: 'charts' },
    chart('Claims per second', svgClaims, h('span', { class: 'legend-inline' }, h('span', { class: 'key series-all' }), 'all ', h('span', { class: 'key series-refused' }), 'refused')),
    chart('Mean claim latency (ms)', svgLatency),
    chart('Audit duration (ms)', svgAudit));
  const filter = h('select', { id: 'live-filter', title: 'Show events of type' }, ...FAMILIES.map(([v, t]) => h('option', { value: v, text: t })));
  filter.value = prefs.filter;
  const countEl = h('span', { class: 'count muted' });
  const list = h('ol', { id: 'live-events', class: 'events', reversed: true });
  const metricsNote = h('span', { class: 'small muted', id: 'metrics-note' });
  root.appendChild(h('div', { class: 'page page-live' },
    h('section', { class: 'panel' }, h('h2', null, 'Metrics ', h('span', { class: 'small muted', text: '(last 5 minutes, /metrics every 2 s) ' }), metricsNote), charts),
    h('section', { class: 'panel' }, h('h2', null, 'Events ', countEl), h('div', { class: 'toolbar' }, filter), list)));

  // ---- events ----
  const rowsBySeq = new Map();
  function renderAll() {
    clear(list);
    rowsBySeq.clear();
    const events = stream.recentEvents().filter((e) => eventMatches(e.type, prefs.filter)).slice(-MAX_EVENTS).reverse();
    for (const e of events) { const row = eventRow(e); rowsBySeq.set(e.sequence, row); list.appendChild(row); }
    countEl.textContent = `(${events.length} shown)`;
  }
  let pending = [];
  let flushTimer = null;
  function flush() {
    flushTimer = null;
    if (!alive) return;
    const batch = pending;
    pending = [];
    const frag = document.createDocumentFragment();
    for (const e of batch.reverse()) {
      if (!eventMatches(e.type, prefs.filter)) continue;
      if (e.type === 'compute.metrics.update') {
        // One row per node for host metrics: replace the previous one.
        for (const [seq, row] of rowsBySeq) {
          if (row.dataset.type === e.type && (row.dataset.node || '') === (e.node || '')) { row.remove(); rowsBySeq.delete(seq); break; }
        }
      }
      const row = eventRow(e);
      rowsBySeq.set(e.sequence, row);
      frag.appendChild(row);
    }
    list.insertBefore(frag, list.firstChild);
    while (list.childElementCount > MAX_EVENTS) {
      const last = list.lastElementChild;
      rowsBySeq.delete(Number(last.dataset.seq));
      last.remove();
    }
    countEl.textContent = `(${list.childElementCount} shown)`;
  }
  const unsubscribe = stream.subscribe((event) => {
    pending.push(event);
    if (pending.length > MAX_EVENTS) pending.splice(0, pending.length - MAX_EVENTS);
    if (flushTimer === null) flushTimer = setTimeout(flush, 200);
  });
  filter.addEventListener('change', () => { prefs.filter = filter.value; pending = []; renderAll(); });

  // ---- metrics ----
  function drawCharts() {
    const now = Date.now() / 1000;
    const recent = snaps.filter((x) => x.t >= now - WINDOW - 4);
    const sr = series(recent);
    const xMin = now - WINDOW;
    lineChart(svgClaims, { series: [{ name: 'claims/s', cls: 'series-all', points: sr.claims }, { name: 'refused/s', cls: 'series-refused', points: sr.refused }], xMin, xMax: now, unit: '/s', label: 'claims per second' });
    lineChart(svgLatency, { series: [{ name: 'mean claim latency', cls: 'series-latency', points: sr.latency }], xMin, xMax: now, unit: 'ms', label: 'mean claim latency in milliseconds' });
    lineChart(svgAudit, { series: [{ name: 'audit duration', cls: 'series-audit', points: sr.audit }], xMin, xMax: now, unit: 'ms', label: 'audit duration in milliseconds' });
  }
  let pollTimer = null;
  let failing = false;
  async function poll() {
    pollTimer = null;
    try {
      const text = await getText('/metrics');
      if (!alive) return;
      const t = Date.now() / 1000;
      snaps.push(snapshot(parsePrometheus(text), t));
      while (snaps.length && snaps[0].t < t - WINDOW - 10) snaps.shift();
      const last = snaps[snaps.length - 1];
      metricsNote.textContent = last.claims === null && last.auditCount === null ? '— the server exports no claim or audit metrics yet' : '';
      if (failing) { failing = false; setStatus(''); }
    } catch (err) {
      if (!alive) return;
      if (err instanceof AuthError) return;
      failing = true;
      setStatus(`Metrics: ${describe(err)}`, 'error');
    }
    if (!alive) return;
    drawCharts();
    pollTimer = setTimeout(poll, POLL_MS);
  }

  renderAll();
  drawCharts();
  const ready = poll();
  return {
    ready,
    unmount() {
      alive = false;
      unsubscribe();
      if (pollTimer !== null) clearTimeout(pollTimer);
      if (flushTimer !== null) clearTimeout(flushTimer);
    },
  };
}
