// The admin console in Debian's Chromium against a real `entrada serve`
// (tests/admin/run.sh): sign in by a one-time link, the venues page (create,
// edit the venue settings, rename it, move its time zone), sign-out revoking the session, a supervisor's
// limits, and axe-core on the page (0 violations).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ART, BASE, DB, LAPTOP, TABLET, axe, cli, launch, link } from './harness.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('an admin signs in by link, adds a venue, edits its settings, signs out', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  const url = link();
  assert.match(url, /\/admin\/signin\?link=ent_[0-9a-f]{64}$/);

  // A previewer's plain GET (no script runs) neither uses the link up nor
  // sets a cookie: the sign-in page's own POST redeems it.
  const preview = await context.request.get(url, { maxRedirects: 0 });
  assert.equal(preview.status(), 200);
  assert.equal(preview.headers()['set-cookie'], undefined);
  assert.equal((await context.cookies()).length, 0);

  await page.goto(url);
  await page.waitForURL(`${BASE}/admin/`);
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  assert.match(await page.locator('#who').textContent(), /admin of organisation 1/);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'entrada_console');
  assert.ok(session, 'the session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.ok(session.expires > Date.now() / 1000, 'the cookie expires');
  // Scripts cannot read it.
  assert.equal(await page.evaluate(() => document.cookie.includes('entrada_console')), false);

  // Create a venue with the keyboard-reachable form.
  await page.getByLabel('Name', { exact: true }).fill('Prado');
  await page.getByLabel(/Time zone/).fill('Europe/Madrid');
  await page.getByRole('button', { name: 'Add venue' }).click();
  await page.getByRole('status').filter({ hasText: 'Venue “Prado” added.' }).waitFor();
  await page.getByRole('row', { name: /Prado/ }).waitFor();

  // Edit its settings: the occupancy limit and the late grace.
  await page.getByRole('button', { name: 'Edit Prado' }).click();
  const heading = page.getByRole('heading', { name: 'Settings of Prado' });
  await heading.waitFor();
  assert.equal(await heading.evaluate((h) => h === document.activeElement), true, 'focus moves to the editor');
  await page.getByLabel(/People inside at once/).fill('250');
  await page.getByLabel(/after a slot ends/).fill('15');
  await page.getByLabel(/Closing time/).fill('18:30');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Settings of “Prado” saved.' }).waitFor();
  const venues = JSON.parse(cli('venue', 'list', '--db', DB, '--orq', '1').split('\n')[0]);
  assert.equal(venues.occupancy_limit, 250);
  assert.equal(venues.late_grace_minutes, 15);
  assert.equal(venues.closing_time, '18:30:00');
  // The editor shows the closing time it saved; emptied, it is cleared.
  await page.getByRole('button', { name: 'Edit Prado' }).click();
  assert.equal(await page.getByLabel(/Closing time/).inputValue(), '18:30');
  await page.getByLabel(/Closing time/).fill('');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('heading', { name: 'Settings of Prado' }).waitFor({ state: 'detached' });
  assert.equal(JSON.parse(cli('venue', 'list', '--db', DB, '--orq', '1').split('\n')[0]).closing_time, null);
  await page.getByRole('button', { name: 'Edit Prado' }).click();
  await page.getByLabel(/Closing time/).fill('18:30');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('heading', { name: 'Settings of Prado' }).waitFor({ state: 'detached' });
  // Rename it and move its time zone (no slot has bookings yet), then back.
  await page.getByRole('button', { name: 'Edit Prado' }).click();
  await page.locator('#edit-name').fill('Museo del Prado');
  await page.locator('#edit-timezone').fill('Europe/Lisbon');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Settings of “Museo del Prado” saved.' }).waitFor();
  const moved = JSON.parse(cli('venue', 'list', '--db', DB, '--orq', '1').split('\n')[0]);
  assert.deepEqual([moved.name, moved.timezone, moved.closing_time], ['Museo del Prado', 'Europe/Lisbon', '18:30:00']);
  await page.getByRole('button', { name: 'Edit Museo del Prado' }).click();
  await page.locator('#edit-name').fill('Prado');
  await page.locator('#edit-timezone').fill('Europe/Madrid');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Settings of “Prado” saved.' }).waitFor();
  await page.screenshot({ path: join(ART, 'venues-laptop.png'), fullPage: true });
  assert.deepEqual(await axe(page), []);

  await page.setViewportSize(TABLET);
  await page.screenshot({ path: join(ART, 'venues-tablet.png'), fullPage: true });

  // The link works once.
  const again = await context.newPage();
  await again.goto(url);
  await again.getByRole('status').filter({ hasText: 'This sign-in link cannot be used' }).waitFor();
  assert.equal(new URL(again.url()).search, '', 'the secret left the address bar');
  await again.close();

  // Sign-out revokes the session on the server.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Signed out' }).waitFor();
  const res = await page.request.get(`${BASE}/api/admin/venues`, {
    headers: { Cookie: `entrada_console=${session.value}` },
  });
  assert.equal(res.status(), 401);
  await context.close();
});

test("a supervisor signs in with a supervisor's limits; a cross-site write is refused", async () => {
  const id = cli('operator', 'add', '--db', DB, '--orq', '1', '--role', 'supervisor', '--name', 'Sue');
  const context = await browser.newContext({ viewport: TABLET, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link('--operator', id));
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  assert.match(await page.locator('#who').textContent(), /supervisor of organisation 1/);
  // A supervisor reads the venues (the Slots page picks one); creating one is an
  // admin's: the server refuses and the page says why.
  await page.getByLabel('Name', { exact: true }).fill('Not mine');
  await page.getByRole('button', { name: 'Add venue' }).click();
  await page.getByRole('status').filter({ hasText: 'Your role may not do this.' }).waitFor();
  await page.screenshot({ path: join(ART, 'supervisor.png') });
  // The console's own request without its header (as a cross-site form would send it).
  const status = await page.evaluate(async () => {
    const r = await fetch('/api/admin/venues', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'X', timezone: 'UTC' }),
    });
    return [r.status, (await r.json()).error.code];
  });
  assert.deepEqual(status, [403, 'CROSS_SITE_REQUEST']);
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test('without a session the console says how to sign in', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${BASE}/admin/`);
  await page.getByRole('heading', { name: 'Not signed in' }).waitFor();
  await page.screenshot({ path: join(ART, 'signed-out.png') });
  assert.deepEqual(await axe(page), []);
  await context.close();
});
