// DOM and formatting helpers. Every element is built with createElement and textContent: never from markup
// strings, so names coming from the API always render as text.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Builds an HTML element. attrs: class, text, title, dataset {}, on {event: fn}, props (hidden, value, …),
 * anything else as an attribute. `style` is refused: the CSP forbids inline style attributes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'dataset') { for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) el.dataset[k] = String(v); }
      else if (key === 'on') { for (const [k, fn] of Object.entries(value)) el.addEventListener(k, fn); }
      else if (key === 'style') throw new Error('inline style attributes are not allowed');
      else if (key === 'hidden' || key === 'value' || key === 'checked' || key === 'disabled' || key === 'selected') el[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Builds an SVG element; attrs are set with setAttribute (class, dataset and text as for h). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') el.textContent = String(value);
      else if (key === 'dataset') { for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v); }
      else if (key === 'style') throw new Error('inline style attributes are not allowed');
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** An SVG <title> child (a tooltip). */
export function svgTitle(text) { return s('title', { text }); }

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
  wrapped.cancel = () => { if (timer !== null) clearTimeout(timer); timer = null; };
  return wrapped;
}

// ---- status line ----

let statusTimer = null;
/** Shows a message in the #status line. kind: info | error | ok. Info and ok messages fade after a while. */
export function setStatus(text, kind = 'info') {
  const el = document.getElementById('status');
  if (!el) return;
  el.textContent = text || '';
  el.dataset.kind = text ? kind : '';
  el.title = text || '';
  if (statusTimer) clearTimeout(statusTimer);
  statusTimer = null;
  if (text && kind !== 'error') statusTimer = setTimeout(() => { el.textContent = ''; el.dataset.kind = ''; el.title = ''; }, 6000);
}

/** Clears the status line when it shows an error (a page loaded fine after an earlier failure). */
export function clearErrorStatus() {
  const el = document.getElementById('status');
  if (el && el.dataset.kind === 'error') setStatus('');
}

// ---- resources ----

export const STANDARD_CLASSES = ['VCPU', 'PCPU', 'MEMORY_MB', 'DISK_GB'];

/** Orders resource classes: VCPU, PCPU, MEMORY_MB, DISK_GB, then the others alphabetically. */
export function orderClasses(classes) {
  const set = new Set(classes);
  const out = STANDARD_CLASSES.filter((c) => set.has(c));
  const rest = [...set].filter((c) => !STANDARD_CLASSES.includes(c)).sort();
  return out.concat(rest);
}

/** Capacity of an inventory: floor((total - reserved) * allocation_ratio). */
export function capacity(inv) {
  if (!inv) return 0;
  const ratio = Number(inv.allocation_ratio ?? 1);
  return Math.max(0, Math.floor((Number(inv.total || 0) - Number(inv.reserved || 0)) * ratio + 1e-9));
}

const group = (n) => {
  const neg = n < 0;
  let t = String(Math.abs(Math.round(n)));
  t = t.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return neg ? '-' + t : t;
};

/** A number with thousands separators, or a short decimal. */
export function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '–';
  n = Number(n);
  if (Number.isInteger(n)) return group(n);
  if (Math.abs(n) >= 100) return group(n);
  return String(Math.round(n * 100) / 100);
}

/** An amount of a resource class in readable units (MEMORY_MB in GiB, DISK_GB in GB/TB). */
export function fmtAmount(rc, n) {
  n = Number(n || 0);
  if (rc === 'MEMORY_MB') {
    if (Math.abs(n) < 1024) return `${fmtNum(n)} MiB`;
    const g = n / 1024;
    return `${Math.abs(g) >= 100 ? fmtNum(Math.round(g)) : (Math.round(g * 10) / 10)} GiB`;
  }
  if (rc === 'DISK_GB') {
    if (Math.abs(n) < 10000) return `${fmtNum(n)} GB`;
    return `${Math.round(n / 100) / 10} TB`;
  }
  return fmtNum(n);
}

/** Short label for a used/capacity pair in the class's units. */
export function fmtPair(rc, used, cap) {
  if (rc === 'MEMORY_MB' && cap >= 1024) {
    const u = used / 1024, c = cap / 1024;
    const r = (x) => (x >= 100 ? fmtNum(Math.round(x)) : Math.round(x * 10) / 10);
    return `${r(u)}/${r(c)} GiB`;
  }
  return `${fmtNum(used)}/${fmtNum(cap)}`;
}

