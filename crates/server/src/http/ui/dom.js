// Small DOM helpers shared by the console's screens. Data from kvs only ever enters the page as
// text nodes or attribute values, never as markup.

import { isAbort } from './api.js';

export const $ = (id) => document.getElementById(id);

/**
 * Creates an element. `props`: `class`, `dataset` (object), `on<event>` (function), any other
 * attribute (true → present, false/null/undefined → absent). Children: nodes or text.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Shows or hides elements (by id or element) with the `hidden` attribute. */
export function show(on, ...els) {
  for (const el of els) {
    const node = typeof el === 'string' ? $(el) : el;
    if (node) node.hidden = !on;
  }
}

/** Goes to a screen's hash; when it is already the current one, routes again anyway. */
export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

/** A message in the status area: `kind` is info, ok or error. */
export function notify(message, kind = 'info') {
  const area = $('status');
  if (!area) return;
  const item = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : null },
    h('span', { class: 'toast-text' }, message));
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  close.addEventListener('click', () => item.remove());
  item.append(close);
  area.append(item);
  while (area.children.length > 4) area.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 12000 : 5000);
}

/** Reports a failed action in the status area (aborted requests are not failures). */
export function reportError(err, what) {
  if (isAbort(err)) return;
  const text = err?.status === 403 ? `not permitted: ${err.message}` : err?.message || String(err);
  notify(what ? `${what}: ${text}` : text, 'error');
}

/** Puts a problem where data would be: "not permitted" for 403, the message otherwise. */
export function problem(container, err, what = 'Could not load') {
  const text = err?.status === 403
    ? `Not permitted: ${err.message}`
    : `${what}: ${err?.message || String(err)}`;
  container.replaceChildren(h('p', { class: err?.status === 403 ? 'problem denied' : 'problem' }, text));
}

/** Runs an async action from an event handler, reporting any failure. */
export function run(action, what) {
  return (...args) => {
    Promise.resolve()
      .then(() => action(...args))
      .catch((err) => reportError(err, what));
  };
}

/** Calls `fn` once `ms` after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** A definition list of label → value pairs (values may be nodes). */
export function definitions(pairs, cls = 'meta') {
  const dl = h('dl', { class: cls });
  for (const [label, value] of pairs) dl.append(h('dt', {}, label), h('dd', {}, value));
  return dl;
}

/** Shows a watch's state in the badge with id `id`: live, reconnecting or not live. */
export function liveBadge(id, state) {
  const badge = $(id);
  badge.hidden = false;
  badge.textContent = state === 'live' ? 'live' : state === 'retrying' ? 'reconnecting…' : 'not live';
  badge.classList.toggle('off', state !== 'live');
}
