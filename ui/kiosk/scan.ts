// The scanner screen: verdict, preview, counter, recent scans, manual entry, amber decisions.

import type { ScanOutcome } from './bindings/ScanOutcome';
import type { ScanSource } from './bindings/ScanSource';
import type { VerdictView } from './bindings/VerdictView';
import { $, errorText, fmtTime, h, toast } from './dom';
import { playTone } from './sound';
import { operatorName, run, show, state } from './state';
import { S } from './strings';
import { refreshSync } from './sync';
import { api, asCommandError } from './tauri';

/** How long a verdict stays on screen before "Ready" (a new scan replaces it at once). */
const VERDICT_MS = 4000;
/** An amber verdict stays until the operator decides, or this long. */
const DECIDE_MS = 60000;

// ------------------------------------------------------------------ scanner

export function buildScanner() {
  const root = $('screen-scan');
  const manual = h('form', { class: 'manual', id: 'manual-form', autocomplete: 'off' },
    h('label', { for: 'manual-code' }, S.manualLabel),
    h('div', { class: 'manual-row' },
      h('input', { id: 'manual-code', type: 'text', placeholder: S.manualPlaceholder, spellcheck: 'false', autocapitalize: 'characters' }),
      h('button', { type: 'submit', class: 'btn primary', id: 'manual-submit' }, S.manualSubmit)));
  manual.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('manual-code');
    const code = input.value.trim();
    if (!code) return;
    input.value = '';
    input.blur();
    void scan(code, 'manual');
  });
  root.replaceChildren(
    h('div', { class: 'verdict', id: 'verdict', 'data-tone': 'ready', 'aria-live': 'assertive', onclick: tapVerdict }),
    h('aside', { class: 'side' },
      h('div', { class: 'preview' },
        h('img', { id: 'preview', alt: '' }),
        // Where to hold the code (shown on a handheld, whose preview is the viewfinder).
        h('div', { class: 'aim', 'aria-hidden': 'true' }),
        h('div', { class: 'cam-status', id: 'cam-status', 'data-ok': '' }, S.cameraWaiting)),
      h('div', { class: 'counter', id: 'counter' }),
      manual,
      h('div', { class: 'recent' }, h('h2', {}, S.recent), h('ol', { id: 'recent' }))),
  );
}

function verdictDetail(v: VerdictView): string[] {
  const lines: string[] = [];
  const slot = S.slotLine(v.slot_date, v.slot_start_time, v.slot_end_time);
  switch (v.verdict) {
    case 'ADMIT':
      if (slot) lines.push(slot);
      if (v.overruled) lines.push(S.overruledLine(S.reasons[v.overruled] ?? v.overruled));
      break;
    case 'ALREADY_VERIFIED':
      lines.push(S.verifiedAt(fmtTime(v.verified_at, true), operatorName(v.verified_by)));
      break;
    case 'WRONG_DATE':
    case 'OUTSIDE_SLOT_WINDOW':
      if (slot) lines.push(S.reservedFor(slot));
      break;
    case 'EXPIRED':
      if (v.expires_at) lines.push(S.expiredAt(fmtTime(v.expires_at)));
      break;
  }
  const hint = S.hints[v.verdict];
  if (hint) lines.push(hint);
  if (v.tone === 'decide') lines.push(S.decideHint);
  return lines;
}

