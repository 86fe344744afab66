// Inline SVG charts built with createElementNS: a time-series line chart and a lane timeline.

import { s, svgTitle, clear, fmtClock } from '/ui/dom.js';

/** A "nice" upper bound for an axis (1, 2, 2.5, 5 × 10^n). */
export function niceCeil(value) {
  if (!(value > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(value)));
  for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * exp + 1e-12) return m * exp;
  return 10 * exp;
}

export function fmtValue(v, unit = '') {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  let t;
  if (a === 0) t = '0';
  else if (a >= 1000) t = `${Math.round(v / 100) / 10}k`;
  else if (a >= 100) t = String(Math.round(v));
  else if (a >= 10) t = String(Math.round(v * 10) / 10);
  else if (a >= 0.01) t = String(Math.round(v * 100) / 100);
  else t = v.toExponential(1);
  return unit ? `${t} ${unit}` : t;
}

const W = 420, H = 170, ML = 44, MR = 62, MT = 12, MB = 22;

/**
 * Draws a line chart into svg (emptied first). series: [{name, cls, points: [[t, v|null], …]}] with t in epoch
 * seconds; a null value leaves a gap. Sets data-points and data-last on the svg.
 */
export function lineChart(svg, { series, xMin, xMax, unit = '', label = '' }) {
  clear(svg);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.classList.add('chart');
  const pw = W - ML - MR, ph = H - MT - MB;
  const all = series.flatMap((sr) => sr.points.filter((p) => p[1] !== null && p[0] >= xMin && p[0] <= xMax));
  const yMax = niceCeil(Math.max(0, ...all.map((p) => p[1])) * 1.05 || 1);
  const x = (t) => ((t - xMin) / Math.max(1, xMax - xMin)) * pw;
  const y = (v) => ph - (v / yMax) * ph;

  const axes = s('g', { class: 'axes', transform: `translate(${ML},${MT})` });
  for (const frac of [0, 0.5, 1]) {
    const yy = y(yMax * frac);
    axes.appendChild(s('line', { class: frac === 0 ? 'axis' : 'grid', x1: 0, x2: pw, y1: yy, y2: yy }));
    axes.appendChild(s('text', { class: 'tick', x: -5, y: yy + 3, 'text-anchor': 'end', text: fmtValue(yMax * frac) }));
  }
  axes.appendChild(s('line', { class: 'axis', x1: 0, x2: 0, y1: 0, y2: ph }));
  const span = xMax - xMin;
  const step = span > 600 ? 300 : 60;
  for (let t = xMax; t >= xMin - 1e-6; t -= step) {
    const xx = x(t);
    axes.appendChild(s('line', { class: 'grid', x1: xx, x2: xx, y1: 0, y2: ph }));
    const ago = Math.round((xMax - t) / 60);
    axes.appendChild(s('text', { class: 'tick', x: xx, y: ph + 14, 'text-anchor': ago === 0 ? 'end' : 'middle', text: ago === 0 ? 'now' : `-${ago}m` }));
  }
  svg.appendChild(axes);

  // The plot area is a nested <svg>: it clips what falls outside it.
  const plot = s('svg', { class: 'plot', x: ML, y: MT, width: pw, height: ph, viewBox: `0 0 ${pw} ${ph}`, overflow: 'hidden' });
  svg.appendChild(plot);
  let lastValue = null;
  let count = 0;
  const labelYs = [];
  series.forEach((sr, index) => {
    let d = '';
    let pen = false;
    for (const [t, v] of sr.points) {
      if (v === null || t < xMin || t > xMax) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)} ${y(v).toFixed(1)} `;
      pen = true;
      count += 1;
    }
    if (d) plot.appendChild(s('path', { class: `line ${sr.cls || `series-${index}`}`, d: d.trim() }, svgTitle(sr.name || label)));
    const last = [...sr.points].reverse().find((p) => p[1] !== null && p[0] >= xMin);
    if (last) {
      plot.appendChild(s('circle', { class: `dot ${sr.cls || `series-${index}`}`, cx: x(last[0]), cy: y(last[1]), r: 2.5 }));
      if (index === 0) lastValue = last[1];
      // Last-value labels right of the plot, moved apart when they would overlap.
      let ly = Math.max(MT + 8, Math.min(MT + ph, MT + y(last[1]) + 4));
      for (const taken of labelYs) if (Math.abs(taken - ly) < 11) ly = taken - 11;
      labelYs.push(ly);
      svg.appendChild(s('text', {
        class: `last ${sr.cls || `series-${index}`}`, x: ML + pw + 4, y: ly, text: fmtValue(last[1], unit),
      }));
    }
  });
  if (count === 0) {
    svg.appendChild(s('text', { class: 'empty', x: ML + pw / 2, y: MT + ph / 2, 'text-anchor': 'middle', text: 'no data yet' }));
  }
  svg.dataset.points = String(count);
  svg.dataset.last = lastValue === null ? '' : String(lastValue);
}

/**
 * Draws a timeline: one lane per item, marks at times, joined by a line. lanes: [{label, title, marks:
 * [{t, cls, title}]}]. xMin/xMax in epoch seconds.
 */
export function timeline(svg, { lanes, xMin, xMax, empty = 'no moves yet' }) {
  clear(svg);
  const LW = 150, LH = 20, TOP = 8, BOTTOM = 22, RIGHT = 16;
  const WIDTH = Math.max(700, Math.round((svg.parentElement && svg.parentElement.clientWidth) || 900));
  const height = TOP + BOTTOM + Math.max(1, lanes.length) * LH;
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${height}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'timeline of moves');
  svg.classList.add('timeline');
  const pw = WIDTH - LW - RIGHT;
  const x = (t) => LW + ((t - xMin) / Math.max(1, xMax - xMin)) * pw;
  // Time axis.
  const axisY = TOP + Math.max(1, lanes.length) * LH + 2;
  svg.appendChild(s('line', { class: 'axis', x1: LW, x2: LW + pw, y1: axisY, y2: axisY }));
  for (let i = 0; i <= 4; i += 1) {
    const t = xMin + ((xMax - xMin) * i) / 4;
    svg.appendChild(s('line', { class: 'grid', x1: x(t), x2: x(t), y1: TOP, y2: axisY }));
    svg.appendChild(s('text', { class: 'tick', x: x(t), y: axisY + 14, 'text-anchor': i === 0 ? 'start' : (i === 4 ? 'end' : 'middle'), text: fmtClock(t) }));
  }
  if (!lanes.length) {
    svg.appendChild(s('text', { class: 'empty', x: LW + pw / 2, y: TOP + LH / 2 + 4, 'text-anchor': 'middle', text: empty }));
  }
  lanes.forEach((lane, i) => {
    const yy = TOP + i * LH + LH / 2;
    const g = s('g', { class: `lane ${lane.cls || ''}`.trim(), dataset: lane.dataset || {} });
    g.appendChild(s('text', { class: 'lane-label', x: LW - 8, y: yy + 4, 'text-anchor': 'end', text: lane.label }, svgTitle(lane.title || lane.label)));
    const marks = lane.marks.filter((m) => m.t >= xMin && m.t <= xMax).sort((a, b) => a.t - b.t);
    if (marks.length > 1) {
      g.appendChild(s('line', { class: 'lane-line', x1: x(marks[0].t), x2: x(marks[marks.length - 1].t), y1: yy, y2: yy }));
    }
    if (lane.open && marks.length) {
      g.appendChild(s('line', { class: 'lane-line open', x1: x(marks[marks.length - 1].t), x2: LW + pw, y1: yy, y2: yy }));
    }
    for (const m of marks) {
      g.appendChild(s('circle', { class: `mark ${m.cls || ''}`.trim(), cx: x(m.t).toFixed(1), cy: yy, r: 4.5 }, svgTitle(m.title || '')));
    }
    svg.appendChild(g);
  });
  svg.dataset.lanes = String(lanes.length);
}
