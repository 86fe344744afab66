// "Where does it fit?": builds an allocation-candidates query from a flavor as Nova does (or takes a raw
// one), asks GET /compute/v1/fit, and shows which provider trees fit and why the others were left out. The last
// result stays in module state: the fleet page marks its rows with it.

import { h, clear, setStatus, clearErrorStatus, fmtNum, nodeHref, note, orderClasses } from '/ui/dom.js';
import { getJSON, describe, session, ApiError, errorMessage } from '/ui/api.js';

/** The last fit result: {query, candidates, fitting: Set(uuid), excluded: Map(uuid → reasons), doc}. */
export const fitState = { result: null, form: { vcpus: '2', memory: '2048', disk: '10', extra: '', raw: '' } };
export function clearFit() { fitState.result = null; }

/** Parses extra specs, one key=value a line ('#' starts a comment). Returns {specs: [[k, v]], errors}. */
export function parseExtraSpecs(text) {
  const specs = [];
  const errors = [];
  String(text || '').split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) { errors.push(`line ${i + 1}: expected key=value`); return; }
    specs.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  });
  return { specs, errors };
}

const CLASS_RE = /^[A-Z0-9_]+$/;
const TRAIT_RE = /^[A-Z0-9_]+$/;

function orderResources(map) {
  return orderClasses([...map.keys()]).map((rc) => `${rc}:${map.get(rc)}`).join(',');
}

/**
 * Builds the allocation-candidates query for a flavor the way Nova does: resources=VCPU (or PCPU with
 * hw:cpu_policy=dedicated),MEMORY_MB,DISK_GB, overridden by resources[N]:CLASS=amount (0 removes), traits from
 * trait[N]:NAME=required|forbidden (forbidden as !NAME), hw:cpu_thread_policy with dedicated CPUs, group_policy.
 * Returns {query, errors, ignored}.
 */
