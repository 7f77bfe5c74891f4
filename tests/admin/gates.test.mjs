// The console's Gates page (issue 16, track "16t") in Debian's Chromium
// against a real `entrada serve` (tests/admin/run.sh): an admin adds a gate;
// the page shows the server address, the device token and the pairing QR code
// once, and a gate (`entrada sync`) pairs with exactly those; the new gate is
// listed. A
// supervisor may not manage gates. axe-core: 0 violations.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ART, BASE, DB, LAPTOP, TABLET, axe, cli, launch, link } from './harness.mjs';

let browser;
let dir;
before(async () => {
  browser = await launch();
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
  const created = page.waitForResponse((r) => r.url().endsWith('/api/admin/devices') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Add gate' }).click();
  const heading = page.getByRole('heading', { name: 'Gate “Cerralbo 1” added' });
  await heading.waitFor();
  assert.equal(await heading.evaluate((h) => h === document.activeElement), true, 'focus moves to the result');
  const token = (await page.locator('#gate-token-value').textContent()).trim();
  assert.ok(token.length > 20);
  // The pairing QR code: an image named for what it does, of the code the
  // server made for this token and the address this page came from.
  const { pairing } = await (await created).json();
  assert.equal(pairing.server_url, BASE);
  // BASE is 127.0.0.1: the page says a gate elsewhere cannot reach it.
  assert.equal(pairing.loopback, true);
  await page.locator('#gate-loopback').filter({ hasText: '--public-url' }).waitFor();
  assert.equal(pairing.uri, `entrada-pair:v1?server=${BASE.replace(/[^A-Za-z0-9\-._~:/]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())}&token=${token}`);
  const qr = page.getByRole('img', { name: `Pairing QR code for gate “Cerralbo 1”: pairs it with ${BASE} (holds the device token)` });
  await qr.waitFor();
  assert.ok(await qr.isVisible());
  const shown = await qr.evaluate((img) => ({ src: img.getAttribute('src'), w: img.naturalWidth, h: img.naturalHeight }));
  assert.equal(Buffer.from(shown.src.replace('data:image/svg+xml;base64,', ''), 'base64').toString(), pairing.svg, 'the image is the server’s SVG');
  assert.ok(shown.w >= 320 && shown.w === shown.h, `a square QR code of at least 320 px (${shown.w}×${shown.h})`);
  assert.equal((await page.locator('#gate-server-value').textContent()).trim(), BASE);
  await qr.screenshot({ path: join(ART, 'gates-pairing-qr.png') });
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

// A UUID v7 (time-ordered), as a gate makes its event ids.
function uuid7() {
  const hex = Date.now().toString(16).padStart(12, '0');
  const rnd = [...crypto.getRandomValues(new Uint8Array(10))].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${rnd.slice(0, 3)}-${((parseInt(rnd[3], 16) & 3) | 8).toString(16)}${rnd.slice(4, 7)}-${rnd.slice(7, 19)}`;
}

test('each gate shows its last upload, clock offset, pending uploads and conflicts, and is revoked', async () => {
  const venue = cli('venue', 'add', '--db', DB, '--orq', '1', '--name', 'Lázaro Galdiano', '--timezone', 'UTC');
  const op = cli('operator', 'add', '--db', DB, '--orq', '1', '--role', 'operator', '--name', 'Gate op');
  const device = cli('device', 'add', '--db', DB, '--orq', '1', '--venue', venue, '--name', 'Sorolla 1');
  const admin = cli('token', 'create', '--db', DB, '--orq', '1', '--role', 'admin');
  const post = (path, bearer, body, headers = {}) =>
    fetch(`${BASE}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  assert.equal((await post('/api/admin/tickets', admin, [{ ticket_code: 'GH-1', activation_mode: 'immediate' }])).status, 201);
  // The gate uploads an admission of a ticket with no reservation (a
  // conflict), its clock 2.5 s ahead, and says 4 more events wait.
  const upload = await post(
    '/api/sync/events',
    device,
    {
      events: [{ event_id: uuid7(), kind: 'verify', payload: { ticket_code: 'GH-1', venue_id: Number(venue) }, operator_id: Number(op), device_time: new Date().toISOString() }],
      sent_at: new Date(Date.now() + 2500).toISOString(),
    },
    { 'X-Entrada-Pending': '4' },
  );
  assert.equal(upload.status, 200);
  assert.equal((await upload.json()).results[0].status, 'conflict');

  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Gates' }).click();
  await page.getByRole('heading', { level: 1, name: 'Gates' }).waitFor();
  const row = page.getByRole('row', { name: /Sorolla 1/ });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  // Venue, version, last upload, offset, pending, conflicts, status, actions.
  assert.equal(cells[0], 'Lázaro Galdiano');
  assert.notEqual(cells[2], 'never', 'the upload was seen');
  assert.match(cells[3], /^\+2\.\d s$/, 'the clock offset');
  assert.match(cells[4], /^4 \(as of .+\)$/, 'the pending uploads it reported');
  assert.equal(cells[5], '1', 'one conflict');
  assert.equal(cells[6], 'active');

  const opener = page.getByRole('button', { name: 'Revoke gate Sorolla 1' });
  await opener.click();
  const confirm = page.getByRole('heading', { name: 'Revoke gate “Sorolla 1”?' });
  await confirm.waitFor();
  assert.equal(await confirm.evaluate((h) => h === document.activeElement), true, 'focus moves to the confirmation');
  await page.keyboard.press('Escape');
  assert.equal(await opener.evaluate((b) => b === document.activeElement), true, 'Escape returns focus');
  await opener.click();
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(ART, 'gates-revoke-laptop.png'), fullPage: true });
  await page.getByRole('button', { name: 'Revoke the gate' }).click();
  await page.getByRole('status').filter({ hasText: 'Gate “Sorolla 1” revoked.' }).waitFor();
  assert.equal((await row.locator('td').allTextContents())[6], 'revoked');
  assert.equal(await page.getByRole('button', { name: 'Revoke gate Sorolla 1' }).count(), 0);
  // Its token is refused from now on.
  const after = await post('/api/sync/events', device, { events: [], sent_at: new Date().toISOString() });
  assert.equal(after.status, 401);
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test('a supervisor may not list or revoke gates', async () => {
  const id = cli('operator', 'add', '--db', DB, '--orq', '1', '--role', 'supervisor', '--name', 'Gonzalo 2');
  const context = await browser.newContext({ viewport: TABLET, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link('--operator', id));
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  const codes = await page.evaluate(async () => {
    const list = await fetch('/api/admin/gates');
    const revoke = await fetch('/api/admin/gates/1/revoke', { method: 'POST', headers: { 'X-Entrada-Console': '1' } });
    return [list.status, revoke.status, (await revoke.json()).error.code];
  });
  assert.deepEqual(codes, [403, 403, 'FORBIDDEN']);
  await context.close();
});
