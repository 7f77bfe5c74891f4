// Browser tests of the customer reservation page against a real
// `entrada serve` (started and seeded by run.sh). Phone viewport 375×812.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  ART,
  axeViolations,
  BASE,
  chooseSlot,
  customerToken,
  day,
  getSlot,
  http,
  launch,
  mkSlot,
  mkTicket,
  MONTH,
  newPage,
  openWithToken,
  reserveViaApi,
  shot,
  signedCode,
  signIn,
  tabTo,
  VENUE,
} from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const text = (page, sel) => page.locator(sel).innerText();
/** Waits until the element's text matches (live regions are filled a frame later). */
const waitText = (page, sel, re) =>
  page.waitForFunction(([s, src, flags]) => new RegExp(src, flags).test(document.querySelector(s)?.textContent ?? ''), [sel, re.source, re.flags]);

test('deferred ticket: activate → reserve → confirmation shows the QR code and the slot', async () => {
  const slot = await mkSlot(3, '09:00', '11:00', 10);
  const t = await mkTicket('deferred', 'ACT');
  const page = await newPage(browser);

  await page.goto(`${BASE}/`);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'code');
  assert.equal(await page.locator('#sign-out').isVisible(), false);
  await shot(page, 'customer-1-sign-in');
  await signIn(page, t);
  await page.waitForSelector('#activate');
  await shot(page, 'customer-2-activate');
  await page.click('#activate');

  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  await waitText(page, '#status', /active/i);
  await shot(page, 'customer-3-calendar');
  await chooseSlot(page, 3, slot.id);
  // The purchase e-mail is offered as the contact address.
  assert.equal(await page.inputValue('#customer_email'), t.email);
  await page.fill('#customer_phone', '+34 600 123 456');
  await shot(page, 'customer-4-details');
  await page.click('#reserve');

  await page.waitForSelector('#confirmation');
  // QR code: an SVG with modules drawn, and the signed code as text.
  const modules = await page.locator('#confirmation svg.qr path').getAttribute('d');
  assert.ok(modules && modules.length > 1000, 'the QR code has modules');
  assert.equal(await page.locator('#signed-code').textContent(), await signedCode(t.code));
  const when = await text(page, '[data-slot-when]');
  assert.match(when, /09:00–11:00/);
  assert.match(when, /\b3\b/);
  assert.equal(await page.locator('[data-slot-when]').getAttribute('data-slot-when'), slot.id);
  // Calendar file for the slot's date and times.
  const ics = decodeURIComponent((await page.locator('#ics').getAttribute('href')).split(',')[1]);
  assert.match(ics, new RegExp(`DTSTART:${day(3).replace(/-/g, '')}T090000`));
  assert.match(ics, new RegExp(`DTEND:${day(3).replace(/-/g, '')}T110000`));
  await waitText(page, '#status', /confirmed/i);
  await shot(page, 'customer-5-confirmation');
  assert.equal((await getSlot(slot.id)).booked_count, 1);
  assert.deepEqual(page.jsErrors, []);
  await page.context().close();
});

test('reschedule moves the visit to another day and both slot counts follow', async () => {
  const a = await mkSlot(5, '09:00', '10:00', 10);
  const b = await mkSlot(6, '14:00', '15:00', 10);
  const t = await mkTicket('immediate', 'RES');
  const page = await newPage(browser);
  await signIn(page, t);
  await chooseSlot(page, 5, a.id);
  await page.fill('#customer_phone', '+447700900123');
  await page.click('#reserve');
  await page.waitForSelector('#confirmation');
  assert.equal((await getSlot(a.id)).booked_count, 1);

  await page.click('#change');
  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  await page.click(`button.day[data-date="${day(5)}"]`);
  // The current time is shown but cannot be chosen again.
  assert.equal(await page.locator(`button.slot[data-slot-id="${a.id}"]`).isDisabled(), true);
  await page.click(`button.day[data-date="${day(6)}"]`);
  await page.click(`button.slot[data-slot-id="${b.id}"]`);
  await shot(page, 'customer-6-reschedule');
  await page.click('#move');
  await page.waitForSelector('#confirmation');
  assert.match(await text(page, '[data-slot-when]'), /14:00–15:00/);
  await waitText(page, '#status', /moved/i);
  assert.equal((await getSlot(a.id)).booked_count, 0);
  assert.equal((await getSlot(b.id)).booked_count, 1);
  await page.context().close();
});

