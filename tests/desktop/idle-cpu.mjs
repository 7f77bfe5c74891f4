// CPU of the whole gate app (entrada-desktop + its WebKit processes) while it
// idles or scans, and the time from a code appearing to its verdict.
// A measurement, not a test: numbers go to BENCHMARKS.md ("Gate app idle CPU").
//
//   bash tests/desktop/idle-cpu.sh            (builds, then runs this under xvfb-run)
//
// Environment: ENTRADA_BIN, TAURI_DRIVER, and either DESKTOP_BIN or
// DESKTOP_BINS="before=/path/a,after=/path/b" (the builds are interleaved
// run by run, so both see the same machine load); REPEATS (3), WINDOW_S (60),
// SCENARIOS (idle,camera,scanning); THREADS=1 also logs each run's busiest
// threads (process/thread name, % of one core); FRAMES=bmp (below).
//
// Scenarios, each on a fresh standalone demo gate with operator 1 signed in
// by --operator, on the scanner screen, measured after a 5 s settle:
//   idle      no camera (`--camera auto` finds none here)
//   camera    a folder camera replaying three 1280x720 frames of an empty
//             scene (with sensor-like noise, so no two frames are equal)
//   scanning  the same, and every 2 s a frame with a ticket's QR code in the
//             scene appears for 1 s (four tickets in turn); each appearance's
//             time to its verdict is taken from the page's `scan` event.
// CPU = the utime+stime (/proc/<pid>/stat) gained over the window by
// entrada-desktop and every process below it (WebKitWebProcess,
// WebKitNetworkProcess), as a share of one core. Medians over REPEATS.

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { deflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebDriver } from './webdriver.mjs';

const BIN = process.env.ENTRADA_BIN;
const DRIVER = process.env.TAURI_DRIVER ?? 'tauri-driver';
const BINS = (process.env.DESKTOP_BINS ?? (process.env.DESKTOP_BIN ? `app=${process.env.DESKTOP_BIN}` : ''))
  .split(',').filter(Boolean).map((s) => { const i = s.indexOf('='); return { name: s.slice(0, i), path: s.slice(i + 1) }; });
if (!BIN || BINS.length === 0) throw new Error('ENTRADA_BIN and DESKTOP_BIN(S) must be set (run tests/desktop/idle-cpu.sh)');
const REPEATS = Number(process.env.REPEATS ?? 3);
const WINDOW_S = Number(process.env.WINDOW_S ?? 60);
const SCENARIOS = (process.env.SCENARIOS ?? 'idle,camera,scanning').split(',');
const CLK_TCK = 100; // getconf CLK_TCK on Linux

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// ------------------------------------------------------------------ /proc

