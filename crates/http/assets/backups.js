// The Backups section: the list, creating with live progress, deleting,
// and restoring (a stored backup, or a file uploaded from this device).

import { request, upload, seg } from '/assets/api.js';
import { $, h, say, facts, formatSize, formatDate, sniff, setProgress } from '/assets/util.js';

let ctx = null; // callbacks from app.js
let backups = [];
let loaded = null; // the list request in flight
let again = false; // asked for while one was in flight: load once more after it
let totalSize = null;
let hideTimer = 0;
let creating = false;
let deleteTarget = null;
let restoreTarget = null;
let restoring = false;
const pinning = new Set(); // names whose pin request is in flight

const TYPES = { manual: 'Manual', scheduled: 'Scheduled', safety: 'Safety' };
const sentence = (text) => (/[.!?]$/.test(text) ? text : `${text}.`);

/** Where a backup lives, short: "…/config/backups", "s3: bucket/prefix". */
function place(location) {
  const text = String(location);
  if (text.startsWith('file://')) {
    const parts = text.slice(7).split('/').filter(Boolean);
    return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : `/${parts.join('/')}`;
  }
  if (text.startsWith('s3://')) return `s3: ${text.slice(5).split(' ')[0].replace(/\/$/, '')}`;
  return text;
}

/** A 16x16 icon drawn by one SVG path; decorative (the text says it). */
function icon(d) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', d);
  svg.append(path);
  return svg;
}

const lock = () => icon('M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7zm2 0h4V5a2 2 0 0 0-4 0z');
const pinIcon = () => icon('M5 1h6v1.5l-1 .5v4l2.5 2.5V11H9v4l-1 1-1-1v-4H3.5V9.5L6 7V3l-1-.5z');