test('cancel frees the place: the slot booked_count goes down', async () => {
  const slot = await mkSlot(8, '10:00', '12:00', 10);
  const t = await mkTicket('immediate', 'CAN');
  const page = await newPage(browser);
  await signIn(page, t);
  await chooseSlot(page, 8, slot.id);
  await page.fill('#customer_phone', '+12025550123');
  await page.click('#reserve');
  await page.waitForSelector('#confirmation');
  assert.equal((await getSlot(slot.id)).booked_count, 1);

  await page.click('#cancel');
  await page.waitForSelector('#cancel-question');
  await shot(page, 'customer-7-cancel-confirm');
  await page.click('#cancel-yes');
  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  await waitText(page, '#status', /cancelled/i);
  const after = await getSlot(slot.id);
  assert.equal(after.booked_count, 0);
  assert.equal(after.available_count, 10);
  await page.context().close();
});

test("once the visit has started the page offers no change or cancel and shows the server's reason", async () => {
  // A slot today that started at midnight at the venue (Europe/Madrid) and
  // ends at 23:59: still bookable (until its end), no longer changeable.
  // One place, taken here: the other tests' calendars still open on MONTH.
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Madrid' }).format(new Date());
  const { data: slot } = await http('POST', '/api/operator/slots/create', {
    body: { venue_id: VENUE, date: today, start_time: '00:00', end_time: '23:59', total_capacity: 1 },
  });
  const t = await mkTicket('immediate', 'STA');
  const { token, reservation } = await reserveViaApi(t, slot.id);
  // The server refuses both, with the code the page's status also gives.
  for (const [method, body] of [['DELETE'], ['PUT', { slot_id: (await mkSlot(21, '13:00', '14:00', 5)).id }]]) {
    const r = await http(method, `/api/reservations/${reservation.id}`, { token, body });
    assert.equal(r.status, 409, JSON.stringify(r.data));
    assert.equal(r.data.error.code, 'SLOT_ALREADY_STARTED');
  }
  const status = await http('GET', `/api/tickets/${encodeURIComponent(t.code)}/status`, { token });
  assert.deepEqual(status.data.actions.change, { allowed: false, reason: 'SLOT_ALREADY_STARTED' });

  const page = await newPage(browser);
  await openWithToken(page, token, t.code);
  await page.waitForSelector('#confirmation');
  assert.equal(await page.locator('#change').count(), 0, 'no change button');
  assert.equal(await page.locator('#cancel').count(), 0, 'no cancel button');
  const why = page.locator('#confirmation [data-reason="SLOT_ALREADY_STARTED"]');
  assert.match(await why.innerText(), /already started.*can no longer be changed or cancelled/);
  await shot(page, 'customer-7b-started');
  assert.equal((await getSlot(slot.id)).booked_count, 1);
  assert.deepEqual(page.jsErrors, []);
  await page.context().close();
});

