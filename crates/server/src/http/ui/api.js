// How the console talks to kvs: one fetch wrapper that adds the operator's credentials and
// asks for them when the server answers 401, and a reader of kvs's watch streams
// (Server-Sent Events read with fetch, since EventSource cannot send an Authorization header).
//
// Credentials live in a variable and in this tab's sessionStorage only. No cookies are used and
// every request is sent with `credentials: 'omit'`, so the browser never attaches credentials
// on its own: a page on another site cannot make requests in the operator's name.

const STORE = 'kvs-console-credentials';

let credentials = readStored();
let pendingLogin = null; // { promise, resolve } while the login form is waiting
let loginHandler = () => {};

/** An error answered by kvs (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function isAbort(err) {
  return err?.name === 'AbortError';
}

function readStored() {
  try {
    const raw = sessionStorage.getItem(STORE);
    const parsed = raw ? JSON.parse(raw) : null;
    return parsed && typeof parsed.user === 'string' ? parsed : null;
  } catch {
    return null;
  }
}

/** The user signed in, or null. */
export function currentUser() {
  return credentials?.user ?? null;
}

/** Called with a message whenever a request needs the operator to sign in. */
export function onLoginNeeded(handler) {
  loginHandler = handler;
}

/** Stores the credentials and lets every request waiting for them go again. */
export function login(user, password) {
  credentials = { user, password };
  try {
    sessionStorage.setItem(STORE, JSON.stringify(credentials));
  } catch {
    // Storage refused (private mode): the credentials stay in memory.
  }
  const waiting = pendingLogin;
  pendingLogin = null;
  waiting?.resolve();
}

export function logout() {
  credentials = null;
  try {
    sessionStorage.removeItem(STORE);
  } catch {
    // Nothing stored.
  }
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** Resolves once the operator has signed in (or rejects when `signal` aborts first). */
function waitForLogin(message, signal) {
  if (!pendingLogin) {
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    pendingLogin = { promise, resolve };
    loginHandler(message);
  }
  const { promise } = pendingLogin;
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/** The error a failed response describes (kvs answers `{"error","message"}`). */
export async function errorFrom(res) {
  let code = `http_${res.status}`;
  let message = '';
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text);
      code = body.error || code;
      message = body.message || '';
    } catch {
      message = text.slice(0, 300);
    }
  } catch {
    // The body could not be read; the status says enough.
  }
  if (!message) message = res.statusText || `HTTP ${res.status}`;
  return new ApiError(res.status, code, message);
}

/**
 * Sends a request to kvs. Statuses in `allow` are returned like successes; other failures throw
 * an ApiError. A 401 shows the login form and sends the request again once signed in.
 */
export async function call(path, { method = 'GET', headers = {}, body, signal, allow = [] } = {}) {
  for (;;) {
    const h = new Headers(headers);
    if (credentials) h.set('Authorization', basic(credentials.user, credentials.password));
    let res;
    try {
      res = await fetch(path, { method, headers: h, body, signal, credentials: 'omit', cache: 'no-store' });
    } catch (err) {
      if (isAbort(err)) throw err;
      throw new ApiError(0, 'network', 'the server could not be reached');
    }
    if (res.status === 401) {
      const err = await errorFrom(res);
      await waitForLogin(credentials ? err.message : '', signal);
      continue;
    }
    if (res.ok || allow.includes(res.status)) return res;
    throw await errorFrom(res);
  }
}

/** GETs (or sends) and parses the JSON answer. */
export async function json(path, options) {
  const res = await call(path, options);
  if (res.status === 204) return null;
  return res.json();
}

/** The path of a key: `/kvs/` and the key, every reserved character escaped (`/` too). */
export function keyPath(key) {
  return `/kvs/${encodeURIComponent(key)}`;
}

/** The version an ETag names (`"12"` or `W/"12"`), or null. */
export function versionOf(etag) {
  const m = /^(?:W\/)?"?(\d+)"?$/.exec((etag || '').trim());
  return m ? Number(m[1]) : null;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reads an event stream body, calling `onEvent({id, event, data})` for each complete event. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let event = '';
  let id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        let line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) onEvent({ id, event: event || 'message', data: data.join('\n') });
          data = [];
          event = '';
          id = null;
          continue;
        }
        if (line.startsWith(':')) continue; // a heartbeat
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'data') data.push(val);
        else if (field === 'event') event = val;
        else if (field === 'id') id = val;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Follows a watch stream (`/kvs/{key}?watch…` or `/kvs?prefix=…&watch…`) until closed.
 * Handlers: onEvent(change) with the parsed JSON; onOpen() each time the stream is (re)opened;
 * onReset() when the server no longer holds the history to resume from (list again);
 * onState('live' | 'retrying' | 'stopped', error?).
 * Reconnects with growing delays, resuming after the last event seen with Last-Event-ID.
 */
export function watch(path, { since = null, onEvent, onOpen, onReset, onState } = {}) {
  const ctl = new AbortController();
  const { signal } = ctl;
  let lastId = null;
  let resumeFrom = since;
  let delay = 1000;
  const state = (s, err) => onState?.(s, err);

  (async () => {
    while (!signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream' };
        let url = path;
        if (lastId) headers['Last-Event-ID'] = lastId;
        else if (resumeFrom !== null && resumeFrom !== undefined) url += `&since=${encodeURIComponent(resumeFrom)}`;
        const res = await call(url, { headers, signal, allow: [410] });
        if (res.status === 410) {
          lastId = null;
          resumeFrom = null;
          onReset?.();
          continue;
        }
        state('live');
        delay = 1000;
        onOpen?.();
        await readEvents(res.body, (ev) => {
          if (ev.id) lastId = ev.id;
          let change;
          try {
            change = JSON.parse(ev.data);
          } catch {
            return;
          }
          if (ev.event === 'overflow') {
            if (change.error === 'history_compacted') {
              lastId = null;
              resumeFrom = null;
              onReset?.();
            }
            return;
          }
          onEvent?.(change);
        });
        // The server ended the stream (shutting down, or this watcher fell behind): resume.
        if (signal.aborted) return;
        state('retrying');
        await sleep(delay, signal);
      } catch (err) {
        if (signal.aborted || isAbort(err)) return;
        if (err instanceof ApiError && (err.status === 403 || err.status === 404 || err.status === 400)) {
          state('stopped', err);
          return;
        }
        state('retrying', err);
        try {
          await sleep(delay, signal);
        } catch {
          return;
        }
        delay = Math.min(delay * 2, 30000);
      }
    }
  })().catch(() => {
    // Every failure is handled above; this keeps an abort race from surfacing as unhandled.
  });

  return { close: () => ctl.abort() };
}
