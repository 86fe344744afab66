// The node page: summary and bars, NUMA cells with CPU states, PCI devices (PF → VF), instances, moves and
// (with Placement) the provider tree with inventories, usages, traits and aggregates.

import { h, clear, debounce, setStatus, clearErrorStatus, orderClasses, classNumbers, resourceBar, fmtNum, fmtAmount, fmtAgo, fmtDateTime, section, note, flavorText, nodeHref, shortId } from '/ui/dom.js';
import { getJSON, describe, session, hostnames, hostnameOf, rememberNodes, ApiError } from '/ui/api.js';
import * as stream from '/ui/stream.js';

/** uuid → which host CPUs a consumer holds: Map(cpu → {consumer, vcpu, held}). */
export function pinnedCpus(hostClaims) {
  const out = new Map();
  for (const [consumer, claim] of Object.entries(hostClaims || {})) {
    const cells = (claim && claim.numa && claim.numa.cells) || [];
    for (const cell of cells) {
      for (const [vcpu, cpu] of Object.entries(cell.pinning || {})) out.set(Number(cpu), { consumer, vcpu: Number(vcpu), held: false, cell: cell.host_cell });
      for (const cpu of cell.reserved_cpus || []) if (!out.has(Number(cpu))) out.set(Number(cpu), { consumer, vcpu: null, held: true, cell: cell.host_cell });
    }
  }
  return out;
}

/** State of a host CPU: pinned, dedicated, shared or reserved. */
export function cpuState(cpu, pinned, dedicated, shared) {
  if (pinned.has(cpu)) return 'pinned';
  if (dedicated && dedicated.has(cpu)) return 'dedicated';
  if (shared) return shared.has(cpu) ? 'shared' : 'reserved';
  return 'shared';
}

/** Memory and pages held per host cell by the claims: Map(cell → {memory_mb, pages: {size: count}, shared_vcpus}). */
export function cellClaims(hostClaims) {
  const out = new Map();
  for (const claim of Object.values(hostClaims || {})) {
    for (const cell of (claim && claim.numa && claim.numa.cells) || []) {
      const t = out.get(cell.host_cell) || { memory_mb: 0, pages: {}, shared_vcpus: 0, consumers: 0 };
      t.memory_mb += Number(cell.memory_mb || 0);
      t.shared_vcpus += Number(cell.shared_vcpus || 0);
      t.consumers += 1;
      const size = Number(cell.page_size_kb || 4);
      if (size > 4) t.pages[size] = (t.pages[size] || 0) + Math.ceil((Number(cell.memory_mb || 0) * 1024) / size);
      out.set(cell.host_cell, t);
    }
  }
  return out;
}

function summary(body, node) {
  clear(body);
  const state = node.disabled ? 'disabled' : 'enabled';
  const dl = h('dl', { class: 'facts' },
    h('dt', null, 'Hostname'), h('dd', { class: 'hostname', text: node.hostname }),
    h('dt', null, 'UUID'), h('dd', { class: 'mono', text: node.uuid }),
    h('dt', null, 'Host'), h('dd', { text: node.host || '–' }),
    h('dt', null, 'Driver'), h('dd', { text: node.driver || '–' }),
    h('dt', null, 'State'), h('dd', { dataset: { state } }, h('span', { class: `state-dot ${state}` }), ` ${state}`, node.live === false ? h('span', { class: 'badge badge-warn', text: 'not live' }) : null),
    h('dt', null, 'Instances'), h('dd', { text: fmtNum((node.stats && node.stats.num_instances) || 0) }),
    h('dt', null, 'Updated'), h('dd', { text: node.updated_at ? `${fmtDateTime(node.updated_at)} (${fmtAgo(node.updated_at)})` : '–' }));
  const bars = h('div', { class: 'node-bars' });
  for (const rc of orderClasses(Object.keys(node.inventories || {}))) {
    const n = classNumbers(node, rc);
    bars.appendChild(h('div', { class: 'node-bar' }, h('span', { class: 'node-bar-rc', text: rc }), resourceBar(n),
      h('span', { class: 'muted small', text: `free ${fmtAmount(rc, n.free)} · max_unit ${fmtNum(n.inv.max_unit)}` })));
  }
  const traits = h('div', { class: 'traits' }, ...(node.traits || []).slice().sort().map((t) => h('span', { class: 'chip', text: t })));
  body.append(h('div', { class: 'summary-grid' }, dl, h('div', null, bars, h('h3', null, 'Traits'), (node.traits || []).length ? traits : note('No traits.'))));
}