test('a FULL slot is shown as full and cannot be chosen', async () => {
  const full = await mkSlot(10, '09:00', '10:00', 1);
  const open = await mkSlot(10, '11:00', '12:00', 5);
  const fullDay = await mkSlot(11, '09:00', '10:00', 1);
  await reserveViaApi(await mkTicket('immediate', 'FIL'), full.id);
  await reserveViaApi(await mkTicket('immediate', 'FIL'), fullDay.id);
  assert.equal((await getSlot(full.id)).status, 'FULL');

  const t = await mkTicket('immediate', 'FUL');
  const page = await newPage(browser);
  await signIn(page, t);
  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  // A day whose only time is full is marked full.
  const dayBtn = page.locator(`button.day[data-date="${day(11)}"]`);
  assert.match(await dayBtn.getAttribute('class'), /\bfull\b/);
  assert.match(await dayBtn.getAttribute('aria-label'), /fully booked/);

  await page.click(`button.day[data-date="${day(10)}"]`);
  const fullBtn = page.locator(`button.slot[data-slot-id="${full.id}"]`);
  assert.equal(await fullBtn.isDisabled(), true);
  assert.match(await fullBtn.innerText(), /Full/);
  assert.match(await page.locator(`button.slot[data-slot-id="${open.id}"]`).innerText(), /5 places left/);
  await shot(page, 'customer-8-full-slot');
  await fullBtn.click({ force: true });
  assert.equal(await page.locator('#contact').count(), 0, 'no contact form for a full slot');
  assert.equal(await fullBtn.getAttribute('aria-pressed'), 'false');
  await page.context().close();
});

test("invalid e-mail and phone show the server's reasons next to the fields", async () => {
  const slot = await mkSlot(12, '09:00', '10:00', 10);
  const t = await mkTicket('immediate', 'INV');
  const page = await newPage(browser);

  // Sign-in form: an empty field is caught before anything is sent.
  await page.goto(`${BASE}/`);
  await page.fill('#email', 'nobody-at-example');
  await page.click('#sign-in-button');
  assert.match(await text(page, '#code-err'), /required/i);
  assert.equal(await text(page, '#email-err'), '');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'code');
  // Wrong e-mail for the code: 404 from the server, shown as an alert.
  await page.fill('#code', t.code);
  await page.fill('#email', 'someone.else@example.com');
  await page.click('#sign-in-button');
  await page.waitForFunction(() => /No ticket matches/.test(document.querySelector('#alert')?.textContent ?? ''));

  await page.fill('#email', t.email);
  await page.click('#sign-in-button');
  await chooseSlot(page, 12, slot.id);
  // The page has no e-mail or phone rules of its own: the server's 422
  // names both fields, with its reasons, and the page shows them there.
  const refused = page.waitForResponse((r) => r.url().endsWith('/api/reservations/create'));
  await page.fill('#customer_email', 'not-an-email');
  await page.fill('#customer_phone', '600 123');
  await page.click('#reserve');
  const answer = await (await refused).json();
  assert.deepEqual(Object.keys(answer.error.details.fields).sort(), ['customer_email', 'customer_phone']);
  await page.waitForFunction(() => (document.querySelector('#customer_phone-err')?.textContent ?? '') !== '');
  assert.match(await text(page, '#customer_email-err'), /name@example\.com/);
  assert.ok((await text(page, '#customer_phone-err')).includes(answer.error.details.fields.customer_phone));
  assert.match(await text(page, '#customer_phone-err'), /country code.*7 to 15 digits/);
  assert.equal(await page.getAttribute('#customer_email', 'aria-invalid'), 'true');
  assert.equal(await page.getAttribute('#customer_phone', 'aria-invalid'), 'true');
  assert.match(await page.getAttribute('#customer_phone', 'aria-describedby'), /customer_phone-err/);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'customer_email');
  await page.waitForFunction(() => /fix 2 fields/.test(document.querySelector('#alert')?.textContent ?? ''));
  await shot(page, 'customer-9-field-errors');
  assert.equal((await getSlot(slot.id)).booked_count, 0, 'nothing was booked');

  // A 422 INVALID_INPUT from the server lands next to the field it names.
  await page.route('**/api/reservations/create', (route) =>
    route.fulfill({
      status: 422,
      contentType: 'application/json',
      body: JSON.stringify({
        error: { code: 'INVALID_INPUT', message: 'customer_phone: must be in international format', details: { field: 'customer_phone' } },
      }),
    }),
  );
  await page.fill('#customer_email', t.email);
  await page.fill('#customer_phone', '+34600123456');
  await page.click('#reserve');
  await page.waitForFunction(() => /must be in international format/.test(document.querySelector('#customer_phone-err')?.textContent ?? ''));
  assert.equal(await text(page, '#customer_email-err'), '');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'customer_phone');
  await page.context().close();
});

