// Browser scenarios for framerr-backup's page, in Debian's Chromium through
// playwright-core. No test framework: one scenario per run.
//
//   BASE_URL=http://127.0.0.1:34567 node tests/browser/run.mjs <scenario>
//
// Environment: BASE_URL (required), ADMIN_USER, ADMIN_PASSWORD,
// BACKUP_PASSWORD, ENCRYPTED_BACKUP (setup), SCREENSHOTS (default
// target/browser-screenshots), CHROMIUM (default /usr/bin/chromium),
// BROWSER_LAX=1 to report layout/label/CSP problems without failing.
//
// Exit 0 when the scenario passed, 1 when it failed (the reason on stderr),
// 2 on a usage error. stdout carries only result lines in JSON (download:
// {"downloaded","sha256"}; signin: {"firstLoad"}; restore: {"restored","safetyBackup"}; schedule:
// {"schedule"} as GET /schedule answers after saving; pin: {"pinned",
// "deleted"}; verify and verify-damaged: {"verified"}, the POST /verify
// answer); progress goes to stderr. Every step is saved as <scenario>-<step>-desktop.png
// (1280x800) and <scenario>-<step>-phone.png (390x844).
//
// Selectors are accessible names and roles only: the tests check the page's
// accessibility contract as much as its behaviour.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';

// `import { chromium } from 'playwright-core'` would ignore NODE_PATH (ES
// module resolution never reads it); require() honours both NODE_PATH and
// node_modules folders beside this file.
function loadChromium() {
  try {
    return createRequire(import.meta.url)('playwright-core').chromium;
  } catch (e) {
    console.error(`playwright-core ${JSON.parse(fs.readFileSync(new URL('package.json', import.meta.url))).dependencies['playwright-core']} is not installed where node can find it (${e.code || e.message}).`);
    console.error('Install it, e.g. `npm install --prefix target/tools playwright-core@1.64.1`, and set NODE_PATH=target/tools/node_modules.');
    return process.exit(2);
  }
}

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const STEP = 30_000; // one ordinary step
const LONG = 180_000; // a backup or a restore
const WHOLE = 600_000; // the whole scenario

const env = process.env;
const BASE = (env.BASE_URL || '').replace(/\/+$/, '');
const SCENARIO = process.argv[2];
const SHOTS = env.SCREENSHOTS || 'target/browser-screenshots';
const ADMIN_USER = env.ADMIN_USER || 'admin';
const ADMIN_PASSWORD = env.ADMIN_PASSWORD || '';
const BACKUP_PASSWORD = env.BACKUP_PASSWORD || 'browser-test-password';
const LAX = env.BROWSER_LAX === '1';

class Failure extends Error {}
const fail = (message) => {
  throw new Failure(message);
};
const log = (...args) => console.error(`[${SCENARIO}]`, ...args);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something truthy. */
async function until(what, check, timeout = STEP) {
  const end = Date.now() + timeout;
  let last = null;
  while (Date.now() < end) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      if (e instanceof Failure) throw e;
      last = e;
    }
    await sleep(100);
  }
  return fail(`timed out after ${timeout / 1000} s waiting for ${what}${last ? ` (${last.message.split('\n')[0]})` : ''}`);
}

// ---- The page's health, checked at every screenshot ----

const problems = [];
const pageErrors = [];