function numa(body, node) {
  clear(body);
  const topo = node.topology;
  const cells = (topo && topo.numa_cells) || [];
  if (!cells.length) { body.appendChild(note('No NUMA topology reported for this node.')); return; }
  const pinned = pinnedCpus(node.host_claims);
  const dedicated = Array.isArray(node.cpu_dedicated_set) ? new Set(node.cpu_dedicated_set.map(Number)) : null;
  const shared = Array.isArray(node.cpu_shared_set) ? new Set(node.cpu_shared_set.map(Number)) : null;
  const claims = cellClaims(node.host_claims);
  body.appendChild(h('div', { class: 'legend' },
    ...['pinned', 'dedicated', 'shared', 'reserved'].map((st) => h('span', { class: 'legend-item' }, h('span', { class: `cpu-swatch ${st}` }), st)),
    dedicated ? null : h('span', { class: 'muted small', text: ' (the server did not report cpu_dedicated_set: unpinned CPUs show as shared)' })));
  const grid = h('div', { class: 'numa-grid' });
  for (const cell of cells) {
    const cpus = (cell.cpus || []).map(Number);
    const groups = [];
    const placed = new Set();
    for (const sib of cell.siblings || []) {
      const g = sib.map(Number).filter((c) => cpus.includes(c) && !placed.has(c));
      g.forEach((c) => placed.add(c));
      if (g.length) groups.push(g);
    }
    for (const c of cpus) if (!placed.has(c)) groups.push([c]);
    groups.sort((a, b) => a[0] - b[0]);
    const cpuGrid = h('div', { class: 'cpu-grid' });
    const counts = { pinned: 0, dedicated: 0, shared: 0, reserved: 0 };
    for (const g of groups) {
      const core = h('div', { class: `cpu-core${g.length > 1 ? ' siblings' : ''}`, title: g.length > 1 ? `thread siblings ${g.join(', ')}` : `CPU ${g[0]}` });
      for (const cpu of g) {
        const st = cpuState(cpu, pinned, dedicated, shared);
        counts[st] += 1;
        const pin = pinned.get(cpu);
        const title = pin
          ? `CPU ${cpu}: ${pin.held ? 'held (thread isolation) by' : `pinned, vCPU ${pin.vcpu} of`} ${pin.consumer}`
          : `CPU ${cpu}: ${st}${st === 'dedicated' ? ' (free for pinning)' : st === 'shared' ? ' (floating vCPUs)' : ' (for the host)'}`;
        core.appendChild(h('span', { class: `cpu ${st}`, title, dataset: { cpu, state: st, consumer: pin ? pin.consumer : null } }, String(cpu)));
      }
      cpuGrid.appendChild(core);
    }
    const held = claims.get(cell.id) || { memory_mb: 0, pages: {}, shared_vcpus: 0, consumers: 0 };
    const mem = Number(cell.memory_mb || 0);
    const memBar = resourceBar({ rc: 'MEMORY_MB', used: held.memory_mb, reserved: 0, total: mem, capacity: mem, ratio: null }, 'mbar');
    const pages = Object.entries(cell.pages || {}).map(([size, count]) => {
      const used = held.pages[Number(size)] || 0;
      return h('div', { class: 'pages', dataset: { pageSize: size, count, used } },
        `${Number(size) >= 1048576 ? `${Number(size) / 1048576} GiB` : `${Number(size) / 1024} MiB`} pages: ${fmtNum(used)} used of ${fmtNum(count)}`);
    });
    grid.appendChild(h('div', { class: 'numa-cell', dataset: { cell: cell.id, socket: cell.socket ?? null } },
      h('div', { class: 'numa-head' }, h('strong', null, `Cell ${cell.id}`), cell.socket !== undefined && cell.socket !== null ? ` · socket ${cell.socket}` : '',
        h('span', { class: 'muted small', text: ` · ${cpus.length} CPUs: ${counts.pinned} pinned, ${counts.dedicated} dedicated free, ${counts.shared} shared, ${counts.reserved} reserved` })),
      cpuGrid,
      h('div', { class: 'numa-memory', dataset: { memoryMb: mem, usedMb: held.memory_mb } },
        h('span', { class: 'small' }, `Memory held by guests: ${fmtAmount('MEMORY_MB', held.memory_mb)} of ${fmtAmount('MEMORY_MB', mem)}`), memBar,
        ...pages,
        held.shared_vcpus ? h('div', { class: 'small muted', text: `${held.shared_vcpus} floating vCPUs of mixed guests` }) : null)));
  }
  body.appendChild(grid);
}

