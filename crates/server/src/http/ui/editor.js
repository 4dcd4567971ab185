// The edit form of a value: fills it from a stored value, takes an uploaded file as the new
// value, and reads back what to store after checking it.

import { $, show, notify } from './dom.js';
import { utf8, isJsonType, DEFAULT_TYPE } from './render.js';
import * as fmt from './format.js';

const TEXT_TYPE = 'text/plain; charset=utf-8';

let file = null; // { bytes, type, name } once a file is chosen
let textEditable = true; // false when the stored value is not text

export function init() {
  $('edit-file').addEventListener('change', () => {
    chooseFile().catch((err) => notify(`Could not read the file: ${err.message}`, 'error'));
  });
}

/** Fills the form; `bytes` is the stored value (null for a new key). */
export function fill({ key, locked, contentType, ttl, bytes }) {
  $('edit-key').value = key ?? '';
  $('edit-key').readOnly = locked;
  $('edit-content-type').value = contentType ?? '';
  $('edit-ttl').value = ttl === null || ttl === undefined ? '' : String(ttl);
  const text = bytes ? utf8(bytes) : '';
  textEditable = text !== null;
  $('edit-value').value = text ?? '';
  $('edit-value').disabled = !textEditable;
  const note = $('edit-value-note');
  note.textContent = textEditable ? ''
    : `This value is binary (${fmt.bytes(bytes.length)}); it is kept as it is unless you upload a file.`;
  note.hidden = textEditable;
  $('edit-file').value = '';
  file = null;
  for (const id of ['edit-key', 'edit-ttl', 'edit-value']) $(id).removeAttribute('aria-invalid');
  show(false, 'edit-file-note', 'live-notice');
}

/** Whether the value can be edited as text (else only replaced by a file). */
export function editsText() {
  return textEditable;
}

async function chooseFile() {
  const chosen = $('edit-file').files?.[0];
  const note = $('edit-file-note');
  if (!chosen) {
    file = null;
    $('edit-value').disabled = !textEditable;
    note.hidden = true;
    return;
  }
  file = { bytes: new Uint8Array(await chosen.arrayBuffer()), type: chosen.type, name: chosen.name };
  if (chosen.type) $('edit-content-type').value = chosen.type;
  $('edit-value').disabled = true;
  note.textContent = `The file “${chosen.name}” (${fmt.bytes(chosen.size)}) will be stored as the value.`;
  note.hidden = false;
}

function invalid(id, message) {
  notify(message, 'error');
  $(id).setAttribute('aria-invalid', 'true');
  $(id).focus();
  return null;
}

/**
 * What to store: { key, body, contentType, ttl (seconds as text, or null) }, or null after
 * pointing at what is wrong. `key` is fixed when editing (null when creating); `original`
 * ({bytes, contentType}) is kept when a binary value is not replaced.
 */
export function read({ key: fixedKey, original }) {
  for (const id of ['edit-key', 'edit-ttl', 'edit-value']) $(id).removeAttribute('aria-invalid');
  const key = fixedKey ?? $('edit-key').value;
  if (!key) return invalid('edit-key', 'Enter a name for the key.');
  const ttl = $('edit-ttl').value.trim();
  if (ttl && !/^[1-9]\d*$/.test(ttl)) {
    return invalid('edit-ttl', 'The TTL is a whole number of seconds above zero; leave it empty for none.');
  }
  let contentType = $('edit-content-type').value.trim();
  let body;
  if (file) {
    body = file.bytes;
    contentType ||= file.type || DEFAULT_TYPE;
  } else if (textEditable || !original) {
    body = $('edit-value').value;
    contentType ||= TEXT_TYPE;
    if (isJsonType(contentType)) {
      try {
        JSON.parse(body);
      } catch (err) {
        return invalid('edit-value', `The value is not valid JSON (${err.message}); fix it or change the content type.`);
      }
    }
  } else {
    body = original.bytes;
    contentType ||= original.contentType || DEFAULT_TYPE;
  }
  return { key, body, contentType, ttl: ttl || null };
}
