// The console's Gates page (issue 16, track "16t") in Debian's Chromium
// against a real `entrada serve` (tests/admin/run.sh): an admin adds a gate;
// the page shows the server address and the device token once, and a gate
// (`entrada sync`) pairs with exactly those; the new gate is listed. A
// supervisor may not manage gates. axe-core: 0 violations.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
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
let dir;
before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
  cli('venue', 'add', '--db', DB, '--orq', '1', '--name', 'Museo Cerralbo', '--timezone', 'Europe/Madrid');
  dir = mkdtempSync(join(tmpdir(), 'entrada-gates-'));
});
after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('an admin adds a gate and the token it shows pairs a gate', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Gates' }).click();
  await page.getByRole('heading', { level: 1, name: 'Gates' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Cerralbo 1');
  await page.getByLabel('Venue').selectOption({ label: 'Museo Cerralbo' });
  await page.getByRole('button', { name: 'Add gate' }).click();
  const heading = page.getByRole('heading', { name: 'Gate “Cerralbo 1” added' });
  await heading.waitFor();
  assert.equal(await heading.evaluate((h) => h === document.activeElement), true, 'focus moves to the result');
  const token = (await page.locator('#gate-token-value').textContent()).trim();
  assert.ok(token.length > 20);
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(ART, 'gates-laptop.png'), fullPage: true });

  // A gate pairs with what the page showed.
  cli('sync', '--db', join(dir, 'gate.db'), '--server', BASE, '--token', token, '--once');

  await page.reload();
  await page.getByRole('row', { name: /Cerralbo 1/ }).waitFor();
  await page.setViewportSize(TABLET);
  await page.screenshot({ path: join(ART, 'gates-tablet.png'), fullPage: true });
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test('a supervisor may not manage gates', async () => {
  const id = cli('operator', 'add', '--db', DB, '--orq', '1', '--role', 'supervisor', '--name', 'Gonzalo');
  const context = await browser.newContext({ viewport: TABLET, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link('--operator', id));
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Gates' }).click();
  await page.getByRole('heading', { level: 1, name: 'Gates' }).waitFor();
  await page.getByRole('status').filter({ hasText: 'Your role may not do this.' }).waitFor();
  const status = await page.evaluate(async () => {
    const r = await fetch('/api/admin/devices', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Entrada-Console': '1' },
      body: JSON.stringify({ name: 'Rogue', venue_id: 1 }),
    });
    return [r.status, (await r.json()).error.code];
  });
  assert.deepEqual(status, [403, 'FORBIDDEN']);
  assert.deepEqual(await axe(page), []);
  await context.close();
});