test('a rate-limited (429) or expired (401) session shows what to do', async () => {
  const t = await mkTicket('immediate', 'LIM');
  const page = await newPage(browser);
  await page.route('**/api/customer/session', (route) =>
    route.fulfill({
      status: 429,
      headers: { 'Retry-After': '42' },
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'RATE_LIMITED', message: 'too many requests', details: { retry_after: 42 } } }),
    }),
  );
  await signIn(page, t);
  await page.waitForFunction(() => /wait 42 seconds/.test(document.querySelector('#alert')?.textContent ?? ''));
  await page.unroute('**/api/customer/session');

  // A token the server no longer knows: back to the sign-in form, code kept.
  await openWithToken(page, 'ent_expired0000', t.code);
  await page.waitForSelector('#sign-in');
  await page.waitForFunction(() => /session has expired/.test(document.querySelector('#alert')?.textContent ?? ''));
  assert.equal(await page.inputValue('#code'), t.code);
  await page.context().close();
});

test("another customer's ticket cannot be read or changed with this customer's token", async () => {
  const slot = await mkSlot(14, '09:00', '10:00', 10);
  const a = await mkTicket('immediate', 'OWN');
  const b = await mkTicket('immediate', 'OTH');
  const tokenA = await customerToken(a);
  const { reservation: rb } = await reserveViaApi(b, slot.id);

  const page = await newPage(browser);
  await openWithToken(page, tokenA, b.code);
  await page.waitForSelector('#sign-in');
  await page.waitForFunction(() => /could not find this ticket/.test(document.querySelector('#alert')?.textContent ?? ''));
  assert.equal(await page.locator('#confirmation').count(), 0);
  assert.equal(await page.locator('#signed-code').count(), 0);
  // The token is not left in the address bar.
  assert.doesNotMatch(page.url(), /token=/);
  await shot(page, 'customer-10-other-ticket');

  // Straight at the API, from the page, with A's token: all 404.
  const tries = await page.evaluate(
    async ({ token, code, id, slotId }) => {
      const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
      const st = (r) => r.status;
      return [
        await fetch(`/api/tickets/${code}/status`, { headers: auth }).then(st),
        await fetch(`/api/reservations/${id}`, { headers: auth }).then(st),
        await fetch(`/api/reservations/${id}`, { method: 'PUT', headers: auth, body: JSON.stringify({ slot_id: slotId }) }).then(st),
        await fetch(`/api/reservations/${id}`, { method: 'DELETE', headers: auth }).then(st),
        await fetch(`/api/tickets/${code}/activate`, { method: 'POST', headers: auth }).then(st),
      ];
    },
    { token: tokenA, code: b.code, id: rb.id, slotId: slot.id },
  );
  assert.deepEqual(tries, [404, 404, 404, 404, 404]);
  const still = await http('GET', `/api/reservations/${rb.id}`);
  assert.equal(still.data.status, 'RESERVED');
  assert.equal((await getSlot(slot.id)).booked_count, 1);
  await page.context().close();
});

