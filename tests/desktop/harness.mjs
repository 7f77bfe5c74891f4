// What the desktop tests (e2e.mjs, pairing.mjs, sizes.mjs) share: their
// environment, logging and checks, a free port, a work folder with a folder
// camera, the CLI, a seeded venue, the JSON API, and the real app started
// through tauri-driver. Each test keeps only its own scenario.

import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebDriver } from './webdriver.mjs';

/** The binaries and folders run.sh sets (ENTRADA_BIN, DESKTOP_BIN, TAURI_DRIVER, DESKTOP_ARTIFACTS, SCREENSHOTS_DIR). */
export function desktopEnv() {
  const env = {
    BIN: process.env.ENTRADA_BIN,
    APP: process.env.DESKTOP_BIN,
    DRIVER: process.env.TAURI_DRIVER ?? 'tauri-driver',
    ART: process.env.DESKTOP_ARTIFACTS ?? join(tmpdir(), 'entrada-artifacts', 'desktop'),
    DOCS: process.env.SCREENSHOTS_DIR,
  };
  if (!env.BIN || !env.APP) throw new Error('ENTRADA_BIN and DESKTOP_BIN must be set (run tests/desktop/run.sh)');
  mkdirSync(env.ART, { recursive: true });
  return env;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const t0 = Date.now();
/** A line prefixed with the seconds since the test started. */
export const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s]`, ...a);

/** Checks that print ✓/✗; the first ✗ throws, and `failed()` tells the exit code. */
export function checks() {
  let failures = 0;
  return {
    check(cond, what) {
      if (!cond) {
        failures += 1;
        console.log(`  ✗ ${what}`);
        throw new Error(`check failed: ${what}`);
      }
      console.log(`  ✓ ${what}`);
    },
    /** An error outside a check: the run fails too. */
    fail() {
      failures += failures ? 0 : 1;
    },
    failed: () => failures > 0,
  };
}

export const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** A fresh work folder with an empty folder camera, and the CLI and sqlite3 to use in it. */
export function workspace(prefix, BIN) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const CAM = join(work, 'camera');
  mkdirSync(CAM);
  const cli = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  const sqlite = (db, sql) => execFileSync('sqlite3', ['-readonly', db, sql], { encoding: 'utf8' }).trim();
  return { work, CAM, cli, sqlite };
}

/** Org 1's admin token, a venue, its operator Ana (PIN 1234) and supervisor Sara (654321), and a gate's device token. */
export function seedVenue(cli, SDB, name) {
  const ADMIN = cli('token', 'create', '--db', SDB, '--orq', '1', '--role', 'admin');
  const VENUE = Number(cli('venue', 'add', '--db', SDB, '--orq', '1', '--name', name, '--timezone', 'UTC'));
  const ANA = Number(cli('operator', 'add', '--db', SDB, '--orq', '1', '--name', 'Ana', '--pin', '1234'));
  const SARA = Number(cli('operator', 'add', '--db', SDB, '--orq', '1', '--role', 'supervisor', '--name', 'Sara', '--pin', '654321'));
  const DEVICE_TOKEN = cli('device', 'add', '--db', SDB, '--orq', '1', '--venue', String(VENUE), '--name', 'Gate 1');
  return { ADMIN, VENUE, ANA, SARA, DEVICE_TOKEN };
}

/** `api(method, path, body, token = admin, base = URL)`: a JSON call; a 4xx/5xx throws with its body. */
export function jsonApi(URL, ADMIN) {
  return async function api(method, path, body, token = ADMIN, base = URL) {
    const res = await fetch(base + path, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
    return data;
  };
}

/** YYYY-MM-DD of a date, in UTC (the test venues' time zone). */
export const iso = (d) => d.toISOString().slice(0, 10);

/** tauri-driver on free ports, its output (and the app's) in ART/`logName`; the WebDriver client once it answers. */
export async function startDriver(DRIVER, ART, logName) {
  const wdPort = await freePort();
  const driver = spawn(DRIVER, ['--port', String(wdPort), '--native-port', String(await freePort())], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ENTRADA_LOG: 'info' },
  });
  const dlog = join(ART, logName);
  writeFileSync(dlog, '');
  driver.stdout.on('data', (d) => writeFileSync(dlog, d, { flag: 'a' }));
  driver.stderr.on('data', (d) => writeFileSync(dlog, d, { flag: 'a' }));
  const wd = new WebDriver(`http://127.0.0.1:${wdPort}`);
  await wd.until('tauri-driver', () => fetch(`http://127.0.0.1:${wdPort}/status`).then((r) => r.ok, () => false), 10000, 100);
  return { driver, wd };
}

/** A session of the real app with these arguments, once its page is ready to scan. */
export async function startApp(wd, APP, args) {
  await wd.start({ 'tauri:options': { application: APP, args } });
  await wd.until('the kiosk page', () => wd.js(`document.body.dataset.ready === '1'`), 20000, 50);
}

/** `shot(name)` saves the app's window as ART/kiosk-NAME.png (and a copy in DOCS); `shots` lists them. */
export function screenshots(getWd, ART, DOCS) {
  const shots = [];
  async function shot(name) {
    const file = join(ART, `kiosk-${name}.png`);
    writeFileSync(file, await getWd().screenshot());
    if (DOCS) copyFileSync(file, join(DOCS, `kiosk-${name}.png`));
    shots.push(file);
    log(`screenshot ${file}`);
  }
  return { shot, shots };
}
