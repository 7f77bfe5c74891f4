// The console's Tickets page (issue 16, track "16t") in Debian's Chromium
// against a real `entrada serve` (tests/admin/run.sh): an admin searches by
// order id and cancels a ticket; a gate paired with the server (`entrada
// sync`) learns it at its next sync and refuses it (`entrada gate verify`:
// TICKET_CANCELLED). A supervisor may search but not cancel; a venue-bound
// admin is offered no import (ORG_ADMIN_ONLY). axe-core: 0 violations on
// every state of the page.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ART, BASE, DB, LAPTOP, TABLET, axe, cli, launch, link } from './harness.mjs';

/** `entrada gate verify`: its JSON verdict, whatever its exit status. */
function gateVerify(gateDb, code, venue) {
  try {
    return JSON.parse(cli('gate', 'verify', '--db', gateDb, code, '--venue', String(venue)));
  } catch (e) {
    if (e.status === 1) return JSON.parse(String(e.stdout));
    throw e;
  }
}

let browser;
let token;
let venue;
let gateDir;
const api = async (method, path, body) => {
  const res = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

before(async () => {
  browser = await launch();
  token = cli('token', 'create', '--db', DB, '--orq', '1', '--role', 'admin');
  const v = await api('POST', '/api/admin/venues', { name: 'Museo Sorolla', timezone: 'Europe/Madrid' });
  assert.equal(v.status, 201);
  venue = v.body.id;
  const tickets = ['T16T-A', 'T16T-B', 'T16T-C'].map((ticket_code) => ({
    ticket_code,
    order_id: 4242,
    purchase_email: 'ana@example.com',
    activation_mode: 'immediate',
  }));
  tickets.push({ ticket_code: 'T16T-OTHER', order_id: 7, purchase_email: 'bo@example.com' });
  assert.equal((await api('POST', '/api/admin/tickets', tickets)).status, 201);
  // T16T-B holds a reservation at the venue: a gate's replica holds its
  // venue's reserved tickets.
  const slot = await api('POST', '/api/operator/slots/create', {
    venue_id: venue, date: '2031-01-15', start_time: '09:00', end_time: '12:00', total_capacity: 10,
  });
  assert.equal(slot.status, 201, JSON.stringify(slot.body));
  const r = await api('POST', '/api/reservations/create', {
    ticket_id: 'T16T-B', slot_id: slot.body.id, customer_email: 'ana@example.com', customer_phone: '+34600111222',
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  gateDir = mkdtempSync(join(tmpdir(), 'entrada-gate-'));
});
after(async () => {
  await browser?.close();
  if (gateDir) rmSync(gateDir, { recursive: true, force: true });
});

test('an admin finds an order’s tickets, cancels one, and a paired gate refuses it after sync', async () => {
  // A gate of the venue, paired and synced while the ticket is still valid.
  const gateDb = join(gateDir, 'gate.db');
  const deviceToken = cli('device', 'add', '--db', DB, '--orq', '1', '--venue', String(venue), '--name', 'Gate 1');
  cli('sync', '--db', gateDb, '--server', BASE, '--token', deviceToken, '--once');
  // Its slot is in 2031: the gate knows the ticket and refuses it for the day, nothing is recorded.
  const before = gateVerify(gateDb, 'T16T-B', venue);

  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Tickets' }).click();
  const h1 = page.getByRole('heading', { level: 1, name: 'Tickets' });
  await h1.waitFor();
  assert.equal(await h1.evaluate((h) => h === document.activeElement), true, 'focus moves to the page');

  // Search by order id with the keyboard.
  await page.getByLabel('Ticket code, order id, e-mail or phone').fill('4242');
  await page.keyboard.press('Enter');
  await page.getByRole('status').filter({ hasText: '3 tickets shown.' }).waitFor();
  for (const code of ['T16T-A', 'T16T-B', 'T16T-C']) await page.getByRole('row', { name: new RegExp(code) }).waitFor();
  assert.equal(await page.getByRole('row', { name: /T16T-OTHER/ }).count(), 0);
  assert.deepEqual(await axe(page), []);

  // By e-mail, any case.
  await page.getByLabel('Ticket code, order id, e-mail or phone').fill('BO@example.com');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByRole('status').filter({ hasText: '1 ticket shown.' }).waitFor();
  await page.getByRole('row', { name: /T16T-OTHER/ }).waitFor();

  // Cancel T16T-B: a confirmation first (focus moves to it; Escape keeps the ticket).
  await page.getByLabel('Ticket code, order id, e-mail or phone').fill('4242');
  await page.keyboard.press('Enter');
  await page.getByRole('status').filter({ hasText: '3 tickets shown.' }).waitFor();
  const opener = page.getByRole('button', { name: 'Cancel ticket T16T-B' });
  await opener.click();
  const ask = page.getByRole('heading', { name: 'Cancel ticket T16T-B?' });
  await ask.waitFor();
  assert.equal(await ask.evaluate((h) => h === document.activeElement), true, 'focus moves to the confirmation');
  await page.keyboard.press('Escape');
  assert.equal(await opener.evaluate((b) => b === document.activeElement), true, 'Escape returns focus');
  await opener.click();
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(ART, 'tickets-laptop.png'), fullPage: true });
  await page.getByRole('button', { name: 'Cancel the ticket' }).click();
  await page.getByRole('status').filter({ hasText: 'Ticket T16T-B cancelled.' }).waitFor();
  const row = page.getByRole('row', { name: /T16T-B/ });
  await row.getByText('cancelled').waitFor();
  assert.equal(await row.getByRole('button', { name: /^Cancel ticket/ }).count(), 0, 'a cancelled ticket offers no cancel');
  await page.setViewportSize(TABLET);
  await page.screenshot({ path: join(ART, 'tickets-tablet.png'), fullPage: true });
  assert.deepEqual(await axe(page), []);

  // Its story tells the refund; Escape closes it and focus returns.
  const storyOpener = page.getByRole('button', { name: 'Story of ticket T16T-B' });
  await storyOpener.click();
  const storyHeading = page.getByRole('heading', { name: 'Story of ticket T16T-B' });
  await storyHeading.waitFor();
  const events = await page.locator('ol.story li').allTextContents();
  assert.match(events[0], /issued/);
  assert.match(events.at(-1), /ticket cancelled/);
  assert.deepEqual(await axe(page), []);
  await page.keyboard.press('Escape');
  assert.equal(await storyOpener.evaluate((b) => b === document.activeElement), true, 'Escape returns focus');

  // The server: cancelled, and cancelling again answers the same ticket.
  const again = await api('POST', '/api/admin/tickets/T16T-B/cancel');
  assert.equal(again.status, 200);
  assert.equal(again.body.activation_status, 'cancelled');

  // The gate learns it with its next sync and refuses it (it knew the ticket before).
  assert.notEqual(before.verdict, 'TICKET_CANCELLED');
  assert.notEqual(before.verdict, 'UNKNOWN_TICKET');
  cli('sync', '--db', gateDb, '--server', BASE, '--token', deviceToken, '--once');
  const verdict = gateVerify(gateDb, 'T16T-B', venue);
  assert.equal(verdict.admit, false);
  assert.equal(verdict.verdict, 'TICKET_CANCELLED');
  await context.close();
});

test('a venue-bound admin is offered no import and is told why', async () => {
  // No sign-in link binds a venue yet; a venue-bound admin token in the
  // Authorization header is such a caller (whoami answers its venue_id).
  const bound = cli('token', 'create', '--db', DB, '--orq', '1', '--role', 'admin', '--venue', String(venue));
  const context = await browser.newContext({
    viewport: LAPTOP,
    bypassCSP: true,
    extraHTTPHeaders: { Authorization: `Bearer ${bound}` },
  });
  const page = await context.newPage();
  await page.goto(`${BASE}/admin/#tickets`);
  await page.getByRole('heading', { level: 1, name: 'Tickets' }).waitFor();
  await page.getByRole('heading', { level: 2, name: 'Import tickets (CSV)' }).waitFor();
  await page.getByText(`This session is bound to one venue (venue ${venue}).`, { exact: false }).waitFor();
  assert.equal(await page.getByLabel('CSV file').count(), 0, 'no file input');
  assert.equal(await page.getByRole('button', { name: 'Check and import' }).count(), 0, 'no import button');
  // The server refuses it anyway, with its own code.
  const r = await fetch(BASE + '/api/admin/tickets/import/checked', {
    method: 'POST',
    headers: { Authorization: `Bearer ${bound}`, 'Content-Type': 'text/csv' },
    body: 'ticket_code\nT16T-BOUND\n',
  });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, 'ORG_ADMIN_ONLY');
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(ART, 'tickets-venue-bound.png'), fullPage: true });
  await context.close();
});