export function renderScanner() {
  const box = $('verdict');
  if (!box) return;
  const o = state.last;
  if (!o) {
    box.dataset.tone = 'ready';
    box.replaceChildren(
      h('div', { class: 'v-icon ready-icon', 'aria-hidden': 'true' }, h('span', {})),
      h('div', { class: 'v-title', id: 'verdict-title' }, S.ready),
      h('div', { class: 'v-sub' }, S.readyHint),
    );
  } else {
    const v = o.verdict;
    box.dataset.tone = v.tone;
    box.dataset.verdict = v.verdict;
    // Amber keeps its headline short: the decision buttons must fit below it.
    const title = v.admit ? S.admit : v.tone === 'decide' ? (S.reasons[v.verdict] ?? v.message) : (v.message || S.reasons[v.verdict] || v.verdict);
    box.replaceChildren(
      h('div', { class: 'v-icon', 'aria-hidden': 'true' }, v.tone === 'admit' ? '✓' : v.tone === 'refuse' ? '✕' : '!'),
      h('div', { class: 'v-title', id: 'verdict-title' }, title),
      v.admit ? h('div', { class: 'v-sub' }, S.reasons.ADMIT) : '',
      h('div', { class: 'v-details', id: 'verdict-details' }, ...verdictDetail(v).map((l) => h('div', {}, l))),
      v.tone === 'decide' && o.payload
        ? h('div', { class: 'decide-actions' },
            h('button', { type: 'button', class: 'btn decide-admit', id: 'decide-admit', onclick: (e: Event) => void admitAnyway(o, e) }, S.decideAdmit),
            h('button', { type: 'button', class: 'btn decide-refuse', id: 'decide-refuse', onclick: (e: Event) => refuseDecided(o, e) }, S.decideRefuse))
        : '',
      h('div', { class: 'v-code' }, v.ticket_code ?? '', h('span', { class: 'v-src' }, ` · ${S.sources[o.source] ?? o.source} · ${o.ms.toFixed(1)} ms`)),
    );
  }
  const counter = $('counter');
  // The slot of the latest admission (a refusal for another day says little about this gate's slot).
  const withSlot = state.recent.filter((r) => r.outcome.admitted_in_slot != null);
  const c = (withSlot.find((r) => r.outcome.verdict.admit) ?? withSlot[0])?.outcome;
  counter.replaceChildren(
    h('div', { class: 'counter-label' }, S.counterLabel),
    c
      ? h('div', { class: 'counter-row' },
          h('span', { class: 'counter-n', id: 'counter-n' }, c.admitted_in_slot ?? 0),
          h('span', { class: 'counter-slot' }, S.slotLine(c.verdict.slot_date, c.verdict.slot_start_time, c.verdict.slot_end_time)))
      : h('div', { class: 'counter-none' }, S.counterNone),
  );
  $('recent').replaceChildren(
    ...state.recent.slice(0, 5).map(({ outcome, at }) =>
      h('li', { 'data-tone': outcome.verdict.tone },
        h('span', { class: 'r-dot' }),
        h('span', { class: 'r-what' }, outcome.verdict.admit ? S.admit : (S.reasons[outcome.verdict.verdict] ?? outcome.verdict.verdict)),
        h('span', { class: 'r-code' }, outcome.verdict.ticket_code ?? ''),
        h('span', { class: 'r-at' }, at.toLocaleTimeString([], { hour12: false })))),
  );
}

export function showOutcome(o: ScanOutcome) {
  state.last = o;
  state.recent.unshift({ outcome: o, at: new Date() });
  state.recent.length = Math.min(state.recent.length, 20);
  playTone(o.verdict.tone);
  if (state.screen !== 'scan') show('scan');
  renderScanner();
  clearTimeout(state.verdictTimer);
  // An amber verdict waits for the operator's call (the next scan replaces it).
  state.verdictTimer = window.setTimeout(dismissVerdict, o.verdict.tone === 'decide' ? DECIDE_MS : VERDICT_MS);
}

/** A tap on a red or green verdict puts the scanner back (on a handheld the
 *  verdict covers the screen); an amber one waits for its buttons. */
function tapVerdict(e: Event) {
  const tone = (e.currentTarget as HTMLElement).dataset.tone;
  // Only a green one: a refused holder who can reach the screen must not
  // clear the refusal before the operator has seen it.
  if (tone === 'admit') dismissVerdict();
}

function dismissVerdict() {
  clearTimeout(state.verdictTimer);
  state.last = null;
  renderScanner();
}

/** One decision per amber verdict: a double tap must not send a second one. */
function decided(e: Event): boolean {
  const buttons = (e.currentTarget as HTMLElement).parentElement?.querySelectorAll('button') ?? [];
  if ([...buttons].some((b) => b.disabled)) return false;
  for (const b of buttons) b.disabled = true;
  return true;
}

/** The operator does not let the holder in: nothing is recorded. */
function refuseDecided(o: ScanOutcome, e: Event) {
  if (!o.payload || !decided(e)) return;
  void api.dismissScan(o.payload).catch(() => undefined);
  dismissVerdict();
}

/** The operator lets the holder of an amber verdict in: recorded like an ADMIT. */
async function admitAnyway(o: ScanOutcome, e: Event) {
  if (!o.payload || !decided(e)) return;
  const buttons = (e.currentTarget as HTMLElement | null)?.parentElement?.querySelectorAll('button');
  try {
    showOutcome(await run(api.admitAnyway(o.payload, o.source, o.verdict.verdict)));
    void refreshSync();
  } catch (raw) {
    const err = asCommandError(raw);
    if (err.code === 'LOCKED') return;
    toast(errorText(err));
    // Nothing was recorded: the operator may decide again.
    for (const b of buttons ?? []) b.disabled = false;
  }
}

export async function scan(payload: string, source: ScanSource) {
  if (!state.operator) {
    toast(S.signInFirst);
    return;
  }
  try {
    showOutcome(await run(api.scanCode(payload, source)));
    void refreshSync();
  } catch (raw) {
    const e = asCommandError(raw);
    if (e.code !== 'LOCKED') toast(errorText(e));
  }
}