function pci(body, node) {
  clear(body);
  const devices = (node.topology && node.topology.pci_devices) || [];
  const status = node.pci_device_status || {};
  if (!devices.length) { body.appendChild(note('No PCI devices reported for this node.')); return; }
  const byAddress = new Map(devices.map((d) => [d.address, d]));
  const children = new Map();
  const roots = [];
  for (const d of devices) {
    if (d.parent_address && byAddress.has(d.parent_address)) {
      if (!children.has(d.parent_address)) children.set(d.parent_address, []);
      children.get(d.parent_address).push(d);
    } else roots.push(d);
  }
  const sortAddr = (a, b) => String(a.address).localeCompare(String(b.address));
  const counts = {};
  function item(d, depth) {
    const st = (status[d.address] && status[d.address].status) || 'unknown';
    const consumer = status[d.address] && status[d.address].consumer;
    counts[st] = (counts[st] || 0) + 1;
    const li = h('li', { class: `pci-device depth-${depth}`, dataset: { address: d.address, status: st, consumer: consumer || null, type: d.type || null } },
      h('span', { class: 'mono addr', text: d.address }),
      h('span', { class: 'badge', text: (d.type || 'type-PCI').replace('type-', '') }),
      h('span', { class: 'mono', text: `${d.vendor_id || '?'}:${d.product_id || '?'}` }),
      h('span', { class: 'muted', text: `NUMA ${d.numa_node ?? '–'}` }),
      d.driver ? h('span', { class: 'muted', text: `driver ${d.driver}` }) : null,
      h('span', { class: `status status-${st}`, text: st }),
      consumer ? h('span', { class: 'consumer mono', title: consumer, text: `held by ${shortId(consumer)}` }) : null);
    const kids = (children.get(d.address) || []).slice().sort(sortAddr);
    if (kids.length) li.appendChild(h('ul', { class: 'pci-children' }, ...kids.map((k) => item(k, depth + 1))));
    return li;
  }
  const tree = h('ul', { class: 'pci-tree' }, ...roots.sort(sortAddr).map((d) => item(d, 0)));
  body.append(h('p', { class: 'small muted', text: Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(' · ') }), tree);
}