function procs() {
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      // fields after comm: state(0) ppid(1) … utime(11) stime(12)
      out.set(Number(d), { pid: Number(d), comm, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch { /* gone */ }
  }
  return out;
}

/** The app's processes: entrada-desktop(s) below `root` and all their descendants. */
function appTree(root) {
  const all = procs();
  const kids = new Map();
  for (const p of all.values()) { if (!kids.has(p.ppid)) kids.set(p.ppid, []); kids.get(p.ppid).push(p); }
  const below = (pid) => (kids.get(pid) ?? []).flatMap((c) => [c, ...below(c.pid)]);
  const apps = below(root).filter((p) => p.comm.startsWith('entrada-deskto'));
  const tree = new Map();
  for (const a of apps) for (const p of [a, ...below(a.pid)]) tree.set(p.pid, p);
  return tree;
}

/** Each thread of the app's processes: "process/thread" → ticks (THREADS=1). */
function threadTicks(tree) {
  const out = new Map();
  for (const p of tree.values()) {
    let tids = [];
    try { tids = readdirSync(`/proc/${p.pid}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${p.pid}/task/${tid}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        const comm = stat.slice(stat.indexOf('(') + 1, close);
        const f = stat.slice(close + 2).split(' ');
        out.set(`${p.pid}/${tid}`, { name: `${p.comm}/${comm}`, ticks: Number(f[11]) + Number(f[12]) });
      } catch { /* gone */ }
    }
  }
  return out;
}

/** The threads that gained the most over the window, as "name x.x %". */
function busiestThreads(before, after, seconds) {
  const byName = new Map();
  for (const [k, t] of after) {
    const d = t.ticks - (before.get(k)?.ticks ?? 0);
    byName.set(t.name, (byName.get(t.name) ?? 0) + d);
  }
  return [...byName].filter(([, d]) => d > 0).sort((a, b) => b[1] - a[1]).slice(0, 8)
    .map(([n, d]) => `${n} ${((100 * d) / CLK_TCK / seconds).toFixed(1)} %`).join(', ');
}

/** Ticks gained by the app's processes between two snapshots (processes alive at the end). */
function cpuShare(before, after, seconds) {
  let app = 0;
  let web = 0;
  for (const p of after.values()) {
    const d = p.ticks - (before.get(p.pid)?.ticks ?? 0);
    if (p.comm.startsWith('entrada-deskto')) app += d; else web += d;
  }
  const pct = (t) => (100 * t) / CLK_TCK / seconds;
  return { total: pct(app + web), rust: pct(app), web: pct(web) };
}

// ------------------------------------------------------------------ frames

const work = mkdtempSync(join(tmpdir(), 'entrada-idle-cpu-'));
const cli = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const CODES = ['DEMO-ADMIT-2', 'DEMO-VERIFIED', 'DEMO-TOMORROW', 'DEMO-EXPIRED'];
const W = 1280;
const H = 720;

/** An 8-bit grayscale PNG (filter 0 on every row). */
function png(w, h, luma) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0;
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) luma.copy(raw, y * (w + 1) + 1, y * w, (y + 1) * w);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** An 8-bit grayscale BMP (a 256-entry gray palette, bottom-up rows padded to 4 bytes). */
function bmp(w, h, luma) {
  const row = (w + 3) & ~3;
  const offset = 14 + 40 + 256 * 4;
  const out = Buffer.alloc(offset + row * h);
  out.write('BM', 0, 'ascii');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(offset, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(w, 18);
  out.writeInt32LE(h, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(8, 28);
  out.writeUInt32LE(row * h, 34);
  out.writeUInt32LE(256, 46);
  for (let i = 0; i < 256; i++) out.writeUInt32LE(i * 0x010101, 54 + i * 4);
  for (let y = 0; y < h; y++) luma.copy(out, offset + (h - 1 - y) * row, y * w, (y + 1) * w);
  return out;
}

// FRAMES=bmp: the folder camera's frames as uncompressed BMP (a camera's raw
// frame), not PNG (whose inflate, unoptimised in a dev build, is most of the
// Rust process's work in the camera scenarios).
const FRAMES = process.env.FRAMES === 'bmp' ? 'bmp' : 'png';
const image = (w, h, luma) => (FRAMES === 'bmp' ? bmp(w, h, luma) : png(w, h, luma));

/** A still scene (a gradient, a bright box, a dark disc) with sensor-like noise of seed `seed`. */
function scene(seed) {
  const luma = Buffer.alloc(W * H);
  let r = (seed * 2654435761) >>> 0 || 1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      r ^= r << 13; r >>>= 0; r ^= r >>> 17; r ^= r << 5; r >>>= 0;
      let v = 60 + (x * 110) / W;
      if (x > 140 && x < 420 && y > 90 && y < 300) v = 215;
      if ((x - 900) ** 2 + (y - 420) ** 2 < 80 ** 2) v = 35;
      luma[y * W + x] = Math.max(0, Math.min(255, Math.round(v + (r % 13) - 6)));
    }
  }
  return luma;
}

/** `scene` with the QR image `qrPng` (read through `convert FILE ppm:-`) in its middle. */
function withCode(base, qrPng) {
  const ppm = execFileSync('convert', [qrPng, 'ppm:-']);
  const header = ppm.toString('latin1', 0, 64).match(/^P([56])\s+(\d+)\s+(\d+)\s+(\d+)\s/);
  const [, kind, qw, qh] = header;
  const [w, h, px] = [Number(qw), Number(qh), kind === '6' ? 3 : 1];
  const data = ppm.subarray(header[0].length);
  const luma = Buffer.from(base);
  const [x0, y0] = [Math.floor((W - w) / 2), Math.floor((H - h) / 2)];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) luma[(y0 + y) * W + x0 + x] = data[(y * w + x) * px];
  return luma;
}

const EMPTY = [1, 2, 3].map((seed) => scene(seed));

async function withApp(path, camera, db, body) {
  const wdPort = await freePort();
  const nativePort = await freePort();
  const driver = spawn(DRIVER, ['--port', String(wdPort), '--native-port', String(nativePort)], { stdio: 'ignore' });
  const wd = new WebDriver(`http://127.0.0.1:${wdPort}`);
  try {
    await wd.until('tauri-driver', () => fetch(`http://127.0.0.1:${wdPort}/status`).then((r) => r.ok, () => false), 10000, 100);
    await wd.start({ 'tauri:options': { application: path, args: ['--db', db, '--camera', camera, '--operator', '1'] } });
    await wd.until('the kiosk page', () => wd.js(`document.body.dataset.ready === '1' && document.body.dataset.signedIn === '1'`), 30000, 100);
    return await body(wd, driver.pid);
  } finally {
    // On a loaded machine the session's quit can time out and leave the app
    // running (reparented to init), loading the next runs: end what is left.
    const left = [...appTree(driver.pid).values()].filter((p) => p.comm.startsWith('entrada-deskto'));
    await wd.quit().catch(() => {});
    driver.kill('SIGTERM');
    await sleep(500);
    const now = procs();
    // The same process still (pid and name), not a new one that took its pid.
    for (const p of left) if (now.get(p.pid)?.comm === p.comm && now.get(p.pid)?.ticks >= p.ticks) process.kill(p.pid, 'SIGTERM');
  }
}

/** A demo gate database and, for the scanning scenario, 720p frames of its codes. */
function freshGate(tag) {
  const dir = join(work, tag);
  mkdirSync(dir, { recursive: true });
  const db = join(dir, 'gate.db');
  cli('demo', '--db', db);
  const cam = join(dir, 'camera');
  mkdirSync(cam);
  EMPTY.forEach((luma, i) => writeFileSync(join(cam, `empty-${i + 1}.${FRAMES}`), image(W, H, luma)));
  const codes = CODES.map((code, i) => {
    const qr = join(dir, `qr-${i}.png`);
    cli('ticket', 'qr', code, '--db', db, '--out', qr);
    const frame = join(dir, `code-${i}.${FRAMES}`);
    // The code as a phone shows it, in the middle of the scene.
    writeFileSync(frame, image(W, H, withCode(EMPTY[0], qr)));
    return { code, frame };
  });
  return { db, cam, codes };
}

async function measure(bin, scenario, rep) {
  const g = freshGate(`${bin.name}-${scenario}-${rep}`);
  const camera = scenario === 'idle' ? 'auto' : `folder:${g.cam}`;
  return withApp(bin.path, camera, g.db, async (wd, root) => {
    // Record each verdict's arrival on the page's own clock (Date.now is
    // the same wall clock as this script's).
    await wd.exec(`window.__verdicts = []; window.__TAURI__.event.listen('scan', (e) => window.__verdicts.push([Date.now(), e.payload.verdict.ticket_code])); return 1`);
    await sleep(5000);
    const before = appTree(root);
    const threadsBefore = process.env.THREADS ? threadTicks(before) : null;
    const start = Date.now();
    const shown = [];
    if (scenario === 'scanning') {
      // Every 2 s, the next code for 1 s: "in view" = its frame in the folder.
      for (let i = 0; Date.now() - start < WINDOW_S * 1000 - 2000; i++) {
        const due = start + i * 2000;
        await sleep(Math.max(0, due - Date.now()));
        const c = g.codes[i % g.codes.length];
        const inView = join(g.cam, `zz-code.${FRAMES}`);
        writeFileSync(`${inView}.tmp`, readFileSync(c.frame));
        renameSync(`${inView}.tmp`, inView);
        shown.push({ at: Date.now(), code: c.code });
        await sleep(1000);
        rmSync(inView, { force: true });
      }
    }
    await sleep(Math.max(0, start + WINDOW_S * 1000 - Date.now()));
    const after = appTree(root);
    const seconds = (Date.now() - start) / 1000;
    const cpu = cpuShare(before, after, seconds);
    if (threadsBefore) log(`${bin.name} ${scenario} threads: ${busiestThreads(threadsBefore, threadTicks(after), seconds)}`);
    let latencies = [];
    let missed = 0;
    if (scenario === 'scanning') {
      const verdicts = await wd.js(`window.__verdicts`);
      for (const s of shown) {
        const v = verdicts.find(([at, code]) => code === s.code && at >= s.at && at < s.at + 2000);
        if (v) latencies.push(v[0] - s.at); else missed += 1;
      }
    }
    if (process.env.DEBUG_VERDICTS) log(JSON.stringify(await wd.js(`window.__verdicts`)), JSON.stringify(shown), await wd.text("#recent").catch(() => "?"));
    const procsSeen = [...after.values()].map((p) => p.comm).join(' ');
    return { ...cpu, latencies, missed, shown: shown.length, procsSeen };
  });
}

const results = {};
try {
  for (const scenario of SCENARIOS) {
    for (let rep = 1; rep <= REPEATS; rep++) {
      for (const bin of BINS) {
        const r = await measure(bin, scenario, rep);
        const key = `${scenario}/${bin.name}`;
        (results[key] ??= []).push(r);
        log(`${key} #${rep}: total ${r.total.toFixed(1)} % (rust ${r.rust.toFixed(1)} %, web ${r.web.toFixed(1)} %)` +
          (scenario === 'scanning' ? `, verdicts ${r.shown - r.missed}/${r.shown}, median ${median(r.latencies)} ms` : '') + ` [${r.procsSeen}]`);
      }
    }
  }
} finally {
  if (!process.env.KEEP_WORK) rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}

console.log(`\nmedians of ${REPEATS} runs of ${WINDOW_S} s (% of one core; time to verdict in ms):`);
console.log('| scenario | build | app total | Rust process | WebKit processes | time to verdict (median, p90 of all) | verdicts |');
console.log('|---|---|---|---|---|---|---|');
for (const [key, rs] of Object.entries(results)) {
  const [scenario, name] = key.split('/');
  const lat = rs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const p90 = lat.length ? lat[Math.min(lat.length - 1, Math.floor(0.9 * lat.length))] : NaN;
  const verdicts = scenario === 'scanning' ? `${rs.reduce((n, r) => n + r.shown - r.missed, 0)}/${rs.reduce((n, r) => n + r.shown, 0)}` : '';
  console.log(`| ${scenario} | ${name} | ${median(rs.map((r) => r.total)).toFixed(1)} | ${median(rs.map((r) => r.rust)).toFixed(1)} | ${median(rs.map((r) => r.web)).toFixed(1)} | ${lat.length ? `${median(lat)} / ${p90}` : ''} | ${verdicts} |`);
}