test('a token link leaves no token in the address bar, the page runs under its CSP, and signing out revokes the session on the server', async () => {
  await mkSlot(16, '10:00', '11:00', 10);
  const t = await mkTicket('immediate', 'OUT');
  const token = await customerToken(t);
  const page = await newPage(browser);
  // Every CSP violation the page reports (Playwright's init script is not
  // subject to the page's CSP).
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });

  const res = await page.goto(`${BASE}/?token=${encodeURIComponent(token)}&ticket=${encodeURIComponent(t.code)}`);
  const h = res.headers();
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.match(h['content-security-policy'], /script-src 'self'( 'sha256-[A-Za-z0-9+/=]+')+;/);
  assert.doesNotMatch(h['content-security-policy'], /unsafe-inline|unsafe-eval/);
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['referrer-policy'], 'no-referrer');
  // The ticket opens: the inline scripts ran under the policy.
  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  assert.equal(page.url(), `${BASE}/`, 'the token (and its ticket) are gone from the address bar');
  assert.deepEqual(await page.evaluate(() => window.__csp), [], 'no CSP violation while the page works');
  // An injected inline script does not run.
  const injected = await page.evaluate(async () => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = 1';
    document.body.append(s);
    await new Promise((r) => setTimeout(r, 50));
    return { ran: window.__injected === 1, violations: window.__csp };
  });
  assert.equal(injected.ran, false);
  assert.ok(injected.violations.some((v) => v.startsWith('script-src')), JSON.stringify(injected.violations));

  // Signing out revokes the token on the server, not just in this tab.
  assert.equal((await http('GET', `/api/tickets/${encodeURIComponent(t.code)}/status`, { token })).status, 200);
  const revoked = page.waitForResponse((r) => r.url().endsWith('/api/customer/session') && r.request().method() === 'DELETE');
  await page.click('#sign-out');
  assert.equal((await revoked).status(), 204);
  await page.waitForSelector('#sign-in');
  const after = await http('GET', `/api/tickets/${encodeURIComponent(t.code)}/status`, { token });
  assert.equal(after.status, 401);
  assert.equal(after.data.error.code, 'UNAUTHORIZED');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('entrada.customer.session')), null);

  // A link with a token and no ticket is cleaned too.
  await page.goto(`${BASE}/?token=${encodeURIComponent(token)}`);
  await page.waitForSelector('#sign-in');
  assert.doesNotMatch(page.url(), /token=/);
  assert.deepEqual(page.jsErrors, []);
  await page.context().close();
});

test('last-place race: one customer is confirmed, the other sees "just filled up" and a refreshed calendar', async () => {
  const last = await mkSlot(16, '09:00', '10:00', 1);
  await mkSlot(16, '12:00', '13:00', 5);
  const t1 = await mkTicket('immediate', 'RCA');
  const t2 = await mkTicket('immediate', 'RCB');
  const p1 = await newPage(browser);
  const p2 = await newPage(browser);
  for (const [p, t] of [[p1, t1], [p2, t2]]) {
    await signIn(p, t);
    await chooseSlot(p, 16, last.id);
    await p.fill('#customer_phone', '+34600999888');
  }
  await Promise.all([p1.click('#reserve'), p2.click('#reserve')]);
  const outcome = async (p) => {
    await p.waitForFunction(
      () => document.querySelector('#confirmation') || /filled up/.test(document.querySelector('#alert')?.textContent ?? ''),
    );
    return (await p.locator('#confirmation').count()) ? 'confirmed' : 'filled';
  };
  const results = [await outcome(p1), await outcome(p2)];
  assert.deepEqual([...results].sort(), ['confirmed', 'filled']);
  const loser = results[0] === 'filled' ? p1 : p2;
  assert.match(await text(loser, '#alert'), /just filled up — please pick another/);
  // The calendar was re-read: the slot is now FULL and cannot be chosen.
  const btn = loser.locator(`button.slot[data-slot-id="${last.id}"]`);
  await loser.waitForFunction((id) => document.querySelector(`button.slot[data-slot-id="${id}"]`)?.disabled, last.id);
  assert.match(await btn.innerText(), /Full/);
  assert.equal(await loser.locator('#contact').count(), 0);
  await shot(loser, 'customer-11-race-lost');
  const s = await getSlot(last.id);
  assert.equal(s.booked_count, 1, 'nobody is overbooked');
  assert.equal(s.status, 'FULL');
  await p1.context().close();
  await p2.context().close();
});

