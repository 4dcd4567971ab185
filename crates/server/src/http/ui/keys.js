// The key browser: kvs's keys listed by prefix as folders (`/` separates levels), one page at
// a time, kept current by watching the prefix; the selected key is shown beside the list.

import { call, watch, isAbort } from './api.js';
import { $, h, go, problem, debounce, liveBadge } from './dom.js';
import * as fmt from './format.js';
import * as value from './value.js';

const PAGE = 100;

const st = {
  listPrefix: null, // the prefix listed: a folder, or what was searched
  cursors: [null], // the cursor each page starts at
  page: 0,
  next: null,
  gen: 0,
  watcher: null,
  shown: false,
  ticker: null,
  refreshTimer: null,
  counts: { keys: 0, folders: 0 },
};

export function init() {
  value.init({ onChange: () => refreshSoon() });
  const search = debounce(() => list($('key-search').value), 300);
  $('key-search').addEventListener('input', search);
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    search.cancel();
    list($('key-search').value);
  });
  $('key-next').addEventListener('click', () => turn(1));
  $('key-prev').addEventListener('click', () => turn(-1));
  $('new-key').addEventListener('click', () => {
    value.create();
    markSelected();
  });
  $('key-list').addEventListener('click', follow('tr.folder-row, tr.key-row'));
  $('breadcrumb').addEventListener('click', follow('a'));
}

/**
 * Shows the screen for the hash's parameter: nothing or a folder (ends with `/`) lists it; a
 * key is shown beside its folder (or beside the current listing when that shows it).
 */
export function show(param) {
  st.shown = true;
  if (!st.ticker) st.ticker = setInterval(tick, 1000);
  const target = parse(param);
  if (target.kind === 'key') {
    value.open(value.refForKey(target.text));
    // The listing stays when it shows the key (a search, say); otherwise the key's folder is listed.
    const listed = st.listPrefix !== null && target.text.startsWith(st.listPrefix)
      && !target.text.slice(st.listPrefix.length).includes('/');
    if (!listed) list(value.folderOf(target.text));
    else resume();
  } else if (target.kind === 'raw') {
    value.open({ key: null, path: `/kvs/${target.raw}`, label: `${target.raw} (not UTF-8, percent-encoded)` });
    if (st.listPrefix === null) list('');
    else resume();
  } else {
    value.close();
    if (target.text !== st.listPrefix) list(target.text);
    else resume();
  }
  markSelected();
}

export function hide() {
  st.shown = false;
  stopWatch();
  value.pause();
  clearInterval(st.ticker);
  st.ticker = null;
}

function parse(param) {
  if (!param) return { kind: 'folder', text: '' };
  let text;
  try {
    text = decodeURIComponent(param);
  } catch {
    // Not UTF-8 once decoded: the key's own percent-encoding, used as its path.
    return { kind: 'raw', raw: param };
  }
  return text.endsWith('/') ? { kind: 'folder', text } : { kind: 'key', text };
}

/** Back on the screen with the same listing: follows it again and catches up. */
function resume() {
  if (st.watcher) return;
  load().then((index) => {
    if (index !== undefined) startWatch(index);
  });
}

/** Lists a new prefix from its first page. */
function list(prefix) {
  st.listPrefix = prefix;
  st.cursors = [null];
  st.page = 0;
  if ($('key-search').value !== prefix) $('key-search').value = prefix;
  renderBreadcrumb();
  stopWatch();
  load().then((index) => {
    if (index !== undefined && st.listPrefix === prefix) startWatch(index);
  });
}

function turn(step) {
  if (step > 0 && !st.next) return;
  if (step > 0) st.cursors[st.page + 1] = st.next;
  st.page = Math.max(0, st.page + step);
  load().then(() => $('key-list').querySelector('a')?.focus());
}

/** Loads the current page; resolves to the listing's feed position (null if not given), or
 * undefined when it failed or was overtaken by another listing. */
async function load() {
  const gen = ++st.gen;
  const prefix = st.listPrefix;
  const cursor = st.cursors[st.page];
  let url = `/kvs?prefix=${encodeURIComponent(prefix)}&limit=${PAGE}&delimiter=%2F`;
  if (cursor) url += `&cursor=${encodeURIComponent(cursor)}`;
  try {
    const res = await call(url);
    const body = await res.json();
    if (gen !== st.gen) return undefined;
    st.next = body.next_cursor ?? null;
    renderList(body, prefix);
    renderPager(body);
    return res.headers.get('x-kvs-index');
  } catch (err) {
    if (gen !== st.gen || isAbort(err)) return undefined;
    problem($('key-list'), err, 'Could not list the keys');
    st.next = null;
    renderPager(null);
    return undefined;
  }
}

/** Lists again soon, at most a few times a second however fast the keys change. */
function refreshSoon() {
  if (st.refreshTimer || st.listPrefix === null) return;
  st.refreshTimer = setTimeout(() => {
    st.refreshTimer = null;
    if (st.shown) load();
  }, 300);
}

function startWatch(index) {
  stopWatch();
  if (!st.shown) return;
  const since = index === null || index === '' ? null : index;
  st.watcher = watch(`/kvs?prefix=${encodeURIComponent(st.listPrefix)}&watch&values=none`, {
    since,
    onEvent: refreshSoon,
    onReset: refreshSoon,
    // Without a position to resume from, changes made before the stream opened are caught up.
    onOpen: () => {
      if (since === null) refreshSoon();
    },
    onState: (state) => liveBadge('list-live', state),
  });
}

function stopWatch() {
  st.watcher?.close();
  st.watcher = null;
  $('list-live').hidden = true;
}