function watch(page) {
  page.on('pageerror', (e) => pageErrors.push(`uncaught error in the page: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    if (/content security policy|refused to (load|apply|execute|connect)/i.test(text)) pageErrors.push(`CSP violation: ${text}`);
    if (m.type() === 'error') log(`console: ${text}`);
  });
}

async function frame(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/** Visible controls without an accessible name (a rough check; the role-based selectors do the rest). */
function unnamedControls(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('button, a[href], input:not([type="hidden"]), select, textarea')]
      .filter((el) => (el.checkVisibility ? el.checkVisibility() : el.offsetParent !== null))
      .filter((el) => {
        const labelled = (el.getAttribute('aria-labelledby') || '')
          .split(/\s+/)
          .map((id) => document.getElementById(id)?.textContent || '')
          .join('');
        const labels = el.labels ? [...el.labels].map((l) => l.textContent).join('') : '';
        const own = el.matches('button, a') ? el.textContent : '';
        return !`${el.getAttribute('aria-label') || ''}${labelled}${labels}${own}`.trim();
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

let shotCount = 0;
/** Screenshots at desktop and phone width; checks layout and labels at both. */
async function shot(page, step) {
  shotCount += 1;
  const base = path.join(SHOTS, `${SCENARIO}-${step}`);
  for (const [size, name] of [
    [DESKTOP, 'desktop'],
    [PHONE, 'phone'],
  ]) {
    await page.setViewportSize(size);
    await frame(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (overflow > 1) problems.push(`${step} (${name}): the page scrolls sideways by ${overflow} px`);
    for (const html of await unnamedControls(page)) problems.push(`${step} (${name}): a control has no accessible name: ${html}`);
    await page.screenshot({ path: `${base}-${name}.png`, fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
  await frame(page);
  log(`step ${step}: screenshots saved`);
}

// ---- Shared steps ----

/** The visible view's landmark (hidden views are not in the accessibility tree). */
const view = (page) => page.getByRole('main');
const backupsTable = (page) => page.getByRole('table', { name: /^backups$/i });

async function listLoaded(page) {
  const table = backupsTable(page);
  await table.waitFor({ state: 'visible', timeout: STEP });
  await until('the list of backups to load', async () => (await table.getAttribute('aria-busy')) === 'false');
}

/** The backups listed, by their Download links' names, top to bottom. */
async function backupNames(page) {
  const names = await page
    .getByRole('link', { name: /^download /i })
    .evaluateAll((links) => links.map((a) => (a.getAttribute('aria-label') || a.textContent).replace(/^download\s+/i, '').trim()));
  return names;
}

async function signIn(page) {
  await page.goto(`${BASE}/`);
  const user = page.getByLabel(/^username$/i);
  await user.waitFor({ state: 'visible', timeout: STEP });
  await user.fill(ADMIN_USER);
  await view(page).getByLabel(/^password$/i).fill(ADMIN_PASSWORD);
  await view(page).getByRole('button', { name: /^sign in$/i }).click();
  const heading = page.getByRole('heading', { name: /^backups$/i });
  const alert = view(page).getByRole('alert');
  await until('the Backups section after signing in', async () => {
    if (await heading.isVisible()) return true;
    if (await alert.count()) fail(`signing in as ${ADMIN_USER} failed: ${(await alert.first().textContent()).trim()}`);
    return false;
  });
  await listLoaded(page);
}

/** The row of a backup in the list (found by its Delete button). */
function backupRow(page, name) {
  return page.getByRole('row').filter({ has: page.getByRole('button', { name: `Delete ${name}`, exact: true }) });
}

/** An API call from the page's own session, as a script would make it. */
const api = (page, method, apiPath) =>
  page.request.fetch(`${BASE}/api/backup${apiPath}`, { method, headers: { 'X-Framerr-Client': '1', Accept: 'application/json' }, failOnStatusCode: false });

/** Presses "Create backup"; returns the create answer once its row is listed. */
async function createBackup(page, { watchProgress = false } = {}) {
  const before = await backupNames(page);
  const button = page.getByRole('button', { name: /^create backup$/i });
  await until('"Create backup" to be enabled', () => button.isEnabled());
  const response = page.waitForResponse((r) => r.url().endsWith('/api/backup/create') && r.request().method() === 'POST', { timeout: LONG });
  await button.click();
  let seen = [];
  if (watchProgress) {
    const bar = page.getByRole('progressbar', { name: /backup progress/i });
    await bar.waitFor({ state: 'visible', timeout: STEP });
    await shot(page, 'running');
    await until(
      'the progress bar to reach 100',
      async () => {
        const value = await bar.getAttribute('aria-valuenow', { timeout: 1000 });
        if (seen[seen.length - 1] !== value) seen = [...seen, value];
        return value === '100';
      },
      LONG,
    );
    log(`progress values seen: ${seen.join(' → ')}`);
  }
  const answer = await response;
  const created = await answer.json().catch(() => ({}));
  if (!answer.ok()) fail(`"Create backup" failed: ${created.error || answer.status()}`);
  const deleted = before.filter((n) => (created.deleted || []).includes(n)).length;
  const expected = before.length + 1 - deleted;
  const after = await until(
    `${created.filename} to appear in the list without a reload`,
    async () => {
      const names = await backupNames(page);
      return names.includes(created.filename) && names.length === expected ? names : null;
    },
    STEP,
  );
  log(`rows before: ${before.length}, after: ${after.length} (retention deleted ${deleted}); new: ${created.filename}`);
  return created;
}

/**
 * Presses "Verify now" in Health, holding the server's answer back until
 * the running state is checked and screenshotted; expects `want` for every
 * destination (and, for "failed", the problem at the top of the page).
 */
async function verifyNow(page, want) {
  await signIn(page);
  const health = page.getByRole('region', { name: /^health$/i });
  const list = health.getByRole('list', { name: /^verification$/i });
  await until('the last verification to load', async () => (await list.getAttribute('aria-busy')) === 'false');
  await shot(page, 'before');
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  await page.route('**/api/backup/verify', async (route) => {
    const answer = await route.fetch({ timeout: LONG });
    await held;
    await route.fulfill({ response: answer });
  });
  const response = page.waitForResponse((r) => r.url().endsWith('/api/backup/verify') && r.request().method() === 'POST', { timeout: LONG });
  await health.getByRole('button', { name: /^verify now$/i }).click();
  const running = health.getByRole('button', { name: /^verifying/i });
  await running.waitFor({ state: 'visible', timeout: STEP });
  if (!(await running.isDisabled())) fail('"Verify now" is not disabled while it runs');
  if (!/checking/i.test(await health.getByRole('status').filter({ hasText: /checking/i }).first().textContent())) fail('no progress message while verifying');
  await shot(page, 'running');
  release();
  const answer = await response;
  const results = await answer.json().catch(() => null);
  await page.unroute('**/api/backup/verify');
  if (!answer.ok() || !Array.isArray(results)) fail(`POST /verify answered ${answer.status()}: ${JSON.stringify(results)}`);
  log(`POST /verify: ${JSON.stringify(results)}`);
  if (!results.length) fail('POST /verify checked no destination');
  const button = health.getByRole('button', { name: /^verify now$/i });
  await until('"Verify now" to be enabled again', () => button.isEnabled());
  const items = list.getByRole('listitem');
  const shown = await until(`every destination's outcome to be ${want}`, async () => {
    const texts = (await items.allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim());
    return texts.length === results.length && texts.every((t) => new RegExp(`^${want}\\b`, 'i').test(t)) ? texts : null;
  });
  log(`shown: ${shown.join(' | ')}`);
  for (const r of results) {
    if (r.outcome !== want) fail(`${r.destination}: ${r.outcome}, expected ${want}`);
    if (!shown.some((t) => t.includes(r.destination) && (!r.filename || t.includes(r.filename)))) fail(`the list does not name ${r.destination} and ${r.filename}`);
  }
  if (!/verification finished/i.test(await health.getByRole('status').filter({ hasText: /verification finished/i }).first().textContent())) fail('no summary after verifying');
  const banner = page.getByRole('region', { name: /needs? your attention/i });
  if (want === 'failed') {
    await until('the problem at the top of the page', async () => (await banner.isVisible()) && /failed verification/i.test(await banner.textContent()));
    const box = health.getByRole('heading', { name: /needs? your attention/i });
    if (!(await box.isVisible())) fail('Health does not list the problem');
    const link = page.getByRole('link', { name: /^see health$/i });
    await link.click();
  } else if (await banner.isVisible()) {
    fail(`a problem is shown after every check passed: ${await banner.textContent()}`);
  }
  process.stdout.write(`${JSON.stringify({ verified: results })}\n`);
  await shot(page, 'verified');
}