export function buildFitQuery({ vcpus = 0, memory = 0, disk = 0, extra = '' } = {}) {
  const errors = [];
  const ignored = [];
  const num = (v, name) => {
    const text = String(v ?? '').trim();
    if (text === '') return 0;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) { errors.push(`${name} must be a whole number ≥ 0`); return 0; }
    return n;
  };
  const v = num(vcpus, 'vCPUs');
  const m = num(memory, 'memory');
  const d = num(disk, 'disk');
  const parsed = parseExtraSpecs(extra);
  errors.push(...parsed.errors);
  const groups = new Map(); // suffix → {resources: Map, required: Set, forbidden: Set}
  const group = (suffix) => {
    if (!groups.has(suffix)) groups.set(suffix, { resources: new Map(), required: new Set(), forbidden: new Set() });
    return groups.get(suffix);
  };
  const unnumbered = group('');
  const spec = new Map(parsed.specs);
  const dedicated = String(spec.get('hw:cpu_policy') || '').toLowerCase() === 'dedicated';
  if (v > 0) unnumbered.resources.set(dedicated ? 'PCPU' : 'VCPU', v);
  if (m > 0) unnumbered.resources.set('MEMORY_MB', m);
  if (d > 0) unnumbered.resources.set('DISK_GB', d);
  let groupPolicy = null;
  for (const [key, value] of parsed.specs) {
    let match;
    if ((match = /^resources([A-Za-z0-9_-]*):(.+)$/.exec(key))) {
      const rc = match[2].trim();
      const amount = Number(value);
      if (!CLASS_RE.test(rc)) { errors.push(`${key}: "${rc}" is not a resource class name`); continue; }
      if (!Number.isInteger(amount) || amount < 0) { errors.push(`${key}: the amount must be a whole number ≥ 0`); continue; }
      const g = group(match[1]);
      if (amount === 0) g.resources.delete(rc); else g.resources.set(rc, amount);
      // An explicit VCPU or PCPU amount replaces the flavor's CPUs of the other kind (as Nova does).
      if (match[1] === '' && amount > 0 && (rc === 'PCPU' || rc === 'VCPU')) g.resources.delete(rc === 'PCPU' ? 'VCPU' : 'PCPU');
    } else if ((match = /^trait([A-Za-z0-9_-]*):(.+)$/.exec(key))) {
      const trait = match[2].trim();
      if (!TRAIT_RE.test(trait)) { errors.push(`${key}: "${trait}" is not a trait name`); continue; }
      const g = group(match[1]);
      const want = value.toLowerCase();
      if (want === 'required') { g.required.add(trait); g.forbidden.delete(trait); }
      else if (want === 'forbidden') { g.forbidden.add(trait); g.required.delete(trait); }
      else errors.push(`${key}: the value must be required or forbidden`);
    } else if (key === 'hw:cpu_policy') {
      if (!['dedicated', 'shared', 'mixed'].includes(value.toLowerCase())) errors.push(`hw:cpu_policy: unknown policy "${value}"`);
    } else if (key === 'hw:cpu_thread_policy') {
      const policy = value.toLowerCase();
      if (dedicated && policy === 'isolate') unnumbered.forbidden.add('HW_CPU_HYPERTHREADING');
      else if (dedicated && policy === 'require') unnumbered.required.add('HW_CPU_HYPERTHREADING');
      else if (!['prefer', 'isolate', 'require'].includes(policy)) errors.push(`hw:cpu_thread_policy: unknown policy "${value}"`);
    } else if (key === 'group_policy') {
      if (!['none', 'isolate'].includes(value)) errors.push('group_policy must be none or isolate');
      else groupPolicy = value;
    } else {
      ignored.push(key);
    }
  }
  const parts = [];
  const suffixes = [...groups.keys()].sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b, undefined, { numeric: true })));
  let numbered = 0;
  for (const suffix of suffixes) {
    const g = groups.get(suffix);
    if (!g.resources.size && !g.required.size && !g.forbidden.size) continue;
    if (suffix !== '') {
      numbered += 1;
      if (!g.resources.size) { errors.push(`group ${suffix} asks for traits but no resources`); continue; }
    }
    if (g.resources.size) parts.push(`resources${suffix}=${orderResources(g.resources)}`);
    const traits = [...[...g.required].sort(), ...[...g.forbidden].sort().map((t) => `!${t}`)];
    if (traits.length) parts.push(`required${suffix}=${traits.join(',')}`);
  }
  if (numbered > 1 && !groupPolicy) groupPolicy = 'none';
  if (groupPolicy && numbered > 0) parts.push(`group_policy=${groupPolicy}`);
  if (!groups.get('').resources.size && numbered === 0) errors.push('Ask for at least one resource.');
  return { query: parts.join('&'), errors, ignored };
}

/** Normalises a raw query: no leading "?" and no surrounding spaces. */
export function cleanRaw(raw) { return String(raw || '').trim().replace(/^\?/, ''); }

/** Turns the API answer into the module's result. */
export function toResult(query, doc) {
  const fitting = new Set((doc.fitting || []).map((x) => x.uuid));
  const excluded = new Map((doc.excluded || []).map((x) => [x.uuid, x.reasons || []]));
  return { query, candidates: doc.candidates, fitting, excluded, doc, at: Date.now() };
}

const KIND_LABELS = {
  capacity: 'capacity', max_unit: 'max unit', min_unit: 'min unit', step_size: 'step size', no_inventory: 'no inventory',
  trait_missing: 'trait missing', trait_forbidden: 'forbidden trait', root_trait_missing: 'root trait missing',
  root_trait_forbidden: 'root trait forbidden', aggregate: 'aggregate', aggregate_forbidden: 'forbidden aggregate',
  not_in_tree: 'not in tree', nested_tree: 'nested tree', combination: 'combination',
};

function reasonEl(r) {
  const bits = [];
  if (r.group !== undefined && r.group !== null && r.group !== '') bits.push(`group ${r.group}`);
  if (r.resource_class) bits.push(r.resource_class);
  if (r.provider_name || r.provider) bits.push(`on ${r.provider_name || r.provider}`);
  if (r.requested !== undefined && r.requested !== null) bits.push(`requested ${fmtNum(r.requested)}`);
  if (r.limit !== undefined && r.limit !== null) bits.push(`limit ${fmtNum(r.limit)}`);
  if ((r.traits || []).length) bits.push(`traits ${r.traits.join(', ')}`);
  if ((r.aggregates || []).length) bits.push(`aggregates ${r.aggregates.join(', ')}`);
  return h('li', { class: 'reason', dataset: { kind: r.kind, rc: r.resource_class || null }, title: bits.join(' · ') },
    h('span', { class: 'reason-kind', text: KIND_LABELS[r.kind] || r.kind }), ' ', h('span', { class: 'reason-detail', text: r.detail || bits.join(' · ') || r.kind }));
}

