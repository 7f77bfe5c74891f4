// The audio context sleeps between tones: a running WebAudio context keeps
// WebKit's audio threads busy on an idle gate (issue 19). Run: npm test.

import { test, mock } from 'node:test';
import assert from 'node:assert/strict';

/** A stand-in for the browser's AudioContext that records its state changes. */
class RecordingContext {
  static made: RecordingContext[] = [];
  state: 'running' | 'suspended' = 'running';
  currentTime = 0;
  calls: string[] = [];
  destination = {};
  constructor() {
    RecordingContext.made.push(this);
  }
  resume() {
    this.calls.push('resume');
    this.state = 'running';
    return Promise.resolve();
  }
  suspend() {
    this.calls.push('suspend');
    this.state = 'suspended';
    return Promise.resolve();
  }
  createOscillator() {
    return { type: '', frequency: { value: 0 }, connect: (n: unknown) => n, start() {}, stop() {} };
  }
  createGain() {
    return {
      gain: { setValueAtTime() {}, linearRampToValueAtTime() {} },
      connect: (n: unknown) => n,
    };
  }
}

test('the audio context is suspended after a tone and resumed for the next', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  (globalThis as Record<string, unknown>).AudioContext = RecordingContext;
  const { playTone, SUSPEND_AFTER_MS } = await import('./sound.js');

  playTone('refuse');
  const c = RecordingContext.made[0];
  assert.equal(c.state, 'running', 'running while the tone plays');
  mock.timers.tick(600);
  assert.equal(c.state, 'running', 'not cut off before the refusal buzz ends (0.62 s)');
  mock.timers.tick(30 + SUSPEND_AFTER_MS);
  assert.equal(c.state, 'suspended', 'asleep once the tone has played out');

  playTone('admit');
  assert.equal(c.state, 'running', 'woken for the next tone');
  mock.timers.tick(200);
  playTone('admit'); // a second scan right after: its timer replaces the first
  mock.timers.tick(200);
  assert.equal(c.state, 'running', 'the second tone is not cut off by the first one\u2019s timer');
  mock.timers.tick(300 + SUSPEND_AFTER_MS);
  assert.equal(c.state, 'suspended');
  assert.equal(RecordingContext.made.length, 1, 'one context for the whole session');
  mock.timers.reset();
});
