// Instances and moves: a filterable instance list, the moves with source → destination, and an SVG timeline
// of the moves (their last update and the move.* events seen on the stream).

import { h, clear, debounce, setStatus, clearErrorStatus, fmtAgo, fmtClock, flavorText, nodeHref, shortId, section, note, fmtNum } from '/ui/dom.js';
import { getJSON, describe, hostnames, hostnameOf } from '/ui/api.js';
import * as stream from '/ui/stream.js';
import { timeline } from '/ui/charts.js';

const MAX_ROWS = 500;
const prefs = { filter: '' };

/** Whether an instance matches a filter text (uuid, node uuid/hostname, flavor, states, project). */
export function instanceMatches(inst, text, hostnameMap = new Map()) {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  const hay = [inst.uuid, inst.node, hostnameMap.get(inst.node), inst.flavor && inst.flavor.name, inst.vm_state, inst.task_state, inst.project_id, inst.user_id];
  return hay.some((v) => v && String(v).toLowerCase().includes(needle));
}

function nodeLink(uuid) {
  const known = hostnames.get(uuid);
  const a = h('a', { href: nodeHref(uuid), class: 'node-ref', title: uuid, dataset: { node: uuid }, text: known || shortId(uuid) });
  if (!known) hostnameOf(uuid).then((name) => { if (name) a.textContent = name; });
  return a;
}

/** Lanes for the timeline: one per move (newest first), marks from its move.* events and its last update. */
export function moveLanes(migrations, events, limit = 24) {
  const byMigration = new Map();
  for (const e of events) {
    const id = e.fields && e.fields.migration;
    if (!id) continue;
    if (!byMigration.has(id)) byMigration.set(id, []);
    byMigration.get(id).push(e);
  }
  const known = new Map(migrations.map((m) => [m.uuid, m]));
  const ids = new Set([...known.keys(), ...byMigration.keys()]);
  const lanes = [];
  for (const id of ids) {
    const m = known.get(id);
    const evs = byMigration.get(id) || [];
    const marks = evs.map((e) => ({ t: Number(e.time), cls: `status-${String(e.fields.status || '').replace(/[^a-z-]/gi, '')}`, title: `${fmtClock(e.time)} ${e.type} → ${e.fields.status || ''}` }));
    if (m && m.updated_at && !marks.some((x) => Math.abs(x.t - m.updated_at) < 0.5)) {
      marks.push({ t: Number(m.updated_at), cls: `status-${String(m.status).replace(/[^a-z-]/gi, '')} last`, title: `${fmtClock(m.updated_at)} last update: ${m.status}` });
    }
    if (!marks.length) continue;
    const kind = m ? m.kind : (evs[0].type.replace('move.', ''));
    const latest = Math.max(...marks.map((x) => x.t));
    lanes.push({
      id, latest, open: Boolean(m && m.in_progress), marks,
      label: `${kind} ${shortId(m ? m.instance_uuid : (evs[0].fields.instance || id))}`,
      title: m ? `${m.kind} of instance ${m.instance_uuid}: ${hostnames.get(m.source_node) || m.source_node} → ${hostnames.get(m.dest_node) || m.dest_node}, ${m.status}` : `migration ${id}`,
      dataset: { migrationUuid: id },
    });
  }
  lanes.sort((a, b) => b.latest - a.latest);
  return lanes.slice(0, limit);
}