export function mount(root, _params) {
  let alive = true;
  const page = h('div', { class: 'page page-fit' });
  root.appendChild(page);
  if (!session.placement) {
    page.appendChild(h('section', { class: 'panel' }, h('h2', null, 'Where does it fit?'),
      note('This server is an allot agent without Placement: there are no allocation candidates to ask about.', 'info')));
    return { ready: Promise.resolve(), unmount() { alive = false; } };
  }
  const f = fitState.form;
  const vcpus = h('input', { id: 'fit-vcpus', type: 'number', min: '0', step: '1', value: f.vcpus, inputmode: 'numeric' });
  const memory = h('input', { id: 'fit-memory', type: 'number', min: '0', step: '1', value: f.memory, inputmode: 'numeric' });
  const disk = h('input', { id: 'fit-disk', type: 'number', min: '0', step: '1', value: f.disk, inputmode: 'numeric' });
  const extra = h('textarea', { id: 'fit-extra', rows: '5', spellcheck: 'false', placeholder: 'hw:cpu_policy=dedicated\ntrait:HW_CPU_X86_AVX2=required\ntrait:CUSTOM_GPU_READY=forbidden\nresources:DISK_GB=0' });
  extra.value = f.extra;
  const raw = h('input', { id: 'fit-raw', type: 'text', spellcheck: 'false', autocomplete: 'off', placeholder: 'resources=VCPU:2,MEMORY_MB:2048&required=HW_CPU_X86_AVX2&member_of=…', value: f.raw });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'fit-submit' }, 'Where does it fit?');
  const errorEl = h('div', { id: 'fit-error', class: 'form-error', role: 'alert', hidden: true });
  const queryEl = h('code', { id: 'fit-query', class: 'query' });
  const hintEl = h('div', { class: 'small muted', id: 'fit-hint' });
  const form = h('form', { id: 'fit-form', class: 'fit-form', autocomplete: 'off', novalidate: true },
    h('div', { class: 'form-row' },
      h('label', null, 'vCPUs', vcpus), h('label', null, 'Memory (MB)', memory), h('label', null, 'Root disk (GB)', disk)),
    h('label', { class: 'block' }, 'Extra specs (key=value a line)', extra),
    h('label', { class: 'block' }, 'Or a raw allocation_candidates query (wins when not empty)', raw),
    h('div', { class: 'form-row' }, submit, h('span', { class: 'small muted' }, 'Query: '), queryEl), hintEl, errorEl);
  const summary = h('div', { id: 'fit-summary', class: 'fit-summary' });
  const map = h('div', { id: 'fit-map', class: 'fit-map', role: 'list' });
  const showSel = h('select', { id: 'fit-show' }, h('option', { value: 'all', text: 'All providers' }), h('option', { value: 'fit', text: 'Fitting' }), h('option', { value: 'out', text: 'Left out' }));
  const list = h('div', { id: 'fit-list', class: 'fit-list' });
  const results = h('section', { class: 'panel', id: 'fit-results', dataset: { state: 'idle' } }, h('h2', null, 'Result'), summary, map, h('div', { class: 'toolbar' }, showSel), list);
  page.append(h('section', { class: 'panel' }, h('h2', null, 'Where does it fit?'), form), results);

  function currentQuery() {
    f.vcpus = vcpus.value; f.memory = memory.value; f.disk = disk.value; f.extra = extra.value; f.raw = raw.value;
    const rawQuery = cleanRaw(raw.value);
    if (rawQuery) return { query: rawQuery, errors: [], ignored: [] };
    return buildFitQuery({ vcpus: vcpus.value, memory: memory.value, disk: disk.value, extra: extra.value });
  }

  function preview() {
    const q = currentQuery();
    queryEl.textContent = q.query || '–';
    hintEl.textContent = q.ignored.length ? `Not part of the Placement query (ignored here): ${q.ignored.join(', ')}` : '';
    return q;
  }
  for (const el of [vcpus, memory, disk, extra, raw]) el.addEventListener('input', preview);

  function showError(text) {
    errorEl.hidden = !text;
    errorEl.textContent = text || '';
  }

  let limit = 1000;
  function renderResult() {
    clear(summary); clear(map); clear(list);
    const result = fitState.result;
    if (!result) { summary.appendChild(note('Run a query to see which nodes can take the flavor.')); return; }
    const doc = result.doc;
    const fitting = doc.fitting || [];
    const excluded = doc.excluded || [];
    summary.dataset.fit = String(fitting.length);
    summary.dataset.out = String(excluded.length);
    summary.append(h('strong', { text: `${fitting.length} fit, ${excluded.length} left out` }),
      h('span', { class: 'muted', text: ` · ${fmtNum(doc.candidates ?? 0)} allocation candidates · ` }), h('code', { text: result.query }),
      ' ', h('a', { href: '#/fleet', text: 'see it on the fleet' }));
    const entries = [
      ...fitting.map((x) => ({ ...x, fits: true, reasons: [] })),
      ...excluded.map((x) => ({ ...x, fits: false, reasons: x.reasons || [] })),
    ].sort((a, b) => String(a.name).localeCompare(String(b.name), undefined, { numeric: true }));
    for (const e of entries) {
      const title = e.fits ? `${e.name}: fits` : `${e.name}: left out — ${e.reasons.map((r) => r.detail || r.kind).join('; ')}`;
      map.appendChild(h('a', { class: `fit-cell ${e.fits ? 'fits' : 'out'}`, href: `#/node/${encodeURIComponent(e.uuid)}`, title, role: 'listitem', 'aria-label': title, dataset: { uuid: e.uuid, fits: String(e.fits) } }));
    }
    const show = showSel.value;
    const shown = entries.filter((e) => show === 'all' || (show === 'fit' ? e.fits : !e.fits));
    // Left out first within the list: that is what one usually wants to read.
    shown.sort((a, b) => (a.fits - b.fits));
    for (const e of shown.slice(0, limit)) {
      list.appendChild(h('div', { class: 'fit-row', dataset: { uuid: e.uuid, fits: String(e.fits) } },
        h('span', { class: `fit-badge ${e.fits ? 'fits' : 'out'}`, text: e.fits ? 'fits' : 'left out' }),
        h('a', { class: 'fit-name', href: nodeHref(e.uuid), text: e.name || e.uuid, title: e.uuid }),
        e.reasons.length ? h('ul', { class: 'reasons' }, ...e.reasons.map(reasonEl)) : null));
    }
    if (shown.length > limit) {
      list.appendChild(h('button', { type: 'button', class: 'link', on: { click: () => { limit = Infinity; renderResult(); } } }, `Show all ${fmtNum(shown.length)}`));
    }
  }
  showSel.addEventListener('change', renderResult);

  async function run() {
    const q = preview();
    showError('');
    if (q.errors.length) { showError(q.errors.join(' · ')); return; }
    document.body.dataset.ready = '0';
    results.dataset.state = 'loading';
    submit.disabled = true;
    try {
      const doc = await getJSON(`/compute/v1/fit?${q.query}`, { placement: true });
      if (!alive) return;
      fitState.result = toResult(q.query, doc);
      results.dataset.state = 'done';
      clearErrorStatus();
      limit = 1000;
      renderResult();
    } catch (err) {
      if (!alive) return;
      results.dataset.state = 'error';
      if (err instanceof ApiError && err.status === 400) {
        showError(errorMessage(err.body, err.message));
      } else {
        const message = describe(err);
        if (message) { showError(message); setStatus(`Fit: ${message}`, 'error'); }
      }
    } finally {
      submit.disabled = false;
      if (alive) document.body.dataset.ready = '1';
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); run(); });

  preview();
  renderResult();
  if (fitState.result) results.dataset.state = 'done';
  return { ready: Promise.resolve(), unmount() { alive = false; } };
}
