// The console's Staff page (issue 16, track "16t") in Debian's Chromium
// against a real `entrada serve` (tests/admin/run.sh): an admin adds a gate
// operator and resets their PIN (the new PIN signs in, the old one does not);
// a supervisor may not manage operators (the page shows the server's
// refusal, and a direct PIN reset is 403). axe-core: 0 violations.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ART, BASE, DB, LAPTOP, TABLET, axe, cli, launch, link } from './harness.mjs';

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
  browser = await launch();
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

// Deactivation and role changes (PATCH /api/admin/operators/{id}).
const api = async (method, path, body, bearer = token) => {
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return [r.status, await r.json().catch(() => null)];
};

test('an admin deactivates an operator, reactivates them, and changes a role', async () => {
  const [, me] = await api('POST', '/api/admin/operators', { role: 'admin', display_name: 'Ada', pin: '112233' });
  const [, marta] = await api('POST', '/api/admin/operators', { role: 'operator', display_name: 'Marta', pin: '2580' });
  const [, sofia] = await api('POST', '/api/admin/operators', { role: 'supervisor', display_name: 'Sofía Role', pin: '246810' });
  const [, martaToken] = await api('POST', '/api/admin/tokens', { role: 'operator', user_id: marta.id });
  assert.equal((await api('GET', '/api/operator/signing-keys', undefined, martaToken.token))[0], 200);

  // Sofía has a console session open in another browser.
  const theirs = await browser.newContext({ viewport: TABLET, bypassCSP: true });
  const sofiaPage = await theirs.newPage();
  await sofiaPage.goto(link('--operator', String(sofia.id)));
  await sofiaPage.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  const sofiaWhoami = () => sofiaPage.evaluate(async () => (await fetch('/api/admin/session')).status);
  assert.equal(await sofiaWhoami(), 200);
  // A supervisor may (de)activate gate operators only, and change no role.
  const asSupervisor = (path, body) =>
    sofiaPage.evaluate(
      async ([p, b]) => {
        const r = await fetch(p, { method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-Entrada-Console': '1' }, body: JSON.stringify(b) });
        return [r.status, (await r.json()).error?.code ?? 'OK'];
      },
      [path, body],
    );
  assert.deepEqual(await asSupervisor(`/api/admin/operators/${me.id}`, { active: false }), [403, 'FORBIDDEN']);
  assert.deepEqual(await asSupervisor(`/api/admin/operators/${marta.id}`, { role: 'supervisor' }), [403, 'FORBIDDEN']);

  const context = await browser.newContext({ viewport: LAPTOP, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(link('--operator', String(me.id)));
  await page.getByRole('heading', { level: 1, name: 'Venues' }).waitFor();
  await page.getByRole('link', { name: 'Staff' }).click();
  await page.getByRole('heading', { level: 1, name: 'Staff' }).waitFor();
  // No button turns the admin against themselves; the server refuses too.
  await page.getByRole('row', { name: /Ada/ }).getByText('active (you)').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Deactivate Ada' }).count(), 0);
  const self = await page.evaluate(async (id) => {
    const r = await fetch(`/api/admin/operators/${id}`, { method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-Entrada-Console': '1' }, body: JSON.stringify({ active: false }) });
    return [r.status, (await r.json()).error.code];
  }, me.id);
  assert.deepEqual(self, [422, 'INVALID_INPUT']);

  await page.getByRole('button', { name: 'Deactivate Marta' }).click();
  await page.getByRole('status').filter({ hasText: 'Marta deactivated' }).waitFor();
  await page.getByRole('row', { name: /Marta/ }).getByText('deactivated', { exact: true }).waitFor();
  assert.equal(await signIn(marta.id, '2580'), 401, 'the PIN is refused');
  assert.equal((await api('GET', '/api/operator/signing-keys', undefined, martaToken.token))[0], 401, 'the token is revoked');
  assert.equal((await api('POST', '/api/admin/tokens', { role: 'operator', user_id: marta.id }))[0], 422, 'no new token');
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(ART, 'staff-deactivated-laptop.png'), fullPage: true });

  await page.getByRole('button', { name: 'Reactivate Marta' }).click();
  await page.getByRole('status').filter({ hasText: 'Marta reactivated' }).waitFor();
  assert.equal(await signIn(marta.id, '2580'), 200, 'the PIN works again');

  await page.getByRole('button', { name: 'Make gate operator: Sofía Role' }).click();
  await page.getByRole('status').filter({ hasText: 'Sofía Role is now gate operator' }).waitFor();
  assert.equal(await sofiaWhoami(), 401, "the supervisor's console session is revoked");
  await page.getByRole('button', { name: 'Make supervisor: Sofía Role' }).waitFor();
  await page.getByRole('button', { name: 'Make supervisor: Marta' }).click();
  await page.getByRole('status').filter({ hasText: 'Marta is now supervisor' }).waitFor();
  assert.equal(await signIn(marta.id, '2580'), 401, 'a supervisor needs 6 digits: reset the PIN');
  assert.deepEqual(await axe(page), []);
  await theirs.close();
  await context.close();
});
