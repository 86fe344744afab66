// The fleet page: a virtualised list of nodes fetched 100 at a time (limit/offset) as the user scrolls, with
// server-side search, state filter and sort; totals over the rows loaded; live refresh of the visible pages.

import { h, clear, debounce, setStatus, clearErrorStatus, orderClasses, STANDARD_CLASSES, classNumbers, resourceBar, fmtNum, fmtPair, nodeHref } from '/ui/dom.js';
import { getJSON, rememberNodes, describe, qs } from '/ui/api.js';
import * as stream from '/ui/stream.js';
import { fitState, clearFit } from '/ui/fit.js';

export const ROW_HEIGHT = 32;
export const PAGE_SIZE = 100;
const MARGIN = 8;

// Kept across visits of the page.
const prefs = { q: '', state: 'all', sort: 'hostname', scrollTop: 0 };

/** Whether an event may change what the fleet rows show. */
export function affectsFleet(type) {
  return type.startsWith('claim.') || type.startsWith('move.') || type.startsWith('node.') || type === 'audit.pass';
}

/** Sort key value of a node for a sort name (hostname, instances, used:RC, free:RC, usage:RC). */
export function sortValue(node, key) {
  if (key === 'hostname') return String(node.hostname || '').toLowerCase();
  if (key === 'instances') return Number((node.stats && node.stats.num_instances) || 0);
  const [kind, rc] = key.split(':');
  const n = rc ? classNumbers(node, rc) : null;
  if (!n) return null;
  if (kind === 'used') return n.used;
  if (kind === 'free') return n.free;
  if (kind === 'usage') return n.capacity > 0 ? n.used / n.capacity : (n.used > 0 ? Infinity : 0);
  return null;
}

/** Filters and sorts nodes as the server does (for a server that ignores the paging parameters). */
export function localQuery(nodes, { q = '', state = 'all', sort = 'hostname' } = {}) {
  const needle = q.trim().toLowerCase();
  let out = nodes.filter((n) => {
    if (state === 'enabled' && n.disabled) return false;
    if (state === 'disabled' && !n.disabled) return false;
    if (!needle) return true;
    return [n.hostname, n.uuid, n.host, ...(n.traits || [])].some((v) => String(v || '').toLowerCase().includes(needle));
  });
  const desc = sort.startsWith('-');
  const key = desc ? sort.slice(1) : sort;
  const byName = (a, b) => String(a.hostname).localeCompare(String(b.hostname));
  out = out.map((n) => ({ n, v: sortValue(n, key) }));
  out.sort((a, b) => {
    if (a.v === null && b.v === null) return byName(a.n, b.n);
    if (a.v === null) return 1;
    if (b.v === null) return -1;
    if (a.v < b.v) return desc ? 1 : -1;
    if (a.v > b.v) return desc ? -1 : 1;
    return byName(a.n, b.n);
  });
  return out.map((x) => x.n);
}

function sortLabel(value) {
  const desc = value.startsWith('-');
  const key = desc ? value.slice(1) : value;
  if (key === 'hostname') return desc ? 'Hostname Z→A' : 'Hostname A→Z';
  if (key === 'instances') return desc ? 'Most instances' : 'Fewest instances';
  const [kind, rc] = key.split(':');
  const what = { usage: 'usage %', used: 'used', free: 'free' }[kind] || kind;
  return `${rc} ${what} ${desc ? '↓' : '↑'}`;
}

function sortOptions(classes) {
  const values = ['hostname', '-hostname', '-instances', 'instances'];
  for (const rc of classes) for (const kind of ['usage', 'used', 'free']) values.push(`-${kind}:${rc}`, `${kind}:${rc}`);
  return values;
}