function tick() {
  for (const el of $('key-list').querySelectorAll('[data-expires]')) {
    el.textContent = fmt.ttl(Number(el.dataset.expires));
  }
  value.tick();
}

/** Clicks on a row or link go to its hash, even when it is the current one. */
function follow(selector) {
  return (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    const target = e.target.closest(selector);
    const link = target?.matches('a') ? target : target?.querySelector('a');
    if (!link) return;
    e.preventDefault();
    go(link.getAttribute('href'));
  };
}

/** The path of a key that is not UTF-8: kvs gives it percent-encoded (or as base64). */
function rawPath(entry) {
  if (entry.key_encoding === 'percent' && typeof entry.key === 'string') return entry.key;
  const bytes = Uint8Array.from(atob(entry.key_base64), (c) => c.charCodeAt(0));
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~/]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function cell(label, content, cls) {
  return h('td', { class: cls, 'data-label': label }, content);
}

function renderList(body, prefix) {
  const base = value.folderOf(prefix);
  const keys = Array.isArray(body.keys) ? body.keys : [];
  let folders = Array.isArray(body.prefixes) ? body.prefixes : null;
  let shown = keys;
  if (!folders) {
    // A server that does not group by delimiter: the folders are made from this page's keys.
    const found = new Set();
    shown = [];
    for (const k of keys) {
      const rest = typeof k.key === 'string' && !k.key_encoding ? k.key.slice(prefix.length) : '';
      const slash = rest.indexOf('/');
      if (slash >= 0) found.add(prefix + rest.slice(0, slash + 1));
      else shown.push(k);
    }
    folders = [...found];
  }
  const rows = [];
  for (const f of folders) {
    rows.push(h('tr', { class: 'folder-row', dataset: { prefix: f } },
      h('td', { colspan: 7, class: 'name' },
        h('a', { href: value.keyHash(f), class: 'folder-link', title: f }, f.startsWith(base) ? f.slice(base.length) : f))));
  }
  for (const k of shown) {
    const raw = typeof k.key !== 'string' || k.key_encoding ? rawPath(k) : null;
    const full = raw ?? k.key;
    const name = raw ? `${raw} (not UTF-8)` : full.startsWith(base) ? full.slice(base.length) : full;
    const expires = k.expires_at ? Date.parse(k.expires_at) : null;
    const ttl = cell('TTL', fmt.ttl(expires), 'num');
    if (Number.isFinite(expires)) ttl.dataset.expires = String(expires);
    rows.push(h('tr', { class: 'key-row', dataset: { key: full, path: raw ? `/kvs/${raw}` : value.refForKey(full).path } },
      h('td', { class: 'name', 'data-label': 'Key' },
        h('a', { href: `#/keys/${raw ?? encodeURIComponent(full)}`, title: full, class: raw ? 'raw-key' : null }, name)),
      cell('Type', k.type ?? 'string'),
      cell('Size', fmt.bytes(k.size), 'num'),
      cell('Content type', k.content_type ?? '', 'mono'),
      cell('Version', k.version ?? '', 'num'),
      ttl,
      cell('Modified', h('time', { datetime: k.modified_at ?? '' }, fmt.dateTime(k.modified_at)))));
  }
  if (!rows.length) {
    const where = prefix ? ` starting with “${prefix}”` : '';
    rows.push(h('tr', { class: 'empty-row' }, h('td', { colspan: 7, class: 'muted' }, `No keys${where}.`)));
  }
  const head = ['Name', 'Type', 'Size', 'Content type', 'Version', 'TTL', 'Modified']
    .map((t) => h('th', { scope: 'col', class: ['Size', 'Version', 'TTL'].includes(t) ? 'num' : null }, t));
  $('key-list').replaceChildren(h('table', { class: 'data keys-table' },
    h('caption', { class: 'visually-hidden' }, `Keys${prefix ? ` starting with ${prefix}` : ''}`),
    h('thead', {}, h('tr', {}, head)),
    h('tbody', {}, rows)));
  st.counts = { keys: shown.length, folders: folders.length };
  markSelected();
}

function renderPager(body) {
  $('key-prev').disabled = st.page === 0;
  $('key-next').disabled = !st.next;
  const c = st.counts;
  const parts = [];
  if (c.folders) parts.push(`${fmt.int(c.folders)} folder${c.folders === 1 ? '' : 's'}`);
  parts.push(`${fmt.int(c.keys)} key${c.keys === 1 ? '' : 's'}`);
  $('key-page').textContent = body ? `Page ${st.page + 1} · ${parts.join(', ')}` : '';
}

function markSelected() {
  const path = value.currentPath();
  for (const row of $('key-list').querySelectorAll('tr.key-row')) {
    const on = path !== null && row.dataset.path === path;
    row.classList.toggle('selected', on);
    if (on) row.setAttribute('aria-current', 'true');
    else row.removeAttribute('aria-current');
  }
}

function renderBreadcrumb() {
  const prefix = st.listPrefix ?? '';
  const parts = prefix.split('/');
  const rest = parts.pop();
  const items = [];
  const crumb = (label, p, current) => h('li', {},
    h('a', { href: value.keyHash(p), 'aria-current': current ? 'page' : null }, label));
  items.push(crumb('All keys', '', !parts.length && !rest));
  let acc = '';
  parts.forEach((part, i) => {
    acc += `${part}/`;
    items.push(crumb(`${part}/`, acc, i === parts.length - 1 && !rest));
  });
  if (rest) items.push(h('li', { class: 'crumb-search' }, `starting with “${rest}”`));
  $('breadcrumb').replaceChildren(h('ol', {}, items));
}
