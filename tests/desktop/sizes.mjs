// The gate app at the sizes gates come in: a handheld held upright (360×740,
// 480×854), a tablet upright (800×1280) and the landscape kiosk (1280×800,
// 1920×1080). The real app (entrada-desktop, Tauri, under Xvfb) is driven
// through tauri-driver/WebKitWebDriver against a real `entrada serve`, as in
// e2e.mjs.
//
// At each size, on every screen (sign-in, PIN pad, scanner, its menu, slots,
// lookup, sync, settings): nothing scrolls sideways
// (`document.documentElement.scrollWidth <= innerWidth`, and no screen's own
// scroller is wider than itself), and every visible button and field of the
// screen can be brought inside the viewport, is not covered or clipped there
// (its centre and the middle of each edge, 8 px in, hit it), and is at least 48 px
// tall and wide. A
// ticket's QR put in front of the folder camera shows ADMIT at each size; the
// verdict's size is measured and printed (README: "The gate app on a handheld"),
// and an amber one shows Let in / Don't let in on screen (at the bottom when upright).
//
// Environment (set by run.sh): ENTRADA_BIN, DESKTOP_BIN, TAURI_DRIVER,
// DESKTOP_ARTIFACTS, SCREENSHOTS_DIR (optional: copies for docs/).

import { spawn } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { checks, desktopEnv, freePort, iso, jsonApi, log, screenshots, seedVenue, sleep, startApp, startDriver, workspace } from './harness.mjs';

const { BIN, APP, DRIVER, ART, DOCS } = desktopEnv();

/** [width, height]: the sizes gates come in (run.sh gives Xvfb a 1920×1400 screen to hold them). */
const SIZES = (process.env.SIZES ?? '360x740,480x854,800x1280,1280x800,1920x1080').split(',').map((s) => s.split('x').map(Number));
const MIN_TARGET = 48;

const run = checks();
const check = run.check;

