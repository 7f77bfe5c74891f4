// Short WebAudio beeps: a rising double beep for ADMIT, a low buzz for a
// refusal, a two-tone chime when the operator must decide.
//
// A running AudioContext keeps WebKit's audio threads busy (2–3 % of a core
// measured on an idle gate, issue 19), so the context is suspended once a
// tone has played out and resumed for the next one.

import type { Tone } from './bindings/Tone.js';

let ctx: AudioContext | null = null;
let sleep: ReturnType<typeof setTimeout> | null = null;

/** How long after a tone's last sound the context is suspended (ms). */
export const SUSPEND_AFTER_MS = 250;

function audio(): AudioContext | null {
  try {
    ctx ??= new AudioContext();
    if (ctx.state === 'suspended') void ctx.resume();
    return ctx;
  } catch {
    return null;
  }
}

/** Suspends the context `ms` from now, unless another tone comes first. */
function suspendIn(c: AudioContext, ms: number) {
  if (sleep !== null) clearTimeout(sleep);
  sleep = setTimeout(() => {
    sleep = null;
    if (c.state === 'running') void c.suspend();
  }, ms);
}

/** Browsers start audio only after a gesture: unlock on the first touch or key. */
export function unlockAudioOnGesture() {
  const unlock = () => {
    const c = audio();
    if (c) suspendIn(c, SUSPEND_AFTER_MS);
  };
  window.addEventListener('pointerdown', unlock, { once: true, capture: true });
  window.addEventListener('keydown', unlock, { once: true, capture: true });
}

function beep(c: AudioContext, at: number, freq: number, dur: number, type: OscillatorType, gain = 0.25) {
  const osc = c.createOscillator();
  const g = c.createGain();
  osc.type = type;
  osc.frequency.value = freq;
  g.gain.setValueAtTime(0, at);
  g.gain.linearRampToValueAtTime(gain, at + 0.01);
  g.gain.setValueAtTime(gain, at + dur - 0.02);
  g.gain.linearRampToValueAtTime(0, at + dur);
  osc.connect(g).connect(c.destination);
  osc.start(at);
  osc.stop(at + dur + 0.01);
}

export function playTone(tone: Tone) {
  const c = audio();
  if (!c) return;
  if (sleep !== null) clearTimeout(sleep);
  sleep = null;
  const t = c.currentTime + 0.01;
  let end: number;
  if (tone === 'admit') {
    beep(c, t, 880, 0.09, 'sine');
    beep(c, t + 0.12, 1320, 0.14, 'sine');
    end = t + 0.26;
  } else if (tone === 'refuse') {
    beep(c, t, 196, 0.22, 'square', 0.18);
    beep(c, t + 0.28, 196, 0.34, 'square', 0.18);
    end = t + 0.62;
  } else {
    beep(c, t, 660, 0.16, 'triangle');
    beep(c, t + 0.2, 523, 0.22, 'triangle');
    end = t + 0.42;
  }
  // A suspended context's clock stands still until resume() takes effect,
  // so the wait is counted from the tone's length, not from currentTime.
  suspendIn(c, (end - t + 0.01) * 1000 + SUSPEND_AFTER_MS);
}
