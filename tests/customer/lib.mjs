// Helpers for the customer-page browser tests: the server's admin API (for
// seeding and checking), Chromium through playwright-core, screenshots.
// Environment (set by run.sh): ENTRADA_URL, ENTRADA_ADMIN_TOKEN,
// ENTRADA_VENUE_ID, CUSTOMER_ARTIFACTS, CHROMIUM.

import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// playwright-core lives in ui/node_modules (the front end's devDependency).
const require = createRequire(join(here, '../../ui/package.json'));
const { chromium } = require('playwright-core');

export const BASE = process.env.ENTRADA_URL ?? 'http://127.0.0.1:8080';
const ADMIN = process.env.ENTRADA_ADMIN_TOKEN;
export const VENUE = Number(process.env.ENTRADA_VENUE_ID ?? 1);
export const ART = process.env.CUSTOMER_ARTIFACTS ?? join(tmpdir(), 'entrada-artifacts', 'customer');
mkdirSync(ART, { recursive: true });

if (!ADMIN) throw new Error('ENTRADA_ADMIN_TOKEN is not set: run tests/customer/run.sh');

export const VIEWPORT = { width: 375, height: 812 };

// ------------------------------------------------------------------ API

export async function http(method, path, { token = ADMIN, body } = {}) {
  const res = await fetch(BASE + path, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  return { status: res.status, data };
}

async function ok(method, path, opts) {
  const r = await http(method, path, opts);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.data)}`);
  return r.data;
}

/** Next month as YYYY-MM (every test's slots live there, in the future). */
export const MONTH = (() => {
  const d = new Date();
  const n = new Date(d.getFullYear(), d.getMonth() + 1, 1);
  return `${n.getFullYear()}-${String(n.getMonth() + 1).padStart(2, '0')}`;
})();
export const day = (d) => `${MONTH}-${String(d).padStart(2, '0')}`;

export async function mkSlot(d, start, end, capacity) {
  return ok('POST', '/api/operator/slots/create', {
    body: { venue_id: VENUE, date: day(d), start_time: start, end_time: end, total_capacity: capacity },
  });
}

export const getSlot = (id) => ok('GET', `/api/operator/slots/${id}`);

let seq = 0;
export async function mkTicket(mode = 'immediate', tag = 'T') {
  seq += 1;
  const rand = Math.random().toString(36).slice(2, 7).toUpperCase();
  const code = `TKT-${tag}${seq}-${rand}`;
  const email = `visitor.${seq}.${rand.toLowerCase()}@example.com`;
  await ok('POST', '/api/admin/tickets', {
    body: { ticket_code: code, purchase_email: email, activation_mode: mode },
  });
  return { code, email };
}

export async function customerToken(t) {
  const s = await ok('POST', '/api/customer/session', { token: null, body: { ticket_code: t.code, email: t.email } });
  return s.token;
}

export async function reserveViaApi(t, slotId) {
  const token = await customerToken(t);
  const r = await ok('POST', '/api/reservations/create', {
    token,
    body: { ticket_id: t.code, slot_id: slotId, customer_email: t.email, customer_phone: '+34600111222' },
  });
  return { token, reservation: r };
}

export const signedCode = async (code) => (await ok('GET', `/api/admin/tickets/${encodeURIComponent(code)}/signed-code`)).signed_code;

// ------------------------------------------------------------------ browser

export async function launch() {
  // Playwright starts Chromium with a fresh temporary --user-data-dir of its
  // own for every launch (and refuses one passed in args), so no profile is
  // shared between runs.
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** axe-core's violations on the page, as `id (impact): n nodes` lines. */
export async function axeViolations(page) {
  const { readFileSync } = await import('node:fs');
  await page.addScriptTag({ content: readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8') });
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return r.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.length} nodes`);
}

export async function newPage(browser) {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, locale: 'en-GB', acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.jsErrors = errors;
  return page;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(ART, `${name}.png`) });
}

export async function signIn(page, t) {
  await page.goto(`${BASE}/`);
  await page.fill('#code', t.code);
  await page.fill('#email', t.email);
  await page.click('#sign-in-button');
}

/** Opens the ticket with a `?token=…&ticket=…` link. */
export async function openWithToken(page, token, code) {
  await page.goto(`${BASE}/?token=${encodeURIComponent(token)}&ticket=${encodeURIComponent(code)}`);
}

/** Clicks the day and the slot in the calendar (which opens on MONTH). */
export async function chooseSlot(page, d, slotId) {
  await page.waitForSelector(`#calendar[data-month-view="${MONTH}"]`);
  await page.click(`button.day[data-date="${day(d)}"]`);
  await page.click(`button.slot[data-slot-id="${slotId}"]`);
}

/** Presses Tab until the focused element matches `selector`. */
export async function tabTo(page, selector, max = 80) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return i;
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
}
