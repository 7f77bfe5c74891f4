// Short WebAudio beeps: a rising double beep for ADMIT, a low buzz for a
// refusal, a two-tone chime when the operator must decide.

import type { Tone } from './bindings/Tone';

let ctx: AudioContext | null = null;

function audio(): AudioContext | null {
  try {
    ctx ??= new AudioContext();
    if (ctx.state === 'suspended') void ctx.resume();
    return ctx;
  } catch {
    return null;
  }
}

/** Browsers start audio only after a gesture: unlock on the first touch or key. */
export function unlockAudioOnGesture() {
  const unlock = () => audio();
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
  const t = c.currentTime + 0.01;
  if (tone === 'admit') {
    beep(c, t, 880, 0.09, 'sine');
    beep(c, t + 0.12, 1320, 0.14, 'sine');
  } else if (tone === 'refuse') {
    beep(c, t, 196, 0.22, 'square', 0.18);
    beep(c, t + 0.28, 196, 0.34, 'square', 0.18);
  } else {
    beep(c, t, 660, 0.16, 'triangle');
    beep(c, t + 0.2, 523, 0.22, 'triangle');
  }
}
