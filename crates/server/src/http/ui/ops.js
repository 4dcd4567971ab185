// Operations: kvs's slow log, its connected clients (each can be disconnected) and the state of
// its persistence, with a button that writes a snapshot now. Refreshed every few seconds while
// the screen is shown.

import { call, json, isAbort } from './api.js';
import { $, h, notify, run } from './dom.js';
import * as fmt from './format.js';

const REFRESH = 5000;

let active = false;
let timer = null;
/** What each table last showed, to leave it (and the focus in it) alone when nothing changed. */
const shown = { slowlog: null, clients: null, persistence: null };

export function init() {
  $('slowlog-refresh').addEventListener('click', () => loadSlowlog(true));
  $('slowlog-reset').addEventListener('click', run(resetSlowlog, 'Could not reset the slow log'));
  $('clients-refresh').addEventListener('click', () => loadClients(true));
  $('persistence-refresh').addEventListener('click', () => loadPersistence(true));
  $('snapshot-button').addEventListener('click', run(snapshot, 'Snapshot failed'));
  $('clients').addEventListener('click', (e) => {
    const button = e.target.closest('button.kill-client');
    if (button) run(() => kill(button), 'Could not disconnect the client')();
  });
}

export function show() {
  active = true;
  refreshAll(true);
  schedule();
}

export function hide() {
  active = false;
  clearTimeout(timer);
  timer = null;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (!active) return;
    refreshAll(false).finally(() => {
      if (active) schedule();
    });
  }, REFRESH);
}

function refreshAll(force) {
  return Promise.all([loadSlowlog(force), loadClients(force), loadPersistence(force)]);
}

/** Puts a problem (403: "not permitted") in a table's body. */
function tableProblem(table, err, columns) {
  const text = err.status === 403 ? `Not permitted: ${err.message}` : `Could not load: ${err.message}`;
  table.tBodies[0].replaceChildren(h('tr', {},
    h('td', { colspan: columns, class: err.status === 403 ? 'problem denied' : 'problem' }, text)));
}

function emptyRow(columns, text) {
  return h('tr', { class: 'empty-row' }, h('td', { colspan: columns, class: 'muted' }, text));
}

function td(label, content, cls) {
  return h('td', { 'data-label': label, class: cls }, content);
}

