// Pairing a gate by its QR code, end to end (issue 16): a real `entrada
// serve` over HTTPS with the venue's own CA (`--tls-ca`), the admin console
// in Debian's Chromium (Playwright) adding a gate, and a real entrada-desktop
// (Tauri, WebDriver) whose camera is a folder: a screenshot of the console's
// QR code is the frame it reads.
//
//   1. During normal scanning the pairing QR code is refused with a clear
//      message, and nothing is recorded (a visitor cannot re-pair a gate).
//   2. A supervisor's "Scan pairing code" (settings): the same picture is
//      read and shown on a confirm panel (server, CA pin, current pairing,
//      scans waiting); nothing is paired before the supervisor taps "Pair".
//      Then the gate is paired with the server the code names, trusting the CA whose
//      SHA-256 it carries (the gate was given no CA), and it syncs: a ticket
//      it admits reaches the server, and the console lists the gate as seen.
//
// Environment (set by run.sh): ENTRADA_BIN, DESKTOP_BIN, TAURI_DRIVER,
// DESKTOP_ARTIFACTS, CHROMIUM (default /usr/bin/chromium), SCREENSHOTS_DIR.

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checks, desktopEnv, freePort, log, screenshots, sleep, startApp, startDriver, workspace } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '../..');
const { chromium } = createRequire(join(ROOT, 'ui/package.json'))('playwright-core');
const { BIN, APP, DRIVER, ART, DOCS } = desktopEnv();
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const run = checks();
const check = run.check;

const { work, CAM, cli, sqlite } = workspace('entrada-pairing-e2e-', BIN);
const SDB = join(work, 'server.db');
const GDB = join(work, 'gate.db');
const openssl = (...args) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });

// ------------------------------------------------------------------ the venue's own CA (as README's recipe)
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-subj', '/CN=Test venue CA', '-keyout', 'ca.key', '-out', 'ca.pem');
openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr');
writeFileSync(join(work, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-extfile', 'san.ext', '-out', 'server.pem');
const CA = readFileSync(join(work, 'ca.pem'));
const caDer = Buffer.from(CA.toString().replace(/-----[^-]+-----|\s/g, ''), 'base64');
const CA_SHA256 = createHash('sha256').update(caDer).digest('hex');

// ------------------------------------------------------------------ server (HTTPS, --tls-ca)
const port = await freePort();
const BASE = `https://127.0.0.1:${port}`;
cli('migrate', '--db', SDB);
const ADMIN = cli('token', 'create', '--db', SDB, '--orq', '1', '--role', 'admin');
const VENUE = Number(cli('venue', 'add', '--db', SDB, '--orq', '1', '--name', 'Museo del Prado', '--timezone', 'UTC'));
const SARA = Number(cli('operator', 'add', '--db', SDB, '--orq', '1', '--role', 'supervisor', '--name', 'Sara', '--pin', '654321'));
const server = spawn(BIN, ['serve', '--db', SDB, '--listen', `127.0.0.1:${port}`, '--ui-dir', join(ROOT, 'ui/dist'),
  '--tls-cert', join(work, 'server.pem'), '--tls-key', join(work, 'server.key'), '--tls-ca', join(work, 'ca.pem')], { stdio: ['ignore', 'ignore', 'pipe'] });
server.stderr.on('data', (d) => writeFileSync(join(ART, 'pairing-server.log'), d, { flag: 'a' }));

/** A JSON call to the server, trusting the venue CA only. */
function api(method, path, body, token = ADMIN) {
  return new Promise((resolve, reject) => {
    const req = request(BASE + path, { method, ca: CA, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        const data = text ? JSON.parse(text) : null;
        if (res.statusCode >= 400) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        else resolve(data);
      });
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

let driver = null;
let wd = null;
let browser = null;
const { shot, shots } = screenshots(() => wd, ART, DOCS);

try {
  for (let i = 0; i < 100 && !(await api('GET', '/api/health', null, null).then(() => true, () => false)); i++) await sleep(100);
  log(`server on ${BASE} (venue CA SHA-256 ${CA_SHA256})`);
  const today = new Date().toISOString().slice(0, 10);
  const slot = await api('POST', '/api/operator/slots/create', { venue_id: VENUE, date: today, start_time: '00:00:00', end_time: '23:59:59', total_capacity: 10 });
  const code = 'TKT-QR-001';
  const email = 'qr@example.com';
  await api('POST', '/api/admin/tickets', { ticket_code: code, purchase_email: email, activation_mode: 'immediate' });
  const { token: customer } = await api('POST', '/api/customer/session', { ticket_code: code, email }, null);
  await api('POST', '/api/reservations/create', { ticket_id: code, slot_id: slot.id, customer_email: email, customer_phone: '+34600111222' }, customer);

  // ---------------------------------------------------------------- the console adds a gate: its QR code as a picture
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  // The admin's browser does not know the venue CA here; the gate must.
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 }, ignoreHTTPSErrors: true })).newPage();
  await page.goto(cli('admin', 'link', '--db', SDB, '--org', '1', '--url', BASE));
  await page.getByRole('link', { name: 'Gates' }).click();
  await page.getByRole('heading', { level: 1, name: 'Gates' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill('Prado QR');
  await page.getByLabel('Venue').selectOption({ label: 'Museo del Prado' });
  await page.getByRole('button', { name: 'Add gate' }).click();
  const qr = page.locator('#gate-pairing-qr');
  await qr.waitFor();
  check((await qr.getAttribute('alt')).includes(BASE), `the console shows the pairing QR code for ${BASE}`);
  const picture = join(work, 'pairing-qr.png');
  await qr.screenshot({ path: picture });
  copyFileSync(picture, join(ART, 'console-pairing-qr.png'));
  await page.screenshot({ path: join(ART, 'console-gate-added.png'), fullPage: true });
  if (DOCS) await page.locator('#gate-token').screenshot({ path: join(DOCS, 'console-pairing-qr.png') });
  log('QR code saved from the console');

  // ---------------------------------------------------------------- a standalone gate, camera = folder
  ({ driver, wd } = await startDriver(DRIVER, ART, 'pairing-app.log'));
  await startApp(wd, APP, ['--db', GDB, '--camera', `folder:${CAM}`, '--sync-interval', '0.5']);
  const pin = async (id, digits) => {
    await wd.until(`operator ${id}`, () => wd.js(`!document.getElementById('signin').hidden && !!document.querySelector('.op[data-id="${id}"]')`), 10000);
    await wd.click(`.op[data-id="${id}"]`);
    for (const k of digits) await wd.click(`.pin-key[data-key="${k}"]`);
    await wd.click('.pin-key[data-key="ok"]');
    await wd.until('signed in', () => wd.js(`document.body.dataset.signedIn === '1'`), 5000);
  };

  // 1. Normal scanning (the demo's operator): the pairing code is no ticket.
  await pin(1, '1234');
  const outboxBefore = sqlite(GDB, `SELECT count(*) FROM outbox`);
  copyFileSync(picture, join(CAM, 'shown-by-a-visitor.png'));
  await wd.until('the pairing code refused', () => wd.js(`!document.getElementById('toast').hidden && document.getElementById('toast').textContent.includes('pairing code, not a ticket')`), 15000, 50);
  const refusedText = await wd.text('#toast');
  check(refusedText.includes('pairing code, not a ticket'), `during normal scanning it is refused: "${refusedText}"`);
  await shot('pairing-refused');
  check((await wd.text('#verdict-title')) === 'Ready', 'no verdict is shown for it');
  check(sqlite(GDB, `SELECT count(*) FROM device_identity`) === '0', 'the gate is still standalone');
  check(sqlite(GDB, `SELECT count(*) FROM outbox`) === outboxBefore, 'and nothing was recorded');
  // The code stays in view: pairing mode must take it even so.

  // 2. A supervisor's pairing mode: the same picture pairs the gate.
  await wd.click('#lock');
  await pin(2, '654321');
  await wd.click('#nav-settings');
  await wd.until('the scan-pairing button', () => wd.js(`!!document.getElementById('pair-scan')`), 10000);
  await wd.click('#pair-scan');
  // The visitor's picture is still in view, so pairing mode may read it before the first poll:
  // either the waiting status or the confirm panel shows that the tap armed it.
  const armed = await wd.until('pairing mode', () => wd.js(`document.getElementById('pair-scan-status')?.textContent.includes('Show the pairing QR code') ? 'waiting' : (!!document.getElementById('pair-confirm') && 'read')`), 5000);
  if (armed === 'waiting') await shot('pairing-scan');
  log(`pairing mode armed (${armed === 'waiting' ? 'waiting for a code' : 'the code in view already read'})`);
  rmSync(join(CAM, 'shown-by-a-visitor.png'));
  copyFileSync(picture, join(CAM, 'console.png'));
  // The code is read, and shown for the supervisor to confirm: nothing is paired before "Pair".
  await wd.until('the confirm panel', () => wd.js(`!!document.getElementById('pair-confirm')`), 15000, 50);
  check((await wd.text('#pair-confirm-server')) === BASE, `the confirm panel names the server (${BASE})`);
  check((await wd.text('#pair-confirm-host')) === `127.0.0.1:${port}`, 'and its host');
  check((await wd.text('#pair-confirm-ca')).includes('venue CA'), 'and says the code pins the venue CA');
  check((await wd.text('#pair-confirm-current')).includes('standalone'), 'and that the gate is standalone now');
  check(/^\d+$/.test(await wd.text('#pair-confirm-pending')), 'and how many scans wait for upload');
  check(await wd.js(`!document.getElementById('pair-confirm-ok').disabled`), 'a standalone gate may pair: "Pair" is offered');
  await sleep(1500);
  check(sqlite(GDB, `SELECT count(*) FROM device_identity`) === '0', 'nothing is paired before the tap');
  check(sqlite(GDB, `SELECT count(*) FROM device_settings WHERE key = 'server_ca_cert'`) === '0', 'and no CA stored');
  check(await wd.js(`document.body.dataset.paired === undefined && !!document.getElementById('pair-confirm')`), 'the settings screen still waits for the supervisor');
  await shot('pairing-confirm');
  await wd.click('#pair-confirm-ok');
  await wd.until('paired: the venue sign-in', () => wd.js(`!document.getElementById('signin').hidden && !!document.querySelector('.op[data-id="${SARA}"]')`), 30000, 100);
  rmSync(join(CAM, 'console.png'));
  check((await wd.js(`document.body.dataset.pairingServer`)) === BASE, `the code named ${BASE} and the screen said so`);
  check(sqlite(GDB, `SELECT name FROM device_identity`) === 'Prado QR', 'the gate is paired as the console’s new gate');
  check(sqlite(GDB, `SELECT server_url FROM device_identity`) === BASE, 'with the server the code names');
  const pinned = sqlite(GDB, `SELECT value FROM device_settings WHERE key = 'server_ca_cert'`);
  const pinnedDer = Buffer.from(pinned.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  check(createHash('sha256').update(pinnedDer).digest('hex') === CA_SHA256, 'it trusts the venue CA of the code’s fingerprint (taken from the server, never given to it)');
  check((await wd.text('.venue-big')) === 'Museo del Prado', 'and downloaded the venue’s data');

  // It syncs: Sara admits the ticket from the camera; the server has it.
  await pin(SARA, '654321');
  cli('ticket', 'qr', code, '--db', SDB, '--out', join(CAM, 'ticket.png'));
  await wd.until('ADMIT', () => wd.js(`document.getElementById('verdict').dataset.tone === 'admit'`), 15000, 50);
  const onServer = await wd.until('the admission on the server', async () => {
    const v = await api('POST', '/api/operator/validate-ticket', { ticket_code: code });
    return v.verdict === 'ALREADY_VERIFIED' && v;
  }, 15000, 300);
  check(onServer.verified_by === SARA, `the paired gate's admission of ${code} reached the server over the pinned TLS`);
  await page.reload();
  const row = page.getByRole('row', { name: /Prado QR/ });
  await row.waitFor();
  // The "Last upload" column, found by its header (not by position).
  const headers = (await page.locator('thead th').allTextContents()).map((t) => t.trim());
  const seenCol = headers.indexOf('Last upload');
  check(seenCol > 0, 'the gates table has a "Last upload" column');
  const seen = (await row.locator('th, td').allTextContents())[seenCol];
  check(seen !== 'never', `the console lists the gate as seen (${seen})`);
} catch (e) {
  run.fail();
  console.error(`FAILED: ${e.stack ?? e}`);
  if (wd?.session) await shot('pairing-failure').catch(() => {});
} finally {
  await wd?.quit();
  driver?.kill('SIGTERM');
  await browser?.close();
  server.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

log(`${run.failed() ? 'FAILED' : 'passed'}; screenshots:\n  ${shots.join('\n  ')}`);
process.exit(run.failed() ? 1 : 0);