test('a supervisor searches tickets but may not cancel one', async () => {
  const id = cli('operator', 'add', '--db', DB, '--orq', '1', '--role', 'supervisor', '--name', 'Sam');
  const context = await browser.newContext({ viewport: TABLET, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link('--operator', id));
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.goto(`${BASE}/admin/#tickets`);
  await page.getByRole('heading', { level: 1, name: 'Tickets' }).waitFor();
  await page.getByLabel('Ticket code, order id, e-mail or phone').fill('T16T-C');
  await page.keyboard.press('Enter');
  await page.getByRole('row', { name: /T16T-C/ }).waitFor();
  await page.getByRole('button', { name: 'Cancel ticket T16T-C' }).click();
  await page.getByRole('button', { name: 'Cancel the ticket' }).click();
  await page.getByRole('status').filter({ hasText: 'Your role may not do this.' }).waitFor();
  assert.equal((await api('GET', '/api/admin/tickets/search?q=T16T-C')).body.tickets[0].activation_status, 'active');
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test('an admin imports a CSV with two bad rows: the report names them and nothing is imported; then the fixed file', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.goto(`${BASE}/admin/#tickets`);
  await page.getByRole('heading', { level: 1, name: 'Tickets' }).waitFor();

  const rows = ['ticket_code,order_id,activation_mode,purchase_email'];
  for (let i = 1; i <= 200; i++) rows.push(`IMP-${String(i).padStart(4, '0')},5151,immediate,imp@example.com`);
  rows[50] = 'IMP-0050,not-a-number,immediate,imp@example.com'; // line 51
  rows[120] = 'IMP-0120,5151,sometimes,imp@example.com'; // line 121
  const bad = join(gateDir, 'bad.csv');
  writeFileSync(bad, rows.join('\n') + '\n');
  await page.getByLabel('CSV file').setInputFiles(bad);
  await page.getByRole('button', { name: 'Check and import' }).click();
  const report = page.locator('#ticket-csv-report');
  await report.getByText('2 bad rows: nothing was imported.').waitFor();
  const lines = await report.locator('tbody th').allTextContents();
  assert.deepEqual(lines, ['51', '121']);
  await report.getByRole('row', { name: /IMP-0050/ }).waitFor();
  await report.getByRole('row', { name: /IMP-0120.*activation_mode/ }).waitFor();
  assert.equal(await page.locator('#ticket-csv-progress').evaluate((p) => p.value), 1, 'the progress bar is full');
  assert.equal((await api('GET', '/api/admin/tickets/search?q=5151')).body.tickets.length, 0, 'nothing imported');
  await page.screenshot({ path: join(ART, 'tickets-import-laptop.png'), fullPage: true });
  assert.deepEqual(await axe(page), []);

  // The fixed file imports all 200 in one go; the export streams them back.
  rows[50] = 'IMP-0050,5151,immediate,imp@example.com';
  rows[120] = 'IMP-0120,5151,deferred,imp@example.com';
  const good = join(gateDir, 'good.csv');
  writeFileSync(good, rows.join('\n') + '\n');
  await page.getByLabel('CSV file').setInputFiles(good);
  await page.getByRole('button', { name: 'Check and import' }).click();
  await report.getByText('200 tickets imported.').waitFor();
  const csv = await page.evaluate(async () => (await fetch('/api/admin/tickets/export?q=5151')).text());
  const exported = csv.trim().split('\n');
  assert.equal(exported.length, 201);
  assert.match(exported[0], /^ticket_code,order_id,/);
  assert.match(exported[1], /^IMP-0001,5151,/);
  await context.close();
});

test('a CSV of more than 5,000 rows: every part is checked first, bad rows named by their file lines; then imported part by part, and a part refused meanwhile is named', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.goto(`${BASE}/admin/#tickets`);
  await page.getByRole('heading', { level: 1, name: 'Tickets' }).waitFor();
  const report = page.locator('#ticket-csv-report');
  const file = (name, rows) => {
    const path = join(gateDir, name);
    writeFileSync(path, rows.join('\n') + '\n');
    return path;
  };
  // 5,002 rows: part 1 is lines 2–5001, part 2 lines 5002–5003.
  const rows = ['ticket_code,order_id,purchase_email'];
  for (let i = 1; i <= 5002; i++) rows.push(`BIG-${String(i).padStart(5, '0')},5252,big@example.com`);
  const bad = [...rows];
  bad[5001] = 'BIG-05001,5252,big.example.com'; // line 5002: a bad e-mail, in part 2
  bad[5002] = 'BIG-00002,5252,big@example.com'; // line 5003: the code of line 3, in part 1
  await page.getByLabel('CSV file').setInputFiles(file('big-bad.csv', bad));
  await page.getByRole('button', { name: 'Check and import' }).click();
  await report.getByText('2 bad rows: nothing was imported.').waitFor({ timeout: 60_000 });
  assert.deepEqual(await report.locator('tbody th').allTextContents(), ['5002', '5003']);
  await report.getByRole('row', { name: /BIG-05001.*purchase_email/ }).waitFor();
  await report.getByRole('row', { name: /BIG-00002.*already on line 3/ }).waitFor();
  assert.equal((await api('GET', '/api/admin/tickets/search?q=5252')).body.tickets.length, 0, 'nothing imported');

  // A code created between the check and the import of part 2: part 1 stays
  // imported, part 2 is not, and the report says which lines are which.
  let imports = 0;
  await page.route((url) => url.pathname.endsWith('/tickets/import/checked') && url.search === '', async (route) => {
    imports += 1;
    if (imports === 2) {
      assert.equal((await api('POST', '/api/admin/tickets', [{ ticket_code: 'BIG-05002' }])).status, 201);
    }
    await route.continue();
  });
  await page.getByLabel('CSV file').setInputFiles(file('big.csv', rows));
  await page.getByRole('button', { name: 'Check and import' }).click();
  await report.getByText(/^Lines 2–5001 were imported \(5000 tickets\)\. Lines 5002–5003 were NOT imported/).waitFor({ timeout: 60_000 });
  assert.deepEqual(await report.locator('tbody th').allTextContents(), ['5003']);
  assert.equal(await page.locator('#ticket-csv-progress').evaluate((p) => p.value), 1);
  const search = async (q) => (await api('GET', `/api/admin/tickets/search?q=${q}`)).body.tickets.length;
  assert.equal(await search('BIG-05000'), 1, 'part 1 imported');
  assert.equal(await search('BIG-05001'), 0, 'part 2 not imported');
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test('a lost answer during an import is checked, not guessed: the part went in and the rest follows; a two-line field keeps the file\'s line numbers', async () => {
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.goto(`${BASE}/admin/#tickets`);
  await page.getByRole('heading', { level: 1, name: 'Tickets' }).waitFor();
  const report = page.locator('#ticket-csv-report');
  const file = (name, rows) => {
    const path = join(gateDir, name);
    writeFileSync(path, rows.join('\n') + '\n');
    return path;
  };
  // 5,002 records; record 5,001 (line 5002) has a field over two lines, so
  // record 5,002 starts on line 5004 of the file.
  const rows = ['ticket_code,order_id,entitlements'];
  for (let i = 1; i <= 5002; i++) rows.push(`LOST-${String(i).padStart(5, '0')},6262,`);
  rows[5001] = 'LOST-05001,6262,"{""note"":\n""two lines""}"';
  const bad = [...rows];
  bad[5002] = 'LOST-05002,x,';
  await page.getByLabel('CSV file').setInputFiles(file('lost-bad.csv', bad));
  await page.getByRole('button', { name: 'Check and import' }).click();
  await report.getByText('1 bad row: nothing was imported.').waitFor({ timeout: 60_000 });
  assert.deepEqual(await report.locator('tbody th').allTextContents(), ['5004']);

  // The first part's import reaches the server and commits, but its answer
  // never reaches the page (the connection is reset after the server answered).
  let imports = 0;
  await page.route((url) => url.pathname.endsWith('/tickets/import/checked') && url.search === '', async (route) => {
    imports += 1;
    if (imports === 1) {
      const answered = await route.fetch();
      assert.equal(answered.status(), 201, 'the server imported part 1');
      await route.abort('connectionreset');
    } else {
      await route.continue();
    }
  });
  await page.getByLabel('CSV file').setInputFiles(file('lost.csv', rows));
  await page.getByRole('button', { name: 'Check and import' }).click();
  await report.getByText('5002 tickets imported.').waitFor({ timeout: 60_000 });
  assert.equal(imports, 2, 'part 1 was not sent again: its re-check found every row');
  const search = async (q) => (await api('GET', `/api/admin/tickets/search?q=${q}`)).body.tickets.length;
  assert.equal(await search('LOST-00001'), 1);
  assert.equal(await search('LOST-05002'), 1);
  assert.deepEqual(await axe(page), []);
  await context.close();
});

test("an admin re-issues a ticket's signed code from its story", async () => {
  const created = await api('POST', '/api/admin/tickets', [{ ticket_code: 'T16T-R', activation_mode: 'immediate' }]);
  assert.equal(created.status, 201);
  const before = await api('GET', '/api/admin/tickets/T16T-R/signed-code');
  assert.equal(before.status, 200);
  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link());
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Tickets' }).click();
  await page.getByLabel('Ticket code, order id, e-mail or phone').fill('T16T-R');
  await page.getByLabel('Ticket code, order id, e-mail or phone').press('Enter');
  await page.getByRole('button', { name: 'Story of ticket T16T-R' }).click();
  await page.getByRole('heading', { name: 'Story of ticket T16T-R' }).waitFor();
  await page.getByRole('button', { name: 'Re-issue code' }).click();
  const shown = page.locator('#ticket-signed-code');
  await shown.waitFor();
  const code = (await shown.textContent()).trim();
  assert.match(code, /^ENT1\./);
  assert.notEqual(code, before.body.signed_code, 'a new code');
  await page.getByText(/every code issued before is refused/).waitFor();
  const now = await api('GET', '/api/admin/tickets/T16T-R/signed-code');
  assert.notEqual(now.body.signed_code, before.body.signed_code, 'the old code is no longer the one the server signs');
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(ART, 'tickets-reissue-laptop.png'), fullPage: true });
  await context.close();
});