function row(b) {
  const name = b.filename;
  const created = b.createdAt ? h('time', { datetime: b.createdAt }, formatDate(b.createdAt)) : '—';
  return h(
    'tr',
    { role: 'row' },
    h('th', { scope: 'row', role: 'rowheader', class: 'name', 'data-label': 'Name' }, name),
    h(
      'td',
      { role: 'cell', 'data-label': 'Type' },
      h('span', { class: `badge type-${b.type}` }, TYPES[b.type] || b.type || '—'),
      b.pinned ? h('span', { class: 'badge pinned', title: 'Kept until unpinned, whatever the retention rules say' }, pinIcon(), h('span', {}, 'Pinned')) : null,
      !b.pinned && b.pinsUnreadable ? h('span', { class: 'badge pinned', title: 'The pins cannot be read: this backup may be pinned' }, pinIcon(), h('span', {}, 'Pins unreadable')) : null,
    ),
    h('td', { role: 'cell', class: 'num', 'data-label': 'Size' }, formatSize(b.size)),
    h('td', { role: 'cell', 'data-label': 'Created' }, created),
    h(
      'td',
      { role: 'cell', 'data-label': 'Encryption' },
      b.encrypted ? h('span', { class: 'badge lock' }, lock(), h('span', {}, 'Encrypted')) : h('span', { class: 'plain' }, 'Not encrypted'),
    ),
    h(
      'td',
      { role: 'cell', 'data-label': 'Stored in' },
      h('ul', { class: 'places' }, (b.locations || []).map((l) => h('li', { title: l }, place(l)))),
    ),
    h(
      'td',
      { role: 'cell', class: 'row-actions', 'data-label': 'Actions' },
      h('a', { class: 'button', href: `/api/backup/download/${seg(name)}`, download: name, 'aria-label': `Download ${name}`, 'data-action': 'download', 'data-name': name }, 'Download'),
      h('button', { type: 'button', 'aria-label': `Restore ${name}`, 'data-action': 'restore', 'data-name': name }, 'Restore'),
      h(
        'button',
        { type: 'button', class: 'pin', 'aria-label': `${b.pinned ? 'Unpin' : 'Pin'} ${name}`, 'data-action': 'pin', 'data-name': name, 'aria-disabled': pinning.has(name) ? 'true' : null },
        b.pinned ? 'Unpin' : 'Pin',
      ),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${name}`, 'data-action': 'delete', 'data-name': name }, 'Delete'),
    ),
  );
}

function render() {
  const rows = $('backup-rows');
  const active = document.activeElement;
  const kept = active && rows.contains(active) ? [active.dataset.action, active.dataset.name] : null;
  rows.replaceChildren(...backups.map(row));
  if (!backups.length) {
    rows.append(h('tr', { role: 'row', class: 'empty' }, h('td', { role: 'cell', colspan: 7 }, 'No backups yet. Press “Create backup” to make the first one.')));
  }
  const total = typeof totalSize === 'number' ? totalSize : backups.reduce((sum, b) => sum + (Number(b.size) || 0), 0);
  $('backups-total').textContent = `${backups.length} backup${backups.length === 1 ? '' : 's'}, ${formatSize(total)} in total`;
  if (kept) {
    const again = [...rows.querySelectorAll('[data-action]')].find((el) => el.dataset.action === kept[0] && el.dataset.name === kept[1]);
    (again || $('create-backup')).focus();
  }
}

/** Fetches and shows the list; resolves to the backups (or null on error). */
export function loadBackups() {
  if (loaded) {
    again = true;
    return loaded;
  }
  $('backup-table').setAttribute('aria-busy', 'true');
  loaded = request('GET', '/api/backup/list')
    .then((data) => {
      backups = Array.isArray(data.backups) ? data.backups : [];
      totalSize = data.totalSize;
      render();
      const unreadable = Array.isArray(data.pinsUnreadable) ? data.pinsUnreadable : [];
      // Until the pins document is fixed, every listing says so.
      say(
        $('backups-error'),
        unreadable.length ? `Pins unreadable: ${unreadable.join('; ')}. Until this is fixed, any backup may be pinned, and deleting one needs “I understand”.` : '',
      );
      ctx.onList(backups);
      return backups;
    })
    .catch((e) => {
      if (!e.sessionEnded) say($('backups-error'), `The list of backups could not be loaded: ${e.message}`);
      return null;
    })
    .finally(() => {
      loaded = null;
      $('backup-table').setAttribute('aria-busy', 'false');
      if (again) {
        again = false;
        loadBackups();
      }
    });
  return loaded;
}

export function clearBackups() {
  backups = [];
  $('upload-form').reset();
  $('upload-pass-field').hidden = true;
  $('upload-submit').disabled = true;
  $('upload-progress').hidden = true;
  $('backup-rows').replaceChildren();
  $('backups-total').textContent = '';
  $('backup-progress').hidden = true;
  for (const id of ['backups-status', 'backups-error', 'upload-status', 'upload-error']) say($(id), '');
}

// ---- Progress (from the create request and from server-sent events) ----

function progress(percent, text) {
  clearTimeout(hideTimer);
  setProgress($('backup-progress'), percent, text);
}

function finished(percent, text) {
  progress(percent, text);
  creating = false;
  $('create-backup').disabled = false;
  // Stays at its final value a while so it can be read, then goes.
  hideTimer = setTimeout(() => {
    $('backup-progress').hidden = true;
  }, 10000);
}

/** A server-sent event (name without the "backup:" prefix). */
export function backupEvent(name, data) {
  const status = $('backups-status');
  const error = $('backups-error');
  switch (name) {
    case 'started':
      $('create-backup').disabled = true;
      say(error, '');
      say(status, data.type ? `A ${data.type} backup started.` : 'A backup started.');
      progress(0, 'Starting');
      break;
    case 'progress':
      $('create-backup').disabled = true;
      progress(data.percent, data.step ? String(data.step) : 'Working');
      break;
    case 'complete':
      finished(100, 'Complete');
      say(status, `Backup complete: ${data.filename} (${formatSize(data.size)}).`);
      loadBackups();
      ctx.refreshHealth();
      break;
    case 'error':
      finished(Number($('backup-progress').getAttribute('aria-valuenow')) || 0, 'Failed');
      say(error, `The backup failed: ${data.error || 'unknown error'}`);
      loadBackups();
      ctx.refreshHealth();
      break;
    case 'scheduled-failed':
      say(error, `The scheduled backup failed${data.timestamp ? ` (${formatDate(data.timestamp)})` : ''}: ${data.error || 'unknown error'}`);
      ctx.refreshHealth();
      break;
    case 'destination-failed':
      say(error, `The backup was kept on this server but could not be copied to ${data.destination}: ${data.error || 'unknown error'}`);
      ctx.refreshHealth();
      break;
    default:
  }
}

async function create() {
  if (creating) return;
  creating = true;
  const button = $('create-backup');
  button.disabled = true;
  say($('backups-error'), '');
  say($('backups-status'), 'Creating a backup…');
  progress(0, 'Starting');
  try {
    const r = await request('POST', '/api/backup/create');
    let text = `Backup created: ${r.filename} (${formatSize(r.size)}).`;
    if (r.deleted && r.deleted.length) text += ` Removed as older than the number to keep: ${r.deleted.join(', ')}.`;
    if (r.futureStamped && r.futureStamped.length) text += ` Kept (dated in the future): ${r.futureStamped.join(', ')}.`;
    for (const d of r.destinations || []) {
      if (d.error) text += ` Copying to ${d.destination} failed: ${d.error}.`;
      if (d.deleted && d.deleted.length) text += ` Removed from ${d.destination}: ${d.deleted.join(', ')}.`;
      if (d.failed && d.failed.length) text += ` Could not remove from ${d.destination}: ${d.failed.map(f => f.filename).join(', ')}.`;
    }
    finished(100, 'Complete');
    say($('backups-status'), text);
  } catch (e) {
    creating = false;
    button.disabled = false;
    $('backup-progress').hidden = true;
    say($('backups-status'), '');
    if (!e.sessionEnded) say($('backups-error'), e.message);
  }
  loadBackups();
  ctx.refreshHealth();
}

// ---- Delete ----

/** Safety and pinned backups are deleted only after "I understand" (and with force=true). */
function askToForce(safety, pinned) {
  $('delete-safety-note').hidden = !safety;
  $('delete-pinned-note').hidden = !pinned;
  $('delete-force').hidden = !(safety || pinned);
  $('delete-understand').checked = false;
  $('delete-confirm').disabled = safety || pinned;
}

function openDelete(b) {
  const pinned = Boolean(b.pinned || b.pinsUnreadable);
  deleteTarget = { backup: b, force: b.type === 'safety' || pinned };
  $('delete-name').textContent = b.filename;
  askToForce(b.type === 'safety', pinned);
  say($('delete-error'), '');
  $('delete-dialog').showModal();
  $('delete-cancel').focus();
}

async function confirmDelete() {
  const target = deleteTarget;
  if (!target) return;
  const b = target.backup;
  const button = $('delete-confirm');
  button.disabled = true;
  const force = target.force ? '?force=true' : '';
  try {
    await request('DELETE', `/api/backup/${seg(b.filename)}${force}`);
    // By name: the list may have been reloaded while the dialog was open.
    const index = backups.findIndex((x) => x.filename === b.filename);
    const next = index < 0 ? null : backups[index + 1] || backups[index - 1];
    backups = backups.filter((x) => x.filename !== b.filename);
    totalSize = null;
    $('delete-dialog').close();
    render();
    say($('backups-status'), `Deleted ${b.filename}.`);
    const focus = next && [...$('backup-rows').querySelectorAll('[data-action="delete"]')].find((el) => el.dataset.name === next.filename);
    (focus || $('create-backup')).focus();
    loadBackups();
    ctx.refreshHealth();
  } catch (e) {
    button.disabled = false;
    if (e.sessionEnded) {
      $('delete-dialog').close();
    } else if (e.status === 403 && !target.force) {
      // Pinned (or made a safety backup) since the list was loaded: ask first.
      const pinned = /pinned/i.test(e.message);
      target.force = true;
      if (pinned) b.pinned = true;
      askToForce(!pinned, pinned);
      say(
        $('delete-error'),
        pinned
          ? 'Not deleted: this backup was pinned after the list was shown. Check “I understand” to delete it anyway.'
          : `Not deleted: ${sentence(e.message)} Check “I understand” to delete it anyway.`,
      );
      $('delete-understand').focus();
      loadBackups();
    } else {
      say($('delete-error'), e.message);
    }
  }
}

// ---- Pin ----

async function togglePin(b) {
  const name = b.filename;
  if (pinning.has(name)) return;
  const on = !b.pinned;
  pinning.add(name);
  render();
  say($('backups-error'), '');
  say($('backups-status'), `${on ? 'Pinning' : 'Unpinning'} ${name}…`);
  try {
    const r = await request(on ? 'POST' : 'DELETE', `/api/backup/${seg(name)}/pin`);
    b.pinned = typeof r.pinned === 'boolean' ? r.pinned : on;
    say(
      $('backups-status'),
      b.pinned ? `Pinned ${name}: it is kept until you unpin it.` : `Unpinned ${name}: retention treats it like any other backup again.`,
    );
    const failed = Array.isArray(r.failed) ? r.failed : [];
    if (failed.length) {
      say($('backups-error'), `The pin could not be saved in ${failed.map((f) => `${f.destination} (${f.error})`).join(', ')}.`);
    }
  } catch (e) {
    say($('backups-status'), '');
    if (!e.sessionEnded) say($('backups-error'), `${name} could not be ${on ? 'pinned' : 'unpinned'}: ${e.message}`);
  } finally {
    pinning.delete(name);
  }
  render();
  loadBackups();
}

// ---- Restore a stored backup ----

function openRestore(b) {
  restoreTarget = b;
  $('restore-name').textContent = b.filename;
  $('restore-unlock').hidden = !b.encrypted;
  $('restore-pass').value = '';
  $('restore-contents').hidden = true;
  $('restore-facts').replaceChildren();
  $('restore-confirm').disabled = true;
  $('restore-cancel').disabled = false;
  say($('restore-error'), '');
  say($('restore-status'), '');
  $('restore-dialog').showModal();
  if (b.encrypted) $('restore-pass').focus();
  else {
    $('restore-cancel').focus();
    inspect();
  }
}

function showContents(info) {
  const c = info.counts || {};
  const n = (v) => (typeof v === 'number' ? String(v) : '—');
  const g = info.generator;
  facts($('restore-facts'), [
    ['Users', n(c.users)],
    ['Dashboards', n(c.dashboards)],
    ['Integrations', n(c.integrations)],
    ['Icons', n(c.icons)],
    ['Schema version', n(info.userVersion)],
    ['Made', formatDate(info.createdAt)],
    ['Made by', g ? `${g.name || 'unknown'} ${g.version || ''}`.trim() : 'Framerr'],
    ['Checksums', info.checksumsVerified ? 'Verified' : 'Not verified'],
  ]);
  $('restore-contents').hidden = false;
}

async function inspect() {
  const b = restoreTarget;
  const password = $('restore-pass').value;
  if (b.encrypted && !password) {
    say($('restore-error'), 'Enter the backup’s password.');
    $('restore-pass').focus();
    return;
  }
  say($('restore-error'), '');
  say($('restore-status'), 'Reading the backup…');
  const path = `/api/backup/inspect/${seg(b.filename)}`;
  try {
    const info = b.encrypted ? await request('POST', path, { password }, { withPassword: true }) : await request('GET', path);
    if (restoreTarget !== b) return;
    showContents(info);
    say($('restore-status'), 'Backup read: its contents are listed above.');
    $('restore-unlock').hidden = true;
    $('restore-confirm').disabled = false;
    if (b.encrypted) $('restore-contents-title').focus();
  } catch (e) {
    if (restoreTarget !== b) return;
    say($('restore-status'), '');
    if (e.sessionEnded) return;
    if (e.status === 401) {
      say($('restore-error'), e.message);
      $('restore-pass').select();
      $('restore-pass').focus();
      return;
    }
    // The restore checks the backup again before it changes anything.
    say($('restore-error'), `Its contents could not be shown: ${e.message}`);
    $('restore-confirm').disabled = false;
  }
}

async function confirmRestore() {
  const b = restoreTarget;
  const password = $('restore-pass').value;
  if (b.encrypted && !password) {
    $('restore-unlock').hidden = false;
    say($('restore-error'), 'Enter the backup’s password.');
    $('restore-pass').focus();
    return;
  }
  restoring = true;
  ctx.restoreStarts();
  $('restore-confirm').disabled = true;
  $('restore-cancel').disabled = true;
  say($('restore-error'), '');
  say($('restore-status'), 'Restoring: a safety backup is made first. This can take a minute…');
  const body = { filename: b.filename };
  if (b.encrypted) body.password = password;
  try {
    const summary = await request('POST', '/api/backup/restore', body, { withPassword: b.encrypted });
    restoring = false;
    $('restore-dialog').close();
    ctx.restored(summary);
  } catch (e) {
    restoring = false;
    $('restore-cancel').disabled = false;
    $('restore-confirm').disabled = false;
    say($('restore-status'), '');
    say($('restore-error'), e.message);
    if (e.status === 401 && !e.sessionEnded) {
      $('restore-unlock').hidden = false;
      $('restore-pass').select();
      $('restore-pass').focus();
    }
    ctx.restoreFailed();
  }
}

// ---- Upload a file and restore it ----

let uploadKind = null;

async function fileChosen() {
  const file = $('upload-file').files[0];
  const submit = $('upload-submit');
  uploadKind = null;
  submit.disabled = true;
  $('upload-pass-field').hidden = true;
  say($('upload-error'), '');
  say($('upload-status'), '');
  if (!file) return;
  uploadKind = await sniff(file);
  if (!uploadKind) {
    say($('upload-error'), 'Not a valid Framerr backup file.');
    return;
  }
  $('upload-pass-field').hidden = uploadKind !== 'encrypted';
  submit.disabled = false;
  say($('upload-status'), uploadKind === 'encrypted' ? 'An encrypted backup: enter its password.' : 'A backup file, ready to restore.');
}

async function uploadRestore(event) {
  event.preventDefault();
  const file = $('upload-file').files[0];
  if (!file || !uploadKind) return;
  const password = $('upload-pass').value;
  if (uploadKind === 'encrypted' && !password) {
    say($('upload-error'), 'Enter the backup’s password.');
    $('upload-pass').focus();
    return;
  }
  const submit = $('upload-submit');
  const bar = $('upload-progress');
  submit.disabled = true;
  say($('upload-error'), '');
  say($('upload-status'), `Uploading ${file.name}…`);
  setProgress(bar, 0, 'Uploading');
  ctx.restoreStarts();
  const fields = uploadKind === 'encrypted' ? [['password', password], ['backup', file]] : [['backup', file]];
  try {
    const summary = await upload(
      '/api/backup/restore/upload',
      fields,
      (percent, sent) => {
        setProgress(bar, percent, sent ? 'Uploaded; restoring' : 'Uploading');
        if (sent) say($('upload-status'), 'Uploaded. Restoring: a safety backup is made first. This can take a minute…');
      },
      { withPassword: uploadKind === 'encrypted' },
    );
    bar.hidden = true;
    say($('upload-status'), '');
    $('upload-form').reset();
    ctx.restored(summary);
  } catch (e) {
    bar.hidden = true;
    submit.disabled = false;
    say($('upload-status'), '');
    say($('upload-error'), e.message);
    if (e.status === 401 && !e.sessionEnded) {
      $('upload-pass-field').hidden = false;
      $('upload-pass').select();
      $('upload-pass').focus();
    }
    ctx.restoreFailed();
  }
}

export function initBackups(callbacks) {
  ctx = callbacks;
  $('create-backup').addEventListener('click', create);
  $('backup-rows').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const b = backups.find((x) => x.filename === button.dataset.name);
    if (!b) return;
    if (button.dataset.action === 'delete') openDelete(b);
    else if (button.dataset.action === 'restore') openRestore(b);
    else if (button.dataset.action === 'pin') togglePin(b);
  });
  $('delete-cancel').addEventListener('click', () => $('delete-dialog').close());
  $('delete-confirm').addEventListener('click', confirmDelete);
  $('delete-understand').addEventListener('change', (e) => {
    $('delete-confirm').disabled = !e.target.checked;
  });
  $('restore-unlock').addEventListener('submit', (e) => {
    e.preventDefault();
    inspect();
  });
  $('restore-cancel').addEventListener('click', () => $('restore-dialog').close());
  $('restore-confirm').addEventListener('click', confirmRestore);
  $('restore-dialog').addEventListener('cancel', (e) => {
    if (restoring) e.preventDefault();
  });
  $('restore-dialog').addEventListener('close', () => {
    if (!restoring) restoreTarget = null;
    $('restore-pass').value = '';
  });
  $('upload-file').addEventListener('change', fileChosen);
  $('upload-form').addEventListener('submit', uploadRestore);
}
