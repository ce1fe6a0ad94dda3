// The Schedule, Encryption and Health sections.

import { request } from '/assets/api.js';
import { $, h, say, facts, formatDate, formatInZone, formatShortDate, localZone, ago, formatSize, fieldErrors } from '/assets/util.js';
import { lineChart } from '/assets/chart.js';

let zone = null; // the server's time zone, from /health
let schedule = null; // the last GET/PUT /schedule answer
let chartBackups = [];
let history = null; // [{filename, size, durationMs, createdAt}] or null
let chartWidth = 0;

const two = (n) => String(n).padStart(2, '0');

// ---- Schedule ----

function showTimes() {
  const mine = localZone();
  $('sched-zone').textContent = zone ? (zone === mine ? `${zone} (the same as this device)` : zone) : '—';
  $('sched-hour-hint').textContent = zone ? `In the server’s time zone, ${zone}.` : 'In the server’s time zone.';
  const saved = (schedule && schedule.schedule) || {};
  const next = schedule && schedule.status && schedule.status.nextBackup;
  let text = next ? formatDate(next) : saved.enabled ? '—' : 'None: scheduled backups are off';
  if (next && zone && zone !== mine) {
    const there = formatInZone(next, zone);
    if (there) text += ` your time (${there} in ${zone})`;
  }
  $('sched-next').textContent = text;
  $('sched-last').textContent = saved.lastBackup ? `${formatDate(saved.lastBackup)} (${ago(saved.lastBackup)})` : 'None yet';
}

function showDay() {
  $('sched-day-field').hidden = $('sched-frequency').value !== 'weekly';
}

function showSchedule(data) {
  schedule = data;
  const s = data.schedule || {};
  $('sched-enabled').checked = Boolean(s.enabled);
  $('sched-frequency').value = s.frequency === 'weekly' ? 'weekly' : 'daily';
  if (Number.isInteger(s.dayOfWeek)) $('sched-day').value = String(s.dayOfWeek);
  if (Number.isInteger(s.hour)) $('sched-hour').value = String(s.hour);
  if (Number.isInteger(s.maxBackups)) $('sched-keep').value = String(s.maxBackups);
  showDay();
  showTimes();
}

export async function loadSchedule() {
  const form = $('schedule-form');
  form.setAttribute('aria-busy', 'true');
  try {
    showSchedule(await request('GET', '/api/backup/schedule'));
    say($('sched-error'), '');
  } catch (e) {
    if (!e.sessionEnded) say($('sched-error'), `The schedule could not be loaded: ${e.message}`);
  } finally {
    form.setAttribute('aria-busy', 'false');
  }
}

async function saveSchedule(event) {
  event.preventDefault();
  const keep = Number($('sched-keep').value);
  const problems = {};
  if (!Number.isInteger(keep) || keep < 1 || keep > 30) problems.maxBackups = 'Enter a whole number from 1 to 30.';
  fieldErrors('sched-', problems);
  say($('sched-status'), '');
  if (problems.maxBackups) {
    say($('sched-error'), 'The schedule was not saved: check “Backups to keep”.');
    $('sched-keep').focus();
    return;
  }
  const body = {
    enabled: $('sched-enabled').checked,
    frequency: $('sched-frequency').value,
    hour: Number($('sched-hour').value),
    dayOfWeek: Number($('sched-day').value),
    maxBackups: keep,
  };
  const button = event.submitter || event.target.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const r = await request('PUT', '/api/backup/schedule', body);
    showSchedule({ schedule: r.schedule || body, status: { ...(schedule && schedule.status), ...r.status } });
    say($('sched-error'), '');
    say($('sched-status'), 'Schedule saved.');
    loadHealth();
  } catch (e) {
    if (e.sessionEnded) return;
    fieldErrors('sched-', e.body.fields);
    say($('sched-error'), `The schedule was not saved: ${e.message}`);
    const invalid = $('schedule-form').querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus();
  } finally {
    button.disabled = false;
  }
}

// ---- Encryption ----

function showEncryption(enabled) {
  const state = $('enc-state');
  state.textContent = enabled ? 'On: new backups are encrypted.' : 'Off: new backups are not encrypted.';
  state.className = `state ${enabled ? 'on' : 'off'}`;
  $('enc-enable-form').hidden = enabled;
  $('enc-on').hidden = !enabled;
}

export async function loadEncryption() {
  try {
    showEncryption(Boolean((await request('GET', '/api/backup/encryption/status')).enabled));
  } catch (e) {
    if (!e.sessionEnded) say($('enc-error'), `The encryption status could not be loaded: ${e.message}`);
  }
}