/** A plain grey PNG: the folder camera's picture when no ticket is held up (an empty folder is "no camera"). */
function greyPng(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const raw = Buffer.alloc((w + 1) * h, 0x70);
  for (let y = 0; y < h; y++) raw[y * (w + 1)] = 0; // filter: none
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

const { work, CAM, cli } = workspace('entrada-desktop-sizes-', BIN);
const SDB = join(work, 'server.db');
const ADB = join(work, 'gate.db');
writeFileSync(join(CAM, '0-nothing.png'), greyPng(320, 240));

// ------------------------------------------------------------------ server

const port = await freePort();
const URL = `http://127.0.0.1:${port}`;
let server = null;
async function startServer() {
  server = spawn(BIN, ['serve', '--db', SDB, '--listen', `127.0.0.1:${port}`, '--ui-dir', join(work, 'no-ui')], { stdio: ['ignore', 'ignore', 'pipe'] });
  server.stderr.on('data', (d) => writeFileSync(join(ART, 'sizes-server.log'), d, { flag: 'a' }));
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${URL}/api/health`).then((r) => r.ok, () => false)) return;
    await sleep(100);
  }
  throw new Error('server did not start');
}

const { ADMIN, VENUE, ANA, SARA, DEVICE_TOKEN } = seedVenue(cli, SDB, 'Museo del Puerto');
const api = jsonApi(URL, ADMIN);

let seq = 0;
async function reservedTicket(slotId) {
  seq += 1;
  const code = `TKT-SIZE-${String(seq).padStart(3, '0')}`;
  const email = `visitor${seq}@example.com`;
  await api('POST', '/api/admin/tickets', { ticket_code: code, purchase_email: email, activation_mode: 'immediate' });
  const { token } = await api('POST', '/api/customer/session', { ticket_code: code, email }, null);
  await api('POST', '/api/reservations/create', { ticket_id: code, slot_id: slotId, customer_email: email, customer_phone: `+3460011122${seq}` }, token);
  return { code, email };
}

// ------------------------------------------------------------------ checks in the page

/** Runs in the page: what overflows sideways, and which visible controls are
 *  outside the viewport, covered, clipped or smaller than a finger. */
const LAYOUT = `
  const min = arguments[0];
  const vw = window.innerWidth, vh = window.innerHeight;
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > vw) problems.push('page scrollWidth ' + doc.scrollWidth + ' > innerWidth ' + vw);
  if (document.body.scrollWidth > vw) problems.push('body scrollWidth ' + document.body.scrollWidth + ' > innerWidth ' + vw);
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  for (const el of document.querySelectorAll('header.bar, main#screens, .screen, .signin, .table-wrap, .verdict, .side')) {
    if (shown(el) && el.scrollWidth > el.clientWidth + 1) {
      const right = el.getBoundingClientRect().right;
      const wide = [...el.querySelectorAll('*')].filter((d) => d.getBoundingClientRect().right > right + 1 && ![...d.children].some((c) => c.getBoundingClientRect().right > right + 1));
      const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let t = walk.nextNode(); t; t = walk.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(t);
        if (range.getBoundingClientRect().right > right + 1) wide.push({ tagName: 'text', className: JSON.stringify(t.textContent.slice(0, 40)), id: t.parentElement.id || t.parentElement.className });
      }
      for (const d of el.querySelectorAll('*')) if (d.scrollWidth > d.clientWidth + 1 && d.clientWidth > 0) wide.push({ tagName: d.tagName.toLowerCase(), className: d.className + ' scrolls ' + d.scrollWidth + '>' + d.clientWidth, id: d.id });
      problems.push((el.id || el.className) + ' is wider than itself: ' + el.scrollWidth + ' > ' + el.clientWidth + ' (' + wide.slice(0, 12).map((d) => d.tagName.toLowerCase() + '.' + d.className + '#' + d.id).join(', ') + ')');
    }
  }
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.dataset.key ? '[key=' + el.dataset.key + ']' : '') + ' "' + (el.textContent || el.placeholder || '').trim().slice(0, 24) + '"';
  const controls = [...document.querySelectorAll('button, input, select, textarea')].filter(shown);
  for (const el of controls) {
    el.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.right > vw + 0.5 || r.top < -0.5 || r.bottom > vh + 0.5) {
      problems.push(name(el) + ' outside the viewport: ' + [r.left, r.top, r.right, r.bottom].map(Math.round).join(','));
      continue;
    }
    // Its centre and the middle of each edge (8 px in: a fingertip's margin, and
    // clear of GTK's overlay scrollbar) must be the control itself: nothing covers or clips it.
    const label = el.closest('label');
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
    for (const [x, y] of [[cx, cy], [cx, r.top + 8], [cx, r.bottom - 8], [r.left + 8, cy], [r.right - 8, cy]]) {
      const hit = document.elementFromPoint(x, y);
      if (!hit || !(hit === el || el.contains(hit) || (label && label.contains(hit)))) {
        problems.push(name(el) + ' covered at ' + Math.round(x) + ',' + Math.round(y) + ' by ' + (hit ? hit.tagName.toLowerCase() + '.' + hit.className : 'nothing'));
        break;
      }
    }
    const target = el.type === 'checkbox' && label ? label.getBoundingClientRect() : r;
    if (target.height < min - 0.5 || target.width < min - 0.5) problems.push(name(el) + ' is ' + Math.round(target.width) + '×' + Math.round(target.height) + ' px, under ' + min);
  }
  for (const el of document.querySelectorAll('.screen, .signin')) el.scrollTop = 0;
  return { problems, controls: controls.length, vw, vh };