test('keyboard only: Tab, Enter and Space take a customer from code to confirmation', async () => {
  const slot = await mkSlot(18, '15:00', '16:00', 10);
  const t = await mkTicket('deferred', 'KEY');
  const page = await newPage(browser);
  // A link with the code pre-filled: focus starts in the e-mail field.
  await page.goto(`${BASE}/?ticket=${encodeURIComponent(t.code)}`);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'email');
  await page.keyboard.type(t.email);
  await page.keyboard.press('Enter');

  await page.waitForSelector('#activate');
  await tabTo(page, '#activate');
  await page.keyboard.press('Enter');
  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  await tabTo(page, `button.day[data-date="${day(18)}"]`);
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'times-heading');
  await tabTo(page, `button.slot[data-slot-id="${slot.id}"]`);
  await page.keyboard.press('Space');
  // The purchase e-mail is already filled in, so focus goes to the phone.
  assert.equal(await page.inputValue('#customer_email'), t.email);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'customer_phone');
  await page.keyboard.type('+4915112345678');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#confirmation');
  assert.match(await text(page, '[data-slot-when]'), /15:00–16:00/);
  // Focus went to the confirmation's heading, and Change/Cancel are reachable.
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'panel-heading');
  await tabTo(page, '#cancel');
  await page.keyboard.press('Space');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'cancel-question');
  await tabTo(page, '#cancel-no');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'cancel');
  assert.equal((await getSlot(slot.id)).booked_count, 1);
  await page.context().close();
});

// Target: < 1 s. The assertion allows 2 s so that a busy shared machine does
// not fail the suite; the printed line says whether the target was met.
test('month view time on a throttled phone (4x CPU, 1.6 Mbps, 150 ms RTT) is measured: target 1 s, fails over 2 s', async () => {
  await mkSlot(20, '09:00', '10:00', 10);
  const t = await mkTicket('immediate', 'PRF');
  const token = await customerToken(t);
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const page = await newPage(browser); // fresh context: cold cache
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 150,
      downloadThroughput: (1.6 * 1024 * 1024) / 8,
      uploadThroughput: (750 * 1024) / 8,
    });
    const t0 = Date.now();
    await openWithToken(page, token, t.code);
    await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`, { timeout: 20_000 });
    const wall = Date.now() - t0;
    const mark = await page.evaluate(() => performance.getEntriesByName('entrada:month-view')[0]?.startTime ?? -1);
    if (process.env.PERF_DEBUG) {
      console.log(await page.evaluate(() => JSON.stringify([...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource'), ...performance.getEntriesByType('mark')].map((e) => ({ n: e.name.slice(-60), s: Math.round(e.startTime), rs: Math.round(e.responseStart), e: Math.round(e.responseEnd), sz: e.transferSize })), null, 0)));
    }
    runs.push({ mark: Math.round(mark), wall });
    if (i === 0) await shot(page, 'customer-12-month-throttled');
    await page.context().close();
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = {
    conditions: 'CPU 4x slower, 1.6 Mbps down / 750 kbps up, 150 ms RTT, cold cache, 375x812',
    month_view_ms_median: median(runs.map((r) => r.mark)),
    wall_ms_median: median(runs.map((r) => r.wall)),
    runs,
  };
  writeFileSync(join(ART, 'perf.json'), JSON.stringify(result, null, 2));
  console.log(
    `# customer page: month view at ${result.month_view_ms_median} ms after navigation start ` +
      `(median of 3 cold loads; wall ${result.wall_ms_median} ms; ${result.conditions}; ` +
      `target < 1000 ms: ${result.month_view_ms_median < 1000 ? 'met' : 'NOT met'})`,
  );
  assert.ok(result.month_view_ms_median > 0);
  assert.ok(result.month_view_ms_median < 2000, `month view took ${result.month_view_ms_median} ms`);
});

test('axe-core finds no violations on the sign-in page and the month view', async () => {
  await mkSlot(12, '10:00', '11:00', 5);
  const t = await mkTicket('immediate', 'AXE');
  // A context that bypasses the CSP only so that axe-core can be injected.
  const context = await browser.newContext({ viewport: { width: 375, height: 812 }, locale: 'en-GB', bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  await page.waitForSelector('#code');
  assert.deepEqual(await axeViolations(page), [], 'sign-in page');
  await signIn(page, t);
  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  assert.deepEqual(await axeViolations(page), [], 'month view');
  await context.close();
});
