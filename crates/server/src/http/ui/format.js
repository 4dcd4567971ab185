// Numbers, sizes, durations and times as an operator reads them.

const DASH = '—';

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** A whole number with thousands separators. */
export function int(n) {
  return Number.isFinite(n) ? grouped.format(Math.round(n)) : DASH;
}

/** A short number for chart axes: 950, 1.2k, 3.4M. */
export function compact(n) {
  if (!Number.isFinite(n)) return DASH;
  const a = Math.abs(n);
  if (a >= 1e9) return `${trim(n / 1e9)}G`;
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e3) return `${trim(n / 1e3)}k`;
  return trim(n);
}

function trim(n) {
  const a = Math.abs(n);
  const digits = a >= 100 || Number.isInteger(n) ? 0 : a >= 10 ? 1 : 2;
  return String(Number(n.toFixed(digits)));
}

/** Bytes in B, KiB, MiB, GiB or TiB. */
export function bytes(n) {
  if (!Number.isFinite(n)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  if (u === 0) return `${Math.round(v)} B`;
  return `${v.toFixed(Math.abs(v) >= 100 ? 0 : 1)} ${units[u]}`;
}

/** A duration given in microseconds: µs, ms or s. */
export function micros(us) {
  if (us === null || us === undefined || !Number.isFinite(us)) return DASH;
  if (us < 10) return `${us.toFixed(1)} µs`;
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

/** A span of seconds as `3d 4h`, `2h 5m`, `4m 10s` or `12s`. */
export function seconds(s) {
  if (!Number.isFinite(s)) return DASH;
  const t = Math.max(0, Math.floor(s));
  const d = Math.floor(t / 86400);
  const hr = Math.floor((t % 86400) / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** A ratio from 0 to 1 as a percentage. */
export function percent(x) {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : DASH;
}

/** Operations per second. */
export function rate(n) {
  return Number.isFinite(n) ? `${int(n)} ops/s` : DASH;
}

const pad = (n) => String(n).padStart(2, '0');

/** A time (Date, milliseconds or RFC 3339 text) in local time: 2025-01-31 14:05:09. */
export function dateTime(value) {
  if (value === null || value === undefined || value === '') return DASH;
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A clock time (HH:MM:SS) of unix seconds. */
export function clock(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Remaining time to live of an expiry (milliseconds since the epoch) as seconds, or "none". */
export function ttl(expiresAtMs) {
  if (expiresAtMs === null || expiresAtMs === undefined || !Number.isFinite(expiresAtMs)) return 'none';
  const left = Math.ceil((expiresAtMs - Date.now()) / 1000);
  return left > 0 ? `${left} s` : 'expired';
}

/** Seconds left before an expiry, rounded up; null when none. */
export function ttlSeconds(expiresAtMs) {
  if (expiresAtMs === null || expiresAtMs === undefined || !Number.isFinite(expiresAtMs)) return null;
  return Math.max(0, Math.ceil((expiresAtMs - Date.now()) / 1000));
}