/** The numbers of one class on one node: used, reserved, total, capacity, ratio, free. */
export function classNumbers(node, rc) {
  const inv = node.inventories && node.inventories[rc];
  if (!inv) return null;
  const used = Number((node.usage && node.usage[rc]) || 0);
  const cap = capacity(inv);
  const ratio = Number(inv.allocation_ratio ?? 1);
  return { rc, used, reserved: Number(inv.reserved || 0), total: Number(inv.total || 0), capacity: cap, ratio, free: cap - used, inv };
}

/**
 * A usage bar: used / reserved / free segments. `n` is from classNumbers (or aggregated numbers with
 * reservedScaled set and ratio null). className defaults to "bar".
 */
export function resourceBar(n, className = 'bar') {
  const ratio = n.ratio === null || n.ratio === undefined ? null : n.ratio;
  const reservedScaled = n.reservedScaled ?? n.reserved * (ratio ?? 1);
  const whole = Math.max(n.capacity + reservedScaled, n.used + reservedScaled, 1);
  const pct = (x) => `${Math.max(0, Math.min(100, (x / whole) * 100)).toFixed(2)}%`;
  const usedPart = Math.min(n.used, whole);
  const freePart = Math.max(0, n.capacity - n.used);
  const usedEl = h('span', { class: 'seg seg-used' });
  const resEl = h('span', { class: 'seg seg-reserved' });
  const freeEl = h('span', { class: 'seg seg-free' });
  usedEl.style.width = pct(usedPart);
  resEl.style.width = pct(reservedScaled);
  freeEl.style.width = pct(freePart);
  const frac = n.capacity > 0 ? n.used / n.capacity : (n.used > 0 ? 1 : 0);
  const over = n.used > n.capacity;
  const title = `${n.rc}: used ${fmtNum(n.used)} of capacity ${fmtNum(n.capacity)} (${Math.round(frac * 100)}%)` +
    `\ntotal ${fmtNum(n.total)}, reserved ${fmtNum(n.reserved)}` +
    (ratio !== null ? `, allocation ratio ${fmtNum(ratio)}` : '') +
    `\nfree ${fmtNum(n.capacity - n.used)}` + (over ? '\nover capacity' : '');
  return h('div', {
    class: className + (over ? ' over' : '') + (frac >= 0.9 ? ' hot' : ''),
    title,
    dataset: {
      rc: n.rc, used: n.used, reserved: n.reserved, total: n.total, capacity: n.capacity,
      ratio: ratio === null ? null : ratio,
    },
  },
  h('span', { class: 'bar-track' }, usedEl, resEl, freeEl),
  h('span', { class: 'bar-label' }, fmtPair(n.rc, n.used, n.capacity)),
  ratio !== null ? h('span', { class: 'bar-ratio', text: `×${fmtNum(ratio)}` }) : null);
}

// ---- time ----

const pad = (n) => String(n).padStart(2, '0');
export function fmtClock(epoch) {
  if (!epoch) return '–';
  const d = new Date(epoch * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function fmtDateTime(epoch) {
  if (!epoch) return '–';
  const d = new Date(epoch * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(epoch)}`;
}
/** "12 s ago", "3 min ago", … relative to now (client clock). */
export function fmtAgo(epoch, now = Date.now() / 1000) {
  if (!epoch) return 'never';
  const d = Math.max(0, now - epoch);
  if (d < 60) return `${Math.round(d)} s ago`;
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return `${Math.round(d / 86400)} d ago`;
}

export function shortId(uuid) { return uuid ? String(uuid).slice(0, 8) : '–'; }

export function nodeHref(uuid) { return `#/node/${encodeURIComponent(uuid)}`; }

/** A section with a heading and a body element; returns { section, body }. */
export function section(id, title, ...extra) {
  const body = h('div', { class: 'section-body' });
  const section = h('section', { id, class: 'panel' }, h('h2', null, title, ...extra), body);
  return { section, body };
}

/** A message element (info, empty, error or denied) for a section body. */
export function note(text, kind = 'empty') { return h('p', { class: `note note-${kind}`, text }); }

export function flavorText(f) {
  if (!f) return '–';
  const disk = Number(f.root_gb || 0) + Number(f.ephemeral_gb || 0);
  return `${f.name || 'flavor'} · ${f.vcpus} vCPU · ${fmtAmount('MEMORY_MB', f.memory_mb)} · ${disk} GB`;
}