function instancesTable(body, instances) {
  clear(body);
  if (!instances.length) { body.appendChild(note('No instances on this node.')); return; }
  const tbody = h('tbody');
  for (const inst of instances.slice().sort((a, b) => (b.updated_at || 0) - (a.updated_at || 0))) {
    tbody.appendChild(h('tr', { class: 'instance-row', dataset: { instanceUuid: inst.uuid, vmState: inst.vm_state, taskState: inst.task_state || null } },
      h('td', { class: 'mono', title: inst.uuid, text: inst.uuid }),
      h('td', null, h('span', { class: `vm vm-${inst.vm_state}`, text: inst.vm_state })),
      h('td', { text: inst.task_state || '–' }),
      h('td', { text: flavorText(inst.flavor) }),
      h('td', { text: inst.project_id || '–' }),
      h('td', { class: 'muted', text: fmtAgo(inst.updated_at) })));
  }
  body.appendChild(h('table', { class: 'table' },
    h('thead', null, h('tr', null, ...['Instance', 'VM state', 'Task', 'Flavor', 'Project', 'Updated'].map((t) => h('th', { text: t })))), tbody));
}

function movesTable(body, moves, uuid) {
  clear(body);
  if (!moves.length) { body.appendChild(note('No moves to or from this node.')); return; }
  const tbody = h('tbody');
  const name = (u) => hostnames.get(u) || shortId(u);
  for (const m of moves.slice().sort((a, b) => (b.in_progress - a.in_progress) || ((b.updated_at || 0) - (a.updated_at || 0)))) {
    const outgoing = m.source_node === uuid;
    tbody.appendChild(h('tr', { class: 'move-row', dataset: { migrationUuid: m.uuid, status: m.status, kind: m.kind, direction: outgoing ? 'out' : 'in' } },
      h('td', { class: 'mono', title: m.uuid, text: shortId(m.uuid) }),
      h('td', { text: m.kind }),
      h('td', null, outgoing ? 'out → ' : 'in ← ', h('a', { href: nodeHref(outgoing ? m.dest_node : m.source_node), text: name(outgoing ? m.dest_node : m.source_node) })),
      h('td', { class: 'mono', title: m.instance_uuid, text: shortId(m.instance_uuid) }),
      h('td', null, h('span', { class: 'status', text: m.status }), m.in_progress ? h('span', { class: 'badge in-progress', text: 'in progress' }) : null),
      h('td', { text: `${flavorText(m.old_flavor)} → ${flavorText(m.new_flavor)}` }),
      h('td', { class: 'muted', text: fmtAgo(m.updated_at) })));
  }
  body.appendChild(h('table', { class: 'table' },
    h('thead', null, h('tr', null, ...['Move', 'Kind', 'Other node', 'Instance', 'Status', 'Flavors', 'Updated'].map((t) => h('th', { text: t })))), tbody));
}

/** Fetches one placement sub-resource: {value} or {denied: true} (403) or {error}. */
async function placementPart(path) {
  try {
    return { value: await getJSON(path, { placement: true }) };
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return { denied: true };
    return { error: describe(err) || 'failed' };
  }
}

