// The keyboard-wedge detector's cases (they were src-tauri/src/source/wedge.rs's).
// Run: npm test (compiles with kiosk/tsconfig.test.json, runs node --test).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { WEDGE, WedgeDetector, type WedgeInput } from './wedge.js';

type Key = [string, number];

/** `text` typed from `t0` with `gap` ms between keys, then Enter `enterGap` ms later. */
function typed(text: string, t0: number, gap: number, enterGap: number): Key[] {
  const keys: Key[] = [];
  let t = t0;
  [...text].forEach((c, i) => {
    if (i > 0) t += gap;
    keys.push([c, t]);
  });
  keys.push(['\n', t + enterGap]);
  return keys;
}

function run(keys: Key[], d = new WedgeDetector()): WedgeInput[] {
  return keys.map(([c, t]) => d.feed(c, t)).filter((x): x is WedgeInput => x !== null);
}

const scan = (text: string): WedgeInput => ({ kind: 'scan', text });
const human = (text: string): WedgeInput => ({ kind: 'human', text });

test('the rules are those of the kiosk', () => {
  assert.deepEqual(WEDGE, { maxGapMs: 35, minLen: 4, idleResetMs: 1000, maxLen: 4096 });
});

test('case table: scanner or person', () => {
  // One 200 ms pause between the 4th and 5th key.
  const slowInMiddle = typed('TKT-2025', 0, 8, 8).map(([c, t], i): Key => [c, i >= 4 ? t + 200 : t]);
  const twoScans = [...typed('TKT-2025-ABC123', 0, 5, 5), ...typed('TKT-2025-XYZ789', 3000, 5, 5)];
  const strayThenScan: Key[] = [['x', 0], ...typed('TKT-2025-ABC123', 5000, 5, 5)];
  const crlf: Key[] = [...typed('ENT1.abc_-XYZ', 0, 3, 3), ['\r', 19 * 3]];
  const cases: [string, Key[], WedgeInput[]][] = [
    ['scanner burst', typed('TKT-2025-ABC123', 1000, 8, 8), [scan('TKT-2025-ABC123')]],
    ['exactly the threshold', typed('ABCD', 0, 35, 35), [scan('ABCD')]],
    ['one ms over the threshold', typed('ABCD', 0, 36, 10), [human('ABCD')]],
    ['one ms over the threshold before Enter', typed('ABCD', 0, 10, 36), [human('ABCD')]],
    ['human typing', typed('12345', 0, 150, 200), [human('12345')]],
    ['too short for a code', typed('abc', 0, 5, 5), [human('abc')]],
    ['slow Enter after a fast run', typed('ABCDEF', 0, 5, 400), [human('ABCDEF')]],
    ['pause inside the run', slowInMiddle, [human('TKT-2025')]],
    ['two scans in a row', twoScans, [scan('TKT-2025-ABC123'), scan('TKT-2025-XYZ789')]],
    ['stray key long before is dropped', strayThenScan, [scan('TKT-2025-ABC123')]],
    ['Enter pair yields one line', crlf, [scan('ENT1.abc_-XYZ')]],
    ['lone Enter yields nothing', [['\n', 0], ['\r', 5]], []],
    ['clock going backwards is not fast', [['A', 100], ['B', 90], ['C', 95], ['D', 99], ['\n', 100]], [human('ABCD')]],
    ['control characters are not part of a code', [['A', 0], ['\t', 2], ['B', 4], ['C', 6], ['D', 8], ['\n', 10]], [scan('ABCD')]],
    ['key names are not part of a code', [['A', 0], ['Shift', 2], ['B', 4], ['C', 6], ['D', 8], ['\n', 10]], [scan('ABCD')]],
  ];
  for (const [name, keys, expected] of cases) {
    assert.deepEqual(run(keys), expected, name);
  }
});

test('runaway input is dropped', () => {
  // The line is dropped at key maxLen + 1 and again at 2 × (maxLen + 1); only
  // the last two keys remain, too short for a scan.
  const n = 2 * (WEDGE.maxLen + 1) + 2;
  const d = new WedgeDetector();
  for (let i = 0; i < n; i++) assert.equal(d.feed('A', i), null);
  assert.deepEqual(d.feed('\n', n + 1), human('AA'));
});

test('reset forgets unfinished input', () => {
  const d = new WedgeDetector();
  run(typed('STRAY', 0, 5, 5).slice(0, -1), d);
  d.reset();
  assert.deepEqual(run(typed('TKT-2025-ABC123', 40, 5, 5), d), [scan('TKT-2025-ABC123')]);
});
