// The console's Slots page (issue 16) in Debian's Chromium against a real
// `entrada serve` (tests/admin/run.sh): a season of slots from a weekly
// pattern (preview, create, idempotent again, the DST day's skipped time),
// the month calendar's counts, one slot's refusals explained, bulk close,
// axe-core on the page (0 violations), laptop and tablet screenshots.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ART, BASE, BIN, DB, TABLET, axe, launch, link } from './harness.mjs';

const LAPTOP = { width: 1280, height: 900 };

/** The console's own API call from the page (cookie + console header). */
function api(page, method, path, body) {
  return page.evaluate(
    async ([method, path, body]) => {
      const r = await fetch(path, {
        method,
        headers: { 'Content-Type': 'application/json', 'X-Entrada-Console': '1' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    [method, path, body],
  );
}

/** A bearer call from the test itself (customer-side routes take no console cookie). */
let adminToken;
async function bearer(method, path, body) {
  adminToken ??= execFileSync(BIN, ['token', 'create', '--db', DB, '--orq', '1', '--role', 'admin'], { encoding: 'utf8' }).trim();
  const r = await fetch(BASE + path, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${adminToken}` },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test('an admin creates a season of slots with a pattern, edits and bulk-closes them', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  const venue = await api(page, 'POST', '/api/admin/venues', { name: 'Sorolla', timezone: 'Europe/Madrid' });
  assert.equal(venue.status, 201);

  await page.getByRole('link', { name: 'Slots' }).click();
  await page.getByRole('heading', { level: 1, name: 'Slots' }).waitFor();
  await page.getByLabel('Venue', { exact: true }).selectOption({ label: 'Sorolla' });

  // Tue–Sun of the week of 2027-03-28, when Madrid springs forward (02:30 does not exist).
  await page.getByLabel('From', { exact: true }).fill('2027-03-22');
  await page.getByLabel(/^To/).fill('2027-03-28');
  await page.getByLabel(/^Times/).fill('09:00-12:00, 12:00-15:00, 02:30-03:30');
  await page.getByLabel('Capacity', { exact: true }).last().fill('40');
  const create = page.getByRole('button', { name: /^Create \d+ slots?$/ });
  assert.equal(await create.isDisabled(), true, 'no creation before a preview');
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByText('Preview: 17 new, 0 already there, 0 overlapping another slot, 1 at a time the clock skips').waitFor();
  await page.getByText('2027-03-28 02:30–03:30: the clock skips this time (daylight saving)').waitFor();
  await page.getByRole('button', { name: 'Create 17 slots' }).click();
  await page.getByRole('status').filter({ hasText: 'Created 17 slots' }).waitFor();
  // The calendar moved to the pattern's month and shows the slots.
  await page.getByRole('heading', { level: 2, name: /March 2027 at Sorolla/ }).waitFor();
  assert.equal(await page.locator('button.slot').count(), 17);

  // Again: nothing new, and nothing to create.
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.getByText('Preview: 0 new, 17 already there').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Create 0 slots' }).isDisabled(), true);

  // Two reservations on Tuesday morning.
  const month = await api(page, 'GET', `/api/admin/slots/month?venue_id=${venue.body.id}&month=2027-03`);
  const tuesday = month.body.find((b) => b.slot.date === '2027-03-23' && b.slot.start_time === '09:00:00').slot;
  for (const code of ['SLOTS-1', 'SLOTS-2']) {
    const t = await api(page, 'POST', '/api/admin/tickets', { ticket_code: code, activation_mode: 'immediate' });
    assert.equal(t.status, 201);
    const r = await bearer('POST', '/api/reservations/create', {
      ticket_id: code,
      slot_id: tuesday.id,
      customer_email: 'ana@example.com',
      customer_phone: '+34600000001',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  await page.getByRole('button', { name: 'Next month' }).click();
  await page.getByRole('button', { name: 'Previous month' }).click();
  const slot = page.getByRole('button', { name: '2027-03-23 09:00–12:00: 2 of 40 booked, 0 admitted, open' });
  await slot.click();
  const heading = page.getByRole('heading', { level: 2, name: '2027-03-23 09:00–12:00' });
  await heading.waitFor();
  assert.equal(await heading.evaluate((h) => h === document.activeElement), true, 'focus moves to the slot');
  // Below the booked count: the API's refusal is shown with its code.
  await page.locator('#slot-capacity').fill('1');
  await page.getByRole('button', { name: 'Save capacity' }).click();
  await page.getByRole('status').filter({ hasText: 'Refused (CAPACITY_BELOW_BOOKED)' }).waitFor();
  // Delete with reservations: closed instead, and the page says so.
  await page.getByRole('button', { name: 'Delete slot' }).click();
  await page.getByRole('status').filter({ hasText: 'has reservations, so it was closed instead of deleted' }).waitFor();
  await page.getByRole('button', { name: /2027-03-23 09:00–12:00: .* closed$/ }).waitFor();
  // An empty slot is deleted.
  await page.getByRole('button', { name: /^2027-03-23 12:00–15:00/ }).click();
  await page.getByRole('button', { name: 'Delete slot' }).click();
  await page.getByRole('status').filter({ hasText: '2027-03-23 12:00–15:00 deleted.' }).waitFor();
  assert.equal(await page.locator('button.slot').count(), 16);

  // Bulk: close Wednesday's slots by keyboard-reachable checkboxes.
  for (const range of ['09:00–12:00', '12:00–15:00', '02:30–03:30']) {
    await page.getByRole('checkbox', { name: `Select 2027-03-24 ${range}` }).check();
  }
  await page.getByText('3 slots selected').waitFor();
  await page.getByRole('button', { name: 'Close selected' }).click();
  await page.getByRole('status').filter({ hasText: '3 changed.' }).waitFor();
  const after = await api(page, 'GET', `/api/admin/slots/month?venue_id=${venue.body.id}&month=2027-03`);
  const wednesday = after.body.filter((b) => b.slot.date === '2027-03-24');
  assert.deepEqual(wednesday.map((b) => b.slot.status), ['CLOSED', 'CLOSED', 'CLOSED']);
  // Bulk capacity below a slot's bookings: that one is refused by name, the others change.
  await page.getByRole('checkbox', { name: 'Select 2027-03-23 09:00–12:00' }).check();
  await page.getByRole('checkbox', { name: 'Select 2027-03-25 09:00–12:00' }).check();
  await page.locator('#bulk-capacity').fill('1');
  await page.getByRole('button', { name: 'Set capacity of selected' }).click();
  await page
    .getByRole('status')
    .filter({ hasText: '1 changed. 1 refused: Select 2027-03-23 09:00–12:00: Refused (CAPACITY_BELOW_BOOKED)' })
    .waitFor();

  await page.screenshot({ path: join(ART, 'slots-laptop.png'), fullPage: true });
  assert.deepEqual(await axe(page), []);
  await page.setViewportSize(TABLET);
  await page.screenshot({ path: join(ART, 'slots-tablet.png'), fullPage: true });
  assert.deepEqual(await axe(page), []);
  await context.close();
});