// ---- Scenarios ----

const scenarios = {
  async signin(page) {
    const started = Date.now();
    await page.goto(`${BASE}/`);
    const user = page.getByLabel(/^username$/i);
    await user.waitFor({ state: 'visible', timeout: STEP });
    const usable = Date.now() - started;
    // What the first load cost: bytes over the wire (headers included) and
    // when the page was interactive, by the browser's own clock.
    const load = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const resources = performance.getEntriesByType('resource');
      return {
        bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
        files: 1 + resources.length,
        interactiveMs: Math.round(nav.domInteractive),
        loadedMs: Math.round(nav.loadEventEnd),
      };
    });
    console.log(JSON.stringify({ firstLoad: { ...load, signInVisibleMs: usable } }));
    await shot(page, 'start');
    await user.fill(ADMIN_USER);
    const password = view(page).getByLabel(/^password$/i);
    await password.fill(`${ADMIN_PASSWORD}-wrong`);
    await view(page).getByRole('button', { name: /^sign in$/i }).click();
    const alert = view(page).getByRole('alert');
    const message = await until('an error message in the alert', async () => ((await alert.count()) ? (await alert.first().textContent()).trim() : ''));
    log(`wrong password answered: ${message}`);
    await shot(page, 'wrong-password');
    // The right one, with the keyboard alone.
    await password.fill(ADMIN_PASSWORD);
    await password.press('Enter');
    await page.getByRole('heading', { name: /^backups$/i }).waitFor({ state: 'visible', timeout: STEP });
    await listLoaded(page);
    await shot(page, 'signed-in');
  },

  async create(page) {
    await signIn(page);
    await shot(page, 'signed-in');
    await createBackup(page, { watchProgress: true });
    await shot(page, 'created');
  },

  async download(page) {
    await signIn(page);
    if (!(await backupNames(page)).length) await createBackup(page);
    const [first] = await backupNames(page);
    await shot(page, 'list');
    const link = page.getByRole('link', { name: /^download/i }).first();
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: LONG }), link.click()]);
    const name = download.suggestedFilename();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'framerr-download-'));
    const file = path.join(dir, name);
    await download.saveAs(file);
    const failure = await download.failure();
    if (failure) fail(`the download failed: ${failure}`);
    if (name !== first) fail(`the first row is ${first} but the download is named ${name}`);
    const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    fs.rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`${JSON.stringify({ downloaded: name, sha256 })}\n`);
    await shot(page, 'downloaded');
  },

  async delete(page) {
    await signIn(page);
    const pick = async () => (await backupNames(page)).find((n) => !/^framerr-safety-/i.test(n));
    let target = await pick();
    if (!target) {
      await createBackup(page);
      target = await pick();
    }
    log(`deleting ${target}`);
    const button = page.getByRole('button', { name: `Delete ${target}`, exact: true });
    const dialog = page.getByRole('dialog', { name: /^delete backup/i });
    await button.click();
    await dialog.waitFor({ state: 'visible', timeout: STEP });
    if (!(await page.evaluate(() => Boolean(document.activeElement && document.activeElement.closest('dialog[open]'))))) {
      fail('focus did not move into the confirmation dialog');
    }
    if (!(await dialog.textContent()).includes(target)) fail('the confirmation does not name the backup');
    await shot(page, 'confirm');
    // Escape cancels and deletes nothing.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden', timeout: STEP });
    if (!(await backupNames(page)).includes(target)) fail('Escape should cancel, but the backup is gone');
    await button.click();
    await dialog.waitFor({ state: 'visible', timeout: STEP });
    await dialog.getByRole('button', { name: /^delete$/i }).click();
    await dialog.waitFor({ state: 'hidden', timeout: STEP });
    await until(`${target} to leave the list`, async () => !(await backupNames(page)).includes(target));
    await shot(page, 'deleted');
  },

  async schedule(page) {
    await signIn(page);
    const form = page.getByRole('form', { name: /^schedule$/i });
    await until('the schedule to load', async () => (await form.getAttribute('aria-busy')) === 'false');
    await shot(page, 'before');
    await form.getByLabel(/^run scheduled backups$/i).check();
    await form.getByLabel(/^frequency$/i).selectOption({ label: 'Weekly' });
    await form.getByLabel(/^day of week$/i).selectOption({ label: 'Wednesday' });
    await form.getByLabel(/^hour$/i).selectOption({ label: '04:00' });
    await form.getByLabel(/^backups to keep$/i).fill('7');
    // Out of range: refused beside the field, nothing sent.
    const daily = form.getByLabel(/^days to keep$/i);
    await daily.fill('1001');
    await form.getByRole('button', { name: /^save schedule$/i }).click();
    await until('the field error beside "Days to keep"', async () => {
      const alert = form.getByRole('alert');
      return (await alert.count()) && (await daily.getAttribute('aria-invalid')) === 'true' && (await form.getByText(/^⚠? ?enter a whole number from 0 to 1000/i).count()) === 1;
    });
    if (!(await daily.evaluate((el) => el === document.activeElement))) fail('focus did not move to the field in error');
    await shot(page, 'keep-error');
    await daily.fill('5');
    await form.getByRole('button', { name: /^save schedule$/i }).click();
    await until('"Schedule saved"', async () => {
      const alert = form.getByRole('alert');
      if (await alert.count()) fail(`saving the schedule failed: ${await alert.first().textContent()}`);
      return /saved/i.test(await form.getByRole('status').first().textContent());
    });
    if ((await daily.getAttribute('aria-invalid')) === 'true') fail('the field error stayed after saving');
    const saved = await (await api(page, 'GET', '/schedule')).json();
    log(`GET /schedule after saving: ${JSON.stringify(saved.schedule)}`);
    if (saved.schedule.keepDaily !== 5 || 'keepWeekly' in saved.schedule) fail(`the saved schedule is ${JSON.stringify(saved.schedule)}`);
    process.stdout.write(`${JSON.stringify({ schedule: saved.schedule })}\n`);
    await shot(page, 'saved');
    // What retention would keep now, and why.
    await page.getByRole('button', { name: /^preview retention$/i }).click();
    const preview = page.getByRole('heading', { name: /^what retention would do now$/i });
    await until('the retention preview', async () => {
      const alert = page.getByRole('region', { name: /^schedule$/i }).getByRole('alert');
      if (await alert.count()) fail(`the preview failed: ${await alert.first().textContent()}`);
      return preview.isVisible();
    });
    const section = page.getByRole('region', { name: /^schedule$/i });
    const policy = await section.getByText(/^keeps /i).first().textContent();
    if (!/newest of each of the last 5 days/.test(policy)) fail(`the preview does not show the saved daily rule: ${policy}`);
    const kept = section.getByText(/^kept: /i);
    if (await kept.count()) {
      await kept.first().click();
      const reasons = await section.getByRole('group').filter({ hasText: /^kept: /i }).getByRole('listitem').allTextContents();
      log(`kept: ${reasons.map((r) => r.replace(/\s+/g, ' ').trim()).join(' | ')}`);
      if (!reasons.some((r) => /day \d{4}-\d\d-\d\d/.test(r))) fail('no kept backup names its day');
    } else {
      log('no backup to keep: the preview lists none');
    }
    await shot(page, 'preview');
    await page.reload();
    await page.getByRole('heading', { name: /^backups$/i }).waitFor({ state: 'visible', timeout: STEP });
    await until('the schedule to load after the reload', async () => (await form.getAttribute('aria-busy')) === 'false');
    const shown = {
      enabled: await form.getByLabel(/^run scheduled backups$/i).isChecked(),
      frequency: await form.getByLabel(/^frequency$/i).inputValue(),
      dayOfWeek: await form.getByLabel(/^day of week$/i).inputValue(),
      hour: await form.getByLabel(/^hour$/i).inputValue(),
      keep: await form.getByLabel(/^backups to keep$/i).inputValue(),
      daily: await form.getByLabel(/^days to keep$/i).inputValue(),
      weekly: await form.getByLabel(/^weeks to keep$/i).inputValue(),
    };
    const want = { enabled: true, frequency: 'weekly', dayOfWeek: '3', hour: '4', keep: '7', daily: '5', weekly: '0' };
    if (JSON.stringify(shown) !== JSON.stringify(want)) fail(`after a reload the schedule shows ${JSON.stringify(shown)}, expected ${JSON.stringify(want)}`);
    await shot(page, 'reloaded');
  },

  async pin(page) {
    await signIn(page);
    const names = (await backupNames(page)).filter((n) => !/^framerr-safety-/i.test(n));
    if (names.length < 2) fail(`two backups are needed, the list has ${names.join(', ') || 'none'}`);
    const [a, b] = names;
    const badge = (name) => backupRow(page, name).getByText(/^pinned$/i);
    const pinButton = (name) => page.getByRole('button', { name: `Pin ${name}`, exact: true });
    const unpinButton = (name) => page.getByRole('button', { name: `Unpin ${name}`, exact: true });
    const focused = () => page.evaluate(() => document.activeElement && document.activeElement.getAttribute('aria-label'));

    // Pin, unpin, pin again; focus stays on the button.
    log(`pinning ${a}`);
    await pinButton(a).click();
    await unpinButton(a).waitFor({ state: 'visible', timeout: STEP });
    await until(`${a} to show the Pinned badge`, async () => (await badge(a).count()) === 1);
    if ((await focused()) !== `Unpin ${a}`) fail(`focus is on ${await focused()}, not on the Unpin button`);
    await unpinButton(a).click();
    await pinButton(a).waitFor({ state: 'visible', timeout: STEP });
    await until(`${a} to lose the Pinned badge`, async () => (await badge(a).count()) === 0);
    await pinButton(a).click();
    await unpinButton(a).waitFor({ state: 'visible', timeout: STEP });
    await until(`${a} to show the Pinned badge again`, async () => (await badge(a).count()) === 1);
    if (await badge(b).count()) fail(`${b} shows a Pinned badge but was not pinned`);
    const listed = await (await api(page, 'GET', '/list')).json();
    const pinnedNow = listed.backups.filter((x) => x.pinned).map((x) => x.filename);
    if (JSON.stringify(pinnedNow) !== JSON.stringify([a])) fail(`GET /list says pinned: ${pinnedNow.join(', ') || 'none'}`);
    await shot(page, 'pinned');

    // Deleting it asks first: Delete stays off until "I understand".
    const dialog = page.getByRole('dialog', { name: /^delete backup/i });
    const confirm = dialog.getByRole('button', { name: /^delete$/i });
    await page.getByRole('button', { name: `Delete ${a}`, exact: true }).click();
    await dialog.waitFor({ state: 'visible', timeout: STEP });
    if (!/pinned/i.test(await dialog.textContent())) fail('the confirmation does not say the backup is pinned');
    if (!(await confirm.isDisabled())) fail('Delete is enabled before "I understand" is checked');
    await shot(page, 'confirm');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden', timeout: STEP });
    if (!(await backupNames(page)).includes(a)) fail(`${a} is gone after Escape`);
    // What the page guards against: the server refuses without force.
    const refused = await api(page, 'DELETE', `/${encodeURIComponent(a)}`);
    if (refused.status() !== 403) fail(`DELETE of a pinned backup without force answered ${refused.status()}`);

    // Pinned behind the page's back (another tab, the CLI): the page's plain
    // delete is refused, and it asks instead of deleting.
    const pinned = await api(page, 'POST', `/${encodeURIComponent(b)}/pin`);
    if (!pinned.ok()) fail(`pinning ${b} over the API answered ${pinned.status()}`);
    await page.getByRole('button', { name: `Delete ${b}`, exact: true }).click();
    await dialog.waitFor({ state: 'visible', timeout: STEP });
    await confirm.click();
    const alert = dialog.getByRole('alert');
    const refusal = await until('the refusal in the dialog', async () => ((await alert.isVisible()) ? (await alert.textContent()).trim() : ''));
    log(`deleting the stale-listed pinned backup answered: ${refusal}`);
    if (!/pinned/i.test(refusal)) fail(`the dialog says "${refusal}", not that the backup is pinned`);
    if (!(await confirm.isDisabled())) fail('after the refusal Delete is enabled without "I understand"');
    if (!(await backupNames(page)).includes(b)) fail(`${b} left the list although the server refused`);
    await until(`${b} to show the Pinned badge after the refusal`, async () => (await badge(b).count()) === 1);
    await shot(page, 'refused');
    await dialog.getByLabel(/^i understand$/i).check();
    await confirm.click();
    await dialog.waitFor({ state: 'hidden', timeout: STEP });
    await until(`${b} to leave the list`, async () => !(await backupNames(page)).includes(b));
    process.stdout.write(`${JSON.stringify({ pinned: a, deleted: b })}\n`);

    // The pin is the server's, not the page's.
    await page.reload();
    await page.getByRole('heading', { name: /^backups$/i }).waitFor({ state: 'visible', timeout: STEP });
    await listLoaded(page);
    if ((await badge(a).count()) !== 1) fail(`${a} lost its Pinned badge after a reload`);
    await shot(page, 'reloaded');
  },

  async verify(page) {
    await verifyNow(page, 'passed');
  },

  async 'verify-damaged'(page) {
    await verifyNow(page, 'failed');
  },

  async encryption(page) {
    await signIn(page);
    const enable = page.getByRole('form', { name: /^turn on encryption$/i });
    const disable = page.getByRole('form', { name: /^turn off encryption$/i });
    const state = await until('the encryption status', async () => ((await enable.isVisible()) ? 'off' : (await disable.isVisible()) ? 'on' : null));
    await shot(page, 'before');
    if (state === 'off') {
      await enable.getByLabel(/^backup password$/i).fill(BACKUP_PASSWORD);
      await enable.getByLabel(/^confirm backup password$/i).fill(BACKUP_PASSWORD);
      await enable.getByRole('button', { name: /^turn on encryption$/i }).click();
      await until('encryption to be on', async () => {
        const alert = page.getByRole('region', { name: /^encryption$/i }).getByRole('alert');
        if (await alert.count()) fail(`enabling encryption failed: ${await alert.first().textContent()}`);
        return disable.isVisible();
      });
    } else {
      log('encryption was already on');
    }
    await shot(page, 'enabled');
    const created = await createBackup(page);
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: `Delete ${created.filename}`, exact: true }) });
    await until(`${created.filename} to be marked encrypted`, async () => (await row.getByText(/^encrypted$/i).count()) > 0);
    await shot(page, 'encrypted-row');
  },

  async restore(page) {
    await signIn(page);
    if (!(await backupNames(page)).length) await createBackup(page);
    const names = await backupNames(page);
    const plain = names.find((n) => n.endsWith('.zip'));
    const target = plain || names[0];
    log(`restoring ${target}`);
    await page.getByRole('button', { name: `Restore ${target}`, exact: true }).click();
    const dialog = page.getByRole('dialog', { name: /^restore backup/i });
    await dialog.waitFor({ state: 'visible', timeout: STEP });
    if (!plain) {
      await dialog.getByLabel(/^password$/i).fill(BACKUP_PASSWORD);
      await dialog.getByRole('button', { name: /^show contents$/i }).click();
    }
    await until('what the backup holds', async () => {
      const alert = dialog.getByRole('alert');
      if (await alert.count()) fail(`reading the backup failed: ${await alert.first().textContent()}`);
      return dialog.getByText(/^users$/i).isVisible();
    });
    const terms = await dialog.getByRole('term').allTextContents();
    const details = await dialog.getByRole('definition').allTextContents();
    const holds = Object.fromEntries(terms.map((t, i) => [t.trim(), (details[i] || '').trim()]));
    log(`the backup holds: ${JSON.stringify(holds)}`);
    if (!/^\d+$/.test(holds.Users || '')) fail(`the dialog shows no user count: ${JSON.stringify(holds)}`);
    await shot(page, 'contents');
    await dialog.getByRole('button', { name: /^restore$/i }).click();
    const summary = page.getByRole('dialog', { name: /^restore complete/i });
    await until(
      'the restore summary',
      async () => {
        const alert = dialog.getByRole('alert');
        if ((await dialog.isVisible()) && (await alert.count())) fail(`the restore failed: ${await alert.first().textContent()}`);
        return summary.isVisible();
      },
      LONG,
    );
    const text = await summary.textContent();
    const safety = (text.match(/framerr-safety-[A-Za-z0-9_.+-]+?\.(?:zip|framerr-backup)/) || [])[0];
    if (!safety) fail(`the summary names no safety backup: ${text.replace(/\s+/g, ' ')}`);
    process.stdout.write(`${JSON.stringify({ restored: target, safetyBackup: safety })}\n`);
    await shot(page, 'summary');
    await summary.getByRole('button', { name: /^sign in again$/i }).click();
    await page.getByLabel(/^username$/i).waitFor({ state: 'visible', timeout: STEP });
    await shot(page, 'signed-out');
  },

  async setup(page) {
    const file = env.ENCRYPTED_BACKUP;
    if (!file || !fs.existsSync(file)) fail(`ENCRYPTED_BACKUP must name an encrypted backup file (got ${file || 'nothing'})`);
    await page.goto(`${BASE}/`);
    const input = view(page).getByLabel(/^backup file$/i);
    await input.waitFor({ state: 'visible', timeout: STEP });
    await shot(page, 'start');
    await input.setInputFiles(file);
    const password = view(page).getByLabel(/^password$/i);
    await password.waitFor({ state: 'visible', timeout: STEP });
    const restore = view(page).getByRole('button', { name: /^restore$/i });
    const alert = view(page).getByRole('alert');
    const alertText = async () => ((await alert.count()) ? (await alert.first().textContent()).trim() : '');
    await password.fill(`${BACKUP_PASSWORD}-wrong`);
    await restore.click({ timeout: STEP });
    const wrong = await until('"Incorrect password" with the attempts left', async () => {
      const text = await alertText();
      return /incorrect password/i.test(text) && /attempts? left/i.test(text) ? text : null;
    }, LONG);
    log(`wrong password answered: ${wrong}`);
    await shot(page, 'wrong-password');
    await password.fill(BACKUP_PASSWORD);
    const done = view(page).getByRole('heading', { name: /restored/i });
    for (let attempt = 1; ; attempt += 1) {
      await restore.click({ timeout: STEP }); // waits out a cooldown: the button is disabled meanwhile
      const outcome = await until('the restore to finish', async () => ((await done.isVisible()) ? 'done' : await alertText()), LONG);
      if (outcome === 'done') break;
      if (attempt >= 5 || !/try again|too many|in progress|wait/i.test(outcome)) fail(`the restore failed: ${outcome}`);
      log(`cooldown: ${outcome}`);
    }
    await shot(page, 'restored');
    await view(page).getByRole('button', { name: /^sign in$/i }).click();
    await page.getByLabel(/^username$/i).waitFor({ state: 'visible', timeout: STEP });
    await shot(page, 'sign-in');
  },
};

