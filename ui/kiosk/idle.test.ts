// An idle kiosk: when to dim, when to send preview frames, and no endless
// CSS animation (each repaints the whole verdict panel in software rendering,
// ~80 % of a core on a GPU-less gate). Run: npm test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { infiniteAnimations, previewWanted, shouldDim } from './idle.js';

test('when the screen dims', () => {
  const min = 60_000;
  const cases: [string, number, number, number, boolean][] = [
    ['never, when switched off', 10 * 60 * min, 0, 0, false],
    ['not before the time', 5 * min - 1, 0, 300, false],
    ['at the time', 5 * min, 0, 300, true],
    ['a touch restarts the wait', 7 * min, 3 * min, 300, false],
    ['a clock that went back does not dim', 0, 5 * min, 60, false],
  ];
  for (const [name, now, last, after, want] of cases) assert.equal(shouldDim(now, last, after), want, name);
});

test('when preview frames are wanted', () => {
  const base = { signedIn: true, screen: 'scan', visible: true, dimmed: false };
  const cases: [string, Partial<typeof base>, boolean][] = [
    ['the scanner on screen', {}, true],
    ['locked (sign-in screen)', { signedIn: false }, false],
    ['another screen', { screen: 'slots' }, false],
    ['window hidden or minimised', { visible: false }, false],
    ['dimmed', { dimmed: true }, false],
  ];
  for (const [name, change, want] of cases) assert.equal(previewWanted({ ...base, ...change }), want, name);
});

test('infinite animations are found', () => {
  assert.deepEqual(infiniteAnimations('.a span { width: 1px; animation: pulse 1.6s ease-in-out infinite; }'), ['.a span']);
  assert.deepEqual(infiniteAnimations('.b{animation-iteration-count:INFINITE}'), ['.b']);
  assert.deepEqual(infiniteAnimations('/* animation: x infinite */ .c { animation: fade 200ms 1; }'), []);
});

test('the kiosk style sheet has no infinite animation', () => {
  // Compiled to ui/node_modules/.cache/kiosk-test/: the sources are three levels up.
  const css = readFileSync(new URL('../../../kiosk/style.css', import.meta.url), 'utf8');
  assert.deepEqual(infiniteAnimations(css), []);
});
