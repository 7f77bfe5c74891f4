// The console's Staff page (issue 16, track "16t") in Debian's Chromium
// against a real `entrada serve` (tests/admin/run.sh): an admin adds a gate
// operator and resets their PIN (the new PIN signs in, the old one does not);
// a supervisor may not manage operators (the page shows the server's
// refusal, and a direct PIN reset is 403). axe-core: 0 violations.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../ui/package.json'));
const { chromium } = require('playwright-core');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const BASE = process.env.ENTRADA_URL;
const BIN = process.env.ENTRADA_BIN;
const DB = process.env.ENTRADA_DB;
const ART = process.env.ADMIN_ARTIFACTS;
const LAPTOP = { width: 1280, height: 800 };
const TABLET = { width: 820, height: 1180 };

const cli = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
const link = (...extra) => cli('admin', 'link', '--db', DB, '--org', '1', '--url', BASE, ...extra);

async function axe(page) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.length} nodes`);
}

let browser;
let token;
const signIn = async (operator_id, pin) =>
  (
    await fetch(`${BASE}/api/operator/sign-in`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ operator_id, pin }),
    })
  ).status;

before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
  token = cli('token', 'create', '--db', DB, '--orq', '1', '--role', 'admin');
});
after(async () => {
  await browser?.close();
});

test('an admin adds a gate operator and resets their PIN', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Staff' }).click();
  await page.getByRole('heading', { level: 1, name: 'Staff' }).waitFor();

  await page.getByLabel('Name', { exact: true }).fill('Lucía');
  await page.getByLabel('Role').selectOption('operator');
  await page.getByLabel(/^PIN/).fill('2468');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  const added = page.getByRole('status').filter({ hasText: /Lucía added \(id \d+\)\./ });
  await added.waitFor();
  const id = Number((await added.textContent()).match(/id (\d+)/)[1]);
  await page.getByRole('row', { name: /Lucía/ }).waitFor();
  assert.equal(await signIn(id, '2468'), 200);

  const opener = page.getByRole('button', { name: 'Reset PIN of Lucía' });
  await opener.click();
  const heading = page.getByRole('heading', { name: 'New PIN for Lucía' });
  await heading.waitFor();
  assert.equal(await heading.evaluate((h) => h === document.activeElement), true, 'focus moves to the form');
  await page.keyboard.press('Escape');
  assert.equal(await opener.evaluate((b) => b === document.activeElement), true, 'Escape returns focus');
  await opener.click();
  await page.locator('#reset-pin').fill('1357');
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(ART, 'staff-laptop.png'), fullPage: true });
  await page.getByRole('button', { name: 'Set the PIN' }).click();
  await page.getByRole('status').filter({ hasText: 'PIN of Lucía set' }).waitFor();
  assert.equal(await signIn(id, '1357'), 200, 'the new PIN signs in');
  assert.equal(await signIn(id, '2468'), 401, 'the old PIN does not');
  await page.setViewportSize(TABLET);
  await page.screenshot({ path: join(ART, 'staff-tablet.png'), fullPage: true });
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test('a supervisor may not manage operators', async () => {
  const id = cli('operator', 'add', '--db', DB, '--orq', '1', '--role', 'supervisor', '--name', 'Sofía');
  const context = await browser.newContext({ viewport: TABLET, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link('--operator', id));
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Staff' }).click();
  await page.getByRole('heading', { level: 1, name: 'Staff' }).waitFor();
  await page.getByRole('status').filter({ hasText: 'Your role may not do this.' }).waitFor();
  const status = await page.evaluate(async (op) => {
    const r = await fetch(`/api/admin/operators/${op}/pin`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', 'X-Entrada-Console': '1' },
      body: JSON.stringify({ pin: '999999' }),
    });
    return [r.status, (await r.json()).error.code];
  }, id);
  assert.deepEqual(status, [403, 'FORBIDDEN']);
  assert.deepEqual(await axe(page), []);
  await context.close();
});
