// framerr-backup's page: chooses the view (setup restore, sign in, or the
// signed-in sections), signs in and out, and follows live progress.

import { request, upload, signedIn, whenSessionEnds } from '/assets/api.js';
import { $, h, say, facts, sniff, setProgress, holdButton, formatWait } from '/assets/util.js';
import { initBackups, loadBackups, backupEvent, clearBackups } from '/assets/backups.js';
import { initSettings, loadSchedule, loadEncryption, loadHealth, loadHistory, setChartBackups, clearSettings } from '/assets/settings.js';

const TITLES = {
  'view-setup': 'Restore Framerr — framerr-backup',
  'view-signin': 'Sign in — framerr-backup',
  'view-main': 'Backups — framerr-backup',
};
let view = null;
// While a restore runs (and its summary is shown) a lost session does not
// switch to the sign-in view at once: the summary is read first.
let hold = 0;
let pendingSignOut = false;

const sentence = (text) => (/[.!?]$/.test(text) ? text : `${text}.`);

function show(name) {
  view = name;
  $('loading').hidden = true;
  for (const id of Object.keys(TITLES)) $(id).hidden = id !== name;
  document.title = TITLES[name];
}

function showSignIn(info) {
  stopEvents();
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  if (view === 'view-main') {
    clearBackups();
    clearSettings();
  }
  hold = 0;
  pendingSignOut = false;
  show('view-signin');
  say($('signin-info'), info || '');
  say($('signin-error'), '');
  $('signin-pass').value = '';
  $('signin-user').focus();
}

function sessionEnded() {
  if (view !== 'view-main') return;
  if (hold) pendingSignOut = true;
  else showSignIn('Your session has ended. Sign in again.');
}

function showMain() {
  show('view-main');
  loadBackups();
  loadSchedule();
  loadEncryption();
  loadHealth();
  loadHistory();
  startEvents();
}

// ---- Live progress: server-sent events ----

const EVENTS = ['started', 'progress', 'complete', 'error', 'scheduled-failed', 'destination-failed'];
let events = null;
let opened = false;
let retries = 0;
let retryTimer = 0;

function startEvents() {
  stopEvents();
  const source = new EventSource('/api/backup/events');
  events = source;
  source.addEventListener('open', () => {
    // Back after a drop: whatever finished meanwhile is in the list.
    if (opened) {
      loadBackups();
      loadHealth();
    }
    opened = true;
    retries = 0;
  });
  for (const name of EVENTS) {
    source.addEventListener(`backup:${name}`, (event) => {
      let data = {};
      try {
        data = JSON.parse(event.data) || {};
      } catch {
        /* a malformed event carries nothing to show */
      }
      backupEvent(name, data);
    });
  }
  source.addEventListener('error', () => {
    // CONNECTING: the browser reconnects by itself. CLOSED: it gave up
    // (the server answered 401 or an error): find out why.
    if (source !== events || source.readyState !== EventSource.CLOSED) return;
    events = null;
    reconnect();
  });
}

async function reconnect() {
  const ok = await signedIn();
  if (view !== 'view-main' || events) return;
  if (ok === false) {
    sessionEnded();
    return;
  }
  retries += 1;
  retryTimer = setTimeout(() => {
    if (view === 'view-main' && !events) startEvents();
  }, Math.min(30000, 1000 * 2 ** Math.min(retries, 5)));
}

function stopEvents() {
  clearTimeout(retryTimer);
  if (events) events.close();
  events = null;
  opened = false;
}

// ---- After a restore ----

function restored(summary) {
  stopEvents();
  hold += 1;
  $('summary-message').textContent = summary.message || 'The backup was restored.';
  const rows = [
    ['Safety backup', summary.safetyBackup ? h('span', { class: 'filename' }, summary.safetyBackup) : 'None was needed'],
    ['Assets restored', String(summary.assetsRestored ?? 0)],
  ];
  if (summary.configsEncrypted) rows.push(['Integration settings encrypted with this server’s key', String(summary.configsEncrypted)]);
  if (Array.isArray(summary.tablesPurged) && summary.tablesPurged.length) rows.push(['Cleared', summary.tablesPurged.join(', ')]);
  facts($('summary-facts'), rows);
  const notes = Array.isArray(summary.notes) ? summary.notes : [];
  const list = $('summary-notes');
  list.replaceChildren(...notes.map((note) => Object.assign(document.createElement('li'), { textContent: note })));
  list.hidden = !notes.length;
  $('summary-dialog').showModal();
  $('summary-title').focus();
}

// ---- Sign in and out ----

async function signIn(event) {
  event.preventDefault();
  const user = $('signin-user');
  const pass = $('signin-pass');
  const button = $('signin-submit');
  const error = $('signin-error');
  if (!user.value.trim() || !pass.value) {
    say(error, 'Enter your username and password.');
    (user.value.trim() ? pass : user).focus();
    return;
  }
  button.disabled = true;
  say(error, '');
  say($('signin-info'), 'Signing in…');
  try {
    await request('POST', '/api/auth/login', { username: user.value.trim(), password: pass.value, rememberMe: $('signin-remember').checked });
    pass.value = '';
    say($('signin-info'), '');
    button.disabled = false;
    showMain();
    $('main-title').focus();
  } catch (e) {
    say($('signin-info'), '');
    if (e.status === 429) {
      const wait = Number(e.body.retryAfter) || 60;
      say(error, `${sentence(e.message)} Try again in ${formatWait(wait)}.`);
      holdButton(button, wait);
      return;
    }
    button.disabled = false;
    say(error, e.status === 401 && !e.body.error ? 'Incorrect username or password.' : e.message);
    pass.select();
    pass.focus();
  }
}

