// Small DOM and formatting helpers shared by the page's modules.

export const $ = (id) => document.getElementById(id);

/** Builds an element: h('p', { class: 'x', 'aria-label': 'y' }, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c != null && c !== false));
  return el;
}

/** Shows `text` in a message element, or hides it when empty. */
export function say(el, text) {
  el.textContent = text || '';
  if (el.getAttribute('role') === 'alert' || el.classList.contains('field-error')) el.hidden = !text;
}

/** A definition list's content from [term, detail] pairs. */
export function facts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([term, detail]) => [h('dt', {}, term), h('dd', {}, detail)]));
}

const one = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatSize(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return '—';
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i ? one.format(n) : n} ${UNITS[i]}`;
}

export function parseDate(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** The viewer's local date and time, or "—". */
export function formatDate(iso) {
  const d = parseDate(iso);
  return d ? dateTime.format(d) : '—';
}

export function formatShortDate(ms) {
  return shortDate.format(new Date(ms));
}

export const localZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone;

/** The date and time in another IANA zone, or null when the zone is unknown. */
export function formatInZone(iso, zone) {
  const d = parseDate(iso);
  if (!d || !zone) return null;
  try {
    return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short', timeZone: zone }).format(d);
  } catch {
    return null;
  }
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const STEPS = [
  ['year', 31536000],
  ['month', 2592000],
  ['week', 604800],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
];

/** "3 hours ago", "in 2 days". */
export function ago(iso) {
  const d = parseDate(iso);
  if (!d) return '';
  const seconds = (d.getTime() - Date.now()) / 1000;
  for (const [unit, size] of STEPS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds), 'second');
}

/** "5 seconds", "2 minutes". */
export function formatWait(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 1));
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

/** "encrypted", "plain", or null for a file that is not a Framerr backup. */
export async function sniff(file) {
  const bytes = new Uint8Array(await file.slice(0, 8).arrayBuffer());
  if (String.fromCharCode(...bytes) === 'FRMRBKUP') return 'encrypted';
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'plain';
  return null;
}

/** Sets a role="progressbar" element (and the <progress> inside it). */
export function setProgress(bar, percent, text) {
  const value = Math.max(0, Math.min(100, Math.round(Number(percent) || 0)));
  bar.hidden = false;
  bar.setAttribute('aria-valuenow', String(value));
  if (text) bar.setAttribute('aria-valuetext', `${value}% — ${text}`);
  else bar.removeAttribute('aria-valuetext');
  bar.querySelector('progress').value = value;
  bar.querySelector('.step').textContent = text ? `${text} (${value}%)` : `${value}%`;
}

/** Disables a button for `seconds`, then enables it again. */
export function holdButton(button, seconds) {
  button.disabled = true;
  clearTimeout(button.holdTimer);
  button.holdTimer = setTimeout(() => {
    button.disabled = false;
  }, Math.max(1, Number(seconds) || 1) * 1000);
}

/** Marks each field's server complaint next to it (aria-invalid + message). */
export function fieldErrors(prefix, fields) {
  for (const el of document.querySelectorAll(`[id^="${prefix}"][id$="-error"].field-error`)) {
    say(el, '');
    const control = document.querySelector(`[aria-describedby~="${el.id}"]`);
    if (control) control.removeAttribute('aria-invalid');
  }
  for (const [name, message] of Object.entries(fields || {})) {
    const el = $(`${prefix}${name}-error`);
    if (!el) continue;
    say(el, String(message));
    const control = document.querySelector(`[aria-describedby~="${el.id}"]`);
    if (control) control.setAttribute('aria-invalid', 'true');
  }
}
