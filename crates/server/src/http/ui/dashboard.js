// The dashboard: kvs's one-second samples over the last five minutes, polled every second while
// the screen is shown, beside the server's version, uptime, doors and persistence.

import { json, isAbort } from './api.js';
import { lineChart, niceBytes } from './charts.js';
import { $, h, definitions, debounce } from './dom.js';
import * as fmt from './format.js';

/** Seconds of samples kept and drawn. */
const WINDOW = 300;
/** The doors in the order they are drawn; a door the server adds later comes after them. */
const DOORS = ['http', 'resp', 'line'];

let samples = [];
let server = null;
let active = false;
let inflight = false;
let timer = null;
let lastFetch = 0;

export function init() {
  window.addEventListener('resize', debounce(() => {
    if (active && samples.length) render();
  }, 150));
}

export function show() {
  active = true;
  if (!inflight && !timer) poll();
}

export function hide() {
  active = false;
  clearTimeout(timer);
  timer = null;
}

async function poll() {
  timer = null;
  inflight = true;
  const started = Date.now();
  let failed = false;
  try {
    // The first load takes the whole window; later ones the seconds since the last answer.
    const seconds = samples.length
      ? Math.min(WINDOW, Math.max(2, Math.ceil((started - lastFetch) / 1000) + 2))
      : WINDOW;
    const body = await json(`/admin/stats?seconds=${seconds}`);
    lastFetch = started;
    merge(body || {});
    setProblem(null);
    render();
  } catch (err) {
    failed = true;
    if (!isAbort(err)) setProblem(err);
  } finally {
    inflight = false;
  }
  if (active) timer = setTimeout(poll, failed ? 5000 : Math.max(250, 1000 - (Date.now() - started)));
}

/** Appends the samples newer than those held, and keeps the last WINDOW seconds. */
function merge(body) {
  if (body.server) server = body.server;
  const incoming = Array.isArray(body.series) ? body.series.filter((s) => Number.isFinite(s?.t)) : [];
  incoming.sort((a, b) => a.t - b.t);
  let lastT = samples.length ? samples[samples.length - 1].t : -Infinity;
  // A newest sample older than ours: the server was restarted or its clock went back.
  if (incoming.length && incoming[incoming.length - 1].t < lastT) {
    samples = [];
    lastT = -Infinity;
  }
  for (const s of incoming) {
    if (s.t > lastT) {
      samples.push(s);
      lastT = s.t;
    }
  }
  const newest = lastT;
  samples = samples.filter((s) => s.t > newest - WINDOW).slice(-WINDOW);
}

function setProblem(err) {
  const el = $('dash-problem');
  if (!err) {
    el.hidden = true;
    return;
  }
  el.textContent = err.status === 403
    ? `Not permitted: ${err.message}`
    : `Could not load the statistics: ${err.message} (retrying)`;
  el.classList.toggle('denied', err.status === 403);
  el.hidden = false;
  if (err.status === 403) {
    $('dash-server').replaceChildren(h('p', { class: 'problem denied' }, `Not permitted: ${err.message}`));
  }
}

function doorNames() {
  const seen = new Set(DOORS);
  const extra = [];
  const latest = samples[samples.length - 1];
  for (const source of [server?.doors, latest?.ops, latest?.connections]) {
    for (const d of Object.keys(source || {})) {
      if (!seen.has(d)) {
        seen.add(d);
        extra.push(d);
      }
    }
  }
  return [...DOORS, ...extra];
}

const num = (v) => (Number.isFinite(v) ? v : null);
const sum = (o) => Object.values(o || {}).reduce((a, v) => a + (Number.isFinite(v) ? v : 0), 0);

function lastOf(values) {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null) return values[i];
  return null;
}