/** A command's words as an operator would type them: quoted when they hold spaces or quotes. */
function commandText(words) {
  if (!Array.isArray(words)) return String(words ?? '');
  return words.map((w) => (/^[\x21-\x7e]+$/.test(w) && !/["']/.test(w) ? w : JSON.stringify(w))).join(' ');
}

async function loadSlowlog(force) {
  const table = $('slowlog');
  try {
    const body = await json('/admin/slowlog');
    const entries = Array.isArray(body?.entries) ? body.entries : [];
    const key = JSON.stringify(entries);
    if (!force && key === shown.slowlog) return;
    shown.slowlog = key;
    const rows = entries.map((e) => {
      const command = commandText(e.command);
      return h('tr', {},
        td('ID', e.id ?? '', 'num'),
        td('Time', Number.isFinite(e.time) ? fmt.dateTime(e.time * 1000) : '—'),
        td('Duration', fmt.micros(e.duration_us), 'num'),
        td('Door', e.door ?? ''),
        td('Client', e.client ?? '', 'mono'),
        td('Name', e.name ?? ''),
        td('Command', h('code', { title: command }, command), 'command'));
    });
    table.tBodies[0].replaceChildren(...(rows.length ? rows : [emptyRow(7, 'No slow commands recorded.')]));
  } catch (err) {
    if (isAbort(err)) return;
    shown.slowlog = null;
    tableProblem(table, err, 7);
  }
}

async function resetSlowlog() {
  await call('/admin/slowlog', { method: 'DELETE' });
  notify('The slow log was reset.', 'ok');
  await loadSlowlog(true);
}

async function loadClients(force) {
  const table = $('clients');
  try {
    const body = await json('/admin/clients');
    const clients = Array.isArray(body?.clients) ? body.clients : [];
    const key = JSON.stringify(clients);
    if (!force && key === shown.clients) return;
    shown.clients = key;
    // Keeps the keyboard focus on the same client's button across a refresh.
    const focused = table.contains(document.activeElement) ? document.activeElement.dataset?.id : undefined;
    const rows = clients.map((c) => h('tr', { dataset: { id: String(c.id) } },
      td('ID', c.id, 'num'),
      td('Door', c.door ?? ''),
      td('Address', c.addr ?? '', 'mono'),
      td('Name', c.name ?? ''),
      td('User', c.user ?? ''),
      td('Age', Number.isFinite(c.age) ? fmt.seconds(c.age) : '—', 'num'),
      td('Idle', Number.isFinite(c.idle) ? fmt.seconds(c.idle) : '—', 'num'),
      td('Last command', c.cmd ?? '', 'mono'),
      td('', h('button', {
        type: 'button',
        class: 'btn small danger-outline kill-client',
        dataset: { id: String(c.id) },
        'aria-label': `Kill client ${c.id} (${c.addr ?? c.door ?? ''})`,
      }, 'Kill'), 'actions-cell')));
    table.tBodies[0].replaceChildren(...(rows.length ? rows : [emptyRow(9, 'No clients are connected.')]));
    if (focused !== undefined) {
      const again = table.querySelector(`button.kill-client[data-id="${CSS.escape(focused)}"]`);
      (again ?? $('clients-refresh')).focus();
    }
  } catch (err) {
    if (isAbort(err)) return;
    shown.clients = null;
    tableProblem(table, err, 9);
  }
}

async function kill(button) {
  const { id } = button.dataset;
  button.disabled = true;
  try {
    const res = await call(`/admin/clients/${encodeURIComponent(id)}`, { method: 'DELETE', allow: [404] });
    notify(res.status === 404 ? `Client ${id} had already gone.` : `Client ${id} was disconnected.`, 'ok');
  } finally {
    button.disabled = false;
  }
  await loadClients(true);
}

const label = (name) => name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

/** A value of the persistence report, read generically (nested objects become nested lists). */
function valueNode(name, v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '—';
  if (typeof v === 'object') return definitionList(v);
  if (typeof v === 'number' && /bytes/.test(name)) return `${fmt.bytes(v)} (${fmt.int(v)} bytes)`;
  if (typeof v === 'number' && /millis|_ms$/.test(name)) return `${fmt.int(v)} ms`;
  if (typeof v === 'number' && /(^|_)(save|time|at|ok)$/.test(name) && v > 1e9 && v < 1e11) {
    return `${fmt.dateTime(v * 1000)} (${v})`;
  }
  return String(v);
}

function definitionList(obj) {
  const dl = h('dl', { class: 'meta' });
  for (const [k, v] of Object.entries(obj)) dl.append(h('dt', {}, label(k)), h('dd', {}, valueNode(k, v)));
  return dl;
}

async function loadPersistence(force) {
  const box = $('persistence');
  try {
    const body = await json('/admin/persistence');
    const key = JSON.stringify(body);
    if (!force && key === shown.persistence) return;
    shown.persistence = key;
    box.replaceChildren(body && typeof body === 'object' ? definitionList(body) : h('p', {}, String(body)));
  } catch (err) {
    if (isAbort(err)) return;
    shown.persistence = null;
    box.replaceChildren(h('p', { class: err.status === 403 ? 'problem denied' : 'problem' },
      err.status === 403 ? `Not permitted: ${err.message}` : `Could not load: ${err.message}`));
  }
}

async function snapshot() {
  const button = $('snapshot-button');
  button.disabled = true;
  button.textContent = 'Writing snapshot…';
  try {
    const res = await call('/admin/snapshot?wait=true', { method: 'POST', allow: [409] });
    const body = await res.json().catch(() => ({}));
    if (res.status === 409) {
      notify(`Snapshot refused: ${body.message || 'a snapshot cannot be written now'}`, 'error');
    } else {
      const parts = [];
      if (Number.isFinite(body.keys)) parts.push(`${fmt.int(body.keys)} keys`);
      if (Number.isFinite(body.bytes)) parts.push(fmt.bytes(body.bytes));
      if (Number.isFinite(body.millis)) parts.push(`in ${fmt.int(body.millis)} ms`);
      notify(`Snapshot written${parts.length ? `: ${parts.join(', ')}` : ''}.`, 'ok');
    }
  } finally {
    button.disabled = false;
    button.textContent = 'Snapshot now';
  }
  await loadPersistence(true);
}