`;

let driver = null;
let wd = null;
const { shot } = screenshots(() => wd, ART, DOCS);

async function layoutOk(size, screen) {
  await wd.exec(`document.getElementById('toast').hidden = true; return 1`);
  const out = await wd.exec(LAYOUT, MIN_TARGET);
  check(out.problems.length === 0, `${size} ${screen}: no sideways scroll; ${out.controls} controls inside ${out.vw}×${out.vh}, uncovered, ≥ ${MIN_TARGET} px${out.problems.length ? `\n      ${out.problems.join('\n      ')}` : ''}`);
}

/** Opens a screen as a person would: its tab, through the menu where the tabs are folded. */
async function go(screen) {
  if (await wd.js(`getComputedStyle(document.getElementById('menu')).display !== 'none'`)) {
    if (!(await wd.js(`document.body.dataset.menu === 'open'`))) await wd.click('#menu');
    await wd.until('the menu open', () => wd.js(`getComputedStyle(document.getElementById('tabs')).display !== 'none'`), 3000, 50);
  }
  await wd.click(`#nav-${screen}`);
  await wd.until(`the ${screen} screen`, () => wd.js(`!document.getElementById('screen-${screen}').hidden && document.body.dataset.menu !== 'open'`), 5000, 50);
}

const verdictSizes = [];