async function signOut() {
  let info = 'You are signed out.';
  try {
    await request('POST', '/api/auth/logout');
  } catch (e) {
    if (e.status !== 401) info = `Signing out on the server failed: ${e.message}`;
  }
  showSignIn(info);
}

// ---- Setup: restore into an instance without users ----

let setupKind = null;
let restoreId = null;

function showSetup(status) {
  show('view-setup');
  if (status.databaseFound === false) {
    $('setup-nodb').hidden = false;
    $('setup-dbpath').textContent = status.databasePath || 'an unknown place';
    $('setup-datadir').textContent = status.dataDir || 'unknown';
  }
}

async function setupFileChosen() {
  const file = $('setup-file').files[0];
  const submit = $('setup-submit');
  setupKind = null;
  restoreId = null;
  submit.disabled = true;
  $('setup-pass-field').hidden = true;
  say($('setup-error'), '');
  say($('setup-status'), '');
  if (!file) return;
  setupKind = await sniff(file);
  if (!setupKind) {
    say($('setup-error'), 'Not a valid Framerr backup file.');
    return;
  }
  submit.disabled = false;
  if (setupKind === 'encrypted') {
    $('setup-pass-field').hidden = false;
    say($('setup-status'), 'An encrypted backup: enter its password, then press Restore.');
  } else {
    say($('setup-status'), 'A backup file: press Restore to restore it.');
  }
}

function setupFailed(e) {
  const pass = $('setup-pass');
  const submit = $('setup-submit');
  const error = $('setup-error');
  if (e.status === 401) {
    const left = e.body.attemptsRemaining;
    if (left === 0) {
      restoreId = null;
      say(error, 'Incorrect password — no attempts left. Press Restore to upload the backup again.');
    } else if (typeof left === 'number') {
      say(error, `Incorrect password — ${left} attempt${left === 1 ? '' : 's'} left`);
    } else {
      say(error, e.message);
    }
    pass.select();
    pass.focus();
    holdButton(submit, 1); // the server's pause between tries
  } else if (e.status === 429) {
    const wait = Number(e.body.retryAfter) || 1;
    say(error, `${sentence(e.message)} Try again in ${formatWait(wait)}.`);
    holdButton(submit, wait);
  } else if (e.status === 410) {
    restoreId = null;
    say(error, 'Too many incorrect passwords: the uploaded backup was deleted. Press Restore to upload the backup again.');
  } else if (e.status === 404 && restoreId) {
    restoreId = null;
    say(error, 'The upload expired after 30 minutes; upload it again (press Restore).');
  } else {
    say(error, e.message);
  }
}

async function setupRestore(event) {
  event.preventDefault();
  const file = $('setup-file').files[0];
  const pass = $('setup-pass');
  const submit = $('setup-submit');
  const status = $('setup-status');
  const bar = $('setup-progress');
  if (!file || !setupKind || submit.disabled) return;
  if (setupKind === 'encrypted' && !pass.value) {
    say($('setup-error'), 'Enter the backup’s password.');
    pass.focus();
    return;
  }
  submit.disabled = true;
  say($('setup-error'), '');
  try {
    if (!restoreId) {
      say(status, `Uploading ${file.name}…`);
      setProgress(bar, 0, 'Uploading');
      const r = await upload('/api/auth/setup/restore', [['backup', file]], (percent, sent) => {
        setProgress(bar, percent, sent ? 'Uploaded' : 'Uploading');
        if (sent) say(status, setupKind === 'encrypted' ? 'Uploaded.' : 'Uploaded. Restoring…');
      });
      bar.hidden = true;
      if (!r.encrypted) {
        setupDone();
        return;
      }
      restoreId = r.restoreId;
      if (!pass.value) {
        setupKind = 'encrypted';
        $('setup-pass-field').hidden = false;
        say(status, 'This backup is encrypted: enter its password, then press Restore.');
        submit.disabled = false;
        pass.focus();
        return;
      }
    }
    say(status, 'Checking the password and restoring…');
    await request('POST', '/api/auth/setup/restore/decrypt', { restoreId, password: pass.value });
    setupDone();
  } catch (e) {
    bar.hidden = true;
    say(status, '');
    submit.disabled = false;
    setupFailed(e);
  }
}

function setupDone() {
  restoreId = null;
  $('setup-form').reset();
  $('setup-form').hidden = true;
  $('setup-done').hidden = false;
  $('setup-done-title').focus();
}

// ---- Start ----

async function boot() {
  whenSessionEnds(sessionEnded);
  initBackups({
    onList: setChartBackups,
    refreshHealth: loadHealth,
    restoreStarts: () => {
      hold += 1;
    },
    restoreFailed: () => {
      hold = Math.max(0, hold - 1);
      if (!hold && pendingSignOut) showSignIn('Your session has ended. Sign in again.');
    },
    restored,
  });
  initSettings();
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('summary-close').addEventListener('click', () => $('summary-dialog').close());
  $('summary-dialog').addEventListener('close', () => showSignIn('Sign in with an account from the restored backup.'));
  $('setup-file').addEventListener('change', setupFileChosen);
  $('setup-form').addEventListener('submit', setupRestore);
  $('setup-signin').addEventListener('click', () => showSignIn('Sign in with the restored credentials.'));

  // Both questions at once: is this a new instance, and are we signed in?
  const [setup, admin] = await Promise.all([request('GET', '/api/auth/setup/status').catch(() => null), signedIn()]);
  if (setup && (setup.setupOpen === true || setup.needsSetup === true) && !admin) showSetup(setup);
  else if (admin) showMain();
  else showSignIn(admin === null ? 'The server could not be reached or answered with an error; try signing in, or reload the page.' : '');
}

boot();
