// What every admin console test file shares: the server under test (from
// tests/admin/run.sh's environment), the CLI, Chromium, and axe-core.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../ui/package.json'));
const { chromium } = require('playwright-core');
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const BASE = process.env.ENTRADA_URL;
export const BIN = process.env.ENTRADA_BIN;
export const DB = process.env.ENTRADA_DB;
export const ART = process.env.ADMIN_ARTIFACTS;
export const LAPTOP = { width: 1280, height: 800 };
export const TABLET = { width: 820, height: 1180 };

/** `entrada <args>`: its stdout, trimmed (throws on a non-zero exit). */
export const cli = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

/** `entrada admin link`: the one-time sign-in URL. */
export const link = (...extra) => cli('admin', 'link', '--db', DB, '--org', '1', '--url', BASE, ...extra);

/** Debian's Chromium (run.sh sets CHROMIUM). */
export const launch = () => chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });

// The contexts bypass the page's CSP only so that axe-core can be injected.
/** axe-core's violations on the page, one line each. */
export async function axe(page) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.nodes.length} nodes`);
}
