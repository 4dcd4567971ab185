// How a stored value is shown: JSON pretty-printed, text as text, images as images, anything
// else as a hex dump of its first 4 KiB. Also the value's metadata (type, size, version, TTL…).

import { h } from './dom.js';
import * as fmt from './format.js';

/** Bytes shown in a hex dump. */
const HEX_LIMIT = 4096;
/** Characters of text shown before the rest is left out (the editor still holds all of it). */
const TEXT_LIMIT = 1 << 20;

/** What kvs stores when a write names no content type (RESP and line-protocol writes). */
export const DEFAULT_TYPE = 'application/octet-stream';

/** The media type without parameters, lowercased: `text/plain; charset=utf-8` → `text/plain`. */
export function essence(contentType) {
  return (contentType || '').split(';')[0].trim().toLowerCase();
}

export function isJsonType(contentType) {
  const e = essence(contentType);
  return e === 'application/json' || e.endsWith('+json');
}

export function isTextType(contentType) {
  const e = essence(contentType);
  return e.startsWith('text/') || e.endsWith('+xml') || [
    'application/xml', 'application/javascript', 'application/x-www-form-urlencoded',
    'application/yaml', 'application/x-yaml', 'application/toml', 'application/x-ndjson',
    'application/sql', 'application/graphql',
  ].includes(e);
}

/** The bytes as UTF-8 text, or null when they are not valid UTF-8. */
export function utf8(bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** How the value is shown: 'image', 'json', 'text' or 'hex'. */
export function kindOf(contentType, bytes) {
  const e = essence(contentType);
  if (e.startsWith('image/')) return 'image';
  if (isJsonType(e)) return utf8(bytes) === null ? 'hex' : 'json';
  if (isTextType(e)) return utf8(bytes) === null ? 'hex' : 'text';
  return 'hex';
}

/** The classic dump: offset, sixteen bytes in hex, and the same bytes as ASCII. */
export function hexDump(bytes, limit = HEX_LIMIT) {
  const n = Math.min(bytes.length, limit);
  const lines = [];
  for (let off = 0; off < n; off += 16) {
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i += 1) {
      if (i === 8) hex += ' ';
      if (off + i < n) {
        const b = bytes[off + i];
        hex += `${b.toString(16).padStart(2, '0')} `;
        ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
      } else {
        hex += '   ';
      }
    }
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  return lines.join('\n');
}

function clip(text) {
  return text.length > TEXT_LIMIT ? text.slice(0, TEXT_LIMIT) : text;
}

function clipNote(text) {
  return text.length > TEXT_LIMIT
    ? h('p', { class: 'hint' }, `Showing the first ${fmt.int(TEXT_LIMIT)} characters of ${fmt.int(text.length)}.`)
    : null;
}

/**
 * Renders `value` ({bytes, contentType}) into `container`. `asText` shows a UTF-8 value of any
 * type as text. Returns a function that frees what the rendering holds (an image's blob URL).
 */
export function renderValue(container, value, { asText = false, onToggleText } = {}) {
  const { bytes, contentType } = value;
  let kind = kindOf(contentType, bytes);
  const text = utf8(bytes);
  if (asText && text !== null) kind = 'text';
  const nodes = [];
  let cleanup = () => {};

  if (kind === 'image') {
    const url = URL.createObjectURL(new Blob([bytes], { type: essence(contentType) }));
    cleanup = () => URL.revokeObjectURL(url);
    const img = h('img', { id: 'value-image', src: url, alt: `image value (${essence(contentType)}, ${fmt.bytes(bytes.length)})` });
    img.addEventListener('error', () => {
      img.replaceWith(
        h('p', { class: 'problem' }, 'The browser cannot display this image; its first bytes:'),
        h('pre', { id: 'value-hex', class: 'hex' }, hexDump(bytes)),
      );
    }, { once: true });
    nodes.push(h('div', { class: 'image-frame' }, img));
  } else if (kind === 'json') {
    let pretty = null;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // Not valid JSON despite its type: shown as it is.
    }
    if (pretty !== null) {
      nodes.push(h('pre', { id: 'value-json', class: 'code' }, clip(pretty)), clipNote(pretty));
    } else {
      nodes.push(h('p', { class: 'hint' }, 'The content type says JSON, but this is not valid JSON; shown as text.'));
      nodes.push(h('pre', { id: 'value-text', class: 'code' }, clip(text)), clipNote(text));
    }
  } else if (kind === 'text') {
    if (text === '') nodes.push(h('p', { class: 'muted' }, '(empty value)'));
    nodes.push(h('pre', { id: 'value-text', class: 'code' }, clip(text)), clipNote(text));
  } else {
    nodes.push(h('pre', { id: 'value-hex', class: 'hex' }, bytes.length ? hexDump(bytes) : '(empty value)'));
    if (bytes.length > HEX_LIMIT) {
      nodes.push(h('p', { class: 'hint' }, `Showing the first 4 KiB of ${fmt.bytes(bytes.length)} (${fmt.int(bytes.length)} bytes).`));
    }
  }
  // A value stored without a textual type (as RESP writes store them) may still be text.
  if (onToggleText && text !== null && bytes.length && !isTextType(contentType) && !isJsonType(contentType)
      && !essence(contentType).startsWith('image/')) {
    const toggle = h('button', { type: 'button', class: 'btn small', id: 'value-as-text' },
      asText ? 'Show as hex' : 'Show as text');
    toggle.addEventListener('click', () => onToggleText(!asText));
    nodes.unshift(h('div', { class: 'view-tools' }, toggle));
  }
  container.replaceChildren(...nodes.filter(Boolean));
  return cleanup;
}

/**
 * Fills the metadata list. `value`: {size, contentType, version, expiresAt (ms|null),
 * modifiedAt (ms|null)}; the TTL cell carries data-expires so it can count down.
 */
export function renderMeta(dl, key, value) {
  const ttlCell = h('dd', { class: 'ttl' }, fmt.ttl(value.expiresAt));
  if (Number.isFinite(value.expiresAt)) ttlCell.dataset.expires = String(value.expiresAt);
  const rows = [
    ['Key', h('dd', { class: 'mono break' }, key)],
    ['Type', h('dd', {}, 'string')],
    ['Size', h('dd', {}, `${fmt.bytes(value.size)}${value.size >= 1024 ? ` (${fmt.int(value.size)} bytes)` : ''}`)],
    ['Content type', h('dd', { class: 'mono' }, value.contentType || DEFAULT_TYPE)],
    ['Version', h('dd', {}, value.version ?? '—')],
    ['TTL', ttlCell],
    ['Modified', h('dd', {}, Number.isFinite(value.modifiedAt) ? fmt.dateTime(value.modifiedAt) : '—')],
  ];
  dl.replaceChildren(...rows.flatMap(([label, dd]) => [h('dt', {}, label), dd]));
}

/** Counts down every TTL cell below `root` that carries data-expires. */
export function tickTtls(root) {
  for (const el of root.querySelectorAll('[data-expires]')) {
    el.textContent = fmt.ttl(Number(el.dataset.expires));
  }
}