/** Checks a new password and its confirmation; returns an error or ''. */
function checkNew(first, second) {
  if (first.value.length < 8) {
    first.focus();
    return 'The password needs at least 8 characters.';
  }
  if (first.value !== second.value) {
    second.focus();
    return 'The two passwords do not match.';
  }
  return '';
}

function encryptionForm(id, run) {
  $(id).addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = event.target;
    const button = form.querySelector('button[type="submit"]');
    say($('enc-error'), '');
    say($('enc-status'), '');
    $('enc-rewrite-errors').hidden = true;
    button.disabled = true;
    try {
      await run(form);
    } catch (e) {
      if (!e.sessionEnded) say($('enc-error'), e.message);
    } finally {
      button.disabled = false;
    }
  });
}

function done(form, enabled, message) {
  form.reset();
  showEncryption(enabled);
  say($('enc-status'), message);
  $('enc-state').focus();
}

// ---- Health ----

async function disableFramerr() {
  try {
    const r = await request('POST', '/api/backup/schedule/framerr/disable');
    say($('health-status'), r.message || 'Framerr’s own schedule is turned off.');
    loadHealth();
  } catch (e) {
    if (!e.sessionEnded) say($('health-error'), e.message);
  }
}

function showHealth(r) {
  const parts = [];
  if (r.overdue) {
    parts.push(h('p', { class: 'notice warn' }, h('strong', {}, 'Backups are overdue. '), 'No scheduled backup has succeeded in the expected time; see the last failure below and the server’s log.'));
  }
  const dl = h('dl', { class: 'facts' });
  facts(dl, [
    ['Scheduled backups', r.scheduleEnabled ? 'On' : 'Off'],
    ['Last success', r.lastSuccess ? `${formatDate(r.lastSuccess)} (${ago(r.lastSuccess)})` : 'None yet'],
    ['Last failure', r.lastError ? `${formatDate(r.lastError.at)}: ${r.lastError.error}` : 'None'],
    ['Next run', r.nextRun ? formatDate(r.nextRun) : 'None scheduled'],
    ['Now', r.inProgress ? 'A backup or restore is running' : 'Idle'],
  ]);
  parts.push(dl);
  if (Array.isArray(r.destinations) && r.destinations.length) {
    parts.push(
      h('h3', {}, 'Destinations'),
      h(
        'ul',
        { class: 'dests' },
        r.destinations.map((d) =>
          h(
            'li',
            {},
            h('span', { class: `badge ${d.ok ? 'ok' : 'bad'}` }, d.ok ? 'OK' : 'Failing'),
            ' ',
            h('span', { class: 'filename' }, d.destination),
            d.error ? `: ${d.error}` : '',
            d.lastVerified ? ` (checked ${formatDate(d.lastVerified)})` : '',
          ),
        ),
      ),
    );
  }
  const warnings = Array.isArray(r.warnings) ? r.warnings : [];
  if (warnings.length) parts.push(h('h3', {}, 'Warnings'), h('ul', { class: 'problems' }, warnings.map((w) => h('li', {}, w))));
  if (r.framerrSchedulerEnabled) {
    parts.push(h('div', { class: 'actions' }, h('button', { type: 'button', onclick: disableFramerr }, 'Turn off Framerr’s own schedule')));
  }
  const body = $('health-body');
  body.replaceChildren(...parts);
  body.setAttribute('aria-busy', 'false');
}

let healthLoading = null;
let healthAgain = false;
export function loadHealth() {
  if (healthLoading) {
    healthAgain = true;
    return healthLoading;
  }
  healthLoading = request('GET', '/api/backup/health')
    .then((r) => {
      if (typeof r.timeZone === 'string' && r.timeZone) zone = r.timeZone;
      showHealth(r);
      showTimes();
      say($('health-error'), '');
    })
    .catch((e) => {
      if (!e.sessionEnded) say($('health-error'), `The health report could not be loaded: ${e.message}`);
    })
    .finally(() => {
      healthLoading = null;
      if (healthAgain) {
        healthAgain = false;
        loadHealth();
      }
    });
  return healthLoading;
}

/** Durations of past backups, when the server keeps them (404 otherwise). */
export async function loadHistory() {
  try {
    const r = await request('GET', '/api/backup/history');
    history = Array.isArray(r) ? r : Array.isArray(r.history) ? r.history : null;
  } catch {
    history = null;
  }
  drawCharts();
}

