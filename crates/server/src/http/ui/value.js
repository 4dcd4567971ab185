// One key's value: shown, edited, created or deleted, and kept current by watching the key.
// Writes are conditional: an edit sends If-Match with the ETag it loaded and a create sends
// If-None-Match: *, so a change made elsewhere in the meantime is reported as a conflict and
// never silently overwritten.

import { call, keyPath, versionOf, watch, isAbort } from './api.js';
import { $, h, show, go, notify, problem, run, debounce, liveBadge } from './dom.js';
import { renderValue, renderMeta, tickTtls, DEFAULT_TYPE } from './render.js';
import * as editor from './editor.js';
import * as fmt from './format.js';

const st = {
  ref: null, // { key: text or null when not UTF-8, path: '/kvs/…', label }
  loaded: null, // { bytes, contentType, etag, version, size, expiresAt, modifiedAt }
  mode: 'empty', // empty | loading | view | missing | error | edit | create
  asText: false,
  cleanup: () => {},
  gen: 0,
  watcher: null,
  conflict: null, // { op, current } after a 412
  savedVersion: null,
  removedBy: null,
  onChange: () => {},
};

/** The console's hash for a key or a prefix. */
export function keyHash(keyOrPrefix) {
  return `#/keys/${encodeURIComponent(keyOrPrefix)}`;
}

/** The folder a key sits in: everything up to its last `/`. */
export function folderOf(key) {
  return key.slice(0, key.lastIndexOf('/') + 1);
}

/** The reference to a key given as text. */
export function refForKey(key) {
  return { key, path: keyPath(key), label: key };
}

/** The path of the key being shown, if any. */
export function currentPath() {
  return st.ref?.path ?? null;
}

export function init({ onChange }) {
  st.onChange = onChange;
  $('edit-button').addEventListener('click', () => (st.mode === 'missing' ? create(st.ref?.key ?? '') : startEdit()));
  $('cancel-button').addEventListener('click', () => {
    hideConflict();
    if (st.mode === 'create' || !st.ref) close();
    else if (st.loaded) renderLoaded();
    else renderMissing();
  });
  $('editor').addEventListener('submit', (e) => {
    e.preventDefault();
    run(save, 'Save failed')();
  });
  $('delete-button').addEventListener('click', () => askDelete(true));
  $('delete-cancel').addEventListener('click', () => askDelete(false));
  $('delete-confirm').addEventListener('click', run(confirmDelete, 'Delete failed'));
  $('reload-button').addEventListener('click', run(reloadAfterConflict, 'Reload failed'));
  $('overwrite-button').addEventListener('click', run(overwrite, 'Overwrite failed'));
  editor.init();
}

/** Shows a key (reloading it unless it is already shown) and follows its changes. */
export function open(ref) {
  if (st.ref && st.ref.path === ref.path && st.mode !== 'create' && st.mode !== 'empty') {
    if (!st.watcher) startWatch();
    return;
  }
  if (st.mode === 'edit' && st.ref) notify(`Your unsaved edit of ${st.ref.label} was discarded.`);
  reset();
  st.ref = ref;
  setMode('loading');
  $('value-meta').replaceChildren();
  $('value-view').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  load();
  startWatch();
}

/** Opens the editor for a new key (empty unless a name is given). */
export function create(key = '') {
  reset();
  editor.fill({ key, locked: false, contentType: '', ttl: null, bytes: null });
  $('value-meta').replaceChildren();
  setMode('create');
  $('edit-key').focus();
}

/** Shows nothing and stops watching. */
export function close() {
  reset();
  setMode('empty');
}

/** Stops watching while the keys screen is hidden (open() resumes). */
export function pause() {
  stopWatch();
}

/** Counts the TTL down. */
export function tick() {
  tickTtls($('value-meta'));
}

function reset() {
  stopWatch();
  st.gen += 1;
  st.ref = null;
  st.loaded = null;
  st.asText = false;
  st.removedBy = null;
  st.savedVersion = null;
  st.cleanup();
  st.cleanup = () => {};
  hideConflict();
  askDelete(false);
}

function setMode(mode) {
  st.mode = mode;
  const editing = mode === 'edit' || mode === 'create';
  const writable = Boolean(st.ref && st.ref.key !== null);
  show(mode !== 'empty', 'value-panel');
  show(mode === 'empty', 'detail-empty');
  show(!editing, 'value-view');
  show(editing, 'editor', 'save-button', 'cancel-button');
  show(writable && (mode === 'view' || mode === 'missing'), 'edit-button');
  $('edit-button').textContent = mode === 'missing' ? 'Create it' : 'Edit';
  show(writable && (mode === 'view' || mode === 'edit'), 'delete-button');
  show(false, 'delete-confirm', 'delete-cancel');
  if (!editing) show(false, 'live-notice');
  $('value-title').textContent = mode === 'create' ? 'New key' : st.ref?.label ?? '';
}

