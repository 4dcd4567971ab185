// Line charts drawn as SVG, for the dashboard's time series: one polyline per series over a
// moving window of seconds, an auto-scaled y axis labelled with its maximum, and a legend with
// each series' latest value. Colours come from the stylesheet (classes s0, s1, …).

import { compact } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
/** Samples further apart than this many seconds are not joined by a line. */
const GAP = 5;
const parts = new WeakMap();

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `v` (1 for nothing positive). */
export function niceCeil(v) {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  const f = v / p;
  const n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return n * p;
}

/** niceCeil in binary units, for sizes: 3.1 MiB → 5 MiB. */
export function niceBytes(v) {
  if (!(v > 0) || !Number.isFinite(v)) return 1024;
  const unit = 1024 ** Math.max(0, Math.floor(Math.log(v) / Math.log(1024)));
  return niceCeil(v / unit) * unit;
}

function windowLabel(s) {
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

function lastFinite(values) {
  for (let i = values.length - 1; i >= 0; i -= 1) if (Number.isFinite(values[i])) return values[i];
  return null;
}

/**
 * Draws (or redraws) a chart in `container`.
 * series: [{ label, values: (number|null)[], dashed?, color? (index of the colour class) }]
 * options: { times: unix seconds, one per value; window: seconds shown (300);
 *            format: value → text for the axis and legend; height: px (150);
 *            minMax: the y axis reaches at least this; fixedMax: the y axis ends exactly here;
 *            nice: rounds the largest value up to the top of the axis (niceCeil);
 *            label: what the chart shows, for screen readers }
 */
export function lineChart(container, series, options = {}) {
  let p = parts.get(container);
  if (!p) {
    const root = svg('svg', { class: 'chart-svg', role: 'img' });
    const legend = document.createElement('ul');
    legend.className = 'legend';
    container.replaceChildren(root, legend);
    p = { root, legend };
    parts.set(container, p);
  }
  const times = options.times ?? [];
  const win = options.window ?? 300;
  const fmt = options.format ?? compact;
  const width = Math.max(220, Math.round(container.clientWidth || 360));
  const height = options.height ?? 150;
  const pad = { l: 56, r: 10, t: 10, b: 22 };
  const pw = width - pad.l - pad.r;
  const ph = height - pad.t - pad.b;
  const tEnd = times.length ? times[times.length - 1] : Math.floor(Date.now() / 1000);
  const tStart = tEnd - win;

  let max = 0;
  for (const s of series) {
    for (let k = 0; k < s.values.length; k += 1) {
      const v = s.values[k];
      if (times[k] >= tStart && Number.isFinite(v) && v > max) max = v;
    }
  }
  let top = options.fixedMax ?? (options.nice ?? niceCeil)(Math.max(max, options.minMax ?? 0));
  if (!(top > 0)) top = 1;
  const x = (t) => pad.l + ((t - tStart) / win) * pw;
  const y = (v) => pad.t + ph - (Math.max(0, Math.min(v, top)) / top) * ph;

  const nodes = [];
  for (const f of [0, 0.5, 1]) {
    const yy = y(top * f);
    nodes.push(svg('line', { class: f === 0 ? 'axis-line' : 'grid', x1: pad.l, x2: width - pad.r, y1: yy, y2: yy }));
    nodes.push(svg('text', { class: 'axis', x: pad.l - 6, y: yy + 4, 'text-anchor': 'end' }, f === 0 ? '0' : fmt(top * f)));
  }
  nodes.push(svg('line', { class: 'axis-line', x1: pad.l, x2: pad.l, y1: pad.t, y2: pad.t + ph }));
  nodes.push(svg('text', { class: 'axis', x: pad.l, y: height - 6, 'text-anchor': 'start' }, `−${windowLabel(win)}`));
  nodes.push(svg('text', { class: 'axis', x: width - pad.r, y: height - 6, 'text-anchor': 'end' }, 'now'));

  let drawn = 0;
  series.forEach((s, i) => {
    const colour = `s${s.color ?? i}`;
    const cls = `line ${colour}${s.dashed ? ' dashed' : ''}`;
    let points = [];
    const flush = () => {
      if (points.length > 1) nodes.push(svg('polyline', { class: cls, points: points.join(' ') }));
      else if (points.length === 1) {
        const [cx, cy] = points[0].split(',');
        nodes.push(svg('circle', { class: `dot ${colour}`, cx, cy, r: 2 }));
      }
      drawn += points.length;
      points = [];
    };
    let prev = null;
    for (let k = 0; k < times.length; k += 1) {
      const t = times[k];
      if (t < tStart) continue;
      const v = s.values[k];
      if (!Number.isFinite(v) || (prev !== null && t - prev > GAP)) flush();
      if (Number.isFinite(v)) points.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      prev = t;
    }
    flush();
  });
  if (!drawn) {
    nodes.push(svg('text', { class: 'axis empty', x: pad.l + pw / 2, y: pad.t + ph / 2, 'text-anchor': 'middle' },
      times.length ? 'nothing to show yet' : 'waiting for data'));
  }

  p.root.setAttribute('viewBox', `0 0 ${width} ${height}`);
  p.root.setAttribute('width', width);
  p.root.setAttribute('height', height);
  p.root.replaceChildren(...nodes);

  const summary = [];
  const items = series.map((s, i) => {
    const last = lastFinite(s.values);
    const shown = last === null ? '—' : (s.format ?? fmt)(last);
    summary.push(`${s.label} ${shown}`);
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `sw s${s.color ?? i}${s.dashed ? ' dashed' : ''}`;
    const name = document.createElement('span');
    name.textContent = s.label;
    const val = document.createElement('span');
    val.className = 'legend-value';
    val.textContent = shown;
    li.append(swatch, name, val);
    return li;
  });
  p.legend.replaceChildren(...items);
  p.root.setAttribute('aria-label', `${options.label ?? 'chart'} over the last ${windowLabel(win)}: ${summary.join(', ')}`);
}