async function loadProviders(uuid) {
  let list;
  try {
    list = await getJSON(`/resource_providers?in_tree=${encodeURIComponent(uuid)}`, { placement: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return { denied: true };
    throw err;
  }
  const providers = list.resource_providers || [];
  const parts = await Promise.all(providers.map(async (p) => {
    const base = `/resource_providers/${encodeURIComponent(p.uuid)}`;
    const [inventories, usages, traits, aggregates] = await Promise.all(
      ['inventories', 'usages', 'traits', 'aggregates'].map((k) => placementPart(`${base}/${k}`)));
    return { provider: p, inventories, usages, traits, aggregates };
  }));
  return { providers: parts };
}

function deniedOr(part, render) {
  if (part.denied) return note('not allowed for this token', 'denied');
  if (part.error) return note(part.error, 'error');
  return render(part.value);
}

function providers(body, data) {
  clear(body);
  if (data.denied) { body.appendChild(note('not allowed for this token', 'denied')); return; }
  if (data.error) { body.appendChild(note(data.error, 'error')); return; }
  const items = data.providers;
  if (!items.length) { body.appendChild(note('No resource provider in this tree.')); return; }
  const byUuid = new Map(items.map((x) => [x.provider.uuid, x]));
  const kids = new Map();
  const roots = [];
  for (const x of items) {
    const parent = x.provider.parent_provider_uuid;
    if (parent && byUuid.has(parent)) { if (!kids.has(parent)) kids.set(parent, []); kids.get(parent).push(x); } else roots.push(x);
  }
  const byName = (a, b) => String(a.provider.name).localeCompare(String(b.provider.name));
  const out = h('div', { class: 'provider-tree' });
  const walk = (x, depth) => {
    const p = x.provider;
    const el = h('div', { class: 'provider', dataset: { providerUuid: p.uuid, depth, parentUuid: p.parent_provider_uuid || null } });
    el.style.setProperty('--depth', String(depth));
    el.appendChild(h('div', { class: 'provider-head' }, depth ? h('span', { class: 'tree-mark', text: '└ ' }) : null,
      h('strong', { text: p.name }), h('span', { class: 'mono muted small', text: ` ${p.uuid}` }), h('span', { class: 'muted small', text: ` · generation ${p.generation}` })));
    const usages = x.usages.value ? x.usages.value.usages || {} : null;
    el.appendChild(h('div', { class: 'provider-part provider-inventories' }, deniedOr(x.inventories, (v) => {
      const inv = v.inventories || {};
      const classes = orderClasses(Object.keys(inv));
      if (!classes.length) return note('No inventory.');
      return h('table', { class: 'table compact' },
        h('thead', null, h('tr', null, ...['Class', 'Total', 'Reserved', 'Min', 'Max', 'Step', 'Ratio', 'Used', 'Usage'].map((t) => h('th', { text: t })))),
        h('tbody', null, ...classes.map((rc) => {
          const i = inv[rc];
          const used = usages ? Number(usages[rc] || 0) : null;
          return h('tr', { dataset: { rc } }, h('td', { class: 'mono', text: rc }),
            ...[i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio].map((v2) => h('td', { class: 'num', text: fmtNum(v2) })),
            h('td', { class: 'num', text: used === null ? (x.usages.denied ? 'not allowed' : '–') : fmtNum(used) }),
            h('td', null, used === null ? '' : resourceBar({ rc, used, reserved: Number(i.reserved || 0), total: Number(i.total || 0), capacity: Math.floor((i.total - i.reserved) * i.allocation_ratio), ratio: Number(i.allocation_ratio) }, 'pbar')));
        })));
    })));
    if (x.usages.denied || x.usages.error) el.appendChild(h('div', { class: 'provider-part provider-usages' }, h('span', { class: 'label', text: 'Usages: ' }), deniedOr(x.usages, () => null)));
    el.appendChild(h('div', { class: 'provider-part provider-traits' }, h('span', { class: 'label', text: 'Traits: ' }), deniedOr(x.traits, (v) => {
      const traits = (v.traits || []).slice().sort();
      return traits.length ? h('span', { class: 'traits' }, ...traits.map((t) => h('span', { class: 'chip', text: t }))) : h('span', { class: 'muted', text: 'none' });
    })));
    el.appendChild(h('div', { class: 'provider-part provider-aggregates' }, h('span', { class: 'label', text: 'Aggregates: ' }), deniedOr(x.aggregates, (v) => {
      const aggs = v.aggregates || [];
      return aggs.length ? h('span', { class: 'traits' }, ...aggs.map((a) => h('span', { class: 'chip mono', text: a }))) : h('span', { class: 'muted', text: 'none' });
    })));
    out.appendChild(el);
    for (const k of (kids.get(p.uuid) || []).sort(byName)) walk(k, depth + 1);
  };
  for (const r of roots.sort(byName)) walk(r, 0);
  body.appendChild(out);
}

export function mount(root, params, ctx) {
  const uuid = params.uuid;
  let alive = true;
  const title = h('h1', { class: 'page-title' }, h('a', { href: '#/fleet', text: 'Fleet' }), ' / ', h('span', { id: 'node-title', text: hostnames.get(uuid) || uuid }));
  const sSummary = section('node-summary', 'Summary');
  const sNuma = section('node-numa', 'NUMA cells and CPUs');
  const sPci = section('node-pci', 'PCI devices');
  const sInst = section('node-instances', 'Instances');
  const sMoves = section('node-moves', 'Moves');
  const sProv = session.placement ? section('node-providers', 'Placement provider tree') : null;
  const page = h('div', { class: 'page page-node', dataset: { uuid } }, title, sSummary.section,
    h('div', { class: 'two-col' }, sNuma.section, sPci.section), sInst.section, sMoves.section, sProv ? sProv.section : null);
  root.appendChild(page);
  for (const s of [sSummary, sNuma, sPci, sInst, sMoves, sProv]) if (s) s.body.appendChild(note('Loading…', 'loading'));

  async function load() {
    const nodeP = getJSON(`/compute/v1/nodes/${encodeURIComponent(uuid)}`);
    const instP = getJSON(`/compute/v1/instances?node=${encodeURIComponent(uuid)}`);
    const movesP = getJSON(`/compute/v1/migrations?node=${encodeURIComponent(uuid)}`);
    const provP = session.placement ? loadProviders(uuid).catch((err) => ({ error: describe(err) || 'failed' })) : null;
    const [node, inst, moves, prov] = await Promise.allSettled([nodeP, instP, movesP, provP]);
    if (!alive) return;
    const errors = [];
    if (node.status === 'fulfilled') {
      const n = node.value;
      rememberNodes([n]);
      page.dataset.hostname = n.hostname;
      document.getElementById('node-title').textContent = n.hostname;
      summary(sSummary.body, n);
      numa(sNuma.body, n);
      pci(sPci.body, n);
    } else {
      const err = node.reason;
      const msg = err instanceof ApiError && err.status === 404 ? `No node ${uuid}.` : describe(err);
      for (const s of [sSummary, sNuma, sPci]) { clear(s.body); if (msg) s.body.appendChild(note(msg, 'error')); }
      if (msg) errors.push(msg);
    }
    let migrations = [];
    if (moves.status === 'fulfilled') {
      migrations = (moves.value.migrations || []).filter((m) => m.source_node === uuid || m.dest_node === uuid);
      await Promise.all(migrations.flatMap((m) => [hostnameOf(m.source_node), hostnameOf(m.dest_node)]));
      if (!alive) return;
      movesTable(sMoves.body, migrations, uuid);
    } else {
      const msg = describe(moves.reason);
      clear(sMoves.body);
      if (msg) { sMoves.body.appendChild(note(msg, 'error')); errors.push(msg); }
    }
    if (inst.status === 'fulfilled') {
      const moving = new Set(migrations.map((m) => m.instance_uuid));
      instancesTable(sInst.body, (inst.value.instances || []).filter((i) => i.node === uuid || moving.has(i.uuid)));
    } else {
      const msg = describe(inst.reason);
      clear(sInst.body);
      if (msg) { sInst.body.appendChild(note(msg, 'error')); errors.push(msg); }
    }
    if (sProv && prov.status === 'fulfilled') providers(sProv.body, prov.value);
    if (errors.length) setStatus(`Node: ${errors[0]}`, 'error'); else clearErrorStatus();
  }

  let busy = false;
  let again = false;
  async function reload() {
    if (busy) { again = true; return; }
    busy = true;
    try { await load(); } finally {
      busy = false;
      if (again && alive) { again = false; scheduleReload(); }
    }
  }
  const scheduleReload = debounce(() => { if (alive) reload(); }, 300);
  const unsubscribe = stream.subscribe((event, meta) => {
    if (meta.replay || event.type === 'compute.metrics.update') return;
    const f = event.fields || {};
    if (event.node === uuid || f.source === uuid || f.dest === uuid) scheduleReload();
  });

  const ready = reload();
  return {
    ready,
    unmount() { alive = false; unsubscribe(); scheduleReload.cancel(); },
  };
}