function fromResponse(res, bytes) {
  const etag = res.headers.get('etag');
  const date = (name) => {
    const ms = Date.parse(res.headers.get(name) || '');
    return Number.isFinite(ms) ? ms : null;
  };
  return {
    bytes,
    contentType: res.headers.get('content-type') || DEFAULT_TYPE,
    etag,
    version: versionOf(etag),
    size: bytes.length,
    expiresAt: date('expires'),
    modifiedAt: date('last-modified'),
  };
}

async function load() {
  const gen = ++st.gen;
  const ref = st.ref;
  try {
    const res = await call(ref.path, { allow: [404] });
    if (gen !== st.gen) return;
    if (res.status === 404) {
      st.loaded = null;
      renderMissing();
      return;
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (gen !== st.gen) return;
    st.loaded = fromResponse(res, bytes);
    st.removedBy = null;
    renderLoaded();
  } catch (err) {
    if (gen !== st.gen || isAbort(err)) return;
    st.loaded = null;
    setMode('error');
    $('value-meta').replaceChildren();
    problem($('value-view'), err);
  }
}

function renderLoaded() {
  setMode('view');
  renderMeta($('value-meta'), st.ref.label, st.loaded);
  st.cleanup();
  st.cleanup = renderValue($('value-view'), st.loaded, {
    asText: st.asText,
    onToggleText: (on) => {
      st.asText = on;
      renderLoaded();
    },
  });
}

const removals = { delete: 'deleted', expire: 'expired', evict: 'evicted', flush: 'flushed' };

function renderMissing() {
  setMode('missing');
  $('value-meta').replaceChildren();
  st.cleanup();
  st.cleanup = () => {};
  const why = st.removedBy ? ` It was just ${removals[st.removedBy] ?? 'removed'}.` : '';
  $('value-view').replaceChildren(h('p', { class: 'muted' }, `There is no key named “${st.ref.label}”.${why}`));
}

function startEdit() {
  if (!st.loaded || !st.ref) return;
  const v = st.loaded;
  hideConflict();
  const left = fmt.ttlSeconds(v.expiresAt);
  const ttl = left === null ? null : Math.max(1, left);
  editor.fill({ key: st.ref.key, locked: true, contentType: v.contentType, ttl, bytes: v.bytes });
  setMode('edit');
  (editor.editsText() ? $('edit-value') : $('edit-content-type')).focus();
}

async function save() {
  if (st.mode !== 'edit' && st.mode !== 'create') return;
  const creating = st.mode === 'create';
  const input = editor.read({ key: creating ? null : st.ref.key, original: st.loaded });
  if (!input) return;
  const op = {
    kind: 'save', ...input, path: keyPath(input.key), creating,
    baseVersion: creating ? null : st.loaded?.version ?? null,
  };
  const condition = creating ? { 'If-None-Match': '*' }
    : st.loaded?.etag ? { 'If-Match': st.loaded.etag } : { 'If-None-Match': '*' };
  await attempt(op, condition);
}

function askDelete(asking) {
  show(asking, 'delete-confirm', 'delete-cancel');
  if (st.mode === 'view' || st.mode === 'edit') show(!asking, 'delete-button');
  if (asking) $('delete-confirm').focus();
}

async function confirmDelete() {
  if (!st.ref) return;
  const op = { kind: 'delete', key: st.ref.key, path: st.ref.path, baseVersion: st.loaded?.version ?? null };
  await attempt(op, st.loaded?.etag ? { 'If-Match': st.loaded.etag } : {});
}

function busy(on) {
  for (const id of ['save-button', 'delete-confirm', 'overwrite-button', 'reload-button']) $(id).disabled = on;
}

/** Sends a save or delete with its condition; a 412 shows the conflict instead. */
async function attempt(op, condition) {
  busy(true);
  try {
    if (op.kind === 'save') {
      const url = op.ttl ? `${op.path}?ttl=${encodeURIComponent(op.ttl)}` : op.path;
      const res = await call(url, {
        method: 'PUT', headers: { 'Content-Type': op.contentType, ...condition }, body: op.body, allow: [412],
      });
      if (res.status === 412) return await showConflict(op);
      const reply = await res.json().catch(() => ({}));
      const version = reply?.version ?? versionOf(res.headers.get('etag'));
      hideConflict();
      notify(`Saved ${op.key} (version ${version ?? '?'}).`, 'ok');
      st.onChange();
      if (op.creating || st.ref?.path !== op.path) {
        reset();
        go(keyHash(op.key));
      } else {
        st.savedVersion = version;
        await load();
      }
    } else {
      const res = await call(op.path, { method: 'DELETE', headers: condition, allow: [404, 412] });
      if (res.status === 412) return await showConflict(op);
      notify(res.status === 404 ? `${op.key} was already gone.` : `Deleted ${op.key}.`, 'ok');
      st.onChange();
      close();
      go(keyHash(folderOf(op.key)));
    }
  } finally {
    busy(false);
  }
}

/** After a 412: asks the server for the key's version now and offers reload or overwrite. */
async function showConflict(op) {
  let current = null;
  try {
    const res = await call(op.path, { method: 'HEAD', allow: [404] });
    if (res.status !== 404) current = { etag: res.headers.get('etag'), version: versionOf(res.headers.get('etag')) };
  } catch (err) {
    if (isAbort(err)) return;
  }
  st.conflict = { op, current };
  const name = `“${op.key}”`;
  const now = current ? `The server now has version ${current.version}.` : 'The key does not exist on the server now.';
  let text;
  if (op.kind === 'save' && op.creating) {
    text = `Edit conflict: ${name} was created elsewhere while you were writing it. ${now} Nothing was saved.`;
  } else if (op.kind === 'save') {
    text = `Edit conflict: ${name} was changed elsewhere after you loaded version ${op.baseVersion}. ${now} Your edit was not saved.`;
  } else {
    text = current
      ? `Delete conflict: ${name} was changed elsewhere after you loaded version ${op.baseVersion}. ${now} It was not deleted.`
      : `Delete conflict: ${name} was already deleted elsewhere.`;
  }
  $('conflict-text').textContent = text;
  const overwriteButton = $('overwrite-button');
  overwriteButton.textContent = op.kind === 'delete' ? 'Delete anyway' : current ? 'Overwrite anyway' : 'Save anyway';
  overwriteButton.hidden = op.kind === 'delete' && !current;
  $('reload-button').textContent = op.kind === 'save' ? 'Reload (discard my edit)' : 'Reload';
  show(true, 'conflict');
  $('conflict').focus();
}

function hideConflict() {
  st.conflict = null;
  show(false, 'conflict');
}

async function reloadAfterConflict() {
  const op = st.conflict?.op;
  hideConflict();
  if (op?.creating) {
    reset();
    go(keyHash(op.key));
    return;
  }
  if (st.ref) await load();
}

/** Repeats the refused write against the version the conflict showed (still conditional). */
async function overwrite() {
  if (!st.conflict) return;
  const { op, current } = st.conflict;
  const condition = current?.etag ? { 'If-Match': current.etag } : { 'If-None-Match': '*' };
  op.baseVersion = current?.version ?? null;
  await attempt(op, condition);
}

// Live updates: the key's watch stream says when it changes over any door.

const reloadSoon = debounce(() => {
  if (['view', 'missing', 'error'].includes(st.mode) && st.ref) load();
}, 150);

function startWatch() {
  stopWatch();
  if (!st.ref) return;
  st.watcher = watch(`${st.ref.path}?watch&values=none`, {
    onOpen: () => verify().catch(() => {}),
    onReset: () => verify().catch(() => {}),
    onEvent: changed,
    onState: (state) => liveBadge('value-live', state),
  });
}

function stopWatch() {
  st.watcher?.close();
  st.watcher = null;
  reloadSoon.cancel();
  $('value-live').hidden = true;
}

function changed(ev) {
  if (!st.ref || st.mode === 'create') return;
  const known = st.loaded?.version;
  if (ev.op === 'put' && Number.isFinite(ev.version)
      && ((known !== null && known !== undefined && ev.version <= known) || ev.version === st.savedVersion)) return;
  const removed = ev.op !== 'put';
  if (st.mode === 'edit') {
    const notice = $('live-notice');
    notice.textContent = removed
      ? `While you were editing, this key was ${removals[ev.op] ?? 'removed'} elsewhere. Saving will report a conflict.`
      : `While you were editing, this key was changed elsewhere: the server now has version ${ev.version ?? '?'}. `
        + 'Saving will report a conflict; you can then reload or overwrite.';
    notice.hidden = false;
    return;
  }
  st.removedBy = removed ? ev.op : null;
  reloadSoon();
}

/** Compares the version held with the server's (changes made before the watch started). */
async function verify() {
  if (!st.ref || !['view', 'missing', 'edit'].includes(st.mode)) return;
  const ref = st.ref;
  const res = await call(ref.path, { method: 'HEAD', allow: [404] });
  if (st.ref !== ref) return;
  const version = res.status === 404 ? null : versionOf(res.headers.get('etag'));
  const held = st.loaded?.version ?? null;
  if (version === held) return;
  changed(version === null ? { op: 'delete' } : { op: 'put', version });
}