// ---- Runner ----

async function main() {
  if (!BASE || !scenarios[SCENARIO]) {
    console.error(`usage: BASE_URL=http://127.0.0.1:PORT node tests/browser/run.mjs <${Object.keys(scenarios).join('|')}>`);
    process.exit(2);
  }
  const chromium = loadChromium();
  fs.mkdirSync(SHOTS, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'framerr-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: DESKTOP,
    acceptDownloads: true,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP);
  watch(page);
  const watchdog = setTimeout(() => {
    console.error(`FAIL ${SCENARIO}: the scenario did not finish within ${WHOLE / 1000} s`);
    process.exit(1);
  }, WHOLE);
  let code = 0;
  try {
    await scenarios[SCENARIO](page);
    const found = [...pageErrors, ...problems];
    if (found.length && !LAX) fail(`the page has problems:\n  ${[...new Set(found)].join('\n  ')}`);
    for (const p of new Set(found)) log(`warning: ${p}`);
    console.error(`PASS ${SCENARIO} (${shotCount} steps screenshotted in ${SHOTS})`);
  } catch (e) {
    code = 1;
    try {
      await shot(page, 'failure');
    } catch {
      /* the page may be gone */
    }
    const extra = pageErrors.length ? `\n  page errors:\n  ${pageErrors.join('\n  ')}` : '';
    console.error(`FAIL ${SCENARIO}: ${e instanceof Failure ? e.message : e.stack || e}${extra}`);
  } finally {
    clearTimeout(watchdog);
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(code);
}

main();