export function mount(root) {
  let alive = true;
  let instances = [];
  let migrations = [];
  const filter = h('input', { id: 'instances-filter', type: 'search', placeholder: 'Filter by uuid, node, flavor, state, project', value: prefs.filter, autocomplete: 'off' });
  const countEl = h('span', { id: 'instances-count', class: 'count' }, '…');
  const sInst = section('instances', 'Instances', ' ', countEl);
  const instBody = h('div', { id: 'instances-list', class: 'table-wrap' });
  sInst.body.append(h('div', { class: 'toolbar' }, filter), instBody);
  const movesCount = h('span', { class: 'count' }, '');
  const sMoves = section('moves', 'Moves', ' ', movesCount);
  const movesBody = h('div', { id: 'moves-list', class: 'table-wrap' });
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.id = 'moves-timeline';
  sMoves.body.append(h('h3', null, 'Timeline'), h('div', { class: 'timeline-wrap' }, svg), movesBody);
  root.appendChild(h('div', { class: 'page page-instances' }, sInst.section, sMoves.section));

  function renderInstances() {
    clear(instBody);
    const matching = instances.filter((i) => instanceMatches(i, prefs.filter, hostnames));
    countEl.textContent = prefs.filter.trim() ? `${fmtNum(matching.length)} of ${fmtNum(instances.length)}` : fmtNum(instances.length);
    if (!matching.length) { instBody.appendChild(note(instances.length ? 'No instance matches the filter.' : 'No instances.')); return; }
    const tbody = h('tbody');
    for (const inst of matching.slice(0, MAX_ROWS)) {
      tbody.appendChild(h('tr', { class: 'instance-row', dataset: { instanceUuid: inst.uuid, vmState: inst.vm_state, taskState: inst.task_state || null, node: inst.node } },
        h('td', { class: 'mono', text: inst.uuid }),
        h('td', null, nodeLink(inst.node)),
        h('td', { text: flavorText(inst.flavor) }),
        h('td', null, h('span', { class: `vm vm-${inst.vm_state}`, text: inst.vm_state }), inst.task_state ? h('span', { class: 'muted', text: ` / ${inst.task_state}` }) : null),
        h('td', { text: inst.project_id || '–' }),
        h('td', { class: 'muted', text: fmtAgo(inst.updated_at) })));
    }
    instBody.appendChild(h('table', { class: 'table' },
      h('thead', null, h('tr', null, ...['Instance', 'Node', 'Flavor', 'VM / task state', 'Project', 'Updated'].map((t) => h('th', { text: t })))), tbody));
    if (matching.length > MAX_ROWS) instBody.appendChild(note(`Showing the first ${MAX_ROWS} of ${fmtNum(matching.length)}: refine the filter.`, 'info'));
  }

  function renderMoves() {
    clear(movesBody);
    const sorted = migrations.slice().sort((a, b) => (b.in_progress - a.in_progress) || ((b.updated_at || 0) - (a.updated_at || 0)));
    movesCount.textContent = `${fmtNum(sorted.filter((m) => m.in_progress).length)} in progress · ${fmtNum(sorted.length)} in all`;
    if (!sorted.length) movesBody.appendChild(note('No moves.'));
    else {
      const tbody = h('tbody');
      for (const m of sorted.slice(0, MAX_ROWS)) {
        tbody.appendChild(h('tr', { class: 'move-row', dataset: { migrationUuid: m.uuid, status: m.status, kind: m.kind, inProgress: m.in_progress ? 'true' : 'false' } },
          h('td', { class: 'mono', title: m.uuid, text: shortId(m.uuid) }),
          h('td', { text: m.kind }),
          h('td', { class: 'mono', title: m.instance_uuid, text: shortId(m.instance_uuid) }),
          h('td', { class: 'route' }, nodeLink(m.source_node), ' → ', nodeLink(m.dest_node)),
          h('td', null, h('span', { class: 'status', text: m.status }), m.in_progress ? h('span', { class: 'badge in-progress', text: 'in progress' }) : null),
          h('td', { class: 'small', text: `${flavorText(m.old_flavor)} → ${flavorText(m.new_flavor)}` }),
          h('td', { class: 'muted', text: fmtAgo(m.updated_at) })));
      }
      movesBody.appendChild(h('table', { class: 'table' },
        h('thead', null, h('tr', null, ...['Move', 'Kind', 'Instance', 'Source → destination', 'Status', 'Flavors', 'Updated'].map((t) => h('th', { text: t })))), tbody));
    }
    renderTimeline();
  }

  function renderTimeline() {
    const events = stream.recentEvents().filter((e) => e.type.startsWith('move.'));
    const lanes = moveLanes(migrations, events);
    const now = Date.now() / 1000;
    const times = lanes.flatMap((l) => l.marks.map((m) => m.t));
    const earliest = times.length ? Math.min(...times) : now - 600;
    const xMax = Math.max(now, ...times) + 5;
    const xMin = Math.min(earliest - 10, xMax - 60);
    timeline(svg, { lanes, xMin, xMax });
  }

  async function load() {
    const [inst, moves] = await Promise.allSettled([getJSON('/compute/v1/instances'), getJSON('/compute/v1/migrations')]);
    if (!alive) return;
    const errors = [];
    if (inst.status === 'fulfilled') { instances = inst.value.instances || []; renderInstances(); }
    else { const m = describe(inst.reason); clear(instBody); if (m) { instBody.appendChild(note(m, 'error')); errors.push(m); } }
    if (moves.status === 'fulfilled') { migrations = moves.value.migrations || []; renderMoves(); }
    else { const m = describe(moves.reason); clear(movesBody); if (m) { movesBody.appendChild(note(m, 'error')); errors.push(m); } renderTimeline(); }
    if (errors.length) setStatus(`Instances: ${errors[0]}`, 'error'); else clearErrorStatus();
  }

  const onFilter = debounce(() => { prefs.filter = filter.value; renderInstances(); }, 150);
  filter.addEventListener('input', onFilter);

  let busy = false;
  let again = false;
  async function reload() {
    if (busy) { again = true; return; }
    busy = true;
    try { await load(); } finally { busy = false; if (again && alive) { again = false; scheduleReload(); } }
  }
  const scheduleReload = debounce(() => { if (alive) reload(); }, 500);
  const timelineLater = debounce(() => { if (alive) renderTimeline(); }, 250);
  const unsubscribe = stream.subscribe((event, meta) => {
    if (event.type.startsWith('move.')) timelineLater();
    if (!meta.replay && (event.type.startsWith('claim.') || event.type.startsWith('move.'))) scheduleReload();
  });

  const ready = reload();
  return { ready, unmount() { alive = false; unsubscribe(); scheduleReload.cancel(); timelineLater.cancel(); onFilter.cancel(); } };
}