try {
  await startServer();
  log(`server on ${URL}`);
  const today = iso(new Date());
  const tomorrow = iso(new Date(Date.now() + 86400000));
  const allDay = await api('POST', '/api/operator/slots/create', { venue_id: VENUE, date: today, start_time: '00:00:00', end_time: '23:59:59', total_capacity: 40 });
  await api('POST', '/api/operator/slots/create', { venue_id: VENUE, date: tomorrow, start_time: '10:00:00', end_time: '12:00:00', total_capacity: 25 });
  const tickets = [];
  for (const _ of SIZES) tickets.push(await reservedTicket(allDay.id));
  for (const [i, t] of tickets.entries()) cli('ticket', 'qr', t.code, '--db', SDB, '--out', join(work, `ticket-${i}.png`));
  // Holders too early for their slot: amber, the operator decides. A slot
  // that has ended cannot be booked (SLOT_IN_PAST), so late in the (UTC) day
  // the venue's early grace goes to 0 and the slot starts at 23:59: its
  // holders stay too early until then.
  const late = new Date().getUTCHours() >= 22;
  if (late) await api('PATCH', `/api/admin/venues/${VENUE}`, { early_grace_minutes: 0 });
  const offSlot = await api('POST', '/api/operator/slots/create', { venue_id: VENUE, date: today, start_time: late ? '23:59:00' : '23:00:00', end_time: '23:59:59', total_capacity: 20 });
  const offTickets = [];
  for (const _ of SIZES) offTickets.push(await reservedTicket(offSlot.id));
  for (const [i, t] of offTickets.entries()) cli('ticket', 'qr', t.code, '--db', SDB, '--out', join(work, `off-${i}.png`));
  cli('sync', '--db', ADB, '--server', URL, '--token', DEVICE_TOKEN, '--once');

  ({ driver, wd } = await startDriver(DRIVER, ART, 'sizes-app.log'));
  await startApp(wd, APP, ['--db', ADB, '--server', URL, '--token', DEVICE_TOKEN, '--camera', `folder:${CAM}`, '--operator', String(ANA), '--sync-interval', '0.5']);
  log('app ready');

  for (const [i, [w, h]] of SIZES.entries()) {
    const size = `${w}×${h}`;
    const tag = `${w}x${h}`;
    log(`---- ${size}`);
    await wd.cmd('POST', wd.s('/window/rect'), { width: w, height: h });
    const got = await wd.until(`the window at ${size}`, async () => {
      const v = await wd.js(`[window.innerWidth, window.innerHeight]`);
      return v[0] === w && v[1] === h && v;
    }, 5000, 100).catch(async () => wd.js(`[window.innerWidth, window.innerHeight]`));
    check(got[0] === w && got[1] === h, `the page is ${got[0]}×${got[1]} (asked ${size})`);

    // -------- lock, sign-in, PIN pad: Sara (supervisor: every screen) signs in
    await wd.click('#lock');
    await wd.until('the sign-in screen', () => wd.js(`!document.getElementById('signin').hidden && !!document.querySelector('.op[data-id="${SARA}"]')`), 5000);
    await shot(`${tag}-signin`);
    await layoutOk(size, 'sign-in');
    await wd.click(`.op[data-id="${SARA}"]`);
    await wd.until('the PIN pad', () => wd.js(`!!document.querySelector('.pin-key[data-key="ok"]')`), 3000, 50);
    for (const k of '654321') await wd.click(`.pin-key[data-key="${k}"]`);
    await shot(`${tag}-pin`);
    await layoutOk(size, 'PIN pad');
    await wd.click('.pin-key[data-key="ok"]');
    await wd.until('signed in as Sara', () => wd.js(`document.body.dataset.signedIn === '1' && document.querySelector('.who-name')?.textContent === 'Sara'`), 20000);
    check(true, `${size}: Sara signed in with the PIN pad`);

    // -------- the scanner, ready
    await go('scan');
    await wd.until('Ready', () => wd.js(`document.getElementById('verdict').dataset.tone === 'ready'`), 8000, 100);
    await wd.until('a preview frame', () => wd.js(`!!document.getElementById('preview').getAttribute('src')`), 5000, 100);
    await shot(`${tag}-scanner`);
    await layoutOk(size, 'scanner');
    const lockBox = await wd.js(`(() => { const r = document.getElementById('lock').getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; })()`);
    check(lockBox[0] >= 0 && lockBox[1] <= w && lockBox[3] <= h, `${size}: Lock is on screen in the header (x ${Math.round(lockBox[0])}–${Math.round(lockBox[1])})`);

    // -------- a scan: the folder camera sees a ticket
    renameSync(join(work, `ticket-${i}.png`), join(CAM, `1-ticket-${i}.png`));
    await wd.until('ADMIT from the camera', () => wd.js(`document.getElementById('verdict').dataset.tone === 'admit'`), 30000, 50);
    check((await wd.text('#verdict-title')) === 'ADMIT', `${size}: the camera scan of ${tickets[i].code} shows ADMIT`);
    rmSync(join(CAM, `1-ticket-${i}.png`));
    const v = await wd.js(`(() => {
      const t = document.getElementById('verdict-title');
      const box = document.getElementById('verdict').getBoundingClientRect();
      const r = t.getBoundingClientRect();
      const cs = getComputedStyle(t);
      const ctx = document.createElement('canvas').getContext('2d');
      ctx.font = cs.fontWeight + ' ' + cs.fontSize + ' ' + cs.fontFamily;
      const m = ctx.measureText(t.textContent);
      return { font: parseFloat(cs.fontSize), cap: Math.round(m.actualBoundingBoxAscent), width: Math.round(r.width), fits: t.scrollWidth <= t.clientWidth && r.left >= box.left && r.right <= box.right,
               box: [Math.round(box.width), Math.round(box.height)], share: Math.round(100 * box.width * box.height / (innerWidth * innerHeight)) };
    })()`);
    verdictSizes.push({ size, ...v });
    check(v.fits, `${size}: ADMIT fits its box on one line (font ${v.font} px, letters ${v.cap} px tall, ${v.width} px wide; verdict ${v.box.join('×')} = ${v.share}% of the window)`);
    await shot(`${tag}-admit`);
    await layoutOk(size, 'scanner with a verdict');
    // A tap puts the scanner back at once (else it goes after 4 s).
    await wd.click('#verdict');
    await wd.until('Ready again', () => wd.js(`document.getElementById('verdict').dataset.tone === 'ready'`), 3000, 50);
    check(true, `${size}: a tap on the verdict brings the scanner back`);
    // Typed: the code field and Check, then the refusal (already verified).
    await wd.type('#manual-code', tickets[i].code);
    await wd.click('#manual-submit');
    await wd.until('already verified', () => wd.js(`document.getElementById('verdict').dataset.verdict === 'ALREADY_VERIFIED'`), 5000, 50);
    check(true, `${size}: the code typed and Check pressed: already verified`);
    await shot(`${tag}-refusal`);
    await layoutOk(size, 'scanner with a refusal');
    // A tap does not clear a refusal (the holder could reach the screen).
    await wd.click('#verdict');
    await sleep(300);
    check((await wd.js(`document.getElementById('verdict').dataset.tone`)) === 'refuse', `${size}: a tap leaves a refusal on screen`);

    // -------- amber: the operator decides, with the buttons at the bottom (a thumb's reach when upright)
    renameSync(join(work, `off-${i}.png`), join(CAM, `2-off-${i}.png`));
    await wd.until('the amber verdict', () => wd.js(`document.getElementById('verdict').dataset.verdict === 'OUTSIDE_SLOT_WINDOW'`), 30000, 50);
    rmSync(join(CAM, `2-off-${i}.png`));
    await shot(`${tag}-decide`);
    await layoutOk(size, 'scanner, amber verdict');
    const decide = await wd.js(`(() => { const r = document.getElementById('decide-admit').getBoundingClientRect(); const n = document.getElementById('decide-refuse').getBoundingClientRect(); return [Math.round(r.top), Math.round(n.bottom)]; })()`);
    if (h > w) check(decide[0] >= 0.55 * h, `${size}: Let in / Don't let in sit in the bottom of the screen (from y ${decide[0]} to ${decide[1]} of ${h})`);
    await wd.click('#decide-refuse');
    await wd.until('Ready after the decision', () => wd.js(`document.getElementById('verdict').dataset.tone === 'ready'`), 3000, 50);
    check(true, `${size}: "Don't let in" puts the scanner back`);

    // -------- the menu (where the tabs fold into it)
    if (await wd.js(`getComputedStyle(document.getElementById('menu')).display !== 'none'`)) {
      await wd.click('#menu');
      await wd.until('the menu', () => wd.js(`document.body.dataset.menu === 'open'`), 3000, 50);
      await shot(`${tag}-menu`);
      await layoutOk(size, 'menu');
      check((await wd.text('#menu-who')).startsWith('Sara'), `${size}: the menu names who is signed in`);
      await wd.click('#menu');
    }

    // -------- the other screens
    await go('slots');
    await wd.until('the slots', () => wd.js(`!!document.querySelector('tr[data-slot-id="${allDay.id}"] .cap-input')`), 5000);
    await shot(`${tag}-slots`);
    await layoutOk(size, 'slots');

    await go('lookup');
    await wd.type('#lookup-q', tickets[i].email);
    await wd.click('#lookup-go');
    await wd.until('a lookup result', () => wd.js(`!!document.querySelector('.lookup-result[data-code="${tickets[i].code}"]')`), 5000);
    await shot(`${tag}-lookup`);
    await layoutOk(size, 'lookup');

    await go('sync');
    await wd.until('the sync screen', () => wd.js(`!!document.getElementById('sync-mode')`), 5000);
    await shot(`${tag}-sync`);
    await layoutOk(size, 'sync');

    await go('settings');
    await wd.until('the settings', () => wd.js(`!!document.getElementById('pair-form') && !!document.getElementById('camera-form')`), 10000);
    await shot(`${tag}-settings`);
    await layoutOk(size, 'settings');
    // The folder camera offers no torch, focus or exposure: the screen shows none of them.
    await wd.until('the camera reported', () => wd.js(`document.getElementById('settings-cam-status')?.textContent.startsWith('folder')`), 5000, 100);
    check(await wd.js(`!document.getElementById('camera-controls') && !document.getElementById('camera-torch') && !!document.getElementById('camera-no-controls')`),
      `${size}: settings show no torch/focus/exposure for the folder camera, and say so`);

  }
  log('verdict sizes:');
  for (const v of verdictSizes) console.log(`  ${v.size}: ADMIT font ${v.font} px, capital letters ${v.cap} px tall, ${v.width} px wide; the verdict covers ${v.box.join('×')} px (${v.share}% of the window)`);
} catch (e) {
  run.fail();
  console.error(`FAILED: ${e.stack ?? e}`);
  if (wd?.session) await shot('sizes-failure').catch(() => {});
} finally {
  await wd?.quit();
  driver?.kill('SIGTERM');
  server?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

log(`${run.failed() ? 'FAILED' : 'passed'}; screenshots in ${ART}`);
process.exit(run.failed() ? 1 : 0);