export function mount(root, _params, ctx) {
  let alive = true;
  let classes = STANDARD_CLASSES.slice();
  let epoch = 0; // bumps when the query changes: answers to older queries are dropped
  let total = null;
  let legacy = null; // the whole list when the server ignores limit/offset (no "total" in its answer)
  const pages = new Map(); // page → {nodes, stale}
  const loading = new Map(); // page → promise
  const rows = new Map(); // index → {el, node}
  let dataChanged = true; // the totals need drawing again
  let readyResolve;
  const ready = new Promise((resolve) => { readyResolve = resolve; });
  let firstLoad = true;

  // ---- DOM ----
  const search = h('input', { id: 'fleet-search', type: 'search', placeholder: 'Search hostname, uuid, host, trait  ( / )', autocomplete: 'off', spellcheck: 'false', value: prefs.q });
  const stateSel = h('select', { id: 'fleet-state', title: 'State' },
    h('option', { value: 'all', text: 'All states' }), h('option', { value: 'enabled', text: 'Enabled' }), h('option', { value: 'disabled', text: 'Disabled' }));
  stateSel.value = prefs.state;
  const sortSel = h('select', { id: 'fleet-sort', title: 'Sort' });
  const totalEl = h('span', { id: 'fleet-total', class: 'count', title: 'nodes matching' }, '…');
  const toolbar = h('div', { class: 'toolbar' }, search, stateSel, sortSel,
    h('span', { class: 'count-wrap' }, totalEl, h('span', { class: 'muted', text: ' nodes' })));
  const fitBanner = h('div', { id: 'fleet-fit', class: 'banner banner-fit', hidden: true });
  const invalidBanner = h('div', { id: 'fleet-invalid', class: 'banner banner-warn', hidden: true });
  const totals = h('div', { id: 'fleet-totals', class: 'totals' });
  const header = h('div', { class: 'fleet-header', role: 'row' });
  const spacer = h('div', { class: 'fleet-spacer' });
  const list = h('div', { id: 'fleet-list', class: 'fleet-list', tabindex: '0', role: 'grid', 'aria-label': 'nodes' }, spacer);
  const page = h('div', { class: 'page page-fleet' }, toolbar, fitBanner, invalidBanner, totals, h('div', { class: 'fleet-table' }, header, list));
  page.style.setProperty('--row-h', `${ROW_HEIGHT}px`);
  root.appendChild(page);

  function fillSortOptions() {
    const current = prefs.sort;
    clear(sortSel);
    const values = sortOptions(classes);
    if (!values.includes(current)) values.push(current);
    for (const v of values) sortSel.appendChild(h('option', { value: v, text: sortLabel(v) }));
    sortSel.value = current;
  }

  function sortArrow(key) {
    if (prefs.sort === key) return ' ▲';
    if (prefs.sort === `-${key}`) return ' ▼';
    return '';
  }

  function buildHeader() {
    clear(header);
    page.style.setProperty('--rc-count', String(classes.length));
    const cell = (text, key, title, first) => h('button', {
      type: 'button', class: `hcell${key ? ' sortable' : ''}`, title, dataset: { sortKey: key || null },
      on: key ? { click: () => setSort(prefs.sort === (first) ? (first.startsWith('-') ? first.slice(1) : `-${first}`) : first) } : {},
    }, text, key ? sortArrow(key) : '');
    header.append(
      h('span', { class: 'hcell', title: 'fit query result' }, ''),
      h('span', { class: 'hcell', title: 'state' }, ''),
      cell('Hostname', 'hostname', 'Sort by hostname', 'hostname'),
      cell('Inst.', 'instances', 'Sort by number of instances', '-instances'),
      ...classes.map((rc) => cell(rc, `usage:${rc}`, `Sort by ${rc} usage`, `-usage:${rc}`)));
  }

  // ---- data ----
  const params = () => ({ sort: prefs.sort, q: prefs.q.trim(), state: prefs.state === 'all' ? '' : prefs.state });

  function nodeAt(i) {
    const p = pages.get(Math.floor(i / PAGE_SIZE));
    return p ? p.nodes[i % PAGE_SIZE] || null : null;
  }

  function learnClasses(nodes) {
    const seen = new Set(classes);
    let changed = false;
    for (const n of nodes) for (const rc of Object.keys(n.inventories || {})) if (!seen.has(rc)) { seen.add(rc); changed = true; }
    if (changed) {
      classes = orderClasses([...seen]);
      fillSortOptions();
      buildHeader();
      dropRows();
    }
  }

  function setLegacy(all) {
    legacy = all;
    const sorted = localQuery(all, prefs);
    total = sorted.length;
    pages.clear();
    for (let p = 0; p * PAGE_SIZE < sorted.length; p += 1) pages.set(p, { nodes: sorted.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), stale: false });
    if (!sorted.length) pages.set(0, { nodes: [], stale: false });
  }

  function loadPage(p) {
    if (loading.has(p)) return loading.get(p);
    const myEpoch = epoch;
    const promise = getJSON(`/compute/v1/nodes${qs({ limit: PAGE_SIZE, offset: p * PAGE_SIZE, ...params() })}`)
      .then((doc) => {
        if (!alive || myEpoch !== epoch) return;
        const nodes = Array.isArray(doc.nodes) ? doc.nodes : [];
        rememberNodes(nodes);
        learnClasses(nodes);
        if (typeof doc.total !== 'number') {
          // A server that ignores limit/offset answered with every node: filter, sort and page here.
          setLegacy(nodes);
        } else {
          legacy = null;
          total = doc.total;
          pages.set(p, { nodes, stale: false });
        }
        dataChanged = true;
        clearErrorStatus();
      })
      .catch((err) => {
        if (!alive || myEpoch !== epoch) return;
        const message = describe(err);
        if (message) setStatus(`Fleet: ${message}`, 'error');
        const have = pages.get(p);
        if (!have || have.failed) pages.set(p, { nodes: [], stale: true, failed: true, failedAt: Date.now() });
      })
      .finally(() => { if (loading.get(p) === promise) loading.delete(p); });
    loading.set(p, promise);
    return promise;
  }

  function visibleRange() {
    const top = list.scrollTop;
    const height = list.clientHeight || 600;
    const count = total ?? 0;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - MARGIN);
    const last = Math.min(count - 1, Math.ceil((top + height) / ROW_HEIGHT) + MARGIN);
    return { first, last };
  }

  function neededPages() {
    if (total === null) return [0];
    const { first, last } = visibleRange();
    const out = [];
    if (last < first) return out;
    for (let p = Math.floor(first / PAGE_SIZE); p <= Math.floor(last / PAGE_SIZE); p += 1) out.push(p);
    return out;
  }

  /** Loads the pages the viewport needs (and refreshes stale ones); resolves when they are in. */
  async function ensurePages() {
    const wanted = neededPages().filter((p) => {
      const have = pages.get(p);
      // A page that failed is asked for again when it is in view a few seconds later.
      return !have || (have.stale && (!have.failed || Date.now() - have.failedAt > 4000));
    });
    if (!wanted.length) return;
    if (legacy) {
      await loadPage(0);
    } else {
      await Promise.all(wanted.map(loadPage));
    }
    if (!alive) return;
    render();
    // The total may have grown the viewport's needs (first answer): load what is now visible.
    const more = neededPages().filter((p) => !pages.has(p) && !loading.has(p));
    if (more.length) await ensurePages();
  }

  // ---- rendering ----
  function dropRows() {
    for (const { el } of rows.values()) el.remove();
    rows.clear();
  }

  function fitOf(uuid) {
    const result = fitState.result;
    if (!result) return null;
    if (result.fitting.has(uuid)) return { fits: true };
    if (result.excluded.has(uuid)) return { fits: false, reasons: result.excluded.get(uuid) };
    return null;
  }

  function buildRow(node, i) {
    const state = node.disabled ? 'disabled' : 'enabled';
    const fit = fitOf(node.uuid);
    const row = h('div', {
      class: `node-row${node.disabled ? ' disabled' : ''}${node.live === false ? ' not-live' : ''}`,
      role: 'row',
      dataset: {
        uuid: node.uuid, hostname: node.hostname, state, instances: Number((node.stats && node.stats.num_instances) || 0),
        index: i, fit: fit ? (fit.fits ? 'yes' : 'no') : null,
      },
    });
    row.appendChild(h('span', {
      class: `cell c-fit${fit ? (fit.fits ? ' fit-yes' : ' fit-no') : ''}`,
      title: fit ? (fit.fits ? 'fits the last fit query' : `left out: ${(fit.reasons || []).map((r) => r.detail || r.kind).join('; ')}`) : '',
    }, fit ? h('span', { class: 'fit-mark', text: fit.fits ? '✓' : '✗' }) : ''));
    row.appendChild(h('span', { class: 'cell c-state', title: `${state}${node.live === false ? ', not reported by its driver (not live)' : ''}` }, h('span', { class: `state-dot ${state}` })));
    row.appendChild(h('a', { class: 'cell c-host', href: nodeHref(node.uuid), title: `${node.hostname}\n${node.uuid}\nhost ${node.host || '–'} · driver ${node.driver || '–'}` }, node.hostname || node.uuid));
    row.appendChild(h('span', { class: 'cell c-inst num', text: fmtNum(Number((node.stats && node.stats.num_instances) || 0)) }));
    for (const rc of classes) {
      const n = classNumbers(node, rc);
      row.appendChild(h('span', { class: 'cell c-rc' }, n ? resourceBar(n) : ''));
    }
    return row;
  }

  function buildPlaceholder(i) {
    return h('div', { class: 'row-placeholder', dataset: { index: i } }, h('span', { class: 'ph-bar' }));
  }

  function render() {
    if (!alive) return;
    const count = total ?? 0;
    spacer.style.height = `${count * ROW_HEIGHT}px`;
    totalEl.textContent = total === null ? '…' : String(total);
    totalEl.dataset.total = total === null ? '' : String(total);
    const { first, last } = visibleRange();
    for (const [i, row] of rows) {
      if (i < first || i > last || i >= count) { row.el.remove(); rows.delete(i); }
    }
    for (let i = first; i <= last; i += 1) {
      const node = nodeAt(i);
      const have = rows.get(i);
      if (have && have.node === node) continue;
      const el = node ? buildRow(node, i) : buildPlaceholder(i);
      el.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
      if (have) have.el.replaceWith(el); else list.appendChild(el);
      rows.set(i, { el, node });
    }
    list.classList.toggle('empty', count === 0 && total !== null);
    if (dataChanged) { dataChanged = false; renderTotals(); }
  }

  function renderTotals() {
    if (!alive) return;
    const seen = new Map();
    for (const p of pages.values()) for (const n of p.nodes) seen.set(n.uuid, n);
    const sums = new Map();
    for (const n of seen.values()) {
      for (const rc of Object.keys(n.inventories || {})) {
        const x = classNumbers(n, rc);
        const t = sums.get(rc) || { rc, used: 0, reserved: 0, reservedScaled: 0, total: 0, capacity: 0, ratio: null };
        t.used += x.used; t.reserved += x.reserved; t.reservedScaled += x.reserved * x.ratio; t.total += x.total; t.capacity += x.capacity;
        sums.set(rc, t);
      }
    }
    clear(totals);
    const loaded = seen.size;
    const all = total !== null && loaded >= total;
    totals.dataset.loaded = String(loaded);
    totals.appendChild(h('div', { class: 'totals-label' },
      all ? `Totals over all ${fmtNum(loaded)} matching nodes` : `Totals over the ${fmtNum(loaded)} nodes loaded so far (of ${total === null ? '…' : fmtNum(total)} matching; scroll to load more)`));
    const grid = h('div', { class: 'totals-grid' });
    for (const rc of orderClasses([...sums.keys()])) {
      const t = sums.get(rc);
      const pct = t.capacity > 0 ? Math.round((t.used / t.capacity) * 100) : 0;
      grid.appendChild(h('div', { class: 'total-item', dataset: { rc, used: t.used, capacity: t.capacity } },
        h('div', { class: 'total-line' }, h('span', { class: 'total-rc', text: rc }),
          h('span', { class: 'total-num', text: `${fmtPair(rc, t.used, t.capacity)} used · ${pct}%` })),
        resourceBar(t, 'tbar')));
    }
    totals.appendChild(grid);
  }

  function renderFitBanner() {
    const result = fitState.result;
    fitBanner.hidden = !result;
    clear(fitBanner);
    if (!result) return;
    fitBanner.append(
      h('span', null, 'Fit query '), h('code', { text: result.query }),
      h('span', null, `: ${fmtNum(result.fitting.size)} fit, ${fmtNum(result.excluded.size)} left out. Rows are marked ✓ / ✗. `),
      h('a', { href: '#/fit', text: 'Details' }), ' ',
      h('button', { type: 'button', class: 'link', on: { click: () => { clearFit(); renderFitBanner(); dropRows(); render(); } } }, 'Clear'));
  }

  function renderInvalid() {
    const invalid = stream.invalidNodes;
    invalidBanner.hidden = invalid.size === 0;
    clear(invalidBanner);
    if (!invalid.size) return;
    invalidBanner.appendChild(h('strong', { text: `${invalid.size} node${invalid.size === 1 ? '' : 's'} reported by the driver but invalid (not in the list): ` }));
    const ul = h('ul', { class: 'invalid-list' });
    for (const [hostname, info] of invalid) {
      ul.appendChild(h('li', { class: 'invalid-node', dataset: { hostname, uuid: info.uuid || null } }, h('strong', { text: hostname }), ` — ${info.reason || 'invalid'}`));
    }
    invalidBanner.appendChild(ul);
  }

  // ---- query changes ----
  function resetQuery() {
    epoch += 1;
    pages.clear();
    loading.clear();
    if (legacy) {
      // The full list is at hand: filter and sort it again at once.
      setLegacy(legacy);
    } else {
      total = null;
    }
    dropRows();
    dataChanged = true;
    list.scrollTop = 0;
    prefs.scrollTop = 0;
    buildHeader();
    render();
    ensurePages();
  }

  function setSort(value) {
    prefs.sort = value;
    if (![...sortSel.options].some((o) => o.value === value)) sortSel.appendChild(h('option', { value, text: sortLabel(value) }));
    sortSel.value = value;
    resetQuery();
  }

  const onSearch = debounce(() => { if (prefs.q !== search.value) { prefs.q = search.value; resetQuery(); } }, 250);
  search.addEventListener('input', onSearch);
  search.addEventListener('keydown', (e) => { if (e.key === 'Escape') { search.value = ''; onSearch(); search.blur(); } });
  stateSel.addEventListener('change', () => { prefs.state = stateSel.value; resetQuery(); });
  sortSel.addEventListener('change', () => setSort(sortSel.value));

  let frame = null;
  const fetchLater = debounce(() => { if (alive) ensurePages(); }, 80);
  list.addEventListener('scroll', () => {
    prefs.scrollTop = list.scrollTop;
    if (frame === null) frame = requestAnimationFrame(() => { frame = null; render(); });
    fetchLater();
  }, { passive: true });
  const onResize = debounce(() => { if (alive) { render(); ensurePages(); } }, 100);
  window.addEventListener('resize', onResize);

  // ---- live ----
  let refreshing = false;
  let refreshAgain = false;
  async function refreshVisible() {
    if (!alive) return;
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    try {
      for (const p of pages.values()) p.stale = true;
      const wanted = legacy ? [0] : neededPages();
      const myEpoch = epoch;
      await Promise.all(wanted.map((p) => { loading.delete(p); return loadPage(p); }));
      if (!alive || myEpoch !== epoch) return;
      render();
      renderInvalid();
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    } finally {
      refreshing = false;
      if (refreshAgain && alive) { refreshAgain = false; scheduleRefresh(); }
    }
  }
  const scheduleRefresh = debounce(refreshVisible, 300);
  const unsubscribe = stream.subscribe((event, meta) => {
    if (event.type === 'node.invalid' || event.type === 'audit.pass' || event.type.startsWith('node.')) renderInvalid();
    if (!meta.replay && affectsFleet(event.type)) scheduleRefresh();
  });

  // ---- start ----
  fillSortOptions();
  buildHeader();
  renderFitBanner();
  renderInvalid();
  render();
  (async () => {
    await ensurePages();
    if (!alive) return;
    if (firstLoad && prefs.scrollTop > 0) {
      list.scrollTop = prefs.scrollTop;
      render();
      await ensurePages();
    }
    firstLoad = false;
    if (ctx && ctx.focusSearch) search.focus();
    readyResolve();
  })();

  return {
    ready,
    focusSearch() { search.focus(); search.select(); },
    unmount() {
      alive = false;
      unsubscribe();
      scheduleRefresh.cancel();
      onSearch.cancel();
      fetchLater.cancel();
      onResize.cancel();
      window.removeEventListener('resize', onResize);
      if (frame !== null) cancelAnimationFrame(frame);
    },
  };
}
