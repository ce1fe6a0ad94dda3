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
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** A server message as a sentence: capital first, full stop last. */
const sentence = (text) => {
  const t = String(text).trim();
  const s = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
};

// The calendar rules: field id, JSON name, label for messages.
const CALENDAR = [
  ['sched-daily', 'keepDaily', 'Days to keep'],
  ['sched-weekly', 'keepWeekly', 'Weeks to keep'],
  ['sched-monthly', 'keepMonthly', 'Months to keep'],
];

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
  // Absent means 0: the rule is off.
  for (const [id, key] of CALENDAR) $(id).value = String(Number.isInteger(s[key]) ? s[key] : 0);
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
  const wrong = [];
  if (!Number.isInteger(keep) || keep < 1 || keep > 30) {
    problems.maxBackups = 'Enter a whole number from 1 to 30.';
    wrong.push(['sched-keep', 'Backups to keep']);
  }
  const calendar = {};
  for (const [id, key, label] of CALENDAR) {
    const text = $(id).value.trim();
    const n = text === '' ? 0 : Number(text);
    if (!Number.isInteger(n) || n < 0 || n > 1000) {
      problems[key] = 'Enter a whole number from 0 to 1000 (0 turns this rule off).';
      wrong.push([id, label]);
    }
    calendar[key] = n;
  }
  fieldErrors('sched-', problems);
  say($('sched-status'), '');
  say($('sched-error'), '');
  if (wrong.length) {
    say($('sched-error'), `The schedule was not saved: check ${wrong.map(([, label]) => `“${label}”`).join(' and ')}.`);
    $(wrong[0][0]).focus();
    return;
  }
  const body = {
    enabled: $('sched-enabled').checked,
    frequency: $('sched-frequency').value,
    hour: Number($('sched-hour').value),
    dayOfWeek: Number($('sched-day').value),
    maxBackups: keep,
    ...calendar,
  };
  const button = event.submitter || event.target.querySelector('button[type="submit"]');
  button.disabled = true;
  try {
    const r = await request('PUT', '/api/backup/schedule', body);
    showSchedule({ schedule: r.schedule || body, status: { ...(schedule && schedule.status), ...r.status } });
    say($('sched-error'), '');
    say($('sched-status'), 'Schedule saved.');
    loadHealth();
    if (!$('retention-preview').hidden) previewRetention();
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

// ---- Retention preview (GET /retention: a dry run) ----

function describePolicy(p) {
  const calendar = [p.daily && plural(p.daily, 'day'), p.weekly && plural(p.weekly, 'week'), p.monthly && plural(p.monthly, 'month')].filter(Boolean);
  const last = calendar.length > 1 ? `${calendar.slice(0, -1).join(', ')} and ${calendar[calendar.length - 1]}` : calendar[0];
  const rules = [];
  if (p.last) rules.push(p.last === 1 ? 'the newest backup' : `the ${p.last} newest backups`);
  if (last) rules.push(`the newest of each of the last ${last}`);
  rules.push('every pinned or safety backup');
  return `Keeps ${rules.slice(0, -1).join(', ')}${rules.length > 1 ? ' and ' : ''}${rules[rules.length - 1]}.`;
}

/** The server's reasons ("last #1", "daily 2026-11-22", "pinned") in words. */
function reasonText(reason) {
  const text = String(reason);
  let m = /^last #(\d+)$/.exec(text);
  if (m) return `newest #${m[1]}`;
  m = /^(daily|weekly|monthly) (.+)$/.exec(text);
  if (m) return `${{ daily: 'day', weekly: 'week', monthly: 'month' }[m[1]]} ${m[2]}`;
  return text;
}

function showRetention(r) {
  const parts = [];
  const places = Array.isArray(r.destinations) ? r.destinations : [];
  if (!places.length) parts.push(h('p', {}, 'No destination to look at.'));
  for (const d of places) {
    const del = Array.isArray(d.delete) ? d.delete : [];
    const kept = Array.isArray(d.kept) ? d.kept : [];
    const block = h('div', { class: 'retention-place' }, h('h4', {}, h('span', { class: 'filename' }, d.destination)));
    if (d.error) block.append(h('p', { class: 'bad-text' }, `Retention could not look at it: ${d.error}`));
    block.append(h('p', {}, d.policy ? describePolicy(d.policy) : 'No retention rule applies here: nothing is deleted.'));
    if (del.length) {
      block.append(
        h('p', {}, h('strong', {}, `Would delete ${plural(del.length, 'backup')}:`)),
        h('ul', { class: 'names delete' }, del.map((name) => h('li', {}, h('span', { class: 'filename' }, name)))),
      );
    } else if (!d.error) {
      block.append(h('p', {}, h('strong', {}, 'Would delete nothing.')));
    }
    if (kept.length) {
      block.append(
        h(
          'details',
          {},
          h('summary', {}, `Kept: ${plural(kept.length, 'backup')}, and why`),
          h(
            'ul',
            { class: 'names' },
            kept.map((k) =>
              h(
                'li',
                {},
                h('span', { class: 'filename' }, k.filename),
                h('span', { class: 'reasons' }, (Array.isArray(k.reasons) ? k.reasons : []).map((why) => h('span', { class: 'badge reason' }, reasonText(why)))),
              ),
            ),
          ),
        ),
      );
    }
    parts.push(block);
  }
  $('retention-body').replaceChildren(...parts);
  $('retention-preview').hidden = false;
  const doomed = places.reduce((n, d) => n + (Array.isArray(d.delete) ? d.delete.length : 0), 0);
  return doomed ? `Preview ready: retention would delete ${plural(doomed, 'backup')} now.` : 'Preview ready: retention would delete nothing now.';
}

async function previewRetention() {
  const button = $('retention-preview-button');
  button.disabled = true;
  say($('retention-error'), '');
  say($('retention-status'), 'Asking what retention would do…');
  try {
    say($('retention-status'), showRetention(await request('GET', '/api/backup/retention')));
  } catch (e) {
    say($('retention-status'), '');
    if (!e.sessionEnded) say($('retention-error'), `The retention preview could not be loaded: ${e.message}`);
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

/** The banner at the top of the page, and the list at the top of Health. */
function showProblems(r, parts) {
  const problems = Array.isArray(r.problems) ? r.problems.map(sentence) : null;
  const banner = $('health-banner');
  if (!problems) {
    // A server without "problems": only "overdue" is known.
    banner.hidden = true;
    if (r.overdue) {
      parts.push(h('p', { class: 'notice warn' }, h('strong', {}, 'Backups are overdue. '), 'No scheduled backup has succeeded in the expected time; see the last failure below and the server’s log.'));
    }
    return;
  }
  const bad = r.ok === false || problems.length > 0;
  banner.hidden = !bad;
  if (!bad) return;
  const title = problems.length === 1 ? 'A problem needs your attention' : `${problems.length} problems need your attention`;
  const text = problems.length === 1 ? problems[0] : problems.length ? `${problems[0]} And ${plural(problems.length - 1, 'more problem')}.` : 'The health report says something is wrong.';
  if ($('health-banner-text').textContent !== text) $('health-banner-text').textContent = text;
  $('health-banner-title').textContent = `${title}:`;
  parts.push(
    h(
      'div',
      { class: 'notice bad problems-box' },
      h('h3', {}, title),
      problems.length ? h('ul', { class: 'problems' }, problems.map((p) => h('li', {}, p))) : h('p', {}, 'The server reports a problem but did not say which.'),
    ),
  );
}

const OUTCOMES = {
  passed: ['Passed', 'ok'],
  failed: ['Failed', 'bad'],
  skipped: ['Skipped', 'warn'],
  empty: ['No backups', 'muted'],
};

let verifying = false;

/** The last check of each destination. */
function showVerification(list) {
  const ul = $('verify-list');
  ul.setAttribute('aria-busy', 'false');
  const checks = Array.isArray(list) ? list : [];
  if (!checks.length) {
    ul.replaceChildren(h('li', { class: 'hint' }, 'Not checked yet. Press “Verify now” to check the newest backups.'));
    return;
  }
  ul.replaceChildren(
    ...checks.map((v) => {
      const [label, tone] = OUTCOMES[v.outcome] || [String(v.outcome || 'Unknown'), 'muted'];
      const when = v.checkedAt ? `${formatDate(v.checkedAt)} (${ago(v.checkedAt)})` : 'at an unknown time';
      const took = Number.isFinite(v.durationMs) && v.durationMs >= 1 ? `, took ${seconds(v.durationMs / 1000)}` : '';
      return h(
        'li',
        { class: 'check-result' },
        h('span', { class: `badge ${tone}` }, label),
        ' ',
        h('span', { class: 'filename' }, v.destination),
        h(
          'p',
          { class: 'detail' },
          v.filename ? ['Backup ', h('span', { class: 'filename' }, v.filename), ', checked '] : 'Checked ',
          `${when}${took}.`,
        ),
        v.error ? h('p', { class: `detail ${v.outcome === 'failed' ? 'bad-text' : ''}` }, sentence(v.error)) : null,
      );
    }),
  );
}

function verifyButton(running) {
  verifying = running;
  const button = $('verify-now');
  button.disabled = running;
  button.querySelector('.spinner').hidden = !running;
  $('verify-now-label').textContent = running ? 'Verifying…' : 'Verify now';
  $('verify-list').setAttribute('aria-busy', String(running));
}

async function verifyNow() {
  if (verifying) return;
  verifyButton(true);
  say($('verify-error'), '');
  say($('verify-status'), 'Checking the newest backup in every destination; this can take a while…');
  try {
    const results = await request('POST', '/api/backup/verify');
    const checks = Array.isArray(results) ? results : [];
    showVerification(checks);
    const count = (outcome) => checks.filter((v) => v.outcome === outcome).length;
    const summary = [
      count('passed') && `${count('passed')} passed`,
      count('failed') && `${count('failed')} failed`,
      count('skipped') && `${count('skipped')} skipped (no key to open it)`,
      count('empty') && `${count('empty')} had no backup`,
    ].filter(Boolean);
    say($('verify-status'), `Verification finished: ${summary.length ? summary.join(', ') : 'nothing to check'}.`);
  } catch (e) {
    say($('verify-status'), '');
    if (!e.sessionEnded) say($('verify-error'), `Verification could not run: ${e.message}`);
  } finally {
    verifyButton(false);
  }
  loadHealth();
}

function showHealth(r) {
  const parts = [];
  showProblems(r, parts);
  const dl = h('dl', { class: 'facts' });
  const notes = r.notifications && Array.isArray(r.notifications.targets) ? r.notifications.targets : null;
  facts(dl, [
    ['Scheduled backups', r.scheduleEnabled ? 'On' : 'Off'],
    ['Last success', r.lastSuccess ? `${formatDate(r.lastSuccess)} (${ago(r.lastSuccess)})` : 'None yet'],
    ['Last failure', r.lastError ? `${formatDate(r.lastError.at)}: ${r.lastError.error}` : 'None'],
    ['Next run', r.nextRun ? formatDate(r.nextRun) : 'None scheduled'],
    ['Now', r.inProgress ? 'A backup or restore is running' : 'Idle'],
    // A restore is written into the database Framerr has open.
    ...(typeof r.framerrRunning === 'boolean'
      ? [['Framerr', r.framerrRunning ? 'Running on this database' : 'Not running on this database']]
      : []),
    ...(notes ? [['Notifications', notes.length ? notes.join(', ') : 'None set up']] : []),
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
  // While "Verify now" runs, its answer is newer than this report.
  $('verification').hidden = !Array.isArray(r.verification);
  if (!verifying && Array.isArray(r.verification)) showVerification(r.verification);
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
  $('health-banner').hidden = true;
  $('verify-list').replaceChildren(h('li', {}, 'Loading…'));
  $('verify-list').setAttribute('aria-busy', 'true');
  $('retention-preview').hidden = true;
  $('retention-body').replaceChildren();
  for (const id of ['sched-status', 'sched-error', 'enc-status', 'enc-error', 'health-status', 'health-error', 'verify-status', 'verify-error', 'retention-status', 'retention-error']) {
    say($(id), '');
  }
}

export function initSettings() {
  $('sched-hour').append(...Array.from({ length: 24 }, (_, i) => h('option', { value: i }, `${two(i)}:00`)));
  $('sched-frequency').addEventListener('change', showDay);
  $('schedule-form').addEventListener('submit', saveSchedule);
  $('retention-preview-button').addEventListener('click', previewRetention);
  $('verify-now').addEventListener('click', verifyNow);
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