function render() {
  const times = samples.map((s) => s.t);
  const latest = samples[samples.length - 1] || {};
  const doors = doorNames();
  const opts = (extra) => ({ times, window: WINDOW, ...extra });

  // Operations per second, per door.
  lineChart($('dash-ops'), doors.map((d) => ({
    label: d, values: samples.map((s) => num(s.ops?.[d]) ?? 0), format: fmt.rate,
  })), opts({ label: 'operations per second by door' }));
  $('dash-ops-now').textContent = String(Math.round(sum(latest.ops)));

  // Latency percentiles.
  const p50 = samples.map((s) => num(s.p50_us));
  const p99 = samples.map((s) => num(s.p99_us));
  lineChart($('dash-latency'), [
    { label: 'p50', values: p50 },
    { label: 'p99', values: p99 },
  ], opts({ format: fmt.micros, label: 'command latency' }));
  $('dash-latency-now').textContent = `p50 ${fmt.micros(lastOf(p50))} · p99 ${fmt.micros(lastOf(p99))}`;

  // Memory against maxmemory (alone when there is no limit).
  const used = samples.map((s) => num(s.used_memory));
  const limit = num(latest.maxmemory) || num(server?.maxmemory) || 0;
  const memSeries = [{ label: 'used', values: used }];
  if (limit > 0) {
    memSeries.push({ label: 'maxmemory', values: samples.map((s) => num(s.maxmemory) || limit), dashed: true, color: 3 });
  }
  lineChart($('dash-memory'), memSeries, opts({ format: fmt.bytes, nice: niceBytes, label: 'memory used' }));
  const usedNow = lastOf(used);
  $('dash-memory-now').textContent = limit > 0
    ? `${fmt.bytes(usedNow)} of ${fmt.bytes(limit)} (${fmt.percent(usedNow / limit)})`
    : `${fmt.bytes(usedNow)} (no maxmemory)`;

  // Connections, per door.
  lineChart($('dash-connections'), doors.map((d) => ({
    label: d, values: samples.map((s) => num(s.connections?.[d]) ?? 0), format: fmt.int,
  })), opts({ label: 'open connections by door' }));
  $('dash-connections-now').textContent = `${fmt.int(sum(latest.connections))} open`;

  // Keys.
  const keys = samples.map((s) => num(s.keys));
  lineChart($('dash-keys'), [{ label: 'keys', values: keys, format: fmt.int }], opts({ label: 'keys stored' }));
  $('dash-keys-now').textContent = `${fmt.int(lastOf(keys))} keys`;

  // Hit ratio: hits / (hits + misses) each second; none in a second without reads.
  const ratio = samples.map((s) => {
    const total = (num(s.hits) ?? 0) + (num(s.misses) ?? 0);
    return total > 0 ? (num(s.hits) ?? 0) / total : null;
  });
  lineChart($('dash-hits'), [{ label: 'hit ratio', values: ratio }],
    opts({ fixedMax: 1, format: (v) => `${Math.round(v * 100)} %`, label: 'hit ratio' }));
  const hits = samples.reduce((a, s) => a + (num(s.hits) ?? 0), 0);
  const reads = hits + samples.reduce((a, s) => a + (num(s.misses) ?? 0), 0);
  $('dash-hits-now').textContent = reads > 0
    ? `${fmt.percent(lastOf(ratio))} now · ${fmt.percent(hits / reads)} over the window`
    : 'no reads';

  // The log's fsync latency.
  const fsync = samples.map((s) => num(s.fsync_p99_us));
  lineChart($('dash-fsync'), [{ label: 'fsync p99', values: fsync }],
    opts({ format: fmt.micros, label: 'log fsync p99 latency' }));
  const fsyncNow = lastOf(fsync);
  $('dash-fsync-now').textContent = fsyncNow === null ? 'no fsyncs in the window' : fmt.micros(fsyncNow);

  renderServer(latest);
}

function renderServer(latest) {
  if (!server) return;
  const doors = server.doors || {};
  const doorList = Object.keys(doors).length
    ? h('ul', { class: 'doors' }, Object.entries(doors).map(([name, addr]) => h('li', {},
      h('span', { class: 'door-name' }, name), ' ', h('code', {}, addr ?? 'off'))))
    : 'none';
  const pairs = [
    ['Version', server.version ?? '—'],
    ['Redis compatibility', server.redis_version ?? '—'],
    ['Uptime', Number.isFinite(server.uptime_seconds) ? fmt.seconds(server.uptime_seconds) : '—'],
    ['Process ID', server.process_id ?? '—'],
    ['Doors', doorList],
    ['Persistence', typeof server.persistence === 'string' ? server.persistence : JSON.stringify(server.persistence ?? null)],
    ['Max memory', server.maxmemory > 0 ? fmt.bytes(server.maxmemory) : 'no limit'],
    ['Last sample', Number.isFinite(latest.t) ? fmt.clock(latest.t) : '—'],
  ];
  $('dash-server').replaceChildren(definitions(pairs, 'meta server-meta'));
}