function chartFigure(caption, points, formatV, what) {
  const figure = h('figure', { class: 'chart-box' }, h('figcaption', {}, caption));
  if (!points.length) {
    figure.append(h('p', { class: 'hint' }, `No dated ${what} to chart yet.`));
    return [figure, null];
  }
  const sorted = [...points].sort((a, b) => a.t - b.t);
  const values = sorted.map((p) => p.v);
  const summary =
    `${caption}: ${sorted.length} ${what} from ${formatShortDate(sorted[0].t)} to ${formatShortDate(sorted[sorted.length - 1].t)}; ` +
    `smallest ${formatV(Math.min(...values))}, largest ${formatV(Math.max(...values))}, latest ${formatV(values[values.length - 1])}.`;
  return [figure, () => lineChart({ title: caption, summary, points: sorted, formatV, width: figure.clientWidth })];
}

const seconds = (v) => (v === 0 ? '0 s' : v < 1 ? `${Math.round(v * 1000)} ms` : v < 10 ? `${Math.round(v * 10) / 10} s` : `${Math.round(v)} s`);

function drawCharts() {
  const box = $('charts');
  const dated = (list) => list.map((b) => ({ t: Date.parse(b.createdAt), b })).filter((p) => Number.isFinite(p.t));
  const figures = [chartFigure('Backup size', dated(chartBackups).map(({ t, b }) => ({ t, v: Number(b.size) || 0 })), formatSize, 'backups')];
  if (history) {
    const points = dated(history).filter(({ b }) => Number.isFinite(b.durationMs)).map(({ t, b }) => ({ t, v: b.durationMs / 1000 }));
    figures.push(chartFigure('Backup duration', points, seconds, 'backups'));
  }
  box.replaceChildren(...figures.map(([figure]) => figure));
  // Drawn at the width they are shown at, so text stays its real size.
  for (const [figure, draw] of figures) if (draw) figure.append(draw());
  chartWidth = box.clientWidth;
}

export function setChartBackups(backups) {
  chartBackups = backups;
  drawCharts();
}

export function clearSettings() {
  schedule = null;
  chartBackups = [];
  history = null;
  $('charts').replaceChildren();
  for (const id of ['enc-enable-form', 'enc-disable-form', 'enc-reset-form']) $(id).reset();
  $('enc-rewrite-errors').hidden = true;
  $('health-body').replaceChildren(h('p', {}, 'Loading…'));
  $('health-body').setAttribute('aria-busy', 'true');
  for (const id of ['sched-status', 'sched-error', 'enc-status', 'enc-error', 'health-status', 'health-error']) say($(id), '');
}

export function initSettings() {
  $('sched-hour').append(...Array.from({ length: 24 }, (_, i) => h('option', { value: i }, `${two(i)}:00`)));
  $('sched-frequency').addEventListener('change', showDay);
  $('schedule-form').addEventListener('submit', saveSchedule);
  showDay();

  encryptionForm('enc-enable-form', async (form) => {
    const problem = checkNew($('enc-pass'), $('enc-pass2'));
    if (problem) return say($('enc-error'), problem);
    const r = await request('POST', '/api/backup/encryption/enable', { password: $('enc-pass').value });
    return done(form, true, r.message || 'Backup encryption is on.');
  });
  encryptionForm('enc-disable-form', async (form) => {
    if (!$('enc-current').value) {
      $('enc-current').focus();
      return say($('enc-error'), 'Enter the current backup password.');
    }
    const r = await request('POST', '/api/backup/encryption/disable', { password: $('enc-current').value }, { withPassword: true });
    return done(form, false, r.message || 'Backup encryption is off.');
  });
  encryptionForm('enc-reset-form', async (form) => {
    const problem = checkNew($('enc-new'), $('enc-new2'));
    if (problem) return say($('enc-error'), problem);
    const r = await request('POST', '/api/backup/encryption/reset-password', { newPassword: $('enc-new').value });
    done(form, true, r.message || 'The backup password was reset.');
    const failures = Array.isArray(r.rewriteErrors) ? r.rewriteErrors : [];
    if (failures.length) {
      say($('enc-error'), `${failures.length} stored backup${failures.length === 1 ? '' : 's'} could not be rewritten for the new password:`);
      const list = $('enc-rewrite-errors');
      list.replaceChildren(...failures.map((f) => h('li', {}, h('span', { class: 'filename' }, f.filename), `: ${f.error}`)));
      list.hidden = false;
    }
    return undefined;
  });

  new ResizeObserver(() => {
    const width = $('charts').clientWidth;
    if (width && Math.abs(width - chartWidth) > 8) drawCharts();
  }).observe($('charts'));
}
